//! GitHub's resources in the shapes GitHub documents: each starts from GitHub's own example answer
//! (`shapes/*.json`, written by `scripts/contracts/shapes.py` from the pinned OpenAPI description,
//! MIT-licensed) with the fields a test cares about set. Nothing here adds a field: what the
//! examples do not have, the fake does not answer.

use serde_json::{json, Value};

macro_rules! shape {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("shapes/", $name, ".json")))
            .expect(concat!("shapes/", $name, ".json"))
    };
}

const API: &str = "https://api.github.com";

/// A user (`simple-user`); a login ending in `[bot]` is a Bot.
pub fn user(login: &str) -> Value {
    let mut u = shape!("pull-request")["user"].clone();
    let id = id_of(login);
    u["login"] = json!(login);
    u["id"] = json!(id);
    u["type"] = json!(if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    });
    u["url"] = json!(format!("{API}/users/{login}"));
    u["html_url"] = json!(format!("https://github.com/{login}"));
    u
}

/// A stable id for a name.
fn id_of(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 100_000_000
        + 1
}

/// A repository (`repository`, as pull requests carry it).
pub fn repository(full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let mut r = shape!("pull-request")["head"]["repo"].clone();
    r["id"] = json!(id_of(full_name));
    r["name"] = json!(name);
    r["full_name"] = json!(full_name);
    r["owner"] = user(owner);
    r["fork"] = json!(false);
    r["private"] = json!(false);
    r["url"] = json!(format!("{API}/repos/{full_name}"));
    r["html_url"] = json!(format!("https://github.com/{full_name}"));
    r["clone_url"] = json!(format!("https://github.com/{full_name}.git"));
    r["git_url"] = json!(format!("git://github.com/{full_name}.git"));
    r["ssh_url"] = json!(format!("git@github.com:{full_name}.git"));
    r["default_branch"] = json!("main");
    r["visibility"] = json!("public");
    r
}

/// `GET /repos/{owner}/{repo}` (`full-repository`); `push`: what it says the token may do
/// (`None`: no `permissions`, as for a token that is not a collaborator's).
pub fn full_repository(full_name: &str, push: Option<bool>) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let mut r = shape!("full-repository");
    let short = repository(full_name);
    for k in [
        "id",
        "name",
        "full_name",
        "url",
        "html_url",
        "clone_url",
        "git_url",
        "ssh_url",
    ] {
        r[k] = short[k].clone();
    }
    r["owner"] = user(owner);
    r["name"] = json!(name);
    match push {
        Some(push) => {
            r["permissions"] = json!({"admin": false, "maintain": false, "push": push, "triage": push, "pull": true})
        }
        None => {
            r.as_object_mut().unwrap().remove("permissions");
        }
    }
    r
}

/// A label of `repo`.
pub fn label(repo: &str, name: &str) -> Value {
    let mut l = shape!("pull-request")["labels"][0].clone();
    l["id"] = json!(id_of(name));
    l["name"] = json!(name);
    l["default"] = json!(false);
    l["url"] = json!(format!("{API}/repos/{repo}/labels/{name}"));
    l
}

