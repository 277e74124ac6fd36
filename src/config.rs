//! `.flux-ephemeral.yaml`: the settings of a GitOps repository, merged with flags.
//!
//! Precedence: command-line flags (and their environment variables) > the file > defaults.
//! The file is `--config FILE`, else `.flux-ephemeral.yaml` at the root of the target branch.

use std::path::{Component, Path};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::render::{RenderSettings, Renderer};

pub const FILE_NAME: &str = ".flux-ephemeral.yaml";
pub const DEFAULT_INSTANCES_DIR: &str = "overlays/ephemeral-instances";

/// The configuration file. Every key is optional; an unknown key is an error naming it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Prefix of object names and namespaces (`<app>-<slug>`).
    pub app: Option<String>,
    pub source_url: Option<String>,
    pub target_branch: Option<String>,
    pub instances_dir: Option<String>,
    pub path: Option<String>,
    /// `kustomization`, `helm`, or the path of a Tera template in the GitOps repository.
    pub template: Option<String>,
    pub flux_namespace: Option<String>,
    pub interval: Option<String>,
    pub secret_ref: Option<String>,
    pub service_account: Option<String>,
    pub preview_url: Option<String>,
    pub chart: Option<String>,
    pub commit_author: Option<CommitAuthor>,
    pub max_environments: Option<usize>,
    pub ttl: Option<String>,
    /// The longest time to live anyone may ask for (`ttl`, `--ttl`, `ttl=` in a comment)
    /// [default: 30d].
    pub max_ttl: Option<String>,
    /// Regex an environment name must match to become a preview [default: review/.*].
    pub include_environment: Option<String>,
    /// Regex of environment names never to turn into previews.
    pub exclude_environment: Option<String>,
    /// Deploy pull/merge requests from forks (the GitRepository then fetches the fork).
    pub allow_forks: Option<bool>,
    /// `owner/name` of the GitHub repository whose pull requests the environments belong to.
    pub github_repository: Option<String>,
    /// GitLab project (id or `group/name`) whose merge requests and environments to check.
    pub gitlab_project: Option<String>,
    /// Adding this label to a pull/merge request deploys it, removing it destroys.
    pub deploy_label: Option<String>,
    /// Users who may deploy besides those with write access.
    pub allowed_users: Option<Vec<String>>,
    /// Only `allowed_users` may deploy, whatever their access.
    pub allowlist_only: Option<bool>,
    /// The deploy command word [default: /deploy-ephemeral].
    pub deploy_command: Option<String>,
    /// The destroy command word [default: /destroy-ephemeral].
    pub destroy_command: Option<String>,
    /// The applications this GitOps repository takes previews for; without a list, one.
    pub applications: Option<Vec<AppConfig>>,
    /// Where a preview's manifests come from: `git` (a GitRepository on the branch or commit,
    /// the default) or `oci` (an artifact pushed by the deploy, pinned by digest).
    pub source: Option<String>,
    /// `oci://HOST[:PORT]/REPOSITORY` the artifacts are pushed to (with `source: oci`).
    pub artifact_url: Option<String>,
    /// The Flux Receiver to notify after a push: its full webhook URL, or a base URL with
    /// `receiver_name` (and `receiver_namespace`).
    pub receiver_url: Option<String>,
    pub receiver_name: Option<String>,
    /// [default: flux-system]
    pub receiver_namespace: Option<String>,
    /// `generic`, `generic-hmac`, `github` or `gitlab` [default: generic].
    pub receiver_type: Option<String>,
}

/// One application of the `applications` list: its name (the prefix of its object names,
/// namespaces and sync files), its forge repository, and the settings it overrides.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    /// The GitHub repository (`owner/name`) whose pull requests it previews.
    pub github_repository: Option<String>,
    /// Or the GitLab project (path or numeric id) whose merge requests it previews.
    pub gitlab_project: Option<String>,
    pub source_url: Option<String>,
    pub path: Option<String>,
    pub template: Option<String>,
    pub flux_namespace: Option<String>,
    pub interval: Option<String>,
    pub secret_ref: Option<String>,
    pub service_account: Option<String>,
    pub preview_url: Option<String>,
    pub chart: Option<String>,
    pub max_environments: Option<usize>,
    pub ttl: Option<String>,
    pub max_ttl: Option<String>,
    pub include_environment: Option<String>,
    pub exclude_environment: Option<String>,
    pub allow_forks: Option<bool>,
    pub deploy_label: Option<String>,
    pub allowed_users: Option<Vec<String>>,
    pub allowlist_only: Option<bool>,
    pub source: Option<String>,
    pub artifact_url: Option<String>,
}

