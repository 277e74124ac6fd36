//! Deployments: one, created, updated.

use serde_json::json;
use wiremock::ResponseTemplate;

use super::{not_found, ok, Req, State};

pub(super) fn route(s: &mut State, req: &Req, path: &[&str]) -> Option<ResponseTemplate> {
    Some(match (req.method.as_str(), path) {
        ("GET", ["projects", p, "deployments", id]) => {
            let (Some(p), Ok(id)) = (s.project(p), id.parse::<u64>()) else {
                return Some(not_found());
            };
            s.deployments
                .get(&(p, id))
                .cloned()
                .map_or_else(not_found, ok)
        }
        ("POST", ["projects", p, "deployments"]) => {
            let Some(p) = s.project(p) else {
                return Some(not_found());
            };
            s.next_id += 1;
            let id = s.next_id;
            let mut d = req.body.clone();
            d["id"] = json!(id);
            s.deployments.insert((p, id), d.clone());
            ResponseTemplate::new(201).set_body_json(d)
        }
        ("PUT", ["projects", p, "deployments", id]) => {
            let (Some(p), Ok(id)) = (s.project(p), id.parse::<u64>()) else {
                return Some(not_found());
            };
            match s.deployments.get_mut(&(p, id)) {
                Some(d) => {
                    d["status"] = req.body["status"].clone();
                    ok(d.clone())
                }
                None => not_found(),
            }
        }
        _ => return None,
    })
}
