//! Webhook payloads shaped exactly like the forges': the fixtures in `tests/fixtures`, with the
//! fields a test varies replaced.

use serde_json::{json, Value};

/// A fixture, e.g. `github/issue_comment.created.payload.json`.
pub fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{path}", super::ROOT)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A repository as GitHub's webhook payloads show it: the fixture's, renamed.
pub fn github_repo(full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let mut r = fixture("github/issue_comment.created.payload.json")["repository"].clone();
    r["name"] = json!(name);
    r["full_name"] = json!(full_name);
    r["owner"]["login"] = json!(owner);
    r["private"] = json!(false);
    r["fork"] = json!(false);
    r["html_url"] = json!(format!("https://github.com/{full_name}"));
    r["url"] = json!(format!("https://api.github.com/repos/{full_name}"));
    r["clone_url"] = json!(format!("https://github.com/{full_name}.git"));
    r
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

/// A `pull_request` event as GitHub sends it: the envelope of `fixture` (e.g.
/// `pull_request.synchronize.payload.json`) with `action` on `pr` (a pull request as GitHub's
/// API shows it: `github_pull`), the base repository and `who` as the sender.
pub fn github_pr_event(fixture_name: &str, action: &str, pr: &Value, who: &str) -> Value {
    let mut e = fixture(&format!("github/{fixture_name}"));
    e["action"] = json!(action);
    e["number"] = pr["number"].clone();
    e["pull_request"] = pr.clone();
    e["repository"] = github_repo(pr["base"]["repo"]["full_name"].as_str().unwrap());
    e["sender"]["login"] = json!(who);
    if e.get("label").is_some() {
        e["label"] = super::github::shapes::label("org/app", "preview");
    }
    e
}

/// A `check_run` (completed) of `sha` named `name` in `repo` with `conclusion`, listing pull
/// requests `numbers`: GitHub's captured payload with these set.
pub fn github_check_run(
    repo: &str,
    sha: &str,
    name: &str,
    conclusion: &str,
    numbers: &[u64],
) -> Value {
    let mut e = fixture("github/check_run.completed.payload.json");
    let template = e["check_run"]["pull_requests"][0].clone();
    e["check_run"]["name"] = json!(name);
    e["check_run"]["head_sha"] = json!(sha);
    e["check_run"]["status"] = json!("completed");
    e["check_run"]["conclusion"] = json!(conclusion);
    e["check_run"]["pull_requests"] = numbers
        .iter()
        .map(|n| {
            let mut p = template.clone();
            p["number"] = json!(n);
            p["url"] = json!(format!("https://api.github.com/repos/{repo}/pulls/{n}"));
            p["head"]["sha"] = json!(sha);
            p
        })
        .collect();
    e["repository"] = github_repo(repo);
    e["sender"]["login"] = json!("github-actions[bot]");
    e
}

/// A `status` event: `context` of `sha` in `repo` became `state`.
pub fn github_status(repo: &str, sha: &str, context: &str, state: &str) -> Value {
    let mut e = fixture("github/status.payload.json");
    e["sha"] = json!(sha);
    e["commit"]["sha"] = json!(sha);
    e["context"] = json!(context);
    e["state"] = json!(state);
    e["repository"] = github_repo(repo);
    e
}
