//! Forge adapters: the GitHub and GitLab APIs, behind small interfaces.

pub mod gitea;
pub mod github;
pub mod gitlab;
mod gitlab_environments;

use crate::error::Result;
use crate::events::{Actor, Change};

/// A commit status (`flux-ephemeral` on the head commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Success,
    Failure,
}

/// A deployment's state (GitHub Deployments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    /// Waiting for room (GitHub's `queued`).
    Queued,
    InProgress,
    Success,
    Failure,
    Inactive,
}

/// One commit status as the forge lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// GitHub's `context`, GitLab's `name`.
    pub context: String,
    /// `success`, `failure`, `pending`, … (GitLab: `success`, `failed`, `running`, …).
    pub state: String,
    pub description: String,
    /// When the forge says it was posted.
    pub created_at: Option<std::time::SystemTime>,
    /// Who posted it (GitHub `creator.login`, GitLab `author.username`).
    pub author: Option<String>,
}

/// An open pull/merge request as a listing shows it: enough to repair drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChange {
    pub number: String,
    pub branch: String,
    /// Head commit (checked to be a full commit id).
    pub sha: String,
    pub from_fork: bool,
    pub author: String,
}

/// What ChatOps needs from a forge for one pull/merge request.
pub trait ChangeForge {
    /// Whether the actor has write access (GitHub write/maintain/admin; GitLab Developer+).
    fn has_write_access(&self, actor: &Actor) -> Result<bool>;
    /// The pull/merge request as the API says now: head branch and sha (checked to be a full
    /// commit id), fork, title, author and whether it is still open.
    fn read(&self, number: u64) -> Result<Change>;
    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()>;
    /// Create the bot's one comment on the change, or edit it: the comment carrying the reply
    /// marker that the bot's own account wrote. Nobody else's comment is ever edited.
    fn reply(&self, number: u64, body: &str) -> Result<()>;
    /// Every status of commit `sha`, oldest first, each with who posted it (Flux's Providers post
    /// theirs there). A context may appear more than once: its newest is the last.
    fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>>;
    /// Every open pull/merge request, with its head: one paged listing.
    fn open_changes(&self) -> Result<Vec<OpenChange>>;
    /// The paths pull/merge request `number` changes (paged; a failed page fails it).
    fn changed_files(&self, number: u64) -> Result<Vec<String>>;
    /// The checks of `sha` (GitHub check runs and commit statuses), for `require_checks`.
    fn checks(&self, _sha: &str) -> Result<Vec<crate::checks::Check>> {
        Ok(Vec::new())
    }
    /// The bot's own login, once known (its statuses are the ones it may act on).
    fn bot_login(&self) -> Option<String> {
        None
    }
    /// The web address of the bot's comment on `number`, once it has replied.
    fn reply_url(&self, _number: u64) -> Option<String> {
        None
    }
    /// Record a deployment of `sha` to `environment` where the forge has deployments (GitHub);
    /// its id, or `None` where it has none.
    fn start_deployment(
        &self,
        _sha: &str,
        _branch: &str,
        _environment: &str,
    ) -> Result<Option<u64>> {
        Ok(None)
    }
    /// The repository's clone URL, where the forge's API tells it.
    fn clone_url(&self) -> Option<String> {
        None
    }
    /// GitLab names environments `review/…`, GitHub `preview/…` by default.
    fn is_gitlab(&self) -> bool {
        false
    }
    fn deployment_status(
        &self,
        _id: u64,
        _state: DeploymentState,
        _environment_url: Option<&str>,
        _log_url: Option<&str>,
        _description: &str,
    ) -> Result<()> {
        Ok(())
    }
    /// The preview of `environment` was removed: every deployment of it that is still active
    /// becomes inactive.
    fn deactivate_environment(&self, _environment: &str) -> Result<()> {
        Ok(())
    }
    /// The change just read was asked for in a comment (the event is that comment), so a
    /// conversation of one comment holds none of the bot's.
    fn asked_in_a_comment(&self, _number: u64) {}
    /// Deployment `keep` of `environment` succeeded: the one before it becomes inactive (GitHub
    /// leaves transient deployments active; each success retires its predecessor, so only the
    /// newest stays active). `fresh`: the preview is new, so nothing came before it.
    fn retire_earlier_deployments(
        &self,
        _environment: &str,
        _keep: u64,
        _fresh: bool,
    ) -> Result<()> {
        Ok(())
    }
    /// Whether the token itself may write (comments, statuses) to the repository, where the
    /// forge says so (`None`: it does not tell, e.g. for a GitHub App's installation token).
    fn token_can_write(&self) -> Result<Option<bool>> {
        Ok(None)
    }
    /// Whether the API answers with these credentials (for readiness).
    fn ping(&self) -> Result<()> {
        Ok(())
    }
    /// The names of the environments that are available (GitLab); `None` where the forge has
    /// none.
    fn available_environments(&self) -> Result<Option<std::collections::BTreeSet<String>>> {
        Ok(None)
    }
}

