//! What to wait for, read from a rendered sync file: the source object (GitRepository or
//! OCIRepository) and the object that deploys it (Kustomization or HelmRelease), and the revision
//! they must reach. Pure.

use serde_yaml_ng::Value;

use crate::error::{Error, Result};

/// One Flux object by kind, name and namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl ObjectRef {
    /// `kustomization/<name>`: how Flux names the object in events and commit status contexts.
    pub fn flux_id(&self) -> String {
        format!("{}/{}", self.kind.to_ascii_lowercase(), self.name)
    }
}

/// The objects of one preview environment and the revision to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub source: ObjectRef,
    pub deployer: ObjectRef,
    /// The end of the revision Flux reports once it has the pushed state: `sha1:<sha>` for a
    /// pinned commit, the artifact's `sha256:<digest>`; `None` when the source follows a branch.
    pub revision: Option<String>,
    /// The application commit (for forge statuses).
    pub sha: Option<String>,
    /// When this state was pushed (the sync file's deployed-at): a forge status older than that
    /// is about an earlier deployment.
    pub pushed_at: Option<std::time::SystemTime>,
}

/// Read the targets from a sync file's content.
pub fn from_sync_file(content: &str) -> Result<Targets> {
    let mut source = None;
    let mut deployer = None;
    let mut sha = None;
    let mut digest = None;
    let mut pushed_at = None;
    for de in serde_yaml_ng::Deserializer::from_str(content) {
        let doc = <Value as serde::Deserialize>::deserialize(de)
            .map_err(|e| Error::input(format!("sync file: {e}")))?;
        let s = |v: &Value| v.as_str().map(str::to_string);
        let (Some(kind), Some(api), Some(name)) = (
            doc.get("kind").and_then(&s),
            doc.get("apiVersion").and_then(&s),
            doc.get("metadata").and_then(|m| m.get("name")).and_then(&s),
        ) else {
            continue;
        };
        let namespace = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(&s)
            .unwrap_or_else(|| "flux-system".into());
        let r = ObjectRef {
            api_version: api,
            kind: kind.clone(),
            name,
            namespace,
        };
        let spec = doc.get("spec");
        match kind.as_str() {
            "GitRepository" => {
                sha = spec
                    .and_then(|s| s.get("ref"))
                    .and_then(|r| r.get("commit"))
                    .and_then(|v| v.as_str().map(str::to_string));
                source = Some(r);
            }
            "OCIRepository" => {
                digest = spec
                    .and_then(|s| s.get("ref"))
                    .and_then(|r| r.get("digest"))
                    .and_then(|v| v.as_str().map(str::to_string));
                source = Some(r);
            }
            "Kustomization" | "HelmRelease" => deployer = Some(r),
            _ => {}
        }
        if pushed_at.is_none() {
            pushed_at = doc
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(crate::model::keys::DEPLOYED_AT))
                .and_then(|v| v.as_str())
                .and_then(crate::model::parse_time);
        }
        if sha.is_none() {
            sha = doc
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(crate::model::keys::SHA))
                .and_then(|v| v.as_str().map(str::to_string));
        }
    }
    let (Some(source), Some(deployer)) = (source, deployer) else {
        return Err(Error::input(
            "the sync file has no GitRepository/OCIRepository and Kustomization/HelmRelease to wait for",
        ));
    };
    let revision = match (&source.kind[..], &digest) {
        ("OCIRepository", Some(d)) => Some(d.clone()),
        _ => sha_revision(&source, &sha),
    };
    Ok(Targets {
        source,
        deployer,
        revision,
        sha,
        pushed_at,
    })
}

fn sha_revision(source: &ObjectRef, sha: &Option<String>) -> Option<String> {
    (source.kind == "GitRepository")
        .then(|| sha.as_ref().map(|s| format!("sha1:{s}")))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_rendered_file() {
        let r = crate::render::Renderer::builtin(
            "kustomization",
            crate::render::RenderSettings::default(),
        )
        .unwrap();
        let spec = crate::model::EnvSpec {
            slug: "x".into(),
            branch: "x".into(),
            sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
            source_url: "https://x/app.git".into(),
            ..Default::default()
        };
        let text = r
            .render(&spec, std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .content;
        let t = from_sync_file(&text).unwrap();
        assert_eq!(t.source.kind, "GitRepository");
        assert_eq!(t.deployer.flux_id(), "kustomization/app-x");
        assert_eq!(
            t.revision.as_deref(),
            Some("sha1:0123456789abcdef0123456789abcdef01234567")
        );
    }
}