impl AppConfig {
    /// Whether events and jobs of `r` belong to this application.
    pub fn serves(&self, r: &crate::apps::RepoRef) -> bool {
        let configured = match r.forge {
            crate::events::Forge::GitHub => &self.github_repository,
            crate::events::Forge::GitLab => &self.gitlab_project,
        };
        configured.as_deref().is_some_and(|c| r.matches(c))
    }

    /// Its repository as configured, with the forge's name.
    pub fn repository(&self) -> Option<(&'static str, String)> {
        match (&self.github_repository, &self.gitlab_project) {
            (Some(r), _) => Some(("github", r.clone())),
            (None, Some(p)) => Some(("gitlab", p.clone())),
            (None, None) => None,
        }
    }

    /// Its overrides, as a configuration to lay over the top-level keys.
    pub fn settings(&self) -> FileConfig {
        let a = self.clone();
        FileConfig {
            github_repository: a.github_repository,
            gitlab_project: a.gitlab_project,
            source_url: a.source_url,
            path: a.path,
            template: a.template,
            flux_namespace: a.flux_namespace,
            interval: a.interval,
            secret_ref: a.secret_ref,
            service_account: a.service_account,
            preview_url: a.preview_url,
            chart: a.chart,
            max_environments: a.max_environments,
            ttl: a.ttl,
            max_ttl: a.max_ttl,
            include_environment: a.include_environment,
            exclude_environment: a.exclude_environment,
            allow_forks: a.allow_forks,
            deploy_label: a.deploy_label,
            allowed_users: a.allowed_users,
            allowlist_only: a.allowlist_only,
            source: a.source,
            artifact_url: a.artifact_url,
            ..FileConfig::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommitAuthor {
    pub name: String,
    pub email: String,
}

impl Default for CommitAuthor {
    fn default() -> Self {
        CommitAuthor {
            name: "flux-ephemeral".into(),
            email: "flux-ephemeral@localhost".into(),
        }
    }
}

impl FileConfig {
    /// Parse the file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| Error::config(format!("{origin}: {e}")))
    }

    /// Values from `over` win over values from `self`.
    pub fn overlay(self, over: FileConfig) -> FileConfig {
        macro_rules! pick {
            ($($f:ident),*) => { FileConfig { $($f: over.$f.or(self.$f)),* } };
        }
        pick!(
            app,
            source_url,
            target_branch,
            instances_dir,
            path,
            template,
            flux_namespace,
            interval,
            secret_ref,
            service_account,
            preview_url,
            chart,
            commit_author,
            max_environments,
            ttl,
            max_ttl,
            include_environment,
            exclude_environment,
            allow_forks,
            github_repository,
            gitlab_project,
            deploy_label,
            allowed_users,
            allowlist_only,
            deploy_command,
            destroy_command,
            applications,
            source,
            artifact_url,
            receiver_url,
            receiver_name,
            receiver_namespace,
            receiver_type
        )
    }
}

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub render: RenderSettings,
    pub instances_dir: String,
    pub template: String,
    pub source_url: Option<String>,
    pub author: CommitAuthor,
    pub max_environments: Option<usize>,
    pub ttl: Option<Duration>,
    /// The longest time to live that may be asked for.
    pub max_ttl: Duration,
    pub filter: crate::filter::EnvFilter,
    pub allow_forks: bool,
    pub github_repository: Option<String>,
    pub gitlab_project: Option<String>,
    pub chat: crate::chatops::ChatSettings,
    pub commands: crate::command::Prefixes,
    /// The application this run is for.
    pub application: crate::apps::Application,
    /// `git` or `oci`.
    pub source: SourceKind,
    pub artifact_url: Option<crate::oci::ArtifactUrl>,
    /// The Flux Receiver to notify after a push, when configured.
    pub receiver: Option<ReceiverSettings>,
}

/// Where and how to notify Flux (the token comes from FLUX_RECEIVER_TOKEN or a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverSettings {
    pub url: String,
    pub name: Option<String>,
    pub namespace: String,
    pub kind: crate::flux::receiver::ReceiverType,
}

/// Where a preview's manifests come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Git,
    Oci,
}

