//! `--artifact DIR`: pack the directory as a Flux artifact and push it before the deploy commits,
//! so the sync file pins the OCIRepository to the digest the registry holds.

use std::path::{Path, PathBuf};

use super::input::EnvInput;
use crate::error::{Error, Result};
use crate::model::ArtifactRef;
use crate::oci::artifact::{pack, revision, Provenance};
use crate::oci::registry::Registry;
use crate::oci::{ArtifactUrl, Pushed};
use crate::settings::{Settings, SourceKind};

/// The OCI artifact to deploy instead of the branch.
#[derive(Debug, Clone, Default)]
pub struct ArtifactOptions {
    /// The directory of manifests to pack.
    pub artifact: Option<PathBuf>,
    /// `oci://HOST[:PORT]/REPOSITORY`, else the configuration's `artifact_url`.
    pub artifact_url: Option<String>,
    /// The registry host that is plain HTTP (loopback tests); any other is HTTPS only.
    pub insecure_registry: Option<String>,
}

impl ArtifactOptions {
    /// Whether this run deploys an artifact (asked by the flags or by `source: oci`).
    pub fn wanted(&self, settings: &Settings) -> bool {
        self.artifact.is_some() || settings.source == SourceKind::Oci
    }

    /// Pack and push (with `dry_run`, only pack: the digest is known without a registry), and
    /// return the input pinned to the artifact.
    pub fn prepare(
        &self,
        settings: &Settings,
        input: &EnvInput,
        dry_run: bool,
    ) -> Result<(EnvInput, Option<Pushed>)> {
        if !self.wanted(settings) {
            return Ok((input.clone(), None));
        }
        let dir = self.artifact.as_deref().ok_or_else(|| {
            Error::input(
                "source: oci needs --artifact DIR: the directory of manifests to pack and push",
            )
        })?;
        let url = match &self.artifact_url {
            Some(u) => ArtifactUrl::parse(u)?,
            None => settings.artifact_url.clone().ok_or_else(|| {
                Error::config("no artifact URL: pass --artifact-url oci://HOST/REPOSITORY or set artifact_url in .flux-ephemeral.yaml")
            })?,
        };
        let insecure = crate::oci::insecure_for(self.insecure_registry.as_deref(), &url);
        // The environment's names, as they will be once the artifact is known.
        let placeholder = ArtifactRef {
            url: url.url(),
            digest: String::new(),
            insecure,
        };
        let spec = EnvInput {
            artifact: Some(placeholder),
            ..input.clone()
        }
        .spec(settings)?;
        let tag = spec.key().to_string();
        let provenance = Provenance {
            source: spec.source_url.clone(),
            revision: revision(&spec.branch, spec.sha.as_deref()),
            created: created(dir, spec.sha.as_deref()),
        };
        let packed = pack(dir, &provenance)?;
        let pushed = if dry_run {
            eprintln!(
                "dry run: would push {} to {}:{tag} ({} bytes); nothing was pushed",
                packed.digest,
                url.url(),
                packed.layer.len()
            );
            Pushed {
                url: url.clone(),
                tag,
                digest: packed.digest.clone(),
                uploaded: false,
            }
        } else {
            let vars = |k: &str| std::env::var(k).ok();
            let credentials = crate::oci::auth::resolve(&url.registry, &vars, &|p| {
                std::fs::read_to_string(p).ok()
            })?;
            let registry = Registry::new(&url, credentials, insecure)?;
            let pushed = registry.push(&tag, &packed)?;
            tracing::info!(digest = %pushed.digest, uploaded = pushed.uploaded, "artifact pushed");
            pushed
        };
        let input = EnvInput {
            artifact: Some(ArtifactRef {
                url: url.url(),
                digest: pushed.digest.clone(),
                insecure,
            }),
            ..input.clone()
        };
        Ok((input, Some(pushed)))
    }
}

/// `org.opencontainers.image.created`: the commit's time when the directory sits in a checkout
/// that has the commit, else GitLab's CI_COMMIT_TIMESTAMP, else the Unix epoch.
fn created(dir: &Path, sha: Option<&str>) -> String {
    let from_checkout = || -> Option<String> {
        let repo = git2::Repository::discover(dir).ok()?;
        let commit = repo.find_commit(git2::Oid::from_str(sha?).ok()?).ok()?;
        let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(
            commit.time().seconds().try_into().ok()?,
        ))?;
        Some(crate::model::format_time(t))
    };
    let from_ci = || {
        std::env::var("CI_COMMIT_TIMESTAMP")
            .ok()
            .and_then(|t| {
                humantime::parse_rfc3339_weak(&t)
                    .ok()
                    .or_else(|| chrono_like(&t))
            })
            .map(crate::model::format_time)
    };
    from_checkout()
        .or_else(from_ci)
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// GitLab writes `2026-01-02T03:04:05+00:00`; humantime wants `Z`.
fn chrono_like(t: &str) -> Option<std::time::SystemTime> {
    let utc = t.strip_suffix("+00:00")?;
    humantime::parse_rfc3339_weak(utc).ok()
}
