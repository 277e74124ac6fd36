//! Pull requests: the open listing, one pull request, its files.

use serde_json::{json, Value};

use super::{paged, shapes, Answer, Req, State};

pub(super) fn route(s: &mut State, req: &Req, repo: &str, rest: &[&str]) -> Answer {
    match (req.method.as_str(), rest) {
        ("GET", []) => list(s, req, repo),
        ("GET", [n]) => match n
            .parse::<u64>()
            .ok()
            .and_then(|n| s.pulls.get(&(repo.to_string(), n)))
        {
            Some(pr) => {
                // As on GitHub, `comments` counts the conversation's comments.
                let mut pr = pr.clone();
                let number = pr["number"].as_u64().unwrap_or(0);
                let held = s
                    .comments
                    .get(&(repo.to_string(), number))
                    .map_or(0, Vec::len);
                pr["comments"] = json!(held);
                Answer::ok(pr)
            }
            None => Answer::not_found(),
        },
        ("GET", [n, "files"]) => files(s, req, repo, n),
        _ => Answer::not_found(),
    }
}

fn list(s: &mut State, req: &Req, repo: &str) -> Answer {
    let want = req.query("state").unwrap_or("open").to_string();
    let all: Vec<Value> = s
        .pulls
        .iter()
        .filter(|((r, _), pr)| r == repo && (want == "all" || pr["state"] == want.as_str()))
        .map(|(_, pr)| shapes::pull_simple(pr))
        .collect();
    let answer = paged(s, req, all, Value::Array);
    // The listing shifts under the reader after its first page.
    if req.paging(s.page_size).0 == 1 {
        if let Some(key) = s.close_after_first_page.take() {
            if let Some(pr) = s.pulls.get_mut(&key) {
                pr["state"] = json!("closed");
            }
        }
    }
    answer
}

fn files(s: &mut State, req: &Req, repo: &str, n: &str) -> Answer {
    let key = (repo.to_string(), n.parse().unwrap_or(0));
    if s.failing_files_page == Some(req.paging(s.page_size).0) {
        return Answer::error(500, "Server Error");
    }
    let all = s
        .files
        .get(&key)
        .into_iter()
        .flatten()
        .map(|f| shapes::diff_entry(f))
        .collect();
    paged(s, req, all, Value::Array)
}
