//! Gitea (and Forgejo) webhook payloads of type `gitea`: `X-Gitea-Event` names them
//! `issue_comment` (a comment on an issue or a pull request, `is_pull` telling which) and
//! `pull_request` (with `X-Gitea-Event-Type` saying more: `pull_request_sync`,
//! `pull_request_label`, …); the payload's `action` is what happened.

use serde::Deserialize;

use super::github::PullRequest;
use super::{ignore, Actor, Event, Parsed, Trigger};
use crate::command::Prefixes;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct User {
    login: String,
    id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RepoName {
    full_name: String,
    clone_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssueComment {
    action: String,
    repository: RepoName,
    issue: Issue,
    comment: Comment,
    #[serde(default)]
    is_pull: bool,
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
    repository: RepoName,
    pull_request: PullRequest,
    sender: User,
}

/// The events `parse` acts on.
pub fn handles(event_name: &str) -> bool {
    matches!(event_name, "issue_comment" | "pull_request")
}

/// Parse a Gitea event by its name (`X-Gitea-Event`).
pub fn parse(event_name: &str, body: &str, prefixes: &Prefixes) -> Result<Parsed> {
    super::checked(parse_unchecked(event_name, body, prefixes)?)
}

fn parse_unchecked(event_name: &str, body: &str, prefixes: &Prefixes) -> Result<Parsed> {
    let bad =
        |e: serde_json::Error| Error::input(format!("malformed Gitea {event_name} payload: {e}"));
    match event_name {
        "issue_comment" => {
            let e: IssueComment = serde_json::from_str(body).map_err(bad)?;
            comment(e, prefixes)
        }
        "pull_request" => {
            let e: PullRequestEvent = serde_json::from_str(body).map_err(bad)?;
            pull_request(e)
        }
        other => Err(Error::input(format!(
            "Gitea event {other:?} is not handled: use issue_comment or pull_request"
        ))),
    }
}

fn comment(e: IssueComment, prefixes: &Prefixes) -> Result<Parsed> {
    if e.action != "created" {
        return Ok(ignore(format!(
            "comment {}: only new comments count",
            e.action
        )));
    }
    if !e.is_pull && e.issue.pull_request.is_none() {
        return Ok(ignore("a comment on an issue, not a pull request"));
    }
    Ok(super::comment_command(
        super::PullComment {
            repository: e.repository.full_name,
            clone_url: e.repository.clone_url,
            number: e.issue.number,
            title: e.issue.title,
            login: e.comment.user.login,
            id: e.comment.user.id,
            text: e.comment.body.unwrap_or_default(),
            from_bot: false,
        },
        prefixes,
    ))
}

fn pull_request(e: PullRequestEvent) -> Result<Parsed> {
    let trigger = match e.action.as_str() {
        "closed" => Trigger::Closed {
            merged: e.pull_request.merged.unwrap_or(false),
        },
        // Gitea says `synchronized`, and sends no `before`: the head is read from the API.
        "synchronized" => Trigger::Pushed { before: None },
        // Gitea sends the labels the pull request has now, not which one changed.
        "label_updated" | "label_cleared" => Trigger::Labels {
            added: e.pull_request.label_names(),
            removed: vec![],
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Prefixes {
        Prefixes::default()
    }

    const REPO: &str =
        r#""repository": {"full_name": "org/app", "clone_url": "http://gitea/org/app.git"}"#;

    #[test]
    fn comments_on_pull_requests_are_commands() {
        let body = format!(
            r#"{{"action": "created", "is_pull": true, {REPO},
                "issue": {{"number": 3, "title": "t", "pull_request": {{"merged": false}}}},
                "comment": {{"body": "/deploy-ephemeral", "user": {{"login": "alice", "id": 2}}}}}}"#
        );
        let Parsed::Act(e) = parse("issue_comment", &body, &prefixes()).unwrap() else {
            panic!("not acted on")
        };
        assert_eq!(e.repository, "org/app");
        assert_eq!(e.change.number, 3);
        assert_eq!(e.actor.login, "alice");
        assert!(matches!(e.trigger, Trigger::Comment(_)));
    }

    #[test]
    fn what_is_not_a_command_is_ignored() {
        let table = [
            (
                r#""action": "edited", "is_pull": true"#,
                "/deploy-ephemeral",
            ),
            (
                r#""action": "created", "is_pull": false"#,
                "/deploy-ephemeral",
            ),
            (r#""action": "created", "is_pull": true"#, "looks good"),
            (
                r#""action": "created", "is_pull": true"#,
                "<!-- flux-ephemeral -->\n/deploy-ephemeral",
            ),
        ];
        for (head, text) in table {
            let body = serde_json::json!({"x": 0}).to_string();
            let _ = body;
            let body = format!(
                r#"{{{head}, {REPO}, "issue": {{"number": 3, "title": "t", "pull_request": null}},
                    "comment": {{"body": {}, "user": {{"login": "alice"}}}}}}"#,
                serde_json::Value::String(text.into())
            );
            assert!(
                matches!(
                    parse("issue_comment", &body, &prefixes()).unwrap(),
                    Parsed::Ignore(_)
                ),
                "{head} {text}"
            );
        }
    }

    #[test]
    fn pull_request_actions() {
        let pr = |action: &str| {
            format!(
                r#"{{"action": "{action}", {REPO}, "sender": {{"login": "bob"}},
                    "pull_request": {{"number": 4, "state": "open", "merged": false, "title": "t",
                      "labels": [{{"name": "preview"}}],
                      "head": {{"ref": "feature/x", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
                                "repo": {{"full_name": "org/app", "clone_url": "http://gitea/org/app.git"}}}},
                      "base": {{"repo": {{"full_name": "org/app"}}}}}}}}"#
            )
        };
        let act = |a: &str| match parse("pull_request", &pr(a), &prefixes()).unwrap() {
            Parsed::Act(e) => Some(e.trigger),
            Parsed::Ignore(_) => None,
        };
        assert!(matches!(
            act("synchronized"),
            Some(Trigger::Pushed { before: None })
        ));
        assert!(matches!(
            act("closed"),
            Some(Trigger::Closed { merged: false })
        ));
        assert!(
            matches!(act("label_updated"), Some(Trigger::Labels { ref added, .. }) if added == &["preview"])
        );
        assert!(act("opened").is_none());
        assert!(parse("push", "{}", &prefixes()).is_err());
        assert!(parse("pull_request", "{", &prefixes()).is_err());
    }
}
