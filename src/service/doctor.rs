//! `doctor`: what an operator wants to know before trusting the bot with a fleet, checked the way
//! the bot itself would go about it. Nothing is written anywhere.

use serde::Serialize;

use super::environment::Repo;
use super::notify_wait::NotifyOptions;
use crate::error::{Error, ErrorKind, Result};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Works, but something is off or cannot be told.
    Warning,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked, e.g. `configuration`, `forge org/app`.
    pub subject: String,
    pub verdict: Verdict,
    pub detail: String,
    /// The error kind of a failed check (its exit code).
    #[serde(skip)]
    pub kind: Option<ErrorKind>,
}

impl Check {
    fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.into(),
            verdict: Verdict::Ok,
            detail: detail.into(),
            kind: None,
        }
    }
    fn warning(subject: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Warning,
            ..Check::ok(subject, detail)
        }
    }
    fn failed(subject: impl Into<String>, e: &Error) -> Check {
        Check {
            verdict: Verdict::Failed,
            kind: Some(e.kind),
            ..Check::ok(subject, e.message.clone())
        }
    }
}

/// What `doctor` looks at besides the GitOps repository.
#[derive(Debug, Clone, Default)]
pub struct Doctor {
    pub repo: Repo,
    pub gitlab_url: Option<String>,
    pub notify: NotifyOptions,
    pub kubeconfig: Option<std::path::PathBuf>,
}

impl Doctor {
    /// Every check, in order: configuration, the push, then per application its repositories,
    /// forge token and resync, then the Receiver and Kubernetes.
    pub fn run(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let (store, config) = match super::environment::open(&self.repo, true) {
            Ok(x) => x,
            Err(e) => return vec![Check::failed("GitOps repository", &e)],
        };
        let apps = match crate::reconcile::per_application(&store, &config) {
            Ok(a) => a,
            Err(e) => return vec![Check::failed("GitOps repository", &e)],
        };
        let branch = crate::reconcile::target_branch(&store, &config);
        out.push(push_check(&store, branch));
        let total = apps.len();
        let resolved = apps.iter().filter(|(_, s)| s.is_ok()).count();
        if resolved == total {
            out.push(Check::ok(
                "configuration",
                format!("resolves for {total} application(s), templates included"),
            ));
        }
        out.extend(strays(&store, &apps));
        let github: Vec<String> = apps
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .filter_map(|s| {
                super::resync::github_repository(&s.settings, self.gitlab_url.as_deref())
            })
            .collect();
        if self.repo.url.is_some() {
            out.extend(self.github_app(store.location(), &github));
        }
        let mut receiver_settings = None;
        for (_, snap) in apps {
            let settings = match snap {
                Ok(s) => s.settings,
                Err(e) => {
                    out.push(Check::failed("configuration", &e));
                    continue;
                }
            };
            let app = settings.application.name.clone();
            out.push(Check::ok(
                format!("application {app}"),
                if settings.application.repositories.is_empty() {
                    "takes events of no repository: set github_repository, gitlab_project or source_url".to_string()
                } else {
                    format!(
                        "takes events of {}",
                        settings.application.repositories.join(", ")
                    )
                },
            ));
            if self.repo.url.is_none() {
                // The demo's application repository is a placeholder: nothing to reach.
                out.push(Check::ok(
                    format!("application {app}: forge"),
                    "not checked: this is the demo GitOps repository, whose application repository is a placeholder; give --repo (your GitOps repository) and doctor checks its forge",
                ));
            } else {
                out.extend(self.forge(&app, &settings));
            }
            receiver_settings.get_or_insert(settings);
        }
        let layout = receiver_settings.as_ref().map(|s| s.layout.clone());
        if let Some(settings) = receiver_settings {
            out.push(self.receiver(&settings));
        }
        // What each GitHub credential has left of its rate limit, as read above.
        if let Ok(budgets) = crate::forge::github::client::budgets().lock() {
            for (name, b) in budgets.iter() {
                out.push(Check::ok(
                    format!("GitHub budget ({name})"),
                    format!("{} of {} requests left this hour", b.remaining, b.limit),
                ));
            }
        }
        match layout.filter(|l| l.configured) {
            Some(l) => out.extend(l.clusters.iter().map(|c| {
                self.kubernetes(
                    &format!("Kubernetes (cluster {})", c.name),
                    c.kubeconfig_context.as_deref(),
                )
            })),
            None => out.push(self.kubernetes("Kubernetes", None)),
        }
        out
    }