impl Settings {
    /// Settings for a plain command (no event, no CI job): see [`Settings::resolve_for`].
    pub fn resolve(c: FileConfig) -> Result<Settings> {
        Self::resolve_for(c, FileConfig::default(), &crate::apps::Origin::default())
    }

    /// The settings of the application `origin` is for: defaults < `file` < the application's
    /// overrides < `flags`. An origin whose repository is not configured is refused.
    pub fn resolve_for(
        file: FileConfig,
        flags: FileConfig,
        origin: &crate::apps::Origin,
    ) -> Result<Settings> {
        if let Some(list) = &file.applications {
            check_applications(list)?;
        }
        let (c, application) = crate::apps::select(file, flags, origin)?;
        let d = RenderSettings::default();
        let source = match c.source.as_deref() {
            None | Some("git") => SourceKind::Git,
            Some("oci") => SourceKind::Oci,
            Some(other) => {
                return Err(Error::config(format!("source {other:?} is not git or oci")))
            }
        };
        let artifact_url = c
            .artifact_url
            .as_deref()
            .map(crate::oci::ArtifactUrl::parse)
            .transpose()
            .map_err(|e| Error::config(e.message))?;
        let receiver = match c.receiver_url.clone().filter(|u| !u.is_empty()) {
            Some(url) => Some(ReceiverSettings {
                url,
                name: c.receiver_name.clone(),
                namespace: c
                    .receiver_namespace
                    .clone()
                    .unwrap_or_else(|| "flux-system".into()),
                kind: crate::flux::receiver::ReceiverType::parse(
                    c.receiver_type.as_deref().unwrap_or("generic"),
                )?,
            }),
            None => None,
        };
        // An artifact holds the manifests at its root, unless a path says otherwise.
        let artifact_path = c.path.clone().unwrap_or(d.artifact_path.clone());
        let instances_dir =
            normalize_dir(c.instances_dir.as_deref().unwrap_or(DEFAULT_INSTANCES_DIR))?;
        let max_ttl = match c.max_ttl.as_deref() {
            Some(m) => parse_ttl(m)?,
            None => DEFAULT_MAX_TTL,
        };
        let ttl = c
            .ttl
            .as_deref()
            .map(|t| bounded_ttl(t, max_ttl))
            .transpose()?;
        Ok(Settings {
            render: RenderSettings {
                prefix: c.app.unwrap_or(d.prefix),
                flux_namespace: c.flux_namespace.unwrap_or(d.flux_namespace),
                path: c.path.unwrap_or(d.path),
                artifact_path,
                interval: c.interval.unwrap_or(d.interval),
                secret_ref: c.secret_ref.filter(|s| !s.is_empty()),
                service_account: c.service_account.filter(|s| !s.is_empty()),
                preview_url: c.preview_url.filter(|s| !s.is_empty()),
                chart: c.chart.unwrap_or(d.chart),
            },
            instances_dir,
            template: c.template.unwrap_or_else(|| "kustomization".into()),
            source_url: c.source_url,
            author: c.commit_author.unwrap_or_default(),
            max_environments: c.max_environments,
            ttl,
            max_ttl,
            filter: crate::filter::EnvFilter::new(
                c.include_environment.as_deref(),
                c.exclude_environment.as_deref(),
            )?,
            allow_forks: c.allow_forks.unwrap_or(false),
            github_repository: c.github_repository,
            gitlab_project: c.gitlab_project,
            chat: crate::chatops::ChatSettings {
                deploy_label: c.deploy_label.filter(|l| !l.is_empty()),
                allowed_users: c.allowed_users.unwrap_or_default(),
                allowlist_only: c.allowlist_only.unwrap_or(false),
            },
            commands: {
                let d = crate::command::Prefixes::default();
                crate::command::Prefixes {
                    deploy: c.deploy_command.unwrap_or(d.deploy),
                    destroy: c.destroy_command.unwrap_or(d.destroy),
                }
            },
            application,
            source,
            artifact_url,
            receiver,
        })
    }

    /// The renderer: a built-in template, or a template file read by `read` (from the GitOps
    /// repository or the local disk, depending on where the configuration came from).
    pub fn renderer(&self, read: impl FnOnce(&str) -> Result<Option<String>>) -> Result<Renderer> {
        if crate::render::builtin_source(&self.template).is_some() {
            return Renderer::builtin(&self.template, self.render.clone());
        }
        let text = read(&self.template)?.ok_or_else(|| {
            Error::config(format!(
                "template {:?} not found: use kustomization, helm, or the path of a Tera template",
                self.template
            ))
        })?;
        Renderer::new(&self.template, &text, self.render.clone())
    }

