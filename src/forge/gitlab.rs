//! GitLab's API through the `gitlab` crate.

use std::borrow::Cow;
use std::collections::BTreeSet;

use gitlab::api::endpoint_prelude::Method;
use gitlab::api::{self, Endpoint, Pagination, Query};
use serde::Deserialize;

use super::{ChangeForge, Status};
use crate::error::{Error, Result};
use crate::events::{Actor, Change, REPLY_MARKER};
use crate::redact::Secret;

/// Where GitLab's API is: `--gitlab-url`, `CI_API_V4_URL` or `GITLAB_URL`; never the payload's
/// own URLs (a forged hook must not make us send our token elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabUrl {
    pub host: String,
    pub insecure: bool,
}

impl GitLabUrl {
    /// `flag`, else `CI_API_V4_URL`, else `GITLAB_URL`.
    pub fn resolve(flag: Option<&str>) -> Result<Self> {
        let from_env = |k: &str| std::env::var(k).ok().filter(|u| !u.is_empty());
        let url = flag
            .map(str::to_string)
            .or_else(|| from_env("CI_API_V4_URL"))
            .or_else(|| from_env("GITLAB_URL"))
            .ok_or_else(|| {
                Error::config(
                    "no GitLab URL: pass --gitlab-url or set GITLAB_URL (CI_API_V4_URL in a job)",
                )
            })?;
        Self::parse(&url)
    }

    /// `https://gitlab.example.com`, `https://gitlab.example.com/api/v4`, `http://127.0.0.1:8080`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "GitLab URL {url:?} is not like https://gitlab.example.com"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let insecure = match scheme {
            "https" => false,
            "http" => true,
            _ => return Err(bad()),
        };
        let host = rest
            .trim_end_matches('/')
            .trim_end_matches("/api/v4")
            .trim_end_matches('/');
        if host.is_empty() || host.contains('@') {
            return Err(bad());
        }
        Ok(GitLabUrl {
            host: host.to_string(),
            insecure,
        })
    }
}

/// What the Deployments API says about one deployment.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: u64,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub status: Option<String>,
    pub user: Option<User>,
    pub environment: Option<EnvironmentInfo>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    pub username: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EnvironmentInfo {
    pub name: String,
    pub external_url: Option<String>,
}

pub struct GitLab {
    pub(crate) client: gitlab::Gitlab,
    host: String,
}

impl GitLab {
    /// Connect (the crate checks the token against `/api/v4/user`).
    pub fn connect(url: &GitLabUrl, token: &Secret) -> Result<Self> {
        let mut b = gitlab::Gitlab::builder(url.host.clone(), token.expose());
        if url.insecure {
            b.insecure();
        }
        let client = b.build().map_err(|e| {
            Error::remote(format!(
                "cannot use GitLab at {}: {} — check GITLAB_TOKEN (api scope) and --gitlab-url",
                url.host,
                clean(&e.to_string(), token)
            ))
        })?;
        Ok(GitLab {
            client,
            host: url.host.clone(),
        })
    }