    /// The application's forge: the token answers, may write, and resync can run.
    fn forge(&self, app: &str, settings: &crate::settings::Settings) -> Vec<Check> {
        let gitlab_url = self.gitlab_url.as_deref();
        let subject = format!("application {app}: forge");
        let (forge, repository) = match super::resync::listing(settings, gitlab_url) {
            Ok(Some(x)) => x,
            Ok(None) => {
                let why = super::resync::resync_gap(settings, gitlab_url)
                    .unwrap_or_else(|| "no forge repository is known".into());
                return vec![Check::warning(
                    format!("application {app}: resync"),
                    format!("off: {why}"),
                )];
            }
            Err(e) => return vec![Check::failed(subject, &e)],
        };
        let mut out = Vec::new();
        if let Err(e) = forge.ping() {
            out.push(Check::failed(subject, &e));
            return out;
        }
        out.push(match forge.token_can_write() {
            Ok(Some(true)) => Check::ok(
                subject,
                format!("{repository}: the token answers and may write (comments, statuses)"),
            ),
            Ok(Some(false)) => Check::warning(
                subject,
                format!("{repository}: the token answers but may not write: replies and statuses will fail (GitHub: issues, pull requests and statuses write; GitLab: Developer)"),
            ),
            Ok(None) => Check::warning(
                subject,
                format!("{repository}: the token answers; the forge does not say what it may write (a GitHub App token needs issues, pull requests and statuses write)"),
            ),
            Err(e) => Check::failed(subject, &e),
        });
        out.push(match forge.open_changes() {
            Ok(list) => Check::ok(
                format!("application {app}: resync"),
                format!("on: {} open pull/merge requests listed", list.len()),
            ),
            Err(e) => Check::failed(format!("application {app}: resync"), &e),
        });
        out
    }

    /// With GitHub App credentials: the App answers (its slug and id), and for the GitOps
    /// repository (on the GitHub server) and each application's GitHub repository, the
    /// installation that holds it and what it lacks of what the bot needs.
    fn github_app(&self, gitops: &crate::git::Location, repositories: &[String]) -> Vec<Check> {
        use super::github_app::{holding, APPLICATION_PERMISSIONS, GITOPS_PERMISSIONS};
        let api = crate::forge::github::api_from_env();
        let app = match super::forges::github_app(&api) {
            Ok(Some(app)) => app,
            Ok(None) => return Vec::new(),
            Err(e) => return vec![Check::failed("GitHub App", &e)],
        };
        let slug = crate::forge::github::client::block_on("read the App", app.slug());
        let mut out = vec![match slug {
            Ok(slug) => Check::ok(
                "GitHub App",
                format!("{slug} (App ID {}), replying as {slug}[bot]", app.id),
            ),
            Err(e) => return vec![Check::failed("GitHub App", &e)],
        }];
        let gitops = match gitops {
            crate::git::Location::Remote(url) => super::forges::github_repository_at_server(url),
            crate::git::Location::Local(_) => None,
        };
        let wanted = gitops
            .iter()
            .map(|r| (r, GITOPS_PERMISSIONS, "the GitOps repository"))
            .chain(
                repositories
                    .iter()
                    .map(|r| (r, APPLICATION_PERMISSIONS, "an application repository")),
            );
        for (repository, needed, role) in wanted {
            let subject = format!("GitHub App on {repository}");
            out.push(match holding(&app, repository, needed) {
                Ok(h) if h.missing.is_empty() => Check::ok(
                    subject,
                    format!("installation {} holds {role}, with the permissions the bot needs", h.installation),
                ),
                Ok(h) => Check::warning(
                    subject,
                    format!(
                        "installation {} holds {role} but lacks {}: grant them in the App's settings (Permissions), then accept them on the installation",
                        h.installation,
                        h.missing.join(", ")
                    ),
                ),
                Err(e) => Check::failed(subject, &e),
            });
        }
        out
    }

