//! The token's user, projects and their members.

use serde_json::json;
use wiremock::ResponseTemplate;

use super::{not_found, ok, Req, State, GITLAB_BOT_ID};

pub(super) fn route(s: &mut State, req: &Req, path: &[&str]) -> Option<ResponseTemplate> {
    Some(match (req.method.as_str(), path) {
        ("GET", ["user"]) => {
            ok(json!({"id": GITLAB_BOT_ID, "username": "flux-bot", "state": "active"}))
        }
        ("GET", ["projects", p]) => match s.project(p) {
            Some(id) => ok(json!({"id": id, "path_with_namespace": s.projects.get(&id),
                    "http_url_to_repo": format!("https://gitlab.example.com/{}.git", s.projects.get(&id).cloned().unwrap_or_default())})),
            None => not_found(),
        },
        ("GET", ["projects", p, "members", "all", user]) => {
            let (Some(p), Ok(u)) = (s.project(p), user.parse::<u64>()) else {
                return Some(not_found());
            };
            match s.members.get(&(p, u)) {
                Some(level) => ok(
                    json!({"id": u, "username": format!("user{u}"), "state": "active", "access_level": level}),
                ),
                None => not_found(),
            }
        }
        _ => return None,
    })
}
