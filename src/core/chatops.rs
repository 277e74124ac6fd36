//! What a pull/merge request event asks for: the pure decision of ChatOps.

use crate::command::{Command, ParseError};
use crate::events::{Event, Trigger};

/// ChatOps settings (from `.flux-ephemeral.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatSettings {
    /// Adding this label deploys, removing it destroys.
    pub deploy_label: Option<String>,
    /// Users who may deploy besides those with write access (or instead, with `allowlist_only`).
    pub allowed_users: Vec<String>,
    pub allowlist_only: bool,
    /// Which changes get no preview.
    pub filters: crate::change_filter::ChangeFilters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deploy the change's head. `only_if_present`: move an existing environment, never create.
    Deploy {
        ttl: Option<String>,
        cluster: Option<String>,
        only_if_present: bool,
    },
    Destroy,
    /// Change an existing environment's life: extend, sleep or wake it.
    Life(LifeCommand),
    /// A check completed: deploy the change if a preview waits for its checks and they are
    /// green now.
    Release {
        sha: String,
    },
    /// Answer without acting (help, a typo).
    Answer(Answer),
    Ignore(String),
}

/// The lifecycle commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifeCommand {
    /// A new expiry: now + the duration (default: the time to live), capped by `max_ttl`.
    Extend {
        duration: Option<String>,
    },
    Sleep,
    Wake,
}

impl LifeCommand {
    /// The verb, for replies and logs.
    pub fn verb(&self) -> &'static str {
        match self {
            LifeCommand::Extend { .. } => "extend",
            LifeCommand::Sleep => "put to sleep",
            LifeCommand::Wake => "wake",
        }
    }
}

/// The life command a comment's (or a button's) command is, if it is one.
pub fn life_command(c: Command) -> Option<LifeCommand> {
    match c {
        Command::Extend { duration } => Some(LifeCommand::Extend { duration }),
        Command::Sleep => Some(LifeCommand::Sleep),
        Command::Wake => Some(LifeCommand::Wake),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Help,
    Mistake(ParseError),
}

pub fn decide(event: &Event, settings: &ChatSettings) -> (Decision, bool) {
    let label = settings.deploy_label.as_deref();
    let (decision, trusted_needed) = match &event.trigger {
        Trigger::Comment(Ok(Command::Deploy { ttl, cluster })) => (
            Decision::Deploy {
                ttl: ttl.clone(),
                cluster: cluster.clone(),
                only_if_present: false,
            },
            true,
        ),
        Trigger::Comment(Ok(Command::Destroy)) => (Decision::Destroy, true),
        Trigger::Comment(Ok(c @ (Command::Extend { .. } | Command::Sleep | Command::Wake))) => {
            match life_command(c.clone()) {
                Some(life) => (Decision::Life(life), true),
                None => (Decision::Ignore("not a life command".into()), false),
            }
        }
        Trigger::Comment(Ok(Command::Help)) => (Decision::Answer(Answer::Help), false),
        Trigger::Comment(Err(e)) => (Decision::Answer(Answer::Mistake(e.clone())), false),
        Trigger::Closed { .. } => (Decision::Destroy, false),
        // A push moves an environment that exists; the pusher must be trusted, or a stranger's
        // new commits would reach the cluster under a maintainer's earlier approval.
        Trigger::Pushed { .. } => (
            Decision::Deploy {
                ttl: None,
                cluster: None,
                only_if_present: true,
            },
            true,
        ),
        // An excluded label removes the preview.
        Trigger::Labels { added, .. }
            if added.iter().any(|a| {
                settings
                    .filters
                    .exclude_labels
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(a))
            }) =>
        {
            (Decision::Destroy, true)
        }
        // Anyone's check may complete: only the bot's own waiting status, read from the API,
        // proves a trusted person asked.
        Trigger::ChecksCompleted { sha } => (Decision::Release { sha: sha.clone() }, false),
        // Out of draft: a preview if one was asked for with the label.
        Trigger::ReadyForReview { labels } => match label {
            Some(l) if labels.iter().any(|x| x == l) => (
                Decision::Deploy {
                    ttl: None,
                    cluster: None,
                    only_if_present: false,
                },
                true,
            ),
            _ => (
                Decision::Ignore("ready for review, but no preview was asked for".into()),
                false,
            ),
        },
        Trigger::Labels { added, removed } => match label {
            Some(l) if added.iter().any(|a| a == l) => (
                Decision::Deploy {
                    ttl: None,
                    cluster: None,
                    only_if_present: false,
                },
                true,
            ),
            Some(l) if removed.iter().any(|r| r == l) => (Decision::Destroy, true),
            Some(l) => (
                Decision::Ignore(format!("labels changed, but not {l:?}")),
                false,
            ),
            None => (
                Decision::Ignore("no deploy_label is configured".into()),
                false,
            ),
        },
    };
    (decision, trusted_needed)
}

