//! An environment as somebody asks for it — from flags, a CI job or an event — and how it turns
//! into an [`EnvSpec`] with a configuration's settings.

use crate::ci::CiContext;
use crate::error::{Error, Result};
use crate::model::EnvSpec;
use crate::settings::Settings;
use crate::slug::{slugify, validate_slug};

/// An environment as asked for: flags first, then the CI job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvInput {
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub id: Option<String>,
    pub author: Option<String>,
    pub title: Option<String>,
    pub slug: Option<String>,
    pub environment: Option<String>,
    pub environment_url: Option<String>,
    pub ci_source_url: Option<String>,
    pub fork_clone_url: Option<String>,
    /// A time to live for this environment only (`/deploy-ephemeral ttl=24h`).
    pub ttl: Option<std::time::Duration>,
    /// The CI job's own repository: it picks the application and must be configured.
    pub ci_repository: Option<crate::events::RepoRef>,
    /// The pushed OCI artifact to deploy instead of the branch.
    pub artifact: Option<crate::model::ArtifactRef>,
    /// The cluster asked for (`--cluster`, `cluster=` in a comment).
    pub cluster: Option<String>,
}

impl EnvInput {
    /// Where this input comes from, for choosing the application.
    pub fn origin(&self) -> crate::apps::Origin {
        crate::apps::Origin {
            app: None,
            repository: self.ci_repository.clone(),
            ci_repository: self.ci_repository.clone(),
        }
    }
}

impl EnvInput {
    /// Fill what the flags left open from the CI job.
    pub fn with_ci(self, ci: Option<CiContext>) -> Result<EnvInput> {
        let Some(ci) = ci else { return Ok(self) };
        // A slug from GitLab belongs to GitLab's environment; only take it with that environment.
        let from_env = self.environment.is_none() || self.environment == ci.environment;
        Ok(EnvInput {
            branch: self.branch.or(ci.branch),
            sha: self.sha.or(ci.sha),
            id: self.id.or(ci.id),
            author: self.author.or(ci.author),
            title: self.title.or(ci.title),
            slug: self.slug.or(if from_env { ci.slug } else { None }),
            environment: self.environment.or(ci.environment),
            environment_url: ci.environment_url,
            ci_source_url: ci.source_url,
            fork_clone_url: ci.fork_clone_url,
            ttl: self.ttl,
            ci_repository: ci.repository,
            artifact: self.artifact,
            cluster: self.cluster,
        })
    }

    pub fn branch(&self) -> Result<&str> {
        self.branch.as_deref().ok_or_else(|| {
            Error::input("no branch: pass --branch NAME, or run inside GitLab CI or GitHub Actions (--from-ci)")
        })
    }

    /// The environment's slug: given (GitLab's), or derived from the branch.
    pub fn slug(&self, settings: &Settings) -> Result<String> {
        let budget = settings.slug_budget();
        match &self.slug {
            Some(s) => {
                validate_slug(s, budget)?;
                Ok(s.clone())
            }
            None => slugify(self.branch()?, budget),
        }
    }

    /// Who asks for this environment: the application, its repository and the change.
    pub fn requester(&self, settings: &Settings) -> Result<crate::model::Owner> {
        let app = &settings.application;
        Ok(crate::model::Owner {
            app: Some(app.name.clone()),
            forge: app.forge.clone(),
            repository: app.repository.clone(),
            change: self.id.as_deref().map(check_id).transpose()?,
        })
    }

    pub fn spec(&self, settings: &Settings) -> Result<EnvSpec> {
        if settings.source == crate::settings::SourceKind::Oci && self.artifact.is_none() {
            return Err(Error::input(
                "source: oci, but this deploy has no artifact: run it where the manifests are, with --artifact DIR (webhook deliveries and Deployment Hooks cannot pack one)",
            ));
        }
        let source_url = match &self.fork_clone_url {
            Some(fork) if fork.is_empty() => {
                return Err(Error::input(
                    "refused: the pull request's fork was deleted; there is nothing to preview",
                ))
            }
            Some(fork) if settings.allow_forks => Some(fork.clone()),
            Some(fork) => {
                return Err(Error::input(format!(
                    "refused: the pull request comes from a fork ({fork}); set allow_forks: true in .flux-ephemeral.yaml to preview forks"
                )))
            }
            None => settings.source_url.clone().or_else(|| self.ci_source_url.clone()),
        };
        // An artifact is the source itself; the URL then only names where it was built from.
        let source_url =
            match source_url.filter(|s| !s.trim().is_empty()) {
                Some(u) => u,
                None if self.artifact.is_some() => String::new(),
                None => return Err(Error::config(
                    "no source URL: pass --source-url or set source_url in .flux-ephemeral.yaml",
                )),
            };
        let slug = self.slug(settings)?;
        let app = &settings.application;
        Ok(EnvSpec {
            key: app.key(&slug),
            app: Some(app.name.clone()),
            forge: app.forge.clone(),
            repository: app.repository.clone(),
            slug,
            branch: check_branch(self.branch()?)?,
            sha: self.sha.as_deref().map(check_sha).transpose()?,
            id: self.id.as_deref().map(check_id).transpose()?,
            author: self.author.clone().filter(|a| !a.is_empty()),
            title: self.title.clone().filter(|t| !t.is_empty()),
            environment: self.environment.clone(),
            source_url,
            ttl: self.ttl.or(settings.ttl),
            preview_url: self.environment_url.clone().filter(|u| !u.is_empty()),
            artifact: self.artifact.clone(),
            refresh: false,
            lifecycle: Default::default(),
            keep_deployed_at: false,
            cluster: self.cluster.clone(),
        })
    }
}

pub fn check_branch(b: &str) -> Result<String> {
    if b.is_empty() || b.chars().any(char::is_control) {
        return Err(Error::input(format!(
            "branch name {b:?} is empty or has control characters"
        )));
    }
    Ok(b.to_string())
}

pub fn check_sha(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if (s.len() == 40 || s.len() == 64) && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(Error::input(format!(
            "--sha {s:?} is not a full commit id (40 hex digits); Flux needs the full sha"
        )))
    }
}

pub fn check_id(s: &str) -> Result<String> {
    let t = s.trim().trim_start_matches(['#', '!']);
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|c| c.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(Error::input(format!(
            "--id {s:?} is not a pull/merge request number"
        )))
    }
}