    pub fn deployment(&self, project: u64, deployment: u64) -> Result<DeploymentInfo> {
        let endpoint = gitlab::api::projects::deployments::Deployment::builder()
            .project(project)
            .deployment_id(deployment)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        endpoint.query(&self.client).map_err(|e: api::ApiError<_>| {
            Error::remote(format!(
                "GitLab {}: reading deployment {deployment} of project {project} failed: {e}",
                self.host
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
struct Iid {
    iid: u64,
}

/// One environment of a project, as the Environments API lists it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Environment {
    pub id: u64,
    pub name: String,
    pub state: Option<String>,
}

/// `POST /projects/:id/environments/:environment_id/stop` (not in the crate).
struct StopEnvironment<'a> {
    project: &'a str,
    environment: u64,
}

impl Endpoint for StopEnvironment<'_> {
    fn method(&self) -> Method {
        Method::POST
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!(
            "projects/{}/environments/{}/stop",
            encode(self.project),
            self.environment
        )
        .into()
    }
}

/// `DELETE /projects/:id/environments/review_apps` (not in the crate): deletes stopped review
/// apps, as Flux Operator's guide recommends.
struct DeleteStoppedReviewApps<'a> {
    project: &'a str,
}

impl Endpoint for DeleteStoppedReviewApps<'_> {
    fn method(&self) -> Method {
        Method::DELETE
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/environments/review_apps", encode(self.project)).into()
    }
}

fn encode(project: &str) -> String {
    project.replace('/', "%2F")
}

impl GitLab {
    /// Every open merge request's iid: one paged list.
    pub fn open_merge_requests(&self, project: &str) -> Result<BTreeSet<String>> {
        let endpoint = gitlab::api::projects::merge_requests::MergeRequests::builder()
            .project(project)
            .state(gitlab::api::projects::merge_requests::MergeRequestState::Opened)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let list: Vec<Iid> = api::paged(endpoint, Pagination::All)
            .query(&self.client)
            .map_err(|e| self.err("list open merge requests", project, e))?;
        Ok(list.into_iter().map(|m| m.iid.to_string()).collect())
    }

    /// Every environment of the project that is available (not stopped).
    pub fn available_environments(&self, project: &str) -> Result<Vec<Environment>> {
        let endpoint = gitlab::api::projects::environments::Environments::builder()
            .project(project)
            .states(gitlab::api::projects::environments::EnvironmentState::Available)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        api::paged(endpoint, Pagination::All)
            .query(&self.client)
            .map_err(|e| self.err("list environments", project, e))
    }

    pub fn stop_environment(&self, project: &str, environment: u64) -> Result<()> {
        api::ignore(StopEnvironment {
            project,
            environment,
        })
        .query(&self.client)
        .map_err(|e| self.err(&format!("stop environment {environment}"), project, e))
    }

    pub fn delete_stopped_review_apps(&self, project: &str) -> Result<()> {
        api::ignore(DeleteStoppedReviewApps { project })
            .query(&self.client)
            .map_err(|e| self.err("delete stopped review apps", project, e))
    }

    pub(crate) fn err<E: std::error::Error>(&self, what: &str, project: &str, e: E) -> Error {
        Error::remote(format!(
            "GitLab {}: {what} of project {project} failed: {e}",
            self.host
        ))
    }
}

fn clean(text: &str, token: &Secret) -> String {
    crate::redact::scrub(text, Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            GitLabUrl::parse("https://gitlab.example.com/api/v4").unwrap(),
            GitLabUrl {
                host: "gitlab.example.com".into(),
                insecure: false
            }
        );
        assert_eq!(
            GitLabUrl::parse("http://127.0.0.1:8080/").unwrap(),
            GitLabUrl {
                host: "127.0.0.1:8080".into(),
                insecure: true
            }
        );
        assert!(GitLabUrl::parse("gitlab.example.com").is_err());
        assert!(GitLabUrl::parse("https://user:pw@gitlab.example.com").is_err());
    }
}

/// The GitLab side of ChatOps for one project.
pub struct GitLabChanges {
    pub gitlab: GitLab,
    pub project: String,
    /// The token's user: the only author whose notes are the bot's.
    me: std::sync::OnceLock<u64>,
    /// The token user's login, read once.
    my_login: std::sync::OnceLock<String>,
    /// Deployment id → its environment, for the URL when it succeeds.
    deployments: std::sync::Mutex<std::collections::BTreeMap<u64, String>>,
}

impl GitLabChanges {
    pub fn new(gitlab: GitLab, project: String) -> Self {
        GitLabChanges {
            gitlab,
            project,
            me: std::sync::OnceLock::new(),
            deployments: Default::default(),
            my_login: Default::default(),
        }
    }

    /// The token user's login, read once (for the bot's own statuses).
    fn my_username(&self) -> Option<String> {
        if let Some(login) = self.my_login.get() {
            return Some(login.clone());
        }
        #[derive(Deserialize)]
        struct Me {
            id: u64,
            username: String,
        }
        let me: Me = gitlab::api::users::CurrentUser::builder()
            .build()
            .ok()?
            .query(&self.gitlab.client)
            .ok()?;
        self.me.get_or_init(|| me.id);
        Some(self.my_login.get_or_init(|| me.username).clone())
    }

