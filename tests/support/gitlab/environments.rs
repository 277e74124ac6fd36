//! Environments: listed, created, updated, stopped; stopped review apps deleted.

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use super::{not_found, ok, Req, State};

pub(super) fn route(s: &mut State, req: &Req, path: &[&str]) -> Option<ResponseTemplate> {
    Some(match (req.method.as_str(), path) {
        ("GET", ["projects", p, "environments"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            let want = req.query("states");
            let name = req.query("name");
            let list: Vec<Value> = s
                .environments
                .get(&p)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| want.as_deref().is_none_or(|w| e["state"] == w))
                .filter(|e| name.as_deref().is_none_or(|n| e["name"] == n))
                .collect();
            ok(Value::Array(list))
        }
        ("POST", ["projects", p, "environments"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            s.next_id += 1;
            let mut e = req.body.clone();
            e["id"] = json!(s.next_id);
            e["state"] = json!("available");
            s.environments.entry(p).or_default().push(e.clone());
            ResponseTemplate::new(201).set_body_json(e)
        }
        ("PUT", ["projects", p, "environments", id]) => {
            let (Some(p), Ok(id)) = (s.project(p), id.parse::<u64>()) else {
                return Some(not_found());
            };
            match s
                .environments
                .get_mut(&p)
                .and_then(|l| l.iter_mut().find(|e| e["id"] == id))
            {
                Some(e) => {
                    for (k, v) in req.body.as_object().cloned().unwrap_or_default() {
                        e[k.as_str()] = v;
                    }
                    e["state"] = json!("available");
                    ok(e.clone())
                }
                None => not_found(),
            }
        }
        ("POST", ["projects", p, "environments", id, "stop"]) => {
            let (Some(p), Ok(id)) = (s.project(p), id.parse::<u64>()) else {
                return Some(not_found());
            };
            match s
                .environments
                .get_mut(&p)
                .and_then(|l| l.iter_mut().find(|e| e["id"] == id))
            {
                Some(e) => {
                    e["state"] = json!("stopping");
                    ok(e.clone())
                }
                None => not_found(),
            }
        }
        ("DELETE", ["projects", p, "environments", "review_apps"]) => match s.project(p) {
            Some(_) => ok(json!({"scheduled_entries": [], "unprocessable_entries": []})),
            None => not_found(),
        },
        _ => return None,
    })
}
