//! Webhook payloads shaped exactly like the forges': the fixtures in `tests/fixtures`, with the
//! fields a test varies replaced.

use serde_json::{json, Value};

/// A fixture, e.g. `github/issue_comment.created.payload.json`.
pub fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{path}", super::ROOT)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A repository as GitHub's payloads and API show it.
pub fn github_repo(full_name: &str) -> Value {
    json!({"id": 1, "name": full_name.split('/').nth(1).unwrap_or(full_name), "full_name": full_name,
           "clone_url": format!("https://github.com/{full_name}.git"), "private": false, "fork": false})
}

/// An `issue_comment` (created) by `who` on pull request `number` of `repo`.
pub fn github_comment(repo: &str, number: u64, who: &str, body: &str) -> Value {
    let mut e = fixture("github/issue_comment.created.payload.json");
    e["issue"]["number"] = json!(number);
    e["issue"]["pull_request"] =
        json!({"url": format!("https://api.github.com/repos/{repo}/pulls/{number}")});
    e["comment"]["body"] = json!(body);
    e["comment"]["user"]["login"] = json!(who);
    e["comment"]["user"]["type"] = json!("User");
    e["repository"] = github_repo(repo);
    e["sender"]["login"] = json!(who);
    e
}
