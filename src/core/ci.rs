//! What a CI job tells us about the environment it runs for: GitLab CI variables, or a GitHub
//! Actions run (variables plus the event file). Pure: it reads through a lookup function.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Where the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitLab,
    GitHub,
}

/// GitLab's `CI_ENVIRONMENT_ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvAction {
    Start,
    Stop,
    /// `prepare`, `verify`, `access`: nothing to deploy or destroy.
    Other,
}

/// Everything the job's variables say about the environment; each field may be absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiContext {
    pub provider: Provider,
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub id: Option<String>,
    pub author: Option<String>,
    pub title: Option<String>,
    /// GitLab environment name, e.g. `review/feature-x`.
    pub environment: Option<String>,
    /// GitLab environment slug: used as the environment's slug so GitLab and the cluster agree.
    pub slug: Option<String>,
    pub action: Option<EnvAction>,
    pub environment_url: Option<String>,
    /// The application repository the job runs for.
    pub source_url: Option<String>,
    /// The pull request comes from a fork (GitHub), with the fork's clone URL (empty when the
    /// fork was deleted).
    pub fork_clone_url: Option<String>,
    /// The pipeline's own repository: GITHUB_REPOSITORY, or CI_PROJECT_PATH and CI_PROJECT_ID.
    pub repository: Option<crate::events::RepoRef>,
}

impl CiContext {
    fn empty(provider: Provider) -> Self {
        CiContext {
            provider,
            branch: None,
            sha: None,
            id: None,
            author: None,
            title: None,
            environment: None,
            slug: None,
            action: None,
            environment_url: None,
            source_url: None,
            fork_clone_url: None,
            repository: None,
        }
    }
}

/// Detect the CI system from `var` (GITLAB_CI, GITHUB_ACTIONS). `read_file` reads the GitHub
/// event file. `None` when not in a known CI system.
pub fn detect(
    var: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> Result<String>,
) -> Result<Option<CiContext>> {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    if get("GITLAB_CI").is_some() {
        return Ok(Some(gitlab(&get)));
    }
    if get("GITHUB_ACTIONS").is_some() {
        return github(&get, read_file).map(Some);
    }
    Ok(None)
}

fn gitlab(get: &dyn Fn(&str) -> Option<String>) -> CiContext {
    let mut c = CiContext::empty(Provider::GitLab);
    c.branch = get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME").or_else(|| get("CI_COMMIT_REF_NAME"));
    c.sha = get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA").or_else(|| get("CI_COMMIT_SHA"));
    c.id = get("CI_MERGE_REQUEST_IID");
    c.author = get("GITLAB_USER_LOGIN");
    c.title = get("CI_MERGE_REQUEST_TITLE");
    c.environment = get("CI_ENVIRONMENT_NAME");
    c.slug = get("CI_ENVIRONMENT_SLUG");
    c.action = get("CI_ENVIRONMENT_ACTION").map(|a| match a.as_str() {
        "start" => EnvAction::Start,
        "stop" => EnvAction::Stop,
        _ => EnvAction::Other,
    });
    c.environment_url = get("CI_ENVIRONMENT_URL");
    // Never CI_REPOSITORY_URL: it embeds the job's token.
    c.source_url = get("CI_PROJECT_URL").map(|u| format!("{}.git", u.trim_end_matches('/')));
    c.repository = get("CI_PROJECT_PATH").map(|path| crate::events::RepoRef {
        forge: crate::events::Forge::GitLab,
        path,
        id: get("CI_PROJECT_ID").and_then(|i| i.parse().ok()),
    });
    c
}