/// An open pull request (`pull-request`) of `repo` from `branch` of `head_repo` at `sha`.
pub fn pull(repo: &str, number: u64, branch: &str, sha: &str, head_repo: &str) -> Value {
    let mut p = shape!("pull-request");
    let url = format!("{API}/repos/{repo}/pulls/{number}");
    p["url"] = json!(url);
    p["id"] = json!(1000 + number);
    p["number"] = json!(number);
    p["state"] = json!("open");
    p["locked"] = json!(false);
    p["title"] = json!(format!("Change {number}"));
    p["user"] = user("author");
    p["html_url"] = json!(format!("https://github.com/{repo}/pull/{number}"));
    p["merged"] = json!(false);
    p["merged_at"] = Value::Null;
    p["closed_at"] = Value::Null;
    p["merged_by"] = Value::Null;
    p["draft"] = json!(false);
    p["labels"] = json!([]);
    p["assignee"] = Value::Null;
    p["assignees"] = json!([]);
    p["requested_reviewers"] = json!([]);
    p["requested_teams"] = json!([]);
    p["milestone"] = Value::Null;
    p["created_at"] = json!("2026-01-01T00:00:00Z");
    p["updated_at"] = json!("2026-01-01T00:00:00Z");
    let head_owner = head_repo.split('/').next().unwrap_or(head_repo);
    p["head"]["ref"] = json!(branch);
    p["head"]["sha"] = json!(sha);
    p["head"]["label"] = json!(format!("{head_owner}:{branch}"));
    p["head"]["repo"] = repository(head_repo);
    p["head"]["user"] = user(head_owner);
    let owner = repo.split('/').next().unwrap_or(repo);
    p["base"]["ref"] = json!("main");
    p["base"]["sha"] = json!("f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    p["base"]["label"] = json!(format!("{owner}:main"));
    p["base"]["repo"] = repository(repo);
    p["base"]["user"] = user(owner);
    p
}

/// The same pull request as listings show it (`pull-request-simple`): only the keys that shape
/// has.
pub fn pull_simple(full: &Value) -> Value {
    let template = shape!("pull-request-simple");
    let mut out = serde_json::Map::new();
    for (k, v) in template.as_object().unwrap() {
        out.insert(k.clone(), full.get(k).cloned().unwrap_or_else(|| v.clone()));
    }
    Value::Object(out)
}

/// An issue comment (`issue-comment`) on `number` of `repo`.
pub fn comment(repo: &str, number: u64, id: u64, login: &str, body: &str) -> Value {
    let mut c = shape!("issue-comment");
    c["id"] = json!(id);
    c["body"] = json!(body);
    c["user"] = user(login);
    c["url"] = json!(format!("{API}/repos/{repo}/issues/comments/{id}"));
    c["html_url"] = json!(format!(
        "https://github.com/{repo}/pull/{number}#issuecomment-{id}"
    ));
    c["issue_url"] = json!(format!("{API}/repos/{repo}/issues/{number}"));
    c
}

/// A commit status (`status`).
pub fn status(
    id: u64,
    context: &str,
    state: &str,
    description: Option<&str>,
    target_url: Option<&str>,
    creator: &str,
    at: &str,
) -> Value {
    let mut s = shape!("status");
    s["id"] = json!(id);
    s["context"] = json!(context);
    s["state"] = json!(state);
    s["description"] = json!(description);
    s["target_url"] = json!(target_url);
    s["creator"] = user(creator);
    s["created_at"] = json!(at);
    s["updated_at"] = json!(at);
    s
}

/// The combined status of `sha` (`combined-commit-status`): the newest status of each context,
/// as `simple-commit-status`, which names no creator.
pub fn combined(repo: &str, sha: &str, latest: &[Value]) -> Value {
    let mut c = shape!("combined-status");
    let template = c["statuses"][0].clone();
    let statuses: Vec<Value> = latest
        .iter()
        .map(|s| {
            let mut out = serde_json::Map::new();
            for k in template.as_object().unwrap().keys() {
                out.insert(
                    k.clone(),
                    s.get(k).cloned().unwrap_or_else(|| template[k].clone()),
                );
            }
            Value::Object(out)
        })
        .collect();
    let states: Vec<&str> = latest.iter().filter_map(|s| s["state"].as_str()).collect();
    c["state"] = json!(
        if states.iter().any(|s| matches!(*s, "failure" | "error")) {
            "failure"
        } else if !states.is_empty() && states.iter().all(|s| *s == "success") {
            "success"
        } else {
            "pending"
        }
    );
    c["sha"] = json!(sha);
    c["total_count"] = json!(statuses.len());
    c["statuses"] = Value::Array(statuses);
    c["repository"] = pull_simple_repo(repo, &c["repository"]);
    c["commit_url"] = json!(format!("{API}/repos/{repo}/commits/{sha}"));
    c["url"] = json!(format!("{API}/repos/{repo}/commits/{sha}/status"));
    c
}

/// `minimal-repository` of `repo`: the example's keys, filled from [`repository`].
fn pull_simple_repo(repo: &str, template: &Value) -> Value {
    let full = repository(repo);
    let mut out = serde_json::Map::new();
    for (k, v) in template.as_object().unwrap() {
        out.insert(k.clone(), full.get(k).cloned().unwrap_or_else(|| v.clone()));
    }
    Value::Object(out)
}

/// A file a pull request changes (`diff-entry`).
pub fn diff_entry(filename: &str) -> Value {
    let mut f = shape!("diff-entry");
    f["filename"] = json!(filename);
    f["status"] = json!("modified");
    f.as_object_mut().unwrap().remove("previous_filename");
    f
}

/// `GET …/collaborators/{username}/permission`.
pub fn permission(login: &str, permission: &str) -> Value {
    let mut p = shape!("collaborator-permission");
    // `permission` is GitHub's legacy name (admin, write, read, none); `role_name` the role.
    let legacy = match permission {
        "maintain" => "write",
        "triage" => "read",
        other => other,
    };
    p["permission"] = json!(legacy);
    p["role_name"] = json!(permission);
    let mut out = p["user"].clone();
    for (k, v) in user(login).as_object().unwrap() {
        if out.get(k).is_some() {
            out[k] = v.clone();
        }
    }
    out["role_name"] = json!(permission);
    p["user"] = out;
    p
}

/// `GET /user` (`private-user`).
pub fn private_user(login: &str) -> Value {
    let mut u = shape!("private-user");
    let short = user(login);
    for (k, v) in short.as_object().unwrap() {
        if u.get(k).is_some() {
            u[k] = v.clone();
        }
    }
    u
}

/// `GET /rate_limit`.
pub fn rate_limit() -> Value {
    shape!("rate-limit")
}

/// A check run (`check-run`) of `sha`.
pub fn check_run(id: u64, name: &str, status: &str, conclusion: Option<&str>, sha: &str) -> Value {
    let mut r = shape!("check-run-list")["check_runs"][0].clone();
    r["id"] = json!(id);
    r["name"] = json!(name);
    r["status"] = json!(status);
    r["conclusion"] = json!(conclusion);
    r["head_sha"] = json!(sha);
    r["check_suite"]["id"] = json!(id);
    r
}

/// A deployment (`deployment`) as `POST …/deployments` created it from `body`.
pub fn deployment(repo: &str, id: u64, body: &Value, creator: &str) -> Value {
    let mut d = shape!("deployment");
    d["id"] = json!(id);
    d["url"] = json!(format!("{API}/repos/{repo}/deployments/{id}"));
    d["statuses_url"] = json!(format!("{API}/repos/{repo}/deployments/{id}/statuses"));
    d["repository_url"] = json!(format!("{API}/repos/{repo}"));
    d["sha"] = body["ref"].clone();
    d["ref"] = body["ref"].clone();
    d["environment"] = body["environment"].clone();
    d["original_environment"] = body["environment"].clone();
    d["description"] = body.get("description").cloned().unwrap_or(Value::Null);
    d["transient_environment"] = body
        .get("transient_environment")
        .cloned()
        .unwrap_or(json!(false));
    d["production_environment"] = body
        .get("production_environment")
        .cloned()
        .unwrap_or(json!(false));
    d["task"] = body.get("task").cloned().unwrap_or(json!("deploy"));
    d["payload"] = json!({});
    d["creator"] = user(creator);
    d
}

/// A deployment status (`deployment-status`) as `POST …/statuses` created it from `body`.
pub fn deployment_status(
    repo: &str,
    deployment: u64,
    id: u64,
    body: &Value,
    creator: &str,
) -> Value {
    let mut s = shape!("deployment-status");
    s["id"] = json!(id);
    s["state"] = body["state"].clone();
    s["description"] = body.get("description").cloned().unwrap_or(json!(""));
    s["environment_url"] = body.get("environment_url").cloned().unwrap_or(json!(""));
    s["log_url"] = body.get("log_url").cloned().unwrap_or(json!(""));
    s["target_url"] = body.get("log_url").cloned().unwrap_or(json!(""));
    s["deployment_url"] = json!(format!("{API}/repos/{repo}/deployments/{deployment}"));
    s["repository_url"] = json!(format!("{API}/repos/{repo}"));
    s["url"] = json!(format!(
        "{API}/repos/{repo}/deployments/{deployment}/statuses/{id}"
    ));
    s["creator"] = user(creator);
    s
}

/// GitHub's error answer (`basic-error`).
pub fn error(message: &str, status: u16) -> Value {
    json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()})
}

