//! The fake forges: GitHub (`super::github`) and GitLab (`super::gitlab`), each split by
//! resource and held to its forge's published contract; re-exported here.

use wiremock::MockServer;

/// The recorded requests: `METHOD /path`.
pub async fn requests(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

// GitHub: `super::github` (held to GitHub's published contract), re-exported here.
#[allow(unused_imports)]
pub use super::github::{github_comment_handled, github_pull, FakeGitHub};

#[allow(unused_imports)]
pub use super::gitlab::{gitlab_merge_request, FakeGitLab, GITLAB_BOT_ID};
