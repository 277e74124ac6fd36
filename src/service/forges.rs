//! The forges' API clients, built in one place from credentials read once: `GITHUB_TOKEN` (with
//! `GITHUB_API_URL`) and `GITLAB_TOKEN` (with the GitLab URL each caller resolves). Every path —
//! a webhook, resync, cleanup, a CI job's wait — gets its client here.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::forge::github::GitHubChanges;
use crate::forge::gitlab::{GitLab, GitLabChanges, GitLabUrl};
use crate::redact::Secret;

/// The forge tokens of this process.
struct Credentials {
    github: Option<Secret>,
    gitlab: Option<Secret>,
}

fn credentials() -> &'static Credentials {
    static READ: OnceLock<Credentials> = OnceLock::new();
    READ.get_or_init(|| Credentials {
        github: Secret::from_env("GITHUB_TOKEN"),
        gitlab: Secret::from_env("GITLAB_TOKEN"),
    })
}

/// Whether a GitHub token is set.
pub fn has_github_token() -> bool {
    credentials().github.is_some()
}

/// The GitHub client of `repository` (`owner/name`) on the API at `api`.
pub fn github_at(api: &str, repository: &str) -> Result<GitHubChanges> {
    GitHubChanges::connect(api, credentials().github.as_ref(), repository)
}

/// The GitHub client of `repository` on `GITHUB_API_URL` (else the public API).
pub fn github(repository: &str) -> Result<GitHubChanges> {
    github_at(&crate::forge::github::api_from_env(), repository)
}

/// The GitLab API at `url` with `GITLAB_TOKEN`.
pub fn gitlab_api(url: &GitLabUrl) -> Result<GitLab> {
    let token = credentials().gitlab.as_ref().ok_or_else(|| {
        Error::config(
            "GITLAB_TOKEN is not set: GitLab's API needs a token with api or read_api scope",
        )
    })?;
    GitLab::connect(url, token)
}

/// The GitLab client of `project` (path or id), the GitLab URL resolved from `url` (else the
/// CI job's or GITLAB_URL).
pub fn gitlab(url: Option<&str>, project: &str) -> Result<GitLabChanges> {
    let url = GitLabUrl::resolve(url)?;
    Ok(GitLabChanges::new(gitlab_api(&url)?, project.to_string()))
}
