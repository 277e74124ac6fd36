//! The forges' API clients, built in one place from credentials read once: `GITHUB_TOKEN` or a
//! GitHub App (`FLUX_EPHEMERAL_GITHUB_APP_*`, with `GITHUB_API_URL`), and `GITLAB_TOKEN` (with
//! the GitLab URL each caller resolves). Every path — a webhook, resync, cleanup, a CI job's wait,
//! a push to a GitOps repository on GitHub — gets its client or token here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::forge::github::app::{App, AppCredentials};
use crate::forge::github::client::block_on;
use crate::forge::github::{GitHub, GitHubChanges};
use crate::forge::gitlab::{GitLab, GitLabChanges, GitLabUrl};
use crate::redact::Secret;

/// The forge tokens of this process.
struct Credentials {
    github: Option<Secret>,
    gitlab: Option<Secret>,
    gitea: Option<Secret>,
}

fn credentials() -> &'static Credentials {
    static READ: OnceLock<Credentials> = OnceLock::new();
    READ.get_or_init(|| Credentials {
        github: Secret::from_env("GITHUB_TOKEN"),
        gitlab: Secret::from_env("GITLAB_TOKEN"),
        gitea: Secret::from_env("GITEA_TOKEN"),
    })
}

static APP_CREDENTIALS: OnceLock<Option<AppCredentials>> = OnceLock::new();

/// Run as this GitHub App (from the command line or the environment), for the whole process.
/// The first call wins; without one, no App is used.
pub fn use_github_app(creds: Option<AppCredentials>) {
    let _ = APP_CREDENTIALS.set(creds);
}

fn app_credentials() -> Option<&'static AppCredentials> {
    APP_CREDENTIALS.get_or_init(|| None).as_ref()
}

/// The GitHub App on `api`, one per process (its installations' tokens are cached in it).
pub fn github_app(api: &str) -> Result<Option<Arc<App>>> {
    let Some(creds) = app_credentials() else {
        return Ok(None);
    };
    static APPS: OnceLock<Mutex<HashMap<String, Arc<App>>>> = OnceLock::new();
    let mut apps = APPS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Error::internal("the GitHub Apps' lock is poisoned"))?;
    if let Some(app) = apps.get(api) {
        return Ok(Some(app.clone()));
    }
    let app = Arc::new(App::new(api, creds)?);
    apps.insert(api.to_string(), app.clone());
    Ok(Some(app))
}

/// Whether GitHub credentials are set: a token or a GitHub App.
pub fn has_github_credentials() -> bool {
    credentials().github.is_some() || app_credentials().is_some()
}

/// The GitHub client of `repository` (`owner/name`) on the API at `api`: as the App's
/// installation that holds it (`installation` when the event named it), else with the token.
pub fn github_installed_at(
    api: &str,
    repository: &str,
    installation: Option<u64>,
) -> Result<GitHubChanges> {
    let Some(app) = github_app(api)? else {
        return GitHubChanges::connect(api, credentials().github.as_ref(), repository);
    };
    if let Some(id) = installation {
        app.note_holder(repository, id);
    }
    let id = block_on("find the App's installation", app.holder_of(repository))?;
    Ok(GitHubChanges::of(GitHub::installed(app, id, repository)?))
}

/// The GitHub client of `repository` (`owner/name`) on the API at `api`.
pub fn github_at(api: &str, repository: &str) -> Result<GitHubChanges> {
    github_installed_at(api, repository, None)
}

/// The GitHub client of `repository` on `GITHUB_API_URL` (else the public API).
pub fn github(repository: &str) -> Result<GitHubChanges> {
    github_at(&crate::forge::github::api_from_env(), repository)
}

/// The GitHub client of an event's repository, as the installation that delivered it.
pub fn github_event(repository: &str, installation: Option<u64>) -> Result<GitHubChanges> {
    github_installed_at(
        &crate::forge::github::api_from_env(),
        repository,
        installation,
    )
}

/// Git over HTTPS to a repository on the GitHub server (`GITHUB_SERVER_URL`, default
/// `https://github.com`) authenticates as the App installation that holds it: a token scoped to
/// that repository, asked for before each fetch and push. `None`: not on GitHub, or no App.
pub fn github_git_token(url: &str) -> Result<Option<crate::git::auth::FreshToken>> {
    let Some(repository) = github_repository_at_server(url) else {
        return Ok(None);
    };
    let api = crate::forge::github::api_from_env();
    let Some(app) = github_app(&api)? else {
        return Ok(None);
    };
    Ok(Some(crate::git::auth::FreshToken::new(Arc::new(
        AppGitToken { app, repository },
    ))))
}

/// `owner/name` of the Git address `url` when it is on the GitHub server (`GITHUB_SERVER_URL`,
/// default `https://github.com`).
pub fn github_repository_at_server(url: &str) -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "https://github.com".into());
    github_repository_of(&server, url)
}

/// The path of `url` when it is an address on the HTTP(S) server `server` (the same scheme and
/// host: `https://host.evil` or `https://host@evil` is not on `https://host`).
fn path_on_server<'u>(server: &str, url: &'u str) -> Option<&'u str> {
    let server = server.trim_end_matches('/');
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return None;
    }
    url.strip_prefix(server)?.strip_prefix('/')
}

/// `owner/name` of `url` when it is an HTTP(S) address on `server`.
fn github_repository_of(server: &str, url: &str) -> Option<String> {
    let rest = path_on_server(server, url)?;
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (owner, name) = rest.split_once('/')?;
    (!owner.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| format!("{owner}/{name}"))
}

struct AppGitToken {
    app: Arc<App>,
    repository: String,
}

impl crate::git::auth::TokenSource for AppGitToken {
    fn token(&self) -> Result<Secret> {
        block_on("get a token for Git", self.app.git_token(&self.repository))
    }
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

/// The Gitea client of `repository` (`owner/name`) on `GITEA_URL` with `GITEA_TOKEN`.
pub fn gitea(repository: &str) -> Result<crate::forge::gitea::GiteaChanges> {
    let url = std::env::var("GITEA_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::config(
                "GITEA_URL is not set: the Gitea server's address, e.g. https://gitea.example.com",
            )
        })?;
    let token = credentials().gitea.as_ref().ok_or_else(|| {
        Error::config("GITEA_TOKEN is not set: a Gitea token of the bot's account (admin on the repositories, see docs/gitea.md)")
    })?;
    crate::forge::gitea::GiteaChanges::connect(&url, token, repository)
}

/// `GITEA_TOKEN` for Git over HTTP(S) to a repository on the Gitea server (`GITEA_URL`).
pub fn gitea_git_token(url: &str) -> Option<Secret> {
    let server = std::env::var("GITEA_URL").ok().filter(|u| !u.is_empty())?;
    path_on_server(&server, url)?;
    credentials().gitea.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_goes_only_to_its_own_server() {
        let on = |url| github_repository_of("https://github.com", url);
        assert_eq!(
            on("https://github.com/org/gitops.git").as_deref(),
            Some("org/gitops")
        );
        assert_eq!(
            on("https://github.com/org/gitops").as_deref(),
            Some("org/gitops")
        );
        for elsewhere in [
            "https://github.com.evil.example/org/gitops.git",
            "https://github.com@evil.example/org/gitops.git",
            "http://github.com/org/gitops.git",
            "ssh://git@github.com/org/gitops.git",
            "https://github.com/org/sub/gitops.git",
            "https://github.com/",
        ] {
            assert_eq!(on(elsewhere), None, "{elsewhere}");
        }
        assert_eq!(
            path_on_server("gitea.example.com", "gitea.example.com/x"),
            None
        );
    }
}