fn github(
    get: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> Result<String>,
) -> Result<CiContext> {
    let mut c = CiContext::empty(Provider::GitHub);
    c.branch = get("GITHUB_HEAD_REF").or_else(|| get("GITHUB_REF_NAME"));
    c.sha = get("GITHUB_SHA");
    c.author = get("GITHUB_ACTOR");
    let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
    c.source_url =
        get("GITHUB_REPOSITORY").map(|r| format!("{}/{r}.git", server.trim_end_matches('/')));
    c.repository = get("GITHUB_REPOSITORY").map(|path| crate::events::RepoRef {
        forge: crate::events::Forge::GitHub,
        path,
        id: None,
    });
    if let Some(path) = get("GITHUB_EVENT_PATH") {
        let text = read_file(&path)?;
        let event: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::input(format!("GITHUB_EVENT_PATH {path} is not a JSON event: {e}"))
        })?;
        if let Some(pr) = event.get("pull_request").filter(|p| p.is_object()) {
            let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
            c.branch = s(&pr["head"]["ref"]).or(c.branch);
            c.sha = s(&pr["head"]["sha"]).or(c.sha);
            c.id = pr["number"].as_u64().map(|n| n.to_string());
            c.author = s(&pr["user"]["login"]).or(c.author);
            c.title = s(&pr["title"]);
            let head = s(&pr["head"]["repo"]["full_name"]);
            let base = s(&pr["base"]["repo"]["full_name"]);
            if crate::events::is_fork(head.as_deref(), base.as_deref()) {
                c.fork_clone_url = Some(s(&pr["head"]["repo"]["clone_url"]).unwrap_or_default());
            }
        }
    }
    Ok(c)
}

/// Read the process environment (for [`detect`]).
pub fn from_process() -> Result<Option<CiContext>> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    detect(&|k| vars.get(k).cloned(), &|p| {
        std::fs::read_to_string(p)
            .map_err(|e| Error::input(format!("cannot read GITHUB_EVENT_PATH {p}: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(vars: &[(&str, &str)], event: Option<&str>) -> Option<CiContext> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ev = event.map(str::to_string);
        detect(&|k| map.get(k).cloned(), &|_| Ok(ev.clone().unwrap())).unwrap()
    }

    #[test]
    fn not_in_ci() {
        assert_eq!(ctx(&[("CI_COMMIT_SHA", "x")], None), None);
    }

    #[test]
    fn gitlab_start_job() {
        let c = ctx(
            &[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_REF_NAME", "feature/x"),
                ("CI_COMMIT_SHA", "95d49d1efbd941908580e79d65e4b5ecaf4a8305"),
                ("CI_ENVIRONMENT_NAME", "review/feature-x"),
                ("CI_ENVIRONMENT_SLUG", "review-feature-x-3kd8a2"),
                ("CI_ENVIRONMENT_ACTION", "start"),
                ("CI_PROJECT_URL", "https://gitlab.example.com/group/app"),
                ("GITLAB_USER_LOGIN", "alice"),
                ("CI_MERGE_REQUEST_IID", ""),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.provider, Provider::GitLab);
        assert_eq!(c.branch.as_deref(), Some("feature/x"));
        assert_eq!(c.slug.as_deref(), Some("review-feature-x-3kd8a2"));
        assert_eq!(c.action, Some(EnvAction::Start));
        assert_eq!(c.id, None, "empty variables count as absent");
        assert_eq!(c.author.as_deref(), Some("alice"));
    }

    #[test]
    fn github_pull_request_event() {
        let event = r#"{"action":"synchronize","number":7,"pull_request":{"number":7,"title":"T","user":{"login":"bob"},
            "head":{"ref":"feat","sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821","repo":{"full_name":"fork/app","clone_url":"https://github.com/fork/app.git"}},
            "base":{"repo":{"full_name":"org/app"}}}}"#;
        let c = ctx(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_HEAD_REF", "feat"),
                ("GITHUB_SHA", "1111111111111111111111111111111111111111"),
                ("GITHUB_REPOSITORY", "org/app"),
                ("GITHUB_EVENT_PATH", "/e.json"),
            ],
            Some(event),
        )
        .unwrap();
        assert_eq!(
            c.sha.as_deref(),
            Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821"),
            "the PR head, not the merge commit"
        );
        assert_eq!(c.id.as_deref(), Some("7"));
        assert_eq!(c.author.as_deref(), Some("bob"));
        assert_eq!(
            c.source_url.as_deref(),
            Some("https://github.com/org/app.git")
        );
        assert_eq!(
            c.fork_clone_url.as_deref(),
            Some("https://github.com/fork/app.git")
        );
    }

    #[test]
    fn github_push_run() {
        let c = ctx(
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF_NAME", "main"),
                ("GITHUB_SHA", "abc"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.branch.as_deref(), Some("main"));
        assert_eq!(c.sha.as_deref(), Some("abc"));
        assert_eq!(c.fork_clone_url, None);
    }
}
