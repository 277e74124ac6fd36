//! What a run needs, resolved from the configuration: defaults < `.flux-ephemeral.yaml` < the
//! application's overrides < flags, with every value checked (templates, URLs, durations, names).

use std::time::Duration;

use crate::config::{
    bounded_ttl, parse_ttl, AppConfig, CommitAuthor, FileConfig, DEFAULT_INSTANCES_DIR,
    DEFAULT_MAX_TTL,
};
use crate::error::{Error, Result};
use crate::render::{RenderSettings, Renderer};

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub render: RenderSettings,
    /// Where sync files are read and written: [`Layout::root`](crate::clusters::Layout), the
    /// instances directory itself with one cluster.
    pub instances_dir: String,
    /// The clusters, the caps and the queue.
    pub layout: crate::clusters::Layout,
    pub template: String,
    pub source_url: Option<String>,
    pub author: CommitAuthor,
    pub max_environments: Option<usize>,
    pub ttl: Option<Duration>,
    /// The longest time to live that may be asked for.
    pub max_ttl: Duration,
    /// Warning, idle sleep and office hours of this application.
    pub lifecycle: crate::lifecycle::Policy,
    /// The GitHub Deployments environment name, with `{{ slug }}` and `{{ name }}` to replace.
    pub github_environment: String,
    /// The GitLab environment of a ChatOps preview, likewise [default: review/{{ slug }}].
    pub gitlab_environment: String,
    /// Deploy only when these checks passed (`*`: all of the commit's).
    pub require_checks: Vec<String>,
    pub filter: crate::environment_filter::EnvFilter,
    pub allow_forks: bool,
    pub github_repository: Option<String>,
    pub gitlab_project: Option<String>,
    pub gitea_repository: Option<String>,
    pub chat: crate::chatops::ChatSettings,
    pub commands: crate::command::Prefixes,
    /// The application this run is for.
    pub application: crate::apps::Application,
    /// `git` or `oci`.
    pub source: SourceKind,
    pub artifact_url: Option<crate::artifact_url::ArtifactUrl>,
    /// The Flux Receiver to notify after a push, when configured.
    pub receiver: Option<ReceiverSettings>,
}

/// Where and how to notify Flux (the token comes from FLUX_RECEIVER_TOKEN or a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverSettings {
    pub url: String,
    pub name: Option<String>,
    pub namespace: String,
    pub kind: crate::receiver_type::ReceiverType,
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
            .map(crate::artifact_url::ArtifactUrl::parse)
            .transpose()
            .map_err(|e| Error::config(e.message))?;
        let receiver = receiver_of(&c)?;
        // An artifact holds the manifests at its root, unless a path says otherwise.
        let artifact_path = c.path.clone().unwrap_or(d.artifact_path.clone());
        let (layout, quota) = clusters_of(&c, &application)?;
        let instances_dir = layout.root.clone();
        let max_ttl = match c.max_ttl.as_deref() {
            Some(m) => parse_ttl(m)?,
            None => DEFAULT_MAX_TTL,
        };
        let ttl = c
            .ttl
            .as_deref()
            .map(|t| bounded_ttl(t, max_ttl))
            .transpose()?;
        let filters = filters_of(&c)?;
        let lifecycle = lifecycle_of(&c, ttl, max_ttl)?;
        let require_checks = require_checks_of(&c)?;
        let commands = commands_of(&c);
        Ok(Settings {
            require_checks,
            lifecycle,
            github_environment: c
                .github_environment
                .clone()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| "preview/{{ key }}".into()),
            gitlab_environment: c
                .gitlab_environment
                .clone()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| "review/{{ key }}".into()),
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
                ttl,
                quota,
            },
            instances_dir,
            layout,
            template: c.template.unwrap_or_else(|| "kustomization".into()),
            source_url: c.source_url,
            author: c.commit_author.unwrap_or_default(),
            max_environments: c.max_environments,
            ttl,
            max_ttl,
            filter: crate::environment_filter::EnvFilter::new(
                c.include_environment.as_deref(),
                c.exclude_environment.as_deref(),
            )?,
            allow_forks: c.allow_forks.unwrap_or(false),
            github_repository: c.github_repository,
            gitlab_project: c.gitlab_project,
            gitea_repository: c.gitea_repository,
            chat: crate::chatops::ChatSettings {
                deploy_label: c.deploy_label.filter(|l| !l.is_empty()),
                allowed_users: c.allowed_users.unwrap_or_default(),
                allowlist_only: c.allowlist_only.unwrap_or(false),
                filters,
            },
            commands,
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

    /// The environment of the preview `slug`: GitHub Deployments' (`github_environment`), or
    /// GitLab's (`gitlab_environment`).
    pub fn deployment_environment(&self, slug: &str, gitlab: bool) -> String {
        let name = self.render.object_name(slug);
        // `<application>-<slug>` for a listed application (as its sync file is named), so two
        // applications of one repository never share an environment; else the slug.
        let key = self
            .application
            .key(slug)
            .unwrap_or_else(|| slug.to_string());
        let mut e = if gitlab {
            self.gitlab_environment.clone()
        } else {
            self.github_environment.clone()
        };
        for (k, v) in [
            ("slug", slug),
            ("name", name.as_str()),
            ("key", key.as_str()),
        ] {
            e = e
                .replace(&format!("{{{{ {k} }}}}"), v)
                .replace(&format!("{{{{{k}}}}}"), v);
        }
        e
    }

    pub fn slug_budget(&self) -> usize {
        crate::slug::budget_for_prefix(&self.render.prefix)
    }
}