    /// The id of the token's user (`GET /user`), read once.
    fn me(&self) -> Result<u64> {
        if let Some(id) = self.me.get() {
            return Ok(*id);
        }
        #[derive(Deserialize)]
        struct Me {
            id: u64,
        }
        let me: Me = gitlab::api::users::CurrentUser::builder()
            .build()
            .map_err(|e| Error::internal(e.to_string()))?
            .query(&self.gitlab.client)
            .map_err(|e| self.gitlab.err("read the token's user", &self.project, e))?;
        Ok(*self.me.get_or_init(|| me.id))
    }
}

#[derive(Debug, Deserialize)]
struct ApiMergeRequest {
    iid: u64,
    state: String,
    source_branch: String,
    sha: Option<String>,
    source_project_id: Option<u64>,
    target_project_id: Option<u64>,
    title: Option<String>,
    author: Option<User>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    work_in_progress: bool,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ApiProject {
    http_url_to_repo: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Member {
    access_level: u64,
}

#[derive(Debug, Deserialize)]
struct Note {
    id: u64,
    body: Option<String>,
    author: Option<NoteAuthor>,
}

#[derive(Debug, Deserialize)]
struct NoteAuthor {
    id: u64,
}

/// GitLab's Developer access level: may push, so may deploy previews.
const DEVELOPER: u64 = 30;

impl ChangeForge for GitLabChanges {
    fn has_write_access(&self, actor: &Actor) -> Result<bool> {
        let Some(id) = actor.id else { return Ok(false) };
        let endpoint = gitlab::api::projects::members::AllProjectMember::builder()
            .project(self.project.as_str())
            .user(id)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        match endpoint.query(&self.gitlab.client) {
            Ok(Member { access_level }) => Ok(access_level >= DEVELOPER),
            Err(api::ApiError::GitlabWithStatus { status, .. }) if status.as_u16() == 404 => {
                Ok(false)
            }
            Err(e) => Err(self.gitlab.err(
                &format!("read the access of {}", actor.login),
                &self.project,
                e,
            )),
        }
    }

    fn token_can_write(&self) -> Result<Option<bool>> {
        let me = Actor {
            login: "the token's user".into(),
            id: Some(self.me()?),
        };
        self.has_write_access(&me).map(Some)
    }

    fn read(&self, number: u64) -> Result<Change> {
        use crate::events::ChangeState;
        let what = format!("read merge request !{number}");
        let endpoint = gitlab::api::projects::merge_requests::MergeRequest::builder()
            .project(self.project.as_str())
            .merge_request(number)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let mr: ApiMergeRequest = endpoint
            .query(&self.gitlab.client)
            .map_err(|e| self.gitlab.err(&what, &self.project, e))?;
        let sha = mr.sha.clone().ok_or_else(|| {
            Error::remote(format!(
                "GitLab: merge request !{number} has no head commit"
            ))
        })?;
        // A source project that is gone counts as a fork.
        let from_fork = match (mr.source_project_id, mr.target_project_id) {
            (Some(s), Some(t)) => s != t,
            _ => true,
        };
        let head_clone_url = match (from_fork, mr.source_project_id) {
            (true, Some(source)) => {
                let p: ApiProject = gitlab::api::projects::Project::builder()
                    .project(source)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?
                    .query(&self.gitlab.client)
                    .map_err(|e| self.gitlab.err("read the fork", &self.project, e))?;
                p.http_url_to_repo
            }
            _ => None,
        };
        Ok(Change {
            number: mr.iid,
            branch: Some(mr.source_branch),
            sha: Some(super::checked_sha(sha, "GitLab")?),
            author: mr.author.map(|a| a.username),
            title: mr.title,
            from_fork: Some(from_fork),
            head_clone_url,
            draft: mr.draft || mr.work_in_progress,
            labels: mr.labels,
            state: match mr.state.as_str() {
                "opened" => ChangeState::Open,
                "merged" => ChangeState::Merged,
                "closed" | "locked" => ChangeState::Closed,
                _ => ChangeState::Unknown,
            },
        })
    }

    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()> {
        use gitlab::api::projects::repository::commits::{CommitStatusState, CreateCommitStatus};
        let state = match status {
            Status::Pending => CommitStatusState::Running,
            Status::Success => CommitStatusState::Success,
            Status::Failure => CommitStatusState::Failed,
        };
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let mut b = CreateCommitStatus::builder();
        b.project(self.project.as_str())
            .commit(sha.as_str())
            .state(state)
            .name("flux-ephemeral")
            .description(description);
        if let Some(u) = url {
            b.target_url(u);
        }
        let endpoint = b.build().map_err(|e| Error::internal(e.to_string()))?;
        api::ignore(endpoint)
            .query(&self.gitlab.client)
            .map_err(|e| self.gitlab.err("set the commit status", &self.project, e))
    }

    fn available_environments(&self) -> Result<Option<BTreeSet<String>>> {
        Ok(Some(
            self.gitlab
                .available_environments(&self.project)?
                .into_iter()
                .map(|e| e.name)
                .collect(),
        ))
    }

    fn is_gitlab(&self) -> bool {
        true
    }

    fn bot_login(&self) -> Option<String> {
        self.my_username()
    }

    /// The newest pipeline of `sha`, as the check named `pipeline` (`require_pipeline`).
    fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        use crate::checks::{Check, CheckState};
        #[derive(Deserialize)]
        struct Pipeline {
            status: String,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let endpoint = gitlab::api::projects::pipelines::Pipelines::builder()
            .project(self.project.as_str())
            .sha(sha.as_str())
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let list: Vec<Pipeline> = api::paged(endpoint, Pagination::Limit(1))
            .query(&self.gitlab.client)
            .map_err(|e| self.gitlab.err("read the pipelines", &self.project, e))?;
        Ok(list
            .into_iter()
            .take(1)
            .map(|p| Check {
                name: "pipeline".into(),
                state: match p.status.as_str() {
                    "success" | "skipped" => CheckState::Passed,
                    "failed" | "canceled" => CheckState::Failed,
                    _ => CheckState::Pending,
                },
            })
            .collect())
    }

    fn start_deployment(&self, sha: &str, branch: &str, environment: &str) -> Result<Option<u64>> {
        self.gitlab
            .save_environment(&self.project, environment, None)?;
        let id = self
            .gitlab
            .create_deployment(&self.project, environment, sha, branch)?;
        if let Ok(mut m) = self.deployments.lock() {
            m.insert(id, environment.to_string());
        }
        Ok(Some(id))
    }

    fn deployment_status(
        &self,
        id: u64,
        state: super::DeploymentState,
        environment_url: Option<&str>,
        _log_url: Option<&str>,
        _description: &str,
    ) -> Result<()> {
        use super::DeploymentState::*;
        let env = self
            .deployments
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned());
        match state {
            Queued | InProgress | Inactive => Ok(()),
            Success => {
                if let (Some(env), Some(url)) = (env, environment_url) {
                    self.gitlab
                        .save_environment(&self.project, &env, Some(url))?;
                }
                self.gitlab.finish_deployment(&self.project, id, true)
            }
            Failure => self.gitlab.finish_deployment(&self.project, id, false),
        }
    }

    fn deactivate_environment(&self, environment: &str) -> Result<()> {
        self.gitlab
            .stop_named_environment(&self.project, environment)
    }

    fn changed_files(&self, number: u64) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Diff {
            new_path: String,
            old_path: String,
        }
        let endpoint = gitlab::api::projects::merge_requests::MergeRequestDiffs::builder()
            .project(self.project.as_str())
            .merge_request(number)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        // At most 3,000 files, as GitHub: 30 pages of 100.
        let diffs: Vec<Diff> = api::paged(endpoint, Pagination::Limit(3000))
            .query(&self.gitlab.client)
            .map_err(|e| {
                self.gitlab.err(
                    &format!("list the files of merge request !{number}"),
                    &self.project,
                    e,
                )
            })?;
        Ok(diffs
            .into_iter()
            .flat_map(|d| {
                if d.new_path == d.old_path {
                    vec![d.new_path]
                } else {
                    vec![d.old_path, d.new_path]
                }
            })
            .collect())
    }

