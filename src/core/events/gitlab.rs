//! GitLab webhook payloads: our own serde types with only the fields we use (the `gitlab` crate
//! no longer ships hook types).

use serde::Deserialize;

use super::{ignore, Actor, Change, Event, Parsed, Trigger, REPLY_MARKER};
use crate::command::{parse as parse_command, Prefixes};
use crate::error::{Error, Result};

/// The `Deployment Hook` payload.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DeploymentHook {
    pub object_kind: String,
    pub status: String,
    pub deployment_id: u64,
    pub environment: String,
    pub environment_slug: Option<String>,
    pub environment_external_url: Option<String>,
    pub project: Project,
    pub short_sha: Option<String>,
    pub user: Option<HookUser>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Project {
    pub id: u64,
    pub path_with_namespace: Option<String>,
    pub web_url: Option<String>,
    pub git_http_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HookUser {
    pub username: String,
}

#[derive(Debug, Deserialize)]
struct HookUserFull {
    id: Option<u64>,
    username: String,
}

/// A pipeline's hook: its commit and, for a merge request pipeline, the merge request.
#[derive(Debug, Deserialize)]
struct PipelineHook {
    object_attributes: PipelineAttributes,
    merge_request: Option<PipelineMergeRequest>,
    project: ProjectId,
    user: HookUserFull,
}

#[derive(Debug, Deserialize)]
struct PipelineAttributes {
    sha: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct PipelineMergeRequest {
    iid: u64,
}

/// A finished pipeline may release a preview that waits for it (the API decides).
fn pipeline(p: PipelineHook) -> Parsed {
    if !matches!(
        p.object_attributes.status.as_str(),
        "success" | "failed" | "canceled" | "skipped"
    ) {
        return ignore(format!(
            "pipeline {}: not finished",
            p.object_attributes.status
        ));
    }
    let sha = p.object_attributes.sha;
    Parsed::Act(Box::new(Event {
        repository: p.project.path(),
        project_id: Some(p.project.id),
        installation: None,
        source_url: p.project.git_http_url.clone(),
        change: Change {
            number: p.merge_request.map_or(0, |m| m.iid),
            sha: Some(sha.clone()),
            ..Change::default()
        },
        actor: Actor {
            login: p.user.username,
            id: p.user.id,
        },
        trigger: Trigger::ChecksCompleted { sha },
    }))
}

#[derive(Debug, Deserialize)]
struct NoteHook {
    user: HookUserFull,
    project: ProjectId,
    object_attributes: NoteAttributes,
    merge_request: Option<MergeRequest>,
}

#[derive(Debug, Deserialize)]
struct NoteAttributes {
    note: Option<String>,
    noteable_type: String,
    action: Option<String>,
    #[serde(default)]
    system: bool,
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    iid: u64,
    source_branch: String,
    source_project_id: Option<u64>,
    target_project_id: Option<u64>,
    title: Option<String>,
    last_commit: Option<LastCommit>,
    source: Option<SourceProject>,
    action: Option<String>,
    oldrev: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProjectId {
    id: u64,
    path_with_namespace: Option<String>,
    git_http_url: Option<String>,
}

impl ProjectId {
    fn path(&self) -> String {
        self.path_with_namespace
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }
}

#[derive(Debug, Deserialize)]
struct LastCommit {
    id: String,
}

#[derive(Debug, Deserialize)]
struct SourceProject {
    git_http_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MergeRequestHook {
    user: HookUserFull,
    project: ProjectId,
    object_attributes: MergeRequest,
    #[serde(default)]
    changes: Changes,
    #[serde(default)]
    labels: Vec<LabelTitle>,
}

#[derive(Debug, Default, Deserialize)]
struct Changes {
    labels: Option<LabelChange>,
    draft: Option<DraftChange>,
}

#[derive(Debug, Deserialize)]
struct DraftChange {
    previous: Option<bool>,
    current: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct LabelChange {
    #[serde(default)]
    previous: Vec<LabelTitle>,
    #[serde(default)]
    current: Vec<LabelTitle>,
}

#[derive(Debug, Deserialize)]
struct LabelTitle {
    title: String,
}

impl MergeRequest {
    fn change(&self) -> Change {
        let (s, t) = (
            self.source_project_id.map(|i| i.to_string()),
            self.target_project_id.map(|i| i.to_string()),
        );
        let fork = super::is_fork(s.as_deref(), t.as_deref());
        Change {
            number: self.iid,
            branch: Some(self.source_branch.clone()),
            sha: self.last_commit.as_ref().map(|c| c.id.clone()),
            author: None,
            title: self.title.clone(),
            from_fork: Some(fork),
            head_clone_url: self.source.as_ref().and_then(|s| s.git_http_url.clone()),
            state: super::ChangeState::Unknown,
            draft: false,
            labels: Vec::new(),
        }
    }
}

/// The GitLab events `handle` understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitLabEvent {
    Deployment(Box<DeploymentHook>),
    /// Note and Merge Request hooks.
    Change(Parsed),
}

/// The hooks `parse` acts on; the server answers GitLab's other hooks "ignored".
pub fn handles(event_name: &str) -> bool {
    matches!(
        event_name,
        "Note Hook" | "Merge Request Hook" | "Deployment Hook" | "Pipeline Hook"
    )
}

/// The hook kind: the `X-Gitlab-Event` value (`Deployment Hook`), else the payload's `object_kind`.
pub fn parse(event_name: Option<&str>, body: &str, prefixes: &Prefixes) -> Result<GitLabEvent> {
    match parse_unchecked(event_name, body, prefixes)? {
        GitLabEvent::Change(p) => Ok(GitLabEvent::Change(super::checked(p)?)),
        d => Ok(d),
    }
}

fn parse_unchecked(
    event_name: Option<&str>,
    body: &str,
    prefixes: &Prefixes,
) -> Result<GitLabEvent> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::input(format!("the GitLab event is not JSON: {e}")))?;
    let kind = match event_name {
        Some(name) => name.to_string(),
        None => value
            .get("object_kind")
            .and_then(|k| k.as_str())
            .map(hook_name)
            .ok_or_else(|| Error::input("the GitLab event has no object_kind; pass --event-name (the X-Gitlab-Event header)"))?,
    };
    match kind.as_str() {
        "Deployment Hook" => serde_json::from_value(value)
            .map(|d| GitLabEvent::Deployment(Box::new(d)))
            .map_err(|e| Error::input(format!("malformed Deployment Hook payload: {e}"))),
        "Note Hook" => {
            let n: NoteHook = serde_json::from_value(value).map_err(|e| Error::input(format!("malformed Note Hook payload: {e}")))?;
            Ok(GitLabEvent::Change(note(n, prefixes)))
        }
        "Pipeline Hook" => {
            let p: PipelineHook = serde_json::from_value(value)
                .map_err(|e| Error::input(format!("malformed Pipeline Hook payload: {e}")))?;
            Ok(GitLabEvent::Change(pipeline(p)))
        }
        "Merge Request Hook" => {
            let m: MergeRequestHook =
                serde_json::from_value(value).map_err(|e| Error::input(format!("malformed Merge Request Hook payload: {e}")))?;
            Ok(GitLabEvent::Change(merge_request(m)))
        }
        other => Err(Error::input(format!(
            "GitLab event {other:?} is not handled: flux-ephemeral handles Note, Merge Request and Deployment Hook events"
        ))),
    }
}

fn note(n: NoteHook, prefixes: &Prefixes) -> Parsed {
    if n.object_attributes.noteable_type != "MergeRequest" {
        return ignore(format!(
            "a note on a {}, not a merge request",
            n.object_attributes.noteable_type
        ));
    }
    if n.object_attributes
        .action
        .as_deref()
        .is_some_and(|a| a != "create")
    {
        return ignore("only new notes count");
    }
    let text = n.object_attributes.note.unwrap_or_default();
    if n.object_attributes.system || text.contains(REPLY_MARKER) {
        return ignore("a system or bot note");
    }
    let Some(mr) = n.merge_request else {
        return ignore("a note without its merge request");
    };
    let Some(command) = parse_command(&text, prefixes) else {
        return ignore("no command in the note");
    };
    Parsed::Act(Box::new(Event {
        repository: n.project.path(),
        project_id: Some(n.project.id),
        installation: None,
        source_url: n.project.git_http_url.clone(),
        change: mr.change(),
        actor: Actor {
            login: n.user.username,
            id: n.user.id,
        },
        trigger: Trigger::Comment(command),
    }))
}

fn merge_request(m: MergeRequestHook) -> Parsed {
    let mr = &m.object_attributes;
    let trigger = match mr.action.as_deref() {
        Some("close") => Trigger::Closed { merged: false },
        Some("merge") => Trigger::Closed { merged: true },
        Some("update")
            if m.changes
                .draft
                .as_ref()
                .is_some_and(|d| d.previous == Some(true) && d.current == Some(false))
                && mr.oldrev.is_none() =>
        {
            Trigger::ReadyForReview {
                labels: m.labels.iter().map(|l| l.title.clone()).collect(),
            }
        }
        Some("update") => match (&m.changes.labels, &mr.oldrev) {
            (_, Some(old)) => Trigger::Pushed {
                before: Some(old.clone()).filter(|b| super::is_full_sha(b)),
            },
            (Some(l), None) => {
                let titles =
                    |v: &[LabelTitle]| v.iter().map(|l| l.title.clone()).collect::<Vec<_>>();
                let (prev, cur) = (titles(&l.previous), titles(&l.current));
                Trigger::Labels {
                    added: cur.iter().filter(|t| !prev.contains(t)).cloned().collect(),
                    removed: prev.iter().filter(|t| !cur.contains(t)).cloned().collect(),
                }
            }
            (None, None) => return ignore("a merge request update without new commits or labels"),
        },
        other => {
            return ignore(format!(
                "merge request {}: nothing to do",
                other.unwrap_or("event")
            ))
        }
    };
    Parsed::Act(Box::new(Event {
        repository: m.project.path(),
        project_id: Some(m.project.id),
        installation: None,
        source_url: m.project.git_http_url.clone(),
        change: mr.change(),
        actor: Actor {
            login: m.user.username,
            id: m.user.id,
        },
        trigger,
    }))
}

fn hook_name(object_kind: &str) -> String {
    match object_kind {
        "deployment" => "Deployment Hook".into(),
        "note" => "Note Hook".into(),
        "merge_request" => "Merge Request Hook".into(),
        "build" => "Job Hook".into(),
        "pipeline" => "Pipeline Hook".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: fn() -> Prefixes = Prefixes::default;
    const DEPLOYMENT: &str = include_str!("../../../tests/fixtures/gitlab/deployment.json");

    #[test]
    fn deployment_hook() {
        let GitLabEvent::Deployment(d) = parse(None, DEPLOYMENT, &P()).unwrap() else {
            panic!()
        };
        assert_eq!(d.status, "success");
        assert_eq!(d.deployment_id, 15);
        assert_eq!(d.project.id, 30);
        assert_eq!(d.environment, "staging");
        assert_eq!(d.short_sha.as_deref(), Some("279484c0"));
        assert_eq!(d.user.unwrap().username, "user1");
        assert_eq!(
            parse(Some("Deployment Hook"), DEPLOYMENT, &P()).unwrap(),
            parse(None, DEPLOYMENT, &P()).unwrap()
        );
    }

    #[test]
    fn malformed_and_unknown() {
        assert!(parse(None, "{", &P())
            .unwrap_err()
            .message
            .contains("not JSON"));
        assert!(parse(None, "{}", &P())
            .unwrap_err()
            .message
            .contains("object_kind"));
        assert!(parse(None, r#"{"object_kind":"deployment"}"#, &P())
            .unwrap_err()
            .message
            .contains("malformed"));
        assert!(parse(Some("Push Hook"), "{}", &P())
            .unwrap_err()
            .message
            .contains("not handled"));
    }

    const NOTE: &str = include_str!("../../../tests/fixtures/gitlab/note_merge_request.json");
    const MR: &str = include_str!("../../../tests/fixtures/gitlab/merge_request.json");

    fn with(body: &str, path: &[&str], value: serde_json::Value) -> String {
        let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        v.to_string()
    }

    #[test]
    fn note_hook() {
        assert_eq!(
            parse(None, NOTE, &P()).unwrap(),
            GitLabEvent::Change(ignore("no command in the note"))
        );
        let body = with(
            NOTE,
            &["object_attributes", "note"],
            serde_json::json!("/destroy-ephemeral"),
        );
        let GitLabEvent::Change(Parsed::Act(e)) = parse(Some("Note Hook"), &body, &P()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            e.trigger,
            Trigger::Comment(Ok(crate::command::Command::Destroy))
        );
        assert_eq!(e.change.number, 1);
        assert_eq!(e.change.branch.as_deref(), Some("master"));
        assert_eq!(
            e.change.sha.as_deref(),
            Some("562e173be03b8ff2efb05345d12df18815438a4b")
        );
        assert_eq!(e.change.from_fork, Some(false));
        assert_eq!(
            e.actor,
            Actor {
                login: "root".into(),
                id: Some(1)
            }
        );
        let edit = with(
            &body,
            &["object_attributes", "action"],
            serde_json::json!("update"),
        );
        assert_eq!(
            parse(None, &edit, &P()).unwrap(),
            GitLabEvent::Change(ignore("only new notes count"))
        );
    }

    #[test]
    fn merge_request_hook() {
        assert!(
            matches!(parse(None, MR, &P()).unwrap(), GitLabEvent::Change(Parsed::Ignore(r)) if r.contains("open"))
        );
        let close = with(
            MR,
            &["object_attributes", "action"],
            serde_json::json!("merge"),
        );
        let GitLabEvent::Change(Parsed::Act(e)) = parse(None, &close, &P()).unwrap() else {
            panic!()
        };
        assert_eq!(e.trigger, Trigger::Closed { merged: true });
        assert_eq!(e.change.branch.as_deref(), Some("ms-viewport"));
        let update = with(
            MR,
            &["object_attributes", "action"],
            serde_json::json!("update"),
        );
        let GitLabEvent::Change(Parsed::Act(e)) = parse(None, &update, &P()).unwrap() else {
            panic!()
        };
        assert!(
            matches!(e.trigger, Trigger::Labels { .. }),
            "the fixture's update changes labels: {:?}",
            e.trigger
        );
        let pushed = with(
            &update,
            &["object_attributes", "oldrev"],
            serde_json::json!("0000000000000000000000000000000000000001"),
        );
        let GitLabEvent::Change(Parsed::Act(e)) = parse(None, &pushed, &P()).unwrap() else {
            panic!()
        };
        assert!(matches!(e.trigger, Trigger::Pushed { .. }));
    }
}
