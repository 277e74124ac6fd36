//! Forge adapters: the GitHub and GitLab APIs, behind small interfaces.

pub mod github;
pub mod gitlab;

use crate::error::Result;
use crate::events::{Actor, Change};

/// A commit status (`flux-ephemeral` on the head commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Success,
    Failure,
}

/// One commit status as the forge lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// GitHub's `context`, GitLab's `name`.
    pub context: String,
    /// `success`, `failure`, `pending`, … (GitLab: `success`, `failed`, `running`, …).
    pub state: String,
    pub description: String,
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
    /// The statuses of commit `sha` (Flux's Providers post theirs there).
    fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>>;
}

/// A forge for `--dry-run`: reads go through, writes (comments, statuses) are only printed.
pub struct DryRun<'a>(pub &'a dyn ChangeForge);

impl ChangeForge for DryRun<'_> {
    fn has_write_access(&self, actor: &Actor) -> Result<bool> {
        self.0.has_write_access(actor)
    }
    fn read(&self, number: u64) -> Result<Change> {
        self.0.read(number)
    }
    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()> {
        eprintln!(
            "dry run: would set commit status {status:?} on {sha}: {description}{}",
            url.map(|u| format!(" ({u})")).unwrap_or_default()
        );
        Ok(())
    }
    fn reply(&self, number: u64, body: &str) -> Result<()> {
        eprintln!("dry run: would comment on #{number}:\n{body}");
        Ok(())
    }
    fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
        self.0.commit_statuses(sha)
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
