//! The real Gitea of `scripts/real-gitea.sh`, named by `FLUX_EPHEMERAL_REAL_GITEA=DIR` (which
//! `scripts/test.sh` sets): its URL and admin token, and the calls a test makes as its users
//! (create users, repositories, branches, pull requests, comments, webhooks).

use serde_json::{json, Value};

/// The running Gitea, as its admin sees it.
pub struct Gitea {
    pub url: String,
    pub admin: String,
    pub admin_token: String,
    http: reqwest::Client,
}

/// A user of the Gitea, with a token.
pub struct GiteaUser {
    pub login: String,
    pub token: String,
}

impl Gitea {
    /// The Gitea named by FLUX_EPHEMERAL_REAL_GITEA, or a skip (a failure in CI).
    pub fn from_env() -> Option<Gitea> {
        let Some(dir) = std::env::var_os("FLUX_EPHEMERAL_REAL_GITEA").filter(|d| !d.is_empty())
        else {
            super::skip(
                "no real Gitea: run ./scripts/test.sh, or `scripts/real-gitea.sh start DIR` and set FLUX_EPHEMERAL_REAL_GITEA=DIR",
            );
            return None;
        };
        let env = std::fs::read_to_string(std::path::Path::new(&dir).join("env"))
            .unwrap_or_else(|e| panic!("FLUX_EPHEMERAL_REAL_GITEA: {e}"));
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing from {dir:?}/env"))
                .to_string()
        };
        Some(Gitea {
            url: get("GITEA_URL"),
            admin: get("GITEA_ADMIN_USER"),
            admin_token: get("GITEA_ADMIN_TOKEN"),
            http: reqwest::Client::new(),
        })
    }

    /// `method path` (under /api/v1) as `token`; the status and the JSON answer.
    pub async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/api/v1{path}", self.url),
            )
            .header("Authorization", format!("token {token}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let answer = req.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// As the admin; the answer must be 2xx.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(&self.admin_token, method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// A new user (unique name from `prefix`) with a token that may write repositories and issues.
    pub async fn user(&self, prefix: &str) -> GiteaUser {
        let login = format!("{prefix}-{}", unique());
        let password = format!("pw-{}", unique());
        self.admin(
            "POST",
            "/admin/users",
            Some(
                json!({"username": login, "email": format!("{login}@example.com"),
                        "password": password, "must_change_password": false}),
            ),
        )
        .await;
        let answer = self
            .http
            .post(format!("{}/api/v1/users/{login}/tokens", self.url))
            .basic_auth(&login, Some(&password))
            .header("Content-Type", "application/json")
            .body(json!({"name": "tests", "scopes": ["write:repository", "write:issue", "read:user"]}).to_string())
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
        GiteaUser {
            login,
            token: v["sha1"]
                .as_str()
                .unwrap_or_else(|| panic!("no token: {v}"))
                .to_string(),
        }
    }

    /// A new public repository of the admin (unique name from `prefix`), with a first commit on
    /// `main`; its `owner/name`.
    pub async fn repository(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", unique());
        self.admin(
            "POST",
            "/user/repos",
            Some(json!({"name": name, "auto_init": true, "default_branch": "main", "private": false})),
        )
        .await;
        format!("{}/{name}", self.admin)
    }

    /// A new public repository of the admin with no commit yet (to push into); its `owner/name`.
    pub async fn empty_repository(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", unique());
        self.admin(
            "POST",
            "/user/repos",
            Some(json!({"name": name, "auto_init": false, "default_branch": "main", "private": false})),
        )
        .await;
        format!("{}/{name}", self.admin)
    }

    /// The Git address of `repo` with the admin's token in it (for `git push` in tests).
    pub fn push_url(&self, repo: &str) -> String {
        let (scheme, host) = self.url.split_once("://").unwrap();
        format!(
            "{scheme}://{}:{}@{host}/{repo}.git",
            self.admin, self.admin_token
        )
    }

    /// A branch `branch` off `main` with one more commit (a file of its own); its head sha.
    pub async fn branch_with_commit(&self, repo: &str, branch: &str, file: &str) -> String {
        let content = base64_of(format!("{file} on {branch}\n").as_bytes());
        let v = self
            .admin(
                "POST",
                &format!("/repos/{repo}/contents/{file}"),
                Some(
                    json!({"content": content, "branch": "main", "new_branch": branch,
                            "message": format!("add {file}")}),
                ),
            )
            .await;
        v["commit"]["sha"].as_str().unwrap().to_string()
    }

    /// One more commit on `branch`; its sha.
    pub async fn commit_on(&self, repo: &str, branch: &str, file: &str) -> String {
        let content = base64_of(format!("{file}\n").as_bytes());
        let v = self
            .admin(
                "POST",
                &format!("/repos/{repo}/contents/{file}"),
                Some(
                    json!({"content": content, "branch": branch, "message": format!("add {file}")}),
                ),
            )
            .await;
        v["commit"]["sha"].as_str().unwrap().to_string()
    }

    /// A pull request from `branch` into `main`; its number.
    pub async fn pull_request(&self, repo: &str, branch: &str, title: &str) -> u64 {
        let v = self
            .admin(
                "POST",
                &format!("/repos/{repo}/pulls"),
                Some(json!({"head": branch, "base": "main", "title": title})),
            )
            .await;
        v["number"].as_u64().unwrap()
    }

    /// A `gitea` webhook on `repo` to `url`, signed with `secret`, for comments and pull requests.
    pub async fn webhook(&self, repo: &str, url: &str, secret: &str) {
        self.admin(
            "POST",
            &format!("/repos/{repo}/hooks"),
            Some(json!({
                "type": "gitea",
                "active": true,
                "events": ["issue_comment", "pull_request", "pull_request_comment", "pull_request_sync", "pull_request_label"],
                "config": {"url": url, "content_type": "json", "secret": secret},
            })),
        )
        .await;
    }

    /// The comments of issue or pull request `number`.
    pub async fn comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let v = self
            .admin(
                "GET",
                &format!("/repos/{repo}/issues/{number}/comments"),
                None,
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }
}

fn unique() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