/// The clusters, caps and queue, and the per-preview quota.
fn clusters_of(
    c: &FileConfig,
    application: &crate::apps::Application,
) -> Result<(
    crate::clusters::Layout,
    Option<crate::clusters::quota::Quota>,
)> {
    let layout = crate::clusters::Layout::resolve(
        &crate::clusters::LayoutInput {
            instances_dir: c.instances_dir.as_deref(),
            clusters: c.clusters.as_deref(),
            max_per_author: c.max_previews_per_author,
            count_sleeping: c.count_sleeping,
            queue_file: c.queue_file.as_deref(),
            allowed: application.clusters.as_deref(),
        },
        DEFAULT_INSTANCES_DIR,
    )?;
    let quota = match &c.quota {
        Some(q) => crate::clusters::quota::Quota::resolve(q)?,
        None => None,
    };
    Ok((layout, quota))
}

/// The Flux Receiver to notify, when `receiver_url` is set.
fn receiver_of(c: &FileConfig) -> Result<Option<ReceiverSettings>> {
    let Some(url) = c.receiver_url.clone().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(ReceiverSettings {
        url,
        name: c.receiver_name.clone(),
        namespace: c
            .receiver_namespace
            .clone()
            .unwrap_or_else(|| "flux-system".into()),
        kind: crate::receiver_type::ReceiverType::parse(
            c.receiver_type.as_deref().unwrap_or("generic"),
        )?,
    }))
}

/// Which changes get no automatic preview (drafts, bots, labels, paths).
fn filters_of(c: &FileConfig) -> Result<crate::change_filter::ChangeFilters> {
    let d = crate::change_filter::ChangeFilters::default();
    let f = crate::change_filter::ChangeFilters {
        skip_drafts: c.skip_drafts.unwrap_or(d.skip_drafts),
        ignore_authors: c.ignore_authors.clone().unwrap_or(d.ignore_authors),
        exclude_labels: c.exclude_labels.clone().unwrap_or_default(),
        paths: c.paths.clone().unwrap_or_default(),
    };
    crate::change_filter::compile(&f.paths)
        .map_err(|e| Error::config(format!("paths in .flux-ephemeral.yaml: {e}")))?;
    Ok(f)
}

/// A duration setting, named in its error.
fn key_duration(key: &str, v: &Option<String>) -> Result<Option<Duration>> {
    v.as_deref()
        .map(|t| {
            parse_ttl(t).map_err(|_| {
                Error::config(format!(
                    "{key} {t:?} in .flux-ephemeral.yaml is not a positive duration like 2h or 1d"
                ))
            })
        })
        .transpose()
}

/// A preview's life: time to live, warning, idle sleep, office hours.
fn lifecycle_of(
    c: &FileConfig,
    ttl: Option<Duration>,
    max_ttl: Duration,
) -> Result<crate::lifecycle::Policy> {
    Ok(crate::lifecycle::Policy {
        ttl,
        max_ttl,
        warn_before: key_duration("warn_before", &c.warn_before)?
            .unwrap_or(crate::lifecycle::DEFAULT_WARN_BEFORE),
        sleep_after: key_duration("sleep_after", &c.sleep_after)?,
        awake_hours: c
            .awake_hours
            .as_deref()
            .filter(|h| !h.trim().is_empty())
            .map(|h| {
                crate::awake_hours::AwakeHours::parse(h)
                    .map_err(|e| Error::config(format!("awake_hours in .flux-ephemeral.yaml: {e}")))
            })
            .transpose()?,
    })
}

