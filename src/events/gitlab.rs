//! GitLab webhook payloads: our own serde types with only the fields we use (the `gitlab` crate
//! no longer ships hook types).

use serde::Deserialize;

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
    pub web_url: Option<String>,
    pub git_http_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HookUser {
    pub username: String,
}

/// The GitLab events `handle` understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitLabEvent {
    Deployment(DeploymentHook),
}

/// The hook kind: the `X-Gitlab-Event` value (`Deployment Hook`), else the payload's `object_kind`.
pub fn parse(event_name: Option<&str>, body: &str) -> Result<GitLabEvent> {
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
            .map(GitLabEvent::Deployment)
            .map_err(|e| Error::input(format!("malformed Deployment Hook payload: {e}"))),
        other => Err(Error::input(format!(
            "GitLab event {other:?} is not handled: flux-ephemeral handles Deployment Hook events"
        ))),
    }
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

    const DEPLOYMENT: &str = include_str!("../../tests/fixtures/gitlab/deployment.json");

    #[test]
    fn deployment_hook() {
        let GitLabEvent::Deployment(d) = parse(None, DEPLOYMENT).unwrap();
        assert_eq!(d.status, "success");
        assert_eq!(d.deployment_id, 15);
        assert_eq!(d.project.id, 30);
        assert_eq!(d.environment, "staging");
        assert_eq!(d.short_sha.as_deref(), Some("279484c0"));
        assert_eq!(d.user.unwrap().username, "user1");
        assert_eq!(
            parse(Some("Deployment Hook"), DEPLOYMENT).unwrap(),
            parse(None, DEPLOYMENT).unwrap()
        );
    }

    #[test]
    fn malformed_and_unknown() {
        assert!(parse(None, "{").unwrap_err().message.contains("not JSON"));
        assert!(parse(None, "{}")
            .unwrap_err()
            .message
            .contains("object_kind"));
        assert!(parse(None, r#"{"object_kind":"deployment"}"#)
            .unwrap_err()
            .message
            .contains("malformed"));
        assert!(parse(Some("Push Hook"), "{}")
            .unwrap_err()
            .message
            .contains("not handled"));
    }
}
