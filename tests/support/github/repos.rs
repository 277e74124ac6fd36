//! Repositories and who may do what in them.

use super::{shapes, Answer, Req, State};

pub(super) fn route(s: &mut State, req: &Req, repo: &str, rest: &[&str]) -> Answer {
    match (req.method.as_str(), rest) {
        ("GET", []) => Answer::ok(shapes::full_repository(repo, s.token_push)),
        ("GET", ["collaborators", login, "permission"]) => {
            match s.permissions.get(&(repo.to_string(), login.to_string())) {
                Some(p) => Answer::ok(shapes::permission(login, p)),
                // Not a collaborator: GitHub says 404 ("is not a user" / not found).
                None => Answer::not_found(),
            }
        }
        _ => Answer::not_found(),
    }
}