/// Whether `login` may deploy, given what the forge says of its access.
pub fn trusted(
    login: &str,
    has_write_access: impl FnOnce() -> crate::error::Result<bool>,
    s: &ChatSettings,
) -> crate::error::Result<bool> {
    let listed = s
        .allowed_users
        .iter()
        .any(|u| u.eq_ignore_ascii_case(login));
    if s.allowlist_only {
        return Ok(listed);
    }
    Ok(listed || has_write_access()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Actor, Change};

    fn ev(trigger: Trigger) -> Event {
        Event {
            repository: String::new(),
            project_id: None,
            installation: None,
            source_url: None,
            change: Change::default(),
            actor: Actor {
                login: "a".into(),
                id: None,
            },
            trigger,
        }
    }

    #[test]
    fn decisions() {
        let s = ChatSettings {
            deploy_label: Some("preview".into()),
            ..ChatSettings::default()
        };
        let d = |t| decide(&ev(t), &s);
        assert_eq!(
            d(Trigger::Comment(Ok(Command::Deploy {
                ttl: None,
                cluster: None
            }))),
            (
                Decision::Deploy {
                    ttl: None,
                    cluster: None,
                    only_if_present: false
                },
                true
            )
        );
        assert_eq!(
            d(Trigger::Closed { merged: true }),
            (Decision::Destroy, false)
        );
        assert_eq!(
            d(Trigger::Pushed { before: None }),
            (
                Decision::Deploy {
                    ttl: None,
                    cluster: None,
                    only_if_present: true
                },
                true
            )
        );
        assert_eq!(
            d(Trigger::Labels {
                added: vec!["preview".into()],
                removed: vec![]
            })
            .0,
            Decision::Deploy {
                ttl: None,
                cluster: None,
                only_if_present: false
            }
        );
        assert_eq!(
            d(Trigger::Labels {
                added: vec![],
                removed: vec!["preview".into()]
            })
            .0,
            Decision::Destroy
        );
        assert!(matches!(
            d(Trigger::Labels {
                added: vec!["bug".into()],
                removed: vec![]
            })
            .0,
            Decision::Ignore(_)
        ));
        let none = ChatSettings::default();
        assert!(matches!(
            decide(
                &ev(Trigger::Labels {
                    added: vec!["preview".into()],
                    removed: vec![]
                }),
                &none
            )
            .0,
            Decision::Ignore(_)
        ));
    }

    #[test]
    fn trust() {
        let open = ChatSettings {
            allowed_users: vec!["Friend".into()],
            ..ChatSettings::default()
        };
        assert!(
            trusted("friend", || Ok(false), &open).unwrap(),
            "the allowlist widens"
        );
        assert!(trusted("writer", || Ok(true), &open).unwrap());
        assert!(!trusted("stranger", || Ok(false), &open).unwrap());
        let only = ChatSettings {
            allowlist_only: true,
            ..open
        };
        assert!(
            !trusted("writer", || Ok(true), &only).unwrap(),
            "allowlist_only narrows"
        );
        assert!(trusted("friend", || panic!("not asked"), &only).unwrap());
    }
}