/// The checks a deploy waits for (GitLab's head pipeline is the check named `pipeline`).
fn require_checks_of(c: &FileConfig) -> Result<Vec<String>> {
    let mut require_checks: Vec<String> = c.require_checks.clone().unwrap_or_default();
    if c.require_pipeline == Some(true) && !require_checks.iter().any(|n| n == "pipeline") {
        require_checks.push("pipeline".into());
    }
    if let Some(bad) = require_checks
        .iter()
        .find(|n| n.trim().is_empty() || n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(Error::config(format!(
            "require_checks in .flux-ephemeral.yaml: {bad:?} is not a check name (or `*` for all)"
        )));
    }
    Ok(require_checks)
}

/// The command words.
fn commands_of(c: &FileConfig) -> crate::command::Prefixes {
    let d = crate::command::Prefixes::default();
    crate::command::Prefixes {
        deploy: c.deploy_command.clone().unwrap_or(d.deploy),
        destroy: c.destroy_command.clone().unwrap_or(d.destroy),
        extend: c.extend_command.clone().unwrap_or(d.extend),
        sleep: c.sleep_command.clone().unwrap_or(d.sleep),
        wake: c.wake_command.clone().unwrap_or(d.wake),
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
        let named = [
            a.github_repository.is_some(),
            a.gitlab_project.is_some(),
            a.gitea_repository.is_some(),
        ];
        if named.iter().filter(|n| **n).count() != 1 {
            return Err(Error::config(format!(
                "application {:?} needs exactly one of github_repository, gitlab_project or gitea_repository",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_applications_of_one_repository_never_share_an_environment() {
        let file = FileConfig::parse(
            "applications:\n\
             - {name: web, github_repository: org/app}\n\
             - {name: docs, github_repository: org/app}\n",
            "test",
        )
        .unwrap();
        let of = |app: &str| {
            let origin = crate::apps::Origin {
                app: Some(app.into()),
                ..Default::default()
            };
            Settings::resolve_for(file.clone(), FileConfig::default(), &origin).unwrap()
        };
        let (web, docs) = (of("web"), of("docs"));
        for gitlab in [false, true] {
            let (w, d) = (
                web.deployment_environment("feature-x-1234567890", gitlab),
                docs.deployment_environment("feature-x-1234567890", gitlab),
            );
            assert_ne!(w, d);
            assert!(w.ends_with("/web-feature-x-1234567890"), "{w}");
        }
        // Without a list, the name is what it always was.
        let one = Settings::resolve(FileConfig::default()).unwrap();
        assert_eq!(one.deployment_environment("s", false), "preview/s");
        assert_eq!(one.deployment_environment("s", true), "review/s");
    }

    #[test]
    fn ttl_is_bounded_by_max_ttl() {
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

    #[test]
    fn lifecycle_settings_per_application_and_bad_values_name_their_key() {
        let file = FileConfig::parse(
            "ttl: 72h\nwarn_before: 12h\nsleep_after: 4h\n\
             applications:\n\
             - {name: web, github_repository: org/web, sleep_after: 30m, awake_hours: Mon-Fri 08:00-18:00 Europe/Berlin}\n\
             - {name: api, github_repository: org/api, ttl: 24h, warn_before: 2h}\n",
            "test",
        )
        .unwrap();
        let of = |app: &str| {
            let origin = crate::apps::Origin {
                app: Some(app.into()),
                ..Default::default()
            };
            Settings::resolve_for(file.clone(), FileConfig::default(), &origin).unwrap()
        };
        let web = of("web").lifecycle;
        assert_eq!(web.sleep_after, Some(Duration::from_secs(1800)));
        assert_eq!(web.warn_before, Duration::from_secs(12 * 3600));
        assert!(web
            .awake_hours
            .is_some_and(|h| h.as_str() == "Mon-Fri 08:00-18:00 Europe/Berlin"));
        let api = of("api").lifecycle;
        assert_eq!(api.ttl, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(api.warn_before, Duration::from_secs(2 * 3600));
        assert_eq!(api.sleep_after, Some(Duration::from_secs(4 * 3600)));
        assert!(api.awake_hours.is_none());
        for (key, bad) in [
            ("sleep_after", "sleep_after: soon"),
            ("warn_before", "warn_before: 0s"),
            ("awake_hours", "awake_hours: Mon-Fri 08:00-18:00 Moon/Base"),
        ] {
            let e = Settings::resolve(FileConfig::parse(bad, "test").unwrap()).unwrap_err();
            assert!(e.message.contains(key), "{e:?}");
        }
    }
}
