//! Running as a GitHub App: what the App must be allowed and sent (its permissions and webhook
//! events, one list for the manifest, `doctor` and the docs), the manifest for GitHub's "create
//! an App from a manifest" flow, and what `doctor` says of the App's installations.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::forge::github::app::{App, Installation};
use crate::forge::github::client::{block_on, read_budget};

/// What the App needs on application repositories: reply, set statuses and deployments, read
/// pull requests and their checks.
pub const APPLICATION_PERMISSIONS: &[(&str, &str)] = &[
    ("issues", "write"),
    ("pull_requests", "write"),
    ("statuses", "write"),
    ("deployments", "write"),
    ("checks", "read"),
    ("actions", "read"),
    ("metadata", "read"),
];

/// What the App needs on the GitOps repository: push the sync files.
pub const GITOPS_PERMISSIONS: &[(&str, &str)] = &[("contents", "write"), ("metadata", "read")];

/// The webhook events the bot acts on.
pub const EVENTS: &[&str] = &[
    "issue_comment",
    "pull_request",
    "check_run",
    "check_suite",
    "status",
    "workflow_run",
];

/// The App manifest for `url` (where `serve` is reached): paste it into GitHub's "create a
/// GitHub App from a manifest" flow; GitHub answers with the App's id, key and webhook secret.
pub fn manifest(url: &str, name: &str, public: bool) -> Result<Value> {
    let url = url.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(Error::input(format!(
            "--url {url:?} is not an http(s) address: give where serve is reached, e.g. https://bot.example.com"
        )));
    }
    let mut permissions = serde_json::Map::new();
    for (k, v) in APPLICATION_PERMISSIONS.iter().chain(GITOPS_PERMISSIONS) {
        let stronger = permissions.get(*k).and_then(Value::as_str) == Some("write");
        if !stronger {
            permissions.insert((*k).to_string(), json!(v));
        }
    }
    Ok(json!({
        "name": name,
        "url": url,
        "hook_attributes": {"url": format!("{url}/hooks/github"), "active": true},
        "public": public,
        "default_permissions": permissions,
        "default_events": EVENTS,
        "description": "Preview environments for pull requests, committed as Flux sync files to a GitOps repository (flux-ephemeral)",
    }))
}

/// How `level` (`read`, `write`, `admin`) compares with `needed`.
fn enough(level: Option<&str>, needed: &str) -> bool {
    let rank = |l: &str| match l {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    };
    level.is_some_and(|l| rank(l) >= rank(needed))
}

/// The permissions of `installation` short of `needed`, as `name: level` lines.
pub fn missing(installation: &Installation, needed: &[(&str, &str)]) -> Vec<String> {
    needed
        .iter()
        .filter(|(k, v)| !enough(installation.permissions.get(*k).map(String::as_str), v))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

/// What `doctor` finds of one repository: the installation that holds it and what it lacks.
/// `Err`: not installed there (or GitHub did not answer).
pub struct Holding {
    pub installation: u64,
    pub missing: Vec<String>,
}

/// Where `repository` stands for `app`, needing `needed`.
pub fn holding(app: &App, repository: &str, needed: &[(&str, &str)]) -> Result<Holding> {
    let Some(i) = block_on("find the installation", app.holder(repository))? else {
        return Err(Error::config(format!(
            "the App is not installed on {repository}: install it there (the App's page, Install App)"
        )));
    };
    // What the installation has left of its rate limit (free to ask; doctor lists it).
    if let Ok(client) = app.installation(i.id) {
        let name = format!("installation {}", i.id);
        let _ = block_on("read the rate limit", async {
            read_budget(&client, &name).await
        });
    }
    Ok(Holding {
        installation: i.id,
        missing: if i.permissions.is_empty() {
            Vec::new()
        } else {
            missing(&i, needed)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_asks_for_what_the_bot_uses() {
        let m = manifest("https://bot.example.com/", "previews", false).unwrap();
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://bot.example.com/hooks/github"
        );
        assert_eq!(m["default_permissions"]["contents"], "write");
        assert_eq!(m["default_permissions"]["pull_requests"], "write");
        assert_eq!(m["default_permissions"]["metadata"], "read");
        assert!(m["default_events"]
            .as_array()
            .unwrap()
            .contains(&json!("issue_comment")));
        assert!(manifest("bot.example.com", "x", false).is_err());
    }

    #[test]
    fn missing_permissions_are_named() {
        let i = Installation {
            id: 1,
            permissions: [("issues", "read"), ("pull_requests", "admin")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            account: None,
        };
        let m = missing(
            &i,
            &[
                ("issues", "write"),
                ("pull_requests", "write"),
                ("checks", "read"),
            ],
        );
        assert_eq!(m, ["issues: write", "checks: read"]);
    }
}