    pub fn slug_budget(&self) -> usize {
        crate::slug::budget_for_prefix(&self.render.prefix)
    }
}

/// Application names are DNS labels (they prefix object names) and unique.
fn check_applications(list: &[AppConfig]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for a in list {
        if !crate::slug::is_dns_label(&a.name) || a.name.len() > 20 {
            return Err(Error::config(format!(
                "application name {:?} must be a DNS-1123 label of at most 20 characters",
                a.name
            )));
        }
        if a.github_repository.is_some() == a.gitlab_project.is_some() {
            return Err(Error::config(format!(
                "application {:?} needs exactly one of github_repository or gitlab_project",
                a.name
            )));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(Error::config(format!(
                "application {:?} is listed twice",
                a.name
            )));
        }
    }
    Ok(())
}

/// The longest time to live unless `max_ttl` says otherwise: 30 days.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Nothing is kept longer than this, whatever is configured: 100 years (a time that still adds
/// to any clock without overflowing).
const CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `72h`, `3d`, `90m`: a time to live, at most 100 years.
pub fn parse_ttl(s: &str) -> Result<Duration> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| Error::config(format!("ttl {s:?} is not a duration like 72h or 3d: {e}")))?;
    if d.is_zero() {
        return Err(Error::config(format!(
            "ttl {s:?} is zero: an environment would be removed at once; use a duration like 72h or 3d, or leave ttl out"
        )));
    }
    if d > CEILING {
        return Err(Error::input(format!(
            "ttl {s:?} is longer than 100 years; ask for days or hours, like 72h or 3d"
        )));
    }
    Ok(d)
}

/// A time to live that someone asks for: a duration no longer than `max`.
pub fn bounded_ttl(s: &str, max: Duration) -> Result<Duration> {
    let d = parse_ttl(s)?;
    if d > max {
        return Err(Error::input(format!(
            "ttl {s:?} is longer than the maximum of {} (max_ttl in .flux-ephemeral.yaml)",
            humantime::format_duration(max)
        )));
    }
    Ok(d)
}

/// A relative directory inside the repository, without `.`/`..` tricks, `/`-separated.
pub fn normalize_dir(dir: &str) -> Result<String> {
    let bad = || {
        Error::config(format!(
            "instances_dir {dir:?} must be a relative path inside the repository, without '..'"
        ))
    };
    let mut parts = Vec::new();
    for c in Path::new(dir).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(bad)?.to_string()),
            Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p == ".git") {
        return Err(bad());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = FileConfig::parse("app: web\nprefixx: 1\n", ".flux-ephemeral.yaml").unwrap_err();
        assert!(e.message.contains("prefixx"), "{e}");
        assert!(e.message.contains(".flux-ephemeral.yaml"), "{e}");
    }

    #[test]
    fn flags_win_over_file() {
        let file = FileConfig::parse("app: web\npath: ./x\n", "f").unwrap();
        let flags = FileConfig {
            app: Some("api".into()),
            ..Default::default()
        };
        let merged = file.overlay(flags);
        assert_eq!(merged.app.as_deref(), Some("api"));
        assert_eq!(merged.path.as_deref(), Some("./x"));
    }

    #[test]
    fn instances_dir_stays_inside() {
        assert_eq!(
            normalize_dir("./overlays//ephemeral-instances/").unwrap(),
            "overlays/ephemeral-instances"
        );
        for bad in ["../x", "/abs", "a/../../b", ".", "", ".git/x"] {
            assert!(normalize_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("72h").unwrap(), Duration::from_secs(72 * 3600));
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("500000000000y").is_err());
        assert!(parse_ttl("99999999999999999999999y").is_err());
        let max = DEFAULT_MAX_TTL;
        assert_eq!(bounded_ttl("30d", max).unwrap(), max);
        let e = bounded_ttl("31d", max).unwrap_err();
        assert!(e.message.contains("maximum of 30days"), "{}", e.message);
        let too_long = FileConfig {
            ttl: Some("90d".into()),
            ..FileConfig::default()
        };
        assert!(Settings::resolve(too_long.clone()).is_err());
        let raised = FileConfig {
            max_ttl: Some("120d".into()),
            ..too_long
        };
        assert_eq!(
            Settings::resolve(raised).unwrap().ttl,
            Some(Duration::from_secs(90 * 86400))
        );
    }
}
