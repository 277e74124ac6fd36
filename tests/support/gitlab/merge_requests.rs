//! Merge requests: listed, one, its diffs, and its notes (listed, created, edited).

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use super::{not_found, ok, Req, State, GITLAB_BOT_ID};

pub(super) fn route(s: &mut State, req: &Req, path: &[&str]) -> Option<ResponseTemplate> {
    Some(match (req.method.as_str(), path) {
        ("GET", ["projects", p, "merge_requests"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            let want = req.query("state");
            let list: Vec<Value> = s
                .merge_requests
                .iter()
                .filter(|((pid, _), mr)| {
                    *pid == p && want.as_deref().is_none_or(|w| mr["state"] == w)
                })
                .map(|(_, mr)| mr.clone())
                .collect();
            ok(Value::Array(list))
        }
        ("GET", ["projects", p, "merge_requests", iid]) => {
            let (Some(p), Ok(i)) = (s.project(p), iid.parse::<u64>()) else {
                return Some(not_found());
            };
            s.merge_requests
                .get(&(p, i))
                .cloned()
                .map_or_else(not_found, ok)
        }
        ("GET", ["projects", p, "merge_requests", iid, "diffs"]) => {
            let (Some(p), Ok(iid)) = (s.project(p), iid.parse::<u64>()) else {
                return Some(not_found());
            };
            let all = s.diffs.get(&(p, iid)).cloned().unwrap_or_default();
            let per_page = req
                .query("per_page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(20)
                .max(1);
            let page = req
                .query("page")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1);
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|f| json!({"old_path": f, "new_path": f}))
                .collect();
            let mut answer = ok(Value::Array(items));
            if page * per_page < all.len() {
                answer = answer.insert_header("x-next-page", (page + 1).to_string().as_str());
            }
            answer
        }
        ("GET", ["projects", p, "merge_requests", iid, "notes"]) => {
            let (Some(p), Ok(i)) = (s.project(p), iid.parse::<u64>()) else {
                return Some(not_found());
            };
            ok(Value::Array(
                s.notes.get(&(p, i)).cloned().unwrap_or_default(),
            ))
        }
        ("POST", ["projects", p, "merge_requests", iid, "notes"]) => {
            let (Some(p), Ok(i)) = (s.project(p), iid.parse::<u64>()) else {
                return Some(not_found());
            };
            s.next_id += 1;
            let n = json!({"id": s.next_id, "body": req.form.get("body"), "system": false,
                    "author": {"id": GITLAB_BOT_ID, "username": "flux-bot"}});
            s.notes.entry((p, i)).or_default().push(n.clone());
            ResponseTemplate::new(201).set_body_json(n)
        }
        ("PUT", ["projects", p, "merge_requests", iid, "notes", id]) => {
            let (Some(p), Ok(i), Ok(id)) = (s.project(p), iid.parse::<u64>(), id.parse::<u64>())
            else {
                return Some(not_found());
            };
            let body = req.form.get("body").cloned();
            match s
                .notes
                .get_mut(&(p, i))
                .and_then(|l| l.iter_mut().find(|n| n["id"] == id))
            {
                Some(n) => {
                    n["body"] = json!(body);
                    ok(n.clone())
                }
                None => not_found(),
            }
        }
        _ => return None,
    })
}