    fn receiver(&self, settings: &crate::settings::Settings) -> Check {
        match self.notify.receiver(settings) {
            Ok(None) => Check::warning(
                "Flux receiver",
                "not configured: Flux applies each commit at its interval",
            ),
            Ok(Some(r)) => match r.probe() {
                Ok(status) => Check::ok(
                    "Flux receiver",
                    format!("its server answers (HTTP {status} at its root)"),
                ),
                Err(e) => Check::failed("Flux receiver", &e),
            },
            Err(e) => Check::failed("Flux receiver", &e),
        }
    }

    /// A cluster's API server answers, through `context` (none: the current one).
    fn kubernetes(&self, subject: &str, context: Option<&str>) -> Check {
        match crate::flux::kube_wait::KubeWaiter::connect(self.kubeconfig.as_deref(), context) {
            Ok(None) => Check::warning(
                subject,
                "no credentials: --wait reads Flux's commit statuses from the forge instead",
            ),
            Ok(Some(k)) => match k.server_version() {
                Ok(v) => Check::ok(subject, format!("the API server answers ({v})")),
                Err(e) => Check::failed(subject, &e),
            },
            Err(e) => Check::failed(subject, &e),
        }
    }
}

/// The exit status of a doctor run: the kind of the first failed check.
pub fn outcome(checks: &[Check]) -> Result<()> {
    match checks.iter().find(|c| c.verdict == Verdict::Failed) {
        Some(c) => Err(Error {
            reported: true,
            ..Error::new(
                c.kind.unwrap_or(ErrorKind::Remote),
                format!("{}: {}", c.subject, c.detail),
            )
        }),
        None => Ok(()),
    }
}

/// The GitOps repository's target branch can be pushed to (a local one: exists).
fn push_check(store: &crate::git::Store, branch: crate::error::Result<String>) -> Check {
    match branch.and_then(|b| store.check_push(&b).map(|()| b)) {
        Ok(b) => Check::ok(
            "GitOps repository",
            match store.location() {
                crate::git::Location::Local(_) => format!(
                    "{} is a local repository with branch {b}",
                    store.location().display()
                ),
                crate::git::Location::Remote(_) => format!(
                    "{} can be pushed to ({b}): the server accepted a push connection with these credentials",
                    store.location().display()
                ),
            },
        ),
        Err(e) => Check::failed("GitOps repository", &e),
    }
}

/// Sync files flux-ephemeral rendered in a directory no configured cluster names: Flux still
/// applies them, but list, cleanup, the queue's caps and the page no longer see them.
fn strays(
    store: &crate::git::Store,
    apps: &[(
        crate::reconcile::ConfigSource,
        Result<crate::reconcile::Snapshot>,
    )],
) -> Option<Check> {
    let snaps: Vec<_> = apps.iter().filter_map(|(_, s)| s.as_ref().ok()).collect();
    let tip = snaps.first()?.tip;
    let dirs = match store.sync_file_dirs(tip) {
        Ok(d) => d,
        Err(e) => return Some(Check::failed("sync files", &e)),
    };
    let layouts: Vec<_> = snaps.iter().map(|s| &s.settings.layout).collect();
    let strays = crate::clusters::layout::strays(&dirs, &layouts);
    if strays.is_empty() {
        return None;
    }
    let list: Vec<String> = strays
        .iter()
        .map(|(d, n)| format!("{n} in {}", if d.is_empty() { "/" } else { d }))
        .collect();
    Some(Check::warning(
        "sync files",
        format!(
            "flux-ephemeral's sync files lie where no configured cluster is ({}): Flux still applies them, but flux-ephemeral no longer sees them (list, cleanup, caps, the page). Name the directory in `clusters` again and move or destroy them, or delete them",
            list.join("; ")
        ),
    ))
}
