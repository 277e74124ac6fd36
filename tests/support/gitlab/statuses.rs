//! Commit statuses (listed, set) and pipelines.

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use super::{not_found, now, ok, Req, State, GITLAB_BOT_ID};

pub(super) fn route(s: &mut State, req: &Req, path: &[&str]) -> Option<ResponseTemplate> {
    Some(match (req.method.as_str(), path) {
        ("GET", ["projects", p, "repository", "commits", sha, "statuses"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            let mut list: Vec<Value> = s
                    .statuses
                    .iter()
                    .zip(s.descriptions.iter())
                    .filter(|((pp, sh, _), _)| *pp == p && sh == sha)
                    .map(|((_, _, st), d)| json!({"name": "flux-ephemeral", "status": st, "description": d,
                        "author": {"id": GITLAB_BOT_ID, "username": "flux-bot"}, "created_at": now()}))
                    .collect();
            list.extend(
                s.others_statuses
                    .iter()
                    .filter(|(pp, sh, _)| *pp == p && sh == sha)
                    .map(|(_, _, v)| v.clone()),
            );
            ok(Value::Array(list))
        }
        ("GET", ["projects", p, "pipelines"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            let sha = req.query("sha").unwrap_or_default();
            let list: Vec<Value> = s
                .pipelines
                .get(&(p, sha.clone()))
                .map(|st| vec![json!({"id": 1, "sha": sha, "status": st})])
                .unwrap_or_default();
            ok(Value::Array(list))
        }
        ("POST", ["projects", p, "statuses", sha]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            let state = req.form.get("state").cloned().unwrap_or_default();
            s.statuses.push((p, sha.to_string(), state.clone()));
            s.descriptions
                .push(req.form.get("description").cloned().unwrap_or_default());
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 1, "status": state, "name": "flux-ephemeral"}))
        }
        _ => return None,
    })
}