    fn open_changes(&self) -> Result<Vec<super::OpenChange>> {
        let endpoint = gitlab::api::projects::merge_requests::MergeRequests::builder()
            .project(self.project.as_str())
            .state(gitlab::api::projects::merge_requests::MergeRequestState::Opened)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let list: Vec<ApiMergeRequest> = api::paged(endpoint, Pagination::All)
            .query(&self.gitlab.client)
            .map_err(|e| {
                self.gitlab
                    .err("list open merge requests", &self.project, e)
            })?;
        list.into_iter()
            .filter_map(|mr| {
                let sha = mr.sha.clone()?;
                Some((mr, sha))
            })
            .map(|(mr, sha)| {
                Ok(super::OpenChange {
                    number: mr.iid.to_string(),
                    branch: mr.source_branch.clone(),
                    sha: super::checked_sha(sha, "GitLab")?,
                    from_fork: match (mr.source_project_id, mr.target_project_id) {
                        (Some(s), Some(t)) => s != t,
                        _ => true,
                    },
                    author: mr.author.map(|a| a.username).unwrap_or_default(),
                })
            })
            .collect()
    }

    fn commit_statuses(&self, sha: &str) -> Result<Vec<super::CommitStatus>> {
        #[derive(Deserialize)]
        struct One {
            name: String,
            status: String,
            description: Option<String>,
            created_at: Option<String>,
            author: Option<Username>,
        }
        #[derive(Deserialize)]
        struct Username {
            username: String,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let endpoint = gitlab::api::projects::repository::commits::CommitStatuses::builder()
            .project(self.project.as_str())
            .commit(sha.as_str())
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let list: Vec<One> = api::paged(endpoint, Pagination::All)
            .query(&self.gitlab.client)
            .map_err(|e| {
                self.gitlab
                    .err("read the commit statuses", &self.project, e)
            })?;
        Ok(list
            .into_iter()
            .map(|s| super::CommitStatus {
                context: s.name,
                state: s.status,
                description: s.description.unwrap_or_default(),
                created_at: s.created_at.as_deref().and_then(crate::model::parse_time),
                author: s.author.map(|a| a.username),
            })
            .collect())
    }

    fn reply(&self, number: u64, body: &str) -> Result<()> {
        use gitlab::api::projects::merge_requests::notes::{
            CreateMergeRequestNote, EditMergeRequestNote, MergeRequestNotes,
        };
        let what = format!("comment on merge request !{number}");
        let list = MergeRequestNotes::builder()
            .project(self.project.as_str())
            .merge_request(number)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let notes: Vec<Note> = api::paged(list, Pagination::All)
            .query(&self.gitlab.client)
            .map_err(|e| self.gitlab.err(&what, &self.project, e))?;
        let me = self.me()?;
        let mine = notes.iter().find(|n| {
            n.author.as_ref().is_some_and(|a| a.id == me)
                && n.body.as_deref().is_some_and(|b| b.contains(REPLY_MARKER))
        });
        let result = match mine {
            Some(n) => {
                let e = EditMergeRequestNote::builder()
                    .project(self.project.as_str())
                    .merge_request(number)
                    .note(n.id)
                    .body(body)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?;
                api::ignore(e).query(&self.gitlab.client)
            }
            None => {
                let e = CreateMergeRequestNote::builder()
                    .project(self.project.as_str())
                    .merge_request(number)
                    .body(body)
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?;
                api::ignore(e).query(&self.gitlab.client)
            }
        };
        result.map_err(|e| self.gitlab.err(&what, &self.project, e))
    }
}
