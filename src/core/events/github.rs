//! GitHub `issue_comment` and `pull_request` payloads.

use serde::Deserialize;

use super::{ignore, Actor, Change, Event, Parsed, Trigger};
use crate::command::Prefixes;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct IssueComment {
    action: String,
    repository: RepoName,
    issue: Issue,
    comment: Comment,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    title: Option<String>,
    pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    body: Option<String>,
    user: User,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    /// The head before a `synchronize`.
    before: Option<String>,
    repository: RepoName,
    pull_request: PullRequest,
    label: Option<Label>,
    sender: User,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: Option<String>,
    pub merged: Option<bool>,
    pub user: Option<PrUser>,
    pub head: Head,
    pub base: Base,
    /// `open` or `closed` (API answers; payloads are not trusted for it).
    pub state: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub labels: Option<Vec<Label>>,
    /// How many comments the conversation holds (API answers only).
    #[serde(default)]
    pub comments: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct PrUser {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
    pub repo: Option<Repo>,
}

#[derive(Debug, Deserialize)]
pub struct Base {
    pub repo: Option<Repo>,
}

#[derive(Debug, Deserialize)]
pub struct Repo {
    pub full_name: String,
    pub clone_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RepoName {
    full_name: String,
    clone_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Label {
    pub name: String,
}

impl PullRequest {
    /// Open, closed or merged: for an API answer.
    pub fn state(&self) -> super::ChangeState {
        use super::ChangeState::*;
        match (self.state.as_deref(), self.merged) {
            (Some("open"), _) => Open,
            (_, Some(true)) => Merged,
            (Some("closed"), _) => Closed,
            _ => Unknown,
        }
    }

    pub fn label_names(&self) -> Vec<String> {
        self.labels
            .iter()
            .flatten()
            .map(|l| l.name.clone())
            .collect()
    }

    /// The change this pull request describes.
    pub fn change(&self) -> Change {
        let head = self.head.repo.as_ref().map(|r| r.full_name.as_str());
        let base = self.base.repo.as_ref().map(|r| r.full_name.as_str());
        Change {
            number: self.number,
            branch: Some(self.head.branch.clone()),
            sha: Some(self.head.sha.clone()),
            author: self.user.as_ref().map(|u| u.login.clone()),
            title: self.title.clone(),
            from_fork: Some(super::is_fork(head, base)),
            head_clone_url: self.head.repo.as_ref().and_then(|r| r.clone_url.clone()),
            state: super::ChangeState::Unknown,
            draft: self.draft.unwrap_or(false),
            labels: self.label_names(),
        }
    }
}

/// The events `parse` acts on; the server answers every other GitHub event "ignored".
pub fn handles(event_name: &str) -> bool {
    matches!(
        event_name,
        "issue_comment" | "pull_request" | "pull_request_target"
    ) || super::github_checks::handles(event_name)
}

/// Parse a GitHub event by its name (`X-GitHub-Event`, `GITHUB_EVENT_NAME`).
pub fn parse(event_name: &str, body: &str, prefixes: &Prefixes) -> Result<Parsed> {
    let mut parsed = super::checked(parse_unchecked(event_name, body, prefixes)?)?;
    if let Parsed::Act(e) = &mut parsed {
        e.installation = installation_of(body);
    }
    Ok(parsed)
}

/// The GitHub App installation a delivery names (`installation.id`), if any.
pub fn installation_of(body: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Delivery {
        installation: Option<Installation>,
    }
    #[derive(Deserialize)]
    struct Installation {
        id: u64,
    }
    serde_json::from_str::<Delivery>(body)
        .ok()?
        .installation
        .map(|i| i.id)
}

fn parse_unchecked(event_name: &str, body: &str, prefixes: &Prefixes) -> Result<Parsed> {
    let bad =
        |e: serde_json::Error| Error::input(format!("malformed GitHub {event_name} payload: {e}"));
    match event_name {
        name if super::github_checks::handles(name) => super::github_checks::parse(name, body),
        "issue_comment" => {
            let e: IssueComment = serde_json::from_str(body).map_err(bad)?;
            if e.action != "created" {
                return Ok(ignore(format!(
                    "comment {}: only new comments count",
                    e.action
                )));
            }
            if e.issue.pull_request.is_none() {
                return Ok(ignore("a comment on an issue, not a pull request"));
            }
            Ok(super::comment_command(
                super::PullComment {
                    repository: e.repository.full_name,
                    clone_url: e.repository.clone_url,
                    number: e.issue.number,
                    title: e.issue.title,
                    from_bot: e.comment.user.kind.as_deref() == Some("Bot"),
                    login: e.comment.user.login,
                    id: e.comment.user.id,
                    text: e.comment.body.unwrap_or_default(),
                },
                prefixes,
            ))
        }
        "pull_request" | "pull_request_target" => {
            let e: PullRequestEvent = serde_json::from_str(body).map_err(bad)?;
            let trigger = match e.action.as_str() {
                "closed" => Trigger::Closed {
                    merged: e.pull_request.merged.unwrap_or(false),
                },
                "synchronize" => Trigger::Pushed {
                    before: e.before.filter(|b| super::is_full_sha(b)),
                },
                "ready_for_review" => Trigger::ReadyForReview {
                    labels: e.pull_request.label_names(),
                },
                "labeled" | "unlabeled" => {
                    let name = e.label.map(|l| l.name).unwrap_or_default();
                    if e.action == "labeled" {
                        Trigger::Labels {
                            added: vec![name],
                            removed: vec![],
                        }
                    } else {
                        Trigger::Labels {
                            added: vec![],
                            removed: vec![name],
                        }
                    }
                }
                other => return Ok(ignore(format!("pull request {other}: nothing to do"))),
            };
            Ok(Parsed::Act(Box::new(Event {
                repository: e.repository.full_name,
                project_id: None,
                installation: None,
                source_url: e.repository.clone_url,
                change: e.pull_request.change(),
                actor: Actor {
                    login: e.sender.login,
                    id: e.sender.id,
                },
                trigger,
            })))
        }
        other => Err(Error::input(format!(
            "GitHub event {other:?} is not handled: use issue_comment or pull_request"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::events::REPLY_MARKER;

    const P: fn() -> Prefixes = Prefixes::default;

    fn on_pr(body: &str, comment: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["issue"]["pull_request"] = serde_json::json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
        v["comment"]["body"] = serde_json::json!(comment);
        v.to_string()
    }

    #[test]
    fn issue_comment_fixtures() {
        let created =
            include_str!("../../../tests/fixtures/github/issue_comment.created.payload.json");
        // The fixture is a comment on an issue.
        assert_eq!(
            parse("issue_comment", created, &P()).unwrap(),
            ignore("a comment on an issue, not a pull request")
        );
        let Parsed::Act(e) = parse(
            "issue_comment",
            &on_pr(created, "/deploy-ephemeral ttl=24h"),
            &P(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            e.trigger,
            Trigger::Comment(Ok(Command::Deploy {
                ttl: Some("24h".into()),
                cluster: None
            }))
        );
        assert_eq!(e.actor.login, "Codertocat");
        assert_eq!(e.change.number, 1);
        assert_eq!(
            e.change.branch, None,
            "issue_comment has no head: the API is asked"
        );
        let edited =
            include_str!("../../../tests/fixtures/github/issue_comment.edited.payload.json");
        assert!(
            matches!(parse("issue_comment", &on_pr(edited, "/deploy-ephemeral"), &P()).unwrap(), Parsed::Ignore(r) if r.contains("only new"))
        );
        let mine = on_pr(created, &format!("{REPLY_MARKER}\n/deploy-ephemeral"));
        assert_eq!(
            parse("issue_comment", &mine, &P()).unwrap(),
            ignore("a bot's comment")
        );
        assert_eq!(
            parse("issue_comment", &on_pr(created, "nice"), &P()).unwrap(),
            ignore("no command in the comment")
        );
    }

    #[test]
    fn pull_request_fixtures() {
        let closed =
            include_str!("../../../tests/fixtures/github/pull_request.closed.payload.json");
        let Parsed::Act(e) = parse("pull_request", closed, &P()).unwrap() else {
            panic!()
        };
        assert_eq!(e.trigger, Trigger::Closed { merged: false });
        assert_eq!(e.change.branch.as_deref(), Some("changes"));
        assert_eq!(
            e.change.sha.as_deref(),
            Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821")
        );
        assert_eq!(e.change.from_fork, Some(false));
        let sync =
            include_str!("../../../tests/fixtures/github/pull_request.synchronize.payload.json");
        assert!(
            matches!(parse("pull_request", sync, &P()).unwrap(), Parsed::Act(e) if matches!(e.trigger, Trigger::Pushed { .. }))
        );
        let labeled =
            include_str!("../../../tests/fixtures/github/pull_request.labeled.payload.json");
        let Parsed::Act(e) = parse("pull_request", labeled, &P()).unwrap() else {
            panic!()
        };
        assert!(matches!(e.trigger, Trigger::Labels { ref added, .. } if added.len() == 1));
        let opened =
            include_str!("../../../tests/fixtures/github/pull_request.opened.payload.json");
        assert!(matches!(
            parse("pull_request", opened, &P()).unwrap(),
            Parsed::Ignore(_)
        ));
        assert!(parse("pull_request", "{}", &P())
            .unwrap_err()
            .message
            .contains("malformed"));
        assert!(parse("push", "{}", &P())
            .unwrap_err()
            .message
            .contains("not handled"));
    }
}
