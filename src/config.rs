//! `.flux-ephemeral.yaml` as data: the file's keys, how files and flags overlay, and the parsing
//! of values (times to live, directories). Resolving them into what a run needs is the
//! `settings` module.
//!
//! Precedence: command-line flags (and their environment variables) > the file > defaults.
//! The file is `--config FILE`, else `.flux-ephemeral.yaml` at the root of the target branch.

use std::path::{Component, Path};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

pub const FILE_NAME: &str = ".flux-ephemeral.yaml";

/// The JSON Schema of `.flux-ephemeral.yaml`, from these types (`flux-ephemeral config-schema`;
/// committed as `schema/flux-ephemeral.schema.json` for editors).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FileConfig)).unwrap_or_default()
}
pub const DEFAULT_INSTANCES_DIR: &str = "overlays/ephemeral-instances";

/// The configuration file. Every key is optional; an unknown key is an error naming it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "flux-ephemeral configuration (.flux-ephemeral.yaml)")]
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
    /// The GitHub Deployments environment of a preview [default: preview/{{ key }}]
    /// (`{{ key }}`: the slug, or `<application>-<slug>` when listed; `{{ slug }}`, `{{ name }}`).
    pub github_environment: Option<String>,
    /// The GitLab environment of a ChatOps preview [default: review/{{ key }}].
    pub gitlab_environment: Option<String>,
    /// Deploy a commit only when these checks passed (GitHub check runs and commit statuses
    /// by name; `*`: every check the commit has).
    pub require_checks: Option<Vec<String>>,
    /// GitLab: deploy a commit only when its newest pipeline succeeded.
    pub require_pipeline: Option<bool>,
    /// Draft pull/merge requests get no preview [default: true].
    pub skip_drafts: Option<bool>,
    /// Authors whose changes get no automatic preview [default: dependabot[bot], renovate[bot]].
    pub ignore_authors: Option<Vec<String>>,
    /// Labels that block previews (and remove the one there is).
    pub exclude_labels: Option<Vec<String>>,
    /// Glob patterns: a change touching none of these files gets no automatic preview.
    pub paths: Option<Vec<String>>,
    /// The extend command word [default: /extend-ephemeral].
    pub extend_command: Option<String>,
    /// The sleep command word [default: /sleep-ephemeral].
    pub sleep_command: Option<String>,
    /// The wake command word [default: /wake-ephemeral].
    pub wake_command: Option<String>,
    /// Warn on the pull/merge request this long before a preview expires [default: 24h, never
    /// more than half its time to live].
    pub warn_before: Option<String>,
    /// Put a preview to sleep (workloads scaled to zero) after this long without activity
    /// [default: never].
    pub sleep_after: Option<String>,
    /// Office hours, e.g. `Mon-Fri 07:00-20:00 Europe/Berlin`: outside them every preview sleeps.
    pub awake_hours: Option<String>,
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
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
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
    pub warn_before: Option<String>,
    pub sleep_after: Option<String>,
    pub awake_hours: Option<String>,
    pub github_environment: Option<String>,
    pub gitlab_environment: Option<String>,
    pub require_checks: Option<Vec<String>>,
    pub require_pipeline: Option<bool>,
    pub skip_drafts: Option<bool>,
    pub ignore_authors: Option<Vec<String>>,
    pub exclude_labels: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
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
            warn_before: a.warn_before,
            sleep_after: a.sleep_after,
            awake_hours: a.awake_hours,
            github_environment: a.github_environment,
            gitlab_environment: a.gitlab_environment,
            require_checks: a.require_checks,
            require_pipeline: a.require_pipeline,
            skip_drafts: a.skip_drafts,
            ignore_authors: a.ignore_authors,
            exclude_labels: a.exclude_labels,
            paths: a.paths,
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

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
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
            github_environment,
            gitlab_environment,
            require_checks,
            require_pipeline,
            skip_drafts,
            ignore_authors,
            exclude_labels,
            paths,
            extend_command,
            sleep_command,
            wake_command,
            warn_before,
            sleep_after,
            awake_hours,
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

/// The longest time to live unless `max_ttl` says otherwise: 30 days.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Nothing is kept longer than this, whatever is configured: 100 years (a time that still adds
/// to any clock without overflowing).
const CEILING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The shortest time to live (and extension) accepted.
pub const MIN_TTL: Duration = Duration::from_secs(60);

/// `72h`, `3d`, `90m`: a time to live, at least a minute, at most 100 years.
pub fn parse_ttl(s: &str) -> Result<Duration> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| Error::config(format!("ttl {s:?} is not a duration like 72h or 3d: {e}")))?;
    if d.is_zero() {
        return Err(Error::config(format!(
            "ttl {s:?} is zero: an environment would be removed at once; use a duration like 72h or 3d, or leave ttl out"
        )));
    }
    // The lifecycle runs every few minutes: less than a minute would remove an environment at
    // the next pass, before anyone could look at it.
    if d < MIN_TTL {
        return Err(Error::config(format!(
            "ttl {s:?} is shorter than a minute, the least flux-ephemeral keeps an environment; use a duration like 30m, 72h or 3d"
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
        for short in ["1ns", "0.5s", "59s", "1s"] {
            let e = parse_ttl(short).unwrap_err();
            assert!(e.to_string().contains("shorter than a minute"), "{e}");
        }
        assert_eq!(parse_ttl("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_ttl("500000000000y").is_err());
        assert!(parse_ttl("99999999999999999999999y").is_err());
        let max = DEFAULT_MAX_TTL;
        assert_eq!(bounded_ttl("30d", max).unwrap(), max);
        let e = bounded_ttl("31d", max).unwrap_err();
        assert!(e.message.contains("maximum of 30days"), "{}", e.message);
    }
}