/// A forge that, for `--dry-run` (`enabled`), lets reads through and only prints writes
/// (comments, statuses).
#[derive(Clone, Copy)]
pub struct DryRun<'a> {
    pub inner: &'a dyn ChangeForge,
    pub enabled: bool,
}

impl ChangeForge for DryRun<'_> {
    fn has_write_access(&self, actor: &Actor) -> Result<bool> {
        self.inner.has_write_access(actor)
    }
    fn read(&self, number: u64) -> Result<Change> {
        self.inner.read(number)
    }
    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()> {
        if !self.enabled {
            return self.inner.set_status(sha, status, description, url);
        }
        eprintln!(
            "dry run: would set commit status {status:?} on {sha}: {description}{}",
            url.map(|u| format!(" ({u})")).unwrap_or_default()
        );
        Ok(())
    }
    fn reply(&self, number: u64, body: &str) -> Result<()> {
        if !self.enabled {
            return self.inner.reply(number, body);
        }
        eprintln!("dry run: would comment on #{number}:\n{body}");
        Ok(())
    }
    fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
        self.inner.commit_statuses(sha)
    }
    fn open_changes(&self) -> Result<Vec<OpenChange>> {
        self.inner.open_changes()
    }
    fn changed_files(&self, number: u64) -> Result<Vec<String>> {
        self.inner.changed_files(number)
    }
    fn reply_url(&self, number: u64) -> Option<String> {
        self.inner.reply_url(number)
    }
    fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        self.inner.checks(sha)
    }
    fn bot_login(&self) -> Option<String> {
        self.inner.bot_login()
    }
    fn is_gitlab(&self) -> bool {
        self.inner.is_gitlab()
    }
    fn clone_url(&self) -> Option<String> {
        self.inner.clone_url()
    }
    fn start_deployment(&self, sha: &str, branch: &str, environment: &str) -> Result<Option<u64>> {
        if !self.enabled {
            return self.inner.start_deployment(sha, branch, environment);
        }
        eprintln!("dry run: would record a deployment of {sha} to {environment}");
        Ok(None)
    }
    fn deployment_status(
        &self,
        id: u64,
        state: DeploymentState,
        environment_url: Option<&str>,
        log_url: Option<&str>,
        description: &str,
    ) -> Result<()> {
        if !self.enabled {
            return self
                .inner
                .deployment_status(id, state, environment_url, log_url, description);
        }
        Ok(())
    }
    fn asked_in_a_comment(&self, number: u64) {
        self.inner.asked_in_a_comment(number)
    }
    fn deactivate_environment(&self, environment: &str) -> Result<()> {
        if !self.enabled {
            return self.inner.deactivate_environment(environment);
        }
        eprintln!("dry run: would mark {environment} inactive");
        Ok(())
    }
    fn retire_earlier_deployments(&self, environment: &str, keep: u64, fresh: bool) -> Result<()> {
        if !self.enabled {
            return self
                .inner
                .retire_earlier_deployments(environment, keep, fresh);
        }
        Ok(())
    }
    fn available_environments(&self) -> Result<Option<std::collections::BTreeSet<String>>> {
        self.inner.available_environments()
    }
}

/// An API answer's head sha, checked before it reaches a path or a file.
pub(crate) fn checked_sha(sha: String, forge: &str) -> Result<String> {
    if crate::events::is_full_sha(&sha) {
        Ok(sha)
    } else {
        Err(crate::error::Error::remote(format!(
            "{forge} answered a head sha that is not a full commit id: {:?}",
            sha.chars().take(80).collect::<String>()
        )))
    }
}
