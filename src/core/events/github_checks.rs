//! GitHub's check events (`check_run`, `check_suite`, `workflow_run`, `status`) as one domain
//! event: a check of a commit completed. They only name the commit (and, where GitHub says, its
//! pull request); whether a preview waits for it and whether it may go now is read from the API.

use serde::Deserialize;

use super::{ignore, Actor, Change, Event, Parsed, Trigger};
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
    clone_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Sender {
    login: String,
    id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct PullNumber {
    number: u64,
}

/// The part of a check run, check suite or workflow run that matters.
#[derive(Debug, Deserialize)]
struct Run {
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PullNumber>,
}

#[derive(Debug, Deserialize)]
struct RunEvent {
    action: Option<String>,
    repository: Repository,
    sender: Sender,
    check_run: Option<Run>,
    check_suite: Option<Run>,
    workflow_run: Option<Run>,
}

#[derive(Debug, Deserialize)]
struct StatusEvent {
    sha: String,
    state: String,
    context: String,
    repository: Repository,
    sender: Sender,
}

pub fn handles(event_name: &str) -> bool {
    matches!(
        event_name,
        "check_run" | "check_suite" | "workflow_run" | "status"
    )
}

fn event(repository: Repository, sender: Sender, sha: String, number: u64) -> Parsed {
    Parsed::Act(Box::new(Event {
        repository: repository.full_name,
        project_id: None,
        installation: None,
        source_url: repository.clone_url,
        change: Change {
            // 0: GitHub did not say; the pull request whose head is `sha` is looked up.
            number,
            sha: Some(sha.clone()),
            ..Change::default()
        },
        actor: Actor {
            login: sender.login,
            id: sender.id,
        },
        trigger: Trigger::ChecksCompleted { sha },
    }))
}

pub fn parse(event_name: &str, body: &str) -> Result<Parsed> {
    let bad =
        |e: serde_json::Error| Error::input(format!("malformed GitHub {event_name} payload: {e}"));
    if event_name == "status" {
        let e: StatusEvent = serde_json::from_str(body).map_err(bad)?;
        if e.state == "pending" || e.context == "flux-ephemeral" {
            return Ok(ignore(format!(
                "status {} {}: nothing to do",
                e.context, e.state
            )));
        }
        return Ok(event(e.repository, e.sender, e.sha, 0));
    }
    let e: RunEvent = serde_json::from_str(body).map_err(bad)?;
    if e.action.as_deref() != Some("completed") {
        return Ok(ignore(format!(
            "{event_name} {}: only completed checks count",
            e.action.unwrap_or_default()
        )));
    }
    let Some(run) = e.check_run.or(e.check_suite).or(e.workflow_run) else {
        return Err(Error::input(format!(
            "malformed GitHub {event_name} payload: no run in it"
        )));
    };
    let number = run.pull_requests.first().map_or(0, |p| p.number);
    Ok(event(e.repository, e.sender, run.head_sha, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

    #[test]
    fn table() {
        let repo = r#""repository": {"full_name": "org/app"}, "sender": {"login": "ci[bot]"}"#;
        let run = |action: &str| {
            format!(
                r#"{{"action": "{action}", "check_run": {{"head_sha": "{SHA}", "pull_requests": [{{"number": 7}}]}}, {repo}}}"#
            )
        };
        let Parsed::Act(e) = parse("check_run", &run("completed")).unwrap() else {
            panic!()
        };
        assert_eq!(e.trigger, Trigger::ChecksCompleted { sha: SHA.into() });
        assert_eq!(e.change.number, 7);
        assert!(matches!(
            parse("check_run", &run("created")).unwrap(),
            Parsed::Ignore(_)
        ));
        let status = |state: &str| {
            format!(r#"{{"sha": "{SHA}", "state": "{state}", "context": "ci/build", {repo}}}"#)
        };
        let Parsed::Act(e) = parse("status", &status("success")).unwrap() else {
            panic!()
        };
        assert_eq!(e.change.number, 0);
        assert!(matches!(
            parse("status", &status("pending")).unwrap(),
            Parsed::Ignore(_)
        ));
        assert!(parse("check_suite", r#"{"action": "completed"}"#).is_err());
    }
}
