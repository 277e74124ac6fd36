//! Issue comments: a pull request's conversation (listed, created, edited).

use serde_json::Value;

use super::{paged, shapes, Answer, Req, State};

pub(super) fn route(s: &mut State, req: &Req, repo: &str, rest: &[&str]) -> Answer {
    match (req.method.as_str(), rest) {
        ("GET", [n, "comments"]) => {
            let key = (repo.to_string(), n.parse().unwrap_or(0));
            let all = s.comments.get(&key).cloned().unwrap_or_default();
            paged(s, req, all, Value::Array)
        }
        ("POST", [n, "comments"]) => {
            let number: u64 = n.parse().unwrap_or(0);
            let id = s.id();
            let body = req.body["body"].as_str().unwrap_or_default();
            let c = shapes::comment(repo, number, id, &s.bot.clone(), body);
            s.comments
                .entry((repo.to_string(), number))
                .or_default()
                .push(c.clone());
            Answer::created(c)
        }
        ("PATCH", ["comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            for ((r, _), list) in s.comments.iter_mut() {
                if r != repo {
                    continue;
                }
                if let Some(c) = list.iter_mut().find(|c| c["id"] == id) {
                    c["body"] = req.body["body"].clone();
                    return Answer::ok(c.clone());
                }
            }
            Answer::not_found()
        }
        _ => Answer::not_found(),
    }
}
