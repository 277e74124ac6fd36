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

/// Declares every key of `.flux-ephemeral.yaml` once: the file's type ([`FileConfig`]), the
/// per-application override ([`AppConfig`], for the keys an application may override), how an
/// application's keys lie over the top-level ones ([`AppConfig::settings`]) and how flags lie over
/// a file ([`FileConfig::overlay`]). A new key is one line in one of the two lists below.
macro_rules! config_keys {
    (
        overridable { $( $(#[$om:meta])* $o:ident : $ot:ty, )* }
        top_only { $( $(#[$tm:meta])* $t:ident : $tt:ty, )* }
    ) => {
        /// The configuration file. Every key is optional; an unknown key is an error naming it.
        #[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(title = "flux-ephemeral configuration (.flux-ephemeral.yaml)")]
        pub struct FileConfig {
            $( $(#[$om])* pub $o: Option<$ot>, )*
            $( $(#[$tm])* pub $t: Option<$tt>, )*
        }

        /// One application of the `applications` list: its name (the prefix of its object names,
        /// namespaces and sync files), its forge repository, and the settings it overrides.
        #[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct AppConfig {
            pub name: String,
            /// The clusters this application's previews may go to, by name [default: all of
            /// them, in the configured order].
            pub clusters: Option<Vec<String>>,
            $( $(#[$om])* pub $o: Option<$ot>, )*
        }

        impl AppConfig {
            /// Its overrides, as a configuration to lay over the top-level keys.
            pub fn settings(&self) -> FileConfig {
                let a = self.clone();
                FileConfig { $( $o: a.$o, )* ..FileConfig::default() }
            }
        }

        impl FileConfig {
            /// Values from `over` win over values from `self`.
            pub fn overlay(self, over: FileConfig) -> FileConfig {
                FileConfig {
                    $( $o: over.$o.or(self.$o), )*
                    $( $t: over.$t.or(self.$t), )*
                }
            }
        }
    };
}

config_keys! {
    overridable {
        source_url: String,
        path: String,
        /// `kustomization`, `helm`, or the path of a Tera template in the GitOps repository.
        template: String,
        flux_namespace: String,
        interval: String,
        secret_ref: String,
        service_account: String,
        preview_url: String,
        chart: String,
        max_environments: usize,
        ttl: String,
        /// The longest time to live anyone may ask for (`ttl`, `--ttl`, `ttl=` in a comment)
        /// [default: 30d].
        max_ttl: String,
        /// Regex an environment name must match to become a preview [default: review/.*].
        include_environment: String,
        /// Regex of environment names never to turn into previews.
        exclude_environment: String,
        /// Deploy pull/merge requests from forks (the GitRepository then fetches the fork).
        allow_forks: bool,
        /// `owner/name` of the GitHub repository whose pull requests the environments belong to.
        github_repository: String,
        /// GitLab project (id or `group/name`) whose merge requests and environments to check.
        gitlab_project: String,
        /// `owner/name` of the Gitea (or Forgejo) repository whose pull requests the
        /// environments belong to (on GITEA_URL).
        gitea_repository: String,
        /// Adding this label to a pull/merge request deploys it, removing it destroys.
        deploy_label: String,
        /// Users who may deploy besides those with write access.
        allowed_users: Vec<String>,
        /// Only `allowed_users` may deploy, whatever their access.
        allowlist_only: bool,
        /// The GitHub Deployments environment of a preview [default: preview/{{ key }}]
        /// (`{{ key }}`: the slug, or `<application>-<slug>` when listed; `{{ slug }}`, `{{ name }}`).
        github_environment: String,
        /// The GitLab environment of a ChatOps preview [default: review/{{ key }}].
        gitlab_environment: String,
        /// Deploy a commit only when these checks passed (GitHub check runs and commit statuses
        /// by name; `*`: every check the commit has).
        require_checks: Vec<String>,
        /// GitLab: deploy a commit only when its newest pipeline succeeded.
        require_pipeline: bool,
        /// Draft pull/merge requests get no preview [default: true].
        skip_drafts: bool,
        /// Authors whose changes get no automatic preview [default: dependabot[bot], renovate[bot]].
        ignore_authors: Vec<String>,
        /// Labels that block previews (and remove the one there is).
        exclude_labels: Vec<String>,
        /// Glob patterns: a change touching none of these files gets no automatic preview.
        paths: Vec<String>,
        /// Warn on the pull/merge request this long before a preview expires [default: 24h, never
        /// more than half its time to live].
        warn_before: String,
        /// Put a preview to sleep (workloads scaled to zero) after this long without activity
        /// [default: never].
        sleep_after: String,
        /// Office hours, e.g. `Mon-Fri 07:00-20:00 Europe/Berlin`: outside them every preview sleeps.
        awake_hours: String,
        /// Where a preview's manifests come from: `git` (a GitRepository on the branch or commit,
        /// the default) or `oci` (an artifact pushed by the deploy, pinned by digest).
        source: String,
        /// `oci://HOST[:PORT]/REPOSITORY` the artifacts are pushed to (with `source: oci`).
        artifact_url: String,
        /// Requests and limits of each preview's namespace, rendered as a ResourceQuota and a
        /// LimitRange next to its Flux objects.
        quota: crate::clusters::QuotaConfig,
    }
    top_only {
        /// Prefix of object names and namespaces (`<app>-<slug>`).
        app: String,
        target_branch: String,
        instances_dir: String,
        commit_author: CommitAuthor,
        /// The deploy command word [default: /deploy-ephemeral].
        deploy_command: String,
        /// The destroy command word [default: /destroy-ephemeral].
        destroy_command: String,
        /// The extend command word [default: /extend-ephemeral].
        extend_command: String,
        /// The sleep command word [default: /sleep-ephemeral].
        sleep_command: String,
        /// The wake command word [default: /wake-ephemeral].
        wake_command: String,
        /// The applications this GitOps repository takes previews for; without a list, one.
        applications: Vec<AppConfig>,
        /// The Flux Receiver to notify after a push: its full webhook URL, or a base URL with
        /// `receiver_name` (and `receiver_namespace`).
        receiver_url: String,
        receiver_name: String,
        /// [default: flux-system]
        receiver_namespace: String,
        /// `generic`, `generic-hmac`, `github` or `gitlab` [default: generic].
        receiver_type: String,
        /// The clusters previews go to, each with the directory its Flux watches; a new preview
        /// goes to the first with room, in this order. Without it: one cluster, `instances_dir`.
        clusters: Vec<crate::clusters::ClusterConfig>,
        /// At most this many previews per author, across clusters; more wait in the queue.
        max_previews_per_author: usize,
        /// Sleeping previews count against `max_previews` and `max_previews_per_author`
        /// [default: true]; `false`: they run no pods, so they take no room.
        count_sleeping: bool,
        /// The file of the GitOps repository that holds the queue
        /// [default: .flux-ephemeral-queue.yaml].
        queue_file: String,
    }
}

impl AppConfig {
    /// Its repository as configured, with the forge's name.
    pub fn repository(&self) -> Option<(&'static str, String)> {
        match (
            &self.github_repository,
            &self.gitlab_project,
            &self.gitea_repository,
        ) {
            (Some(r), _, _) => Some(("github", r.clone())),
            (None, Some(p), _) => Some(("gitlab", p.clone())),
            (None, None, Some(r)) => Some(("gitea", r.clone())),
            (None, None, None) => None,
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
