//! Commit statuses: created, listed (every status, newest first, naming its creator) and combined
//! (the newest of each context, as `simple-commit-status`, which names nobody).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{now, paged, shapes, Answer, Req, State};

pub(super) fn create(s: &mut State, req: &Req, repo: &str, sha: &str) -> Answer {
    let id = s.id();
    let b = &req.body;
    let status = shapes::status(
        id,
        b["context"].as_str().unwrap_or("default"),
        b["state"].as_str().unwrap_or_default(),
        b["description"].as_str(),
        b["target_url"].as_str(),
        &s.bot.clone(),
        &now(),
    );
    s.statuses
        .push((repo.to_string(), sha.to_string(), status.clone()));
    Answer::created(status)
}

fn of<'a>(s: &'a State, repo: &'a str, sha: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    s.statuses
        .iter()
        .filter(move |(r, h, _)| r == repo && h == sha)
        .map(|(_, _, v)| v)
}

pub(super) fn list(s: &mut State, req: &Req, repo: &str, sha: &str) -> Answer {
    let mut all: Vec<Value> = of(s, repo, sha).cloned().collect();
    all.reverse();
    paged(s, req, all, Value::Array)
}

pub(super) fn combined(s: &mut State, repo: &str, sha: &str) -> Answer {
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for v in of(s, repo, sha) {
        latest.insert(
            v["context"].as_str().unwrap_or_default().to_string(),
            v.clone(),
        );
    }
    let latest: Vec<Value> = latest.into_values().collect();
    Answer::ok(shapes::combined(repo, sha, &latest))
}
