//! Forge events (webhook payloads, CI event files) turned into one small set of domain events,
//! without I/O.

pub mod gitea;
pub mod github;
mod github_checks;
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
    /// Open, closed or merged, as the forge's API says; `Unknown` for what a payload says.
    pub state: ChangeState,
    /// A draft (GitHub) or a draft merge request (GitLab), as the API says.
    pub draft: bool,
    /// Its labels, as the API says.
    pub labels: Vec<String>,
}

/// A pull/merge request's state as read from the forge's API (never taken from a payload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChangeState {
    #[default]
    Unknown,
    Open,
    Closed,
    Merged,
}

/// A forge repository as an event or a CI job names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub forge: Forge,
    /// GitHub `owner/name`, GitLab `group/project` (path with namespace).
    pub path: String,
    /// GitLab's numeric project id.
    pub id: Option<u64>,
}

impl RepoRef {
    /// Whether `configured` (GitHub `owner/name`, GitLab path or numeric id) names this repository.
    pub fn matches(&self, configured: &str) -> bool {
        let c = configured.trim().trim_matches('/');
        (!c.is_empty() && c.eq_ignore_ascii_case(&self.path))
            || self.id.is_some_and(|id| id.to_string() == c)
    }

    pub fn forge_name(&self) -> &'static str {
        self.forge.name()
    }
}

/// Which forge an event comes from. The server knows it from the route a delivery came in on
/// (and verifies that forge's signature); `handle` from `--forge` or its CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitHub,
    GitLab,
    /// Gitea, and Forgejo, which speaks the same API.
    Gitea,
}

impl Forge {
    /// As environments, journals and metrics record it.
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }

    /// The forge `name` ([`Forge::name`]) stands for.
    pub fn from_name(name: &str) -> Option<Forge> {
        [Forge::GitHub, Forge::GitLab, Forge::Gitea]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

impl Event {
    /// Where the event comes from, as the configuration names repositories.
    pub fn origin(&self, forge: Forge) -> RepoRef {
        RepoRef {
            forge,
            path: self.repository.clone(),
            id: self.project_id,
        }
    }
}

/// A pull/merge request comes from a fork when its head repository differs from its base; a
/// deleted head repository counts as a fork. One rule for events and CI jobs.
pub fn is_fork(head: Option<&str>, base: Option<&str>) -> bool {
    head.is_none() || head != base
}

/// The repository a payload names, before anything else is parsed: GitHub `repository`, GitLab
/// `project`. The server and `handle` use it to pick the application.
pub fn repository_of(forge: Forge, body: &str) -> Option<RepoRef> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let (path, id) = match forge {
        Forge::GitHub | Forge::Gitea => (v["repository"]["full_name"].as_str()?, None),
        Forge::GitLab => (
            v["project"]["path_with_namespace"].as_str()?,
            v["project"]["id"].as_u64(),
        ),
    };
    Some(RepoRef {
        forge,
        path: path.to_string(),
        id,
    })
}

/// A full commit id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits. Every sha from a payload or
/// an API answer is checked with this before it goes into a path or a file.
pub fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Refuse an event whose head sha is not a full commit id.
pub(crate) fn checked(parsed: Parsed) -> crate::error::Result<Parsed> {
    if let Parsed::Act(e) = &parsed {
        if let Some(sha) = e.change.sha.as_deref().filter(|s| !is_full_sha(s)) {
            return Err(crate::error::Error::input(format!(
                "the payload's head sha {:?} is not a full commit id",
                sha.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(parsed)
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
    /// New commits on an open pull/merge request; `before`: the head it had.
    Pushed {
        before: Option<String>,
    },
    Labels {
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// A draft became ready for review; `labels` are the payload's (a deploy label asks for a
    /// preview).
    ReadyForReview {
        labels: Vec<String>,
    },
    /// A check of `sha` completed: a preview waiting for its checks may go now. Only the API's
    /// answers decide (the payload names the commit, nothing more).
    ChecksCompleted {
        sha: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// GitHub `owner/name`, or GitLab project path (`group/project`): where the change lives.
    pub repository: String,
    /// GitLab's numeric project id (its API takes it).
    pub project_id: Option<u64>,
    /// The GitHub App installation that delivered the event (`installation.id`): its token
    /// answers for the repository.
    pub installation: Option<u64>,
    /// The repository's clone URL, for when no source URL is configured.
    pub source_url: Option<String>,
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

/// Check a payload's shape as `forge`'s event named `name`, without any I/O: what `handle` and the
/// server do before touching a repository. A payload that is not that forge's event is an error.
pub fn check(forge: Forge, name: Option<&str>, body: &str) -> crate::error::Result<()> {
    let defaults = crate::command::Prefixes::default();
    match forge {
        Forge::GitHub => {
            let name = name.ok_or_else(|| {
                crate::error::Error::input(
                    "no GitHub event name: pass --event-name (the X-GitHub-Event header)",
                )
            })?;
            github::parse(name, body, &defaults).map(|_| ())
        }
        Forge::GitLab => gitlab::parse(name, body, &defaults).map(|_| ()),
        Forge::Gitea => {
            let name = name.ok_or_else(|| {
                crate::error::Error::input(
                    "no Gitea event name: pass --event-name (the X-Gitea-Event header)",
                )
            })?;
            gitea::parse(name, body, &defaults).map(|_| ())
        }
    }
}

/// A comment on a pull request as the GitHub-shaped forges (GitHub, Gitea) deliver it.
pub(crate) struct PullComment {
    pub repository: String,
    pub clone_url: Option<String>,
    pub number: u64,
    pub title: Option<String>,
    pub login: String,
    pub id: Option<u64>,
    pub text: String,
    /// The forge says a bot wrote it.
    pub from_bot: bool,
}

/// The command in a pull request's comment, or why there is none: a bot's comment (its kind, or
/// the bot's marker) and a comment without a command are ignored.
pub(crate) fn comment_command(c: PullComment, prefixes: &crate::command::Prefixes) -> Parsed {
    if c.from_bot || c.text.contains(REPLY_MARKER) {
        return ignore("a bot's comment");
    }
    let Some(command) = crate::command::parse(&c.text, prefixes) else {
        return ignore("no command in the comment");
    };
    Parsed::Act(Box::new(Event {
        repository: c.repository,
        project_id: None,
        installation: None,
        source_url: c.clone_url,
        change: Change {
            number: c.number,
            title: c.title,
            ..Change::default()
        },
        actor: Actor {
            login: c.login,
            id: c.id,
        },
        trigger: Trigger::Comment(command),
    }))
}
