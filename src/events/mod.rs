//! Forge events (webhook payloads, CI event files) turned into one small set of domain events,
//! without I/O.

pub mod github;
pub mod gitlab;

use crate::command::{Command, ParseError};

/// Marks every comment flux-ephemeral writes, so it never acts on (or edits) anyone else's.
pub const REPLY_MARKER: &str = "<!-- flux-ephemeral -->";

/// A pull/merge request as far as the event tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub number: u64,
    /// Head branch; `None` when the event does not carry it (GitHub `issue_comment`).
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub author: Option<String>,
    pub title: Option<String>,
    /// `Some(true)` for a fork, `None` when unknown until the API is asked.
    pub from_fork: Option<bool>,
    /// The head repository's clone URL (for forks).
    pub head_clone_url: Option<String>,
}

/// Who did it: a login, and for GitLab the numeric user id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Comment(Result<Command, ParseError>),
    /// Closed or merged.
    Closed {
        merged: bool,
    },
    /// New commits on an open pull/merge request.
    Pushed,
    Labels {
        added: Vec<String>,
        removed: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// GitHub `owner/name`, or GitLab project id: where the change lives.
    pub repository: String,
    pub change: Change,
    pub actor: Actor,
    pub trigger: Trigger,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Act(Box<Event>),
    Ignore(String),
}

pub fn ignore(reason: impl Into<String>) -> Parsed {
    Parsed::Ignore(reason.into())
}