/// `GET /app` (`integration`): App `id` named `slug`.
pub fn integration(id: u64, slug: &str, owner: &str) -> Value {
    let mut a = shape!("integration");
    a["id"] = json!(id);
    a["slug"] = json!(slug);
    a["name"] = json!(slug);
    a["client_id"] = json!(format!("Iv1.{id:016x}"));
    a["html_url"] = json!(format!("https://github.com/apps/{slug}"));
    a["owner"] = user(owner);
    a
}

/// `GET /repos/{owner}/{repo}/installation` (`installation`): installation `id` of App
/// `app_id` on `account`, with `permissions`.
pub fn installation(id: u64, app_id: u64, slug: &str, account: &str, permissions: &Value) -> Value {
    let mut i = shape!("installation");
    i["id"] = json!(id);
    i["app_id"] = json!(app_id);
    i["app_slug"] = json!(slug);
    i["account"] = user(account);
    i["target_id"] = json!(id_of(account));
    i["target_type"] = json!("Organization");
    i["permissions"] = permissions.clone();
    i["repository_selection"] = json!("selected");
    i["access_tokens_url"] = json!(format!("{API}/app/installations/{id}/access_tokens"));
    i["html_url"] = json!(format!(
        "https://github.com/organizations/{account}/settings/installations/{id}"
    ));
    i
}

/// `POST /app/installations/{id}/access_tokens` (`installation-token`): `token`, expiring at
/// `expires_at`, scoped to `repositories` (`None`: all the installation's).
pub fn installation_token(
    token: &str,
    expires_at: &str,
    permissions: &Value,
    repositories: Option<&[String]>,
) -> Value {
    let mut t = shape!("installation-token");
    t["token"] = json!(token);
    t["expires_at"] = json!(expires_at);
    t["permissions"] = permissions.clone();
    let example = t["repositories"][0].clone();
    match repositories {
        Some(names) => {
            t["repository_selection"] = json!("selected");
            t["repositories"] = json!(names
                .iter()
                .map(|full| {
                    let mut r = example.clone();
                    let short = repository(full);
                    for k in [
                        "id",
                        "name",
                        "full_name",
                        "url",
                        "html_url",
                        "clone_url",
                        "owner",
                    ] {
                        r[k] = short[k].clone();
                    }
                    r
                })
                .collect::<Vec<_>>());
        }
        None => {
            t["repository_selection"] = json!("all");
            t.as_object_mut().unwrap().remove("repositories");
        }
    }
    t
}
