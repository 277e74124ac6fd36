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

/// What ChatOps needs from a forge for one pull/merge request.
pub trait ChangeForge {
    /// Whether the actor has write access (GitHub write/maintain/admin; GitLab Developer+).
    fn has_write_access(&self, actor: &Actor) -> Result<bool>;
    /// Fill in what the event did not carry (GitHub `issue_comment`: head branch, sha, fork).
    fn complete(&self, change: &mut Change) -> Result<()>;
    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()>;
    /// Create the bot's one comment on the change, or edit it.
    fn reply(&self, number: u64, body: &str) -> Result<()>;
}
