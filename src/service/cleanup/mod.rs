//! Scheduled cleanup: every stale environment (closed change, stopped GitLab environment, time
//! to live run out) removed in one commit, decided per application with its own listing.

mod follow_up;

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde_json::json;

use super::environment::{self as ops, Repo};
use super::notify_wait::NotifyOptions;
use crate::apps::Origin;
use crate::cleanup::{guard, stale, ForgeState, Reason, Stale};
use crate::error::{Error, Result};
use crate::events::RepoRef;
use crate::forge::github::GitHubChanges;
use crate::forge::gitlab::{Environment, GitLabChanges};
use crate::forge::ChangeForge;
use crate::model::{EnvRecord, Owner};
use crate::output::Format;
use crate::overlay::records;
use crate::plan::{Intent, PlanOptions, Removal};
use crate::reconcile::{first_snapshot, Report, RunOptions, Snapshot};

/// A cleanup run: which repositories' listings decide, how careful it is, and what it does after
/// the commit.
#[derive(Debug, Clone)]
pub struct Cleanup {
    pub repo: Repo,
    /// GitHub repository (owner/name) whose pull requests decide (else the configuration's).
    pub github_repo: Option<String>,
    pub github_api_url: String,
    /// GitLab project (id or group/name) whose merge requests and environments decide.
    pub gitlab_project: Option<String>,
    pub gitlab_url: Option<String>,
    /// Refuse to delete more than this many at once (without `force`).
    pub max_deletions: usize,
    pub force: bool,
    pub stop_gitlab_environments: bool,
    pub delete_stopped_review_apps: bool,
    pub no_comment: bool,
    pub dry_run: bool,
    pub prune_artifacts: bool,
    /// The repository the tool pushed artifacts to (else the configuration's `artifact_url`).
    pub artifact_url: Option<String>,
    /// The registry host that is plain HTTP (loopback tests).
    pub insecure_registry: Option<String>,
    pub notify: NotifyOptions,
    pub all_applications: bool,
}

enum Forge {
    None,
    GitHub(GitHubChanges),
    GitLab(GitLabChanges),
    Gitea(Box<crate::forge::gitea::GiteaChanges>, String),
}

impl Forge {
    fn name(&self) -> &'static str {
        match self {
            Forge::None => "none",
            Forge::GitHub(_) => "github",
            Forge::GitLab(_) => "gitlab",
            Forge::Gitea(..) => "gitea",
        }
    }

    /// The repository whose listing decides, as recorded on environments.
    fn repository(&self) -> Option<String> {
        match self {
            Forge::None => None,
            Forge::GitHub(gh) => Some(gh.github.full_name()),
            Forge::GitLab(gl) => Some(gl.project.clone()),
            Forge::Gitea(_, repo) => Some(repo.clone()),
        }
    }

    fn replies(&self) -> Option<&dyn ChangeForge> {
        match self {
            Forge::None => None,
            Forge::GitHub(gh) => Some(gh),
            Forge::GitLab(gl) => Some(gl),
            Forge::Gitea(gt, _) => Some(gt.as_ref()),
        }
    }
}

/// What happened after the commit: replies are best effort (warnings), GitLab clean-up that was
/// asked for and failed is a failure (non-zero exit).
#[derive(Default)]
struct Tally {
    /// Flux's Receiver was notified (`None`: nothing to notify, or none configured).
    notified: Option<bool>,
    comments: usize,
    pruned: usize,
    stopped: usize,
    warnings: Vec<Error>,
    failures: Vec<Error>,
}

impl Cleanup {
    pub fn run(&self, format: Format) -> Result<()> {
        if !self.all_applications {
            return self.run_one(format, None);
        }
        let (store, config) = ops::open(&self.repo, self.dry_run)?;
        let names = crate::reconcile::application_names(&store, &config)?;
        if names.is_empty() {
            return Err(Error::input(
                "--all-applications: .flux-ephemeral.yaml lists no applications",
            ));
        }
        // Each application with its own listing; the first failure is reported after all ran.
        let mut first_error = None;
        for name in names {
            if let Err(e) = self.run_one(format, Some(name.clone())) {
                tracing::error!(application = %name, "{e}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Where this cleanup comes from: `--app`, the repository flags, or the CI job's repository.
    fn origin(&self, app: Option<String>) -> Origin {
        let ci = crate::ci::from_process()
            .ok()
            .flatten()
            .and_then(|c| c.repository);
        let flagged = match (&self.github_repo, &self.gitlab_project) {
            (Some(r), _) => Some(RepoRef {
                forge: crate::events::Forge::GitHub,
                path: r.clone(),
                id: None,
            }),
            (None, Some(p)) => Some(RepoRef {
                forge: crate::events::Forge::GitLab,
                path: p.clone(),
                id: p.parse().ok(),
            }),
            (None, None) => None,
        };
        Origin {
            repository: if app.is_some() {
                None
            } else {
                flagged.or(ci.clone())
            },
            ci_repository: ci,
            app,
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            dry_run: self.dry_run,
            plan: PlanOptions::default(),
            max_attempts: 10,
            requested_by: None,
        }
    }

    fn run_one(&self, format: Format, app: Option<String>) -> Result<()> {
        let (store, mut config) = ops::open(&self.repo, self.dry_run)?;
        config.origin = self.origin(app.clone());
        if let Some(name) = app {
            config.flags.app = Some(name);
        }
        // The repository flags name the repository this cleanup is about.
        config.flags.github_repository = self.github_repo.clone();
        config.flags.gitlab_project = self.gitlab_project.clone();
        // Read the branch once to learn the forge; the same snapshot serves the first attempt.
        let first = first_snapshot(&store, &mut config)?;
        let forge = self.forge(&first.settings, &config.origin)?;
        // Every forge answer first: if any call fails, nothing is deleted.
        let (state, environments) = forge_state(&forge)?;
        let listed_repository = forge.repository();
        let mut swept: (Vec<Stale>, usize) = (Vec::new(), 0);
        let mut lived: Vec<crate::service::lifecycle::Changed> = Vec::new();
        let mut confirmed = crate::service::confirm::Confirmed::default();
        let mut remaining: Vec<EnvRecord> = Vec::new();
        let (warned, warn_failures) = self.warn_first(&first, &forge, &state);
        let mut intents = |snap: &Snapshot| {
            let (found, mine, unrecorded) = self.sweep(
                snap,
                &forge,
                &state,
                &mut confirmed,
                listed_repository.as_deref(),
            )?;
            let now = SystemTime::now();
            let total = mine.len() + unrecorded.len();
            guard(found.len(), total, self.max_deletions, self.force)?;
            let mut intents: Vec<Intent> = found.iter().map(removal).collect();
            intents.extend(left_queue(snap, &state, listed_repository.as_deref()));
            let gone: BTreeSet<&str> = found.iter().map(|s| s.file.as_str()).collect();
            // The lifecycle of those that stay, in the same commit: warn, sleep, wake.
            let staying: Vec<EnvRecord> = mine.iter().chain(&unrecorded).cloned().collect();
            let (life, changed) = crate::service::lifecycle::intents(
                &staying,
                &gone,
                &snap.files,
                &snap.settings,
                now,
                &warned,
            );
            lived = changed;
            intents.extend(life);
            remaining = records(&snap.files)
                .into_iter()
                .filter(|r| !gone.contains(r.file.as_str()))
                .collect();
            swept = (found, total);
            Ok(intents)
        };
        let opts = self.options();
        let settings = first.settings.clone();
        let report = crate::service::clusters::transaction(
            &store,
            &config,
            Some(first),
            &mut intents,
            &opts,
        )?;
        let notified = self.notify.notify(
            &settings,
            &report.target_branch,
            report.commit.as_deref(),
            self.dry_run,
            &report.plan.clusters(),
        );
        let (removed, total) = swept;
        let mut tally = Tally {
            notified,
            ..Tally::default()
        };
        tally.warnings.extend(warn_failures);
        if !self.dry_run && report.commit.is_some() {
            let done = Done {
                removed: &removed,
                remaining: &remaining,
                lived: &lived,
                environments: &environments,
            };
            self.follow_up(&forge, &state, &done, &settings, &mut tally)?;
        }
        print(
            format,
            &report,
            (&removed, &lived),
            total,
            &forge,
            &tally,
            self.dry_run,
        );
        match tally.failures.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Expiry warnings go out before the commit that marks them (one that fails stays due).
    fn warn_first(
        &self,
        first: &Snapshot,
        forge: &Forge,
        state: &ForgeState,
    ) -> (BTreeSet<String>, Vec<Error>) {
        let app = &first.settings.application;
        let scoped: Vec<EnvRecord> = records(&first.files)
            .into_iter()
            .filter(|r| {
                crate::cleanup::in_scope(r, app, &first.renderer.settings().object_name(&r.slug))
            })
            .collect();
        let replies = forge.replies().filter(|_| !self.no_comment);
        crate::service::lifecycle::warn_first(
            &scoped,
            replies,
            state.open.as_ref(),
            &first.settings,
            SystemTime::now(),
        )
    }

    /// The stale environments of this application in `snap`, with its environments recorded
    /// for the listed repository (`mine`) and those of earlier versions that record none.
    fn sweep(
        &self,
        snap: &Snapshot,
        forge: &Forge,
        state: &ForgeState,
        confirmed: &mut crate::service::confirm::Confirmed,
        listed: Option<&str>,
    ) -> Result<(Vec<Stale>, Vec<EnvRecord>, Vec<EnvRecord>)> {
        let app = &snap.settings.application;
        let object_name = |slug: &str| snap.renderer.settings().object_name(slug);
        // Only this application's environments; of those, the listing decides only for the
        // ones recorded for its repository (files of earlier versions record none: with an
        // applications list only their time to live can remove them).
        let (mine, unrecorded): (Vec<EnvRecord>, Vec<EnvRecord>) = records(&snap.files)
            .into_iter()
            .filter(|r| crate::cleanup::in_scope(r, app, &object_name(&r.slug)))
            .filter(|r| match (&r.repository, listed) {
                // A GitLab project given by id cannot be compared with a recorded path: the
                // application's name already scopes those.
                (Some(rec), Some(listed)) => {
                    rec.eq_ignore_ascii_case(listed) || listed.parse::<u64>().is_ok()
                }
                _ => true,
            })
            .partition(|r| r.repository.is_some() || !app.listed);
        let policy = crate::cleanup::TtlPolicy {
            default: snap.settings.ttl,
            max: snap.settings.max_ttl,
        };
        let now = SystemTime::now();
        let mut found = Vec::new();
        for s in stale(&mine, state, now, policy) {
            // Absent from the listing is not closed: the change itself must say so.
            let Reason::Closed { id } = &s.reason else {
                found.push(s);
                continue;
            };
            let forge = forge.replies().ok_or_else(|| Error::internal("no forge"))?;
            if confirmed.closed(forge, id)? {
                found.push(s);
            } else if let Some(r) = mine.iter().find(|r| r.file == s.file) {
                let without_listing = ForgeState {
                    open: None,
                    ..state.clone()
                };
                found.extend(stale(
                    std::slice::from_ref(r),
                    &without_listing,
                    now,
                    policy,
                ));
            }
        }
        found.extend(stale(&unrecorded, &ForgeState::default(), now, policy));
        found.extend(stale(&unrecorded, &ForgeState::default(), now, policy));
        Ok((found, mine, unrecorded))
    }

    /// The forge listing that decides: the flags, else the application's configured repository,
    /// else (in CI) the job's own repository.
    fn forge(&self, settings: &crate::settings::Settings, origin: &Origin) -> Result<Forge> {
        let ci = origin.ci_repository.as_ref();
        let from_ci = |f: crate::events::Forge| {
            ci.filter(|r| r.forge == f)
                .map(|r| r.id.map(|i| i.to_string()).unwrap_or(r.path.clone()))
        };
        let configured = settings.github_repository.is_some()
            || settings.gitlab_project.is_some()
            || settings.gitea_repository.is_some();
        let github = self
            .github_repo
            .clone()
            .or(settings.github_repository.clone())
            .or_else(|| {
                (!configured)
                    .then(|| from_ci(crate::events::Forge::GitHub))
                    .flatten()
            });
        let gitlab = self
            .gitlab_project
            .clone()
            .or(settings.gitlab_project.clone())
            .or_else(|| {
                (!configured)
                    .then(|| from_ci(crate::events::Forge::GitLab))
                    .flatten()
            });
        match (github, gitlab) {
            (Some(_), Some(_)) => Err(Error::input(
                "pass either --github-repo or --gitlab-project, not both",
            )),
            (Some(repo), None) => Ok(Forge::GitHub(super::forges::github_at(
                &self.github_api_url,
                &repo,
            )?)),
            (None, Some(project)) => Ok(Forge::GitLab(super::forges::gitlab(
                self.gitlab_url.as_deref(),
                &project,
            )?)),
            (None, None) => match &settings.gitea_repository {
                Some(repo) => Ok(Forge::Gitea(
                    Box::new(super::forges::gitea(repo)?),
                    repo.clone(),
                )),
                None => Ok(Forge::None),
            },
        }
    }
}

fn print(
    format: Format,
    report: &Report,
    (removed, lived): (&[Stale], &[crate::service::lifecycle::Changed]),
    total: usize,
    forge: &Forge,
    tally: &Tally,
    dry_run: bool,
) {
    let problems: Vec<&Error> = tally.warnings.iter().chain(&tally.failures).collect();
    match format {
        Format::Json => {
            let mut v = json!({
                "action": "cleanup", "forge": forge.name(), "removed": removed, "kept": total - removed.len(),
                "changed": report.commit.is_some(), "commit": report.commit, "dry_run": dry_run,
                "comments": tally.comments, "stopped_environments": tally.stopped, "pruned_artifacts": tally.pruned,
                "notified": tally.notified, "lifecycle": lived,
                "problems": problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>(),
            });
            if let Some(d) = &report.diff {
                v["diff"] = json!(d);
            }
            crate::output::json_line(&v);
        }
        Format::Text => {
            if matches!(forge, Forge::None) {
                println!("no --github-repo or --gitlab-project: only time to live decides");
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for s in removed {
                println!(
                    "{verb} {} (branch {}): {}",
                    s.slug,
                    s.branch,
                    s.reason.describe()
                );
            }
            for c in lived {
                for step in &c.steps {
                    let what = match step {
                        crate::lifecycle::Step::Warn { expires_at } => {
                            format!("warned: expires {}", crate::model::format_time(*expires_at))
                        }
                        crate::lifecycle::Step::Sleep { reason } => {
                            format!("asleep ({})", reason.as_str())
                        }
                        crate::lifecycle::Step::Wake => "awake (office hours)".into(),
                        crate::lifecycle::Step::Expire { .. } => continue,
                    };
                    println!("{} (branch {}): {what}", c.slug, c.branch);
                }
            }
            println!(
                "{} stale of {total} environments; {} kept",
                removed.len(),
                total - removed.len()
            );
            if let Some(c) = &report.commit {
                println!("commit {c} on {}", report.target_branch);
            }
            if dry_run {
                print!("{}", report.diff.as_deref().unwrap_or(""));
            }
            for p in &tally.warnings {
                eprintln!("warning: {p}");
            }
        }
    }
}

/// What the forge says, read before anything is deleted: the open changes and, on GitLab, the
/// available environments.
fn forge_state(forge: &Forge) -> Result<(ForgeState, Vec<Environment>)> {
    Ok(match forge {
        Forge::None => (ForgeState::default(), Vec::new()),
        Forge::GitHub(gh) => (
            ForgeState {
                open: Some(gh.block_on(gh.github.open_pull_numbers())?),
                available_environments: None,
            },
            Vec::new(),
        ),
        Forge::Gitea(gt, _) => (
            ForgeState {
                open: Some(gt.open_changes()?.into_iter().map(|c| c.number).collect()),
                available_environments: None,
            },
            Vec::new(),
        ),
        Forge::GitLab(gl) => {
            let environments = gl.gitlab.available_environments(&gl.project)?;
            let state = ForgeState {
                open: Some(gl.gitlab.open_merge_requests(&gl.project)?),
                available_environments: Some(
                    environments
                        .iter()
                        .map(|e| e.name.clone())
                        .collect::<BTreeSet<_>>(),
                ),
            };
            (state, environments)
        }
    })
}

/// What a cleanup removed and kept, for the follow-up after its commit.
struct Done<'a> {
    removed: &'a [Stale],
    remaining: &'a [EnvRecord],
    lived: &'a [crate::service::lifecycle::Changed],
    environments: &'a [Environment],
}

/// The removal of a stale environment, exactly its file.
/// The requests waiting in the queue for changes of `repository` that are no longer open: they
/// leave it (their close event was lost).
fn left_queue(snap: &Snapshot, state: &ForgeState, repository: Option<&str>) -> Vec<Intent> {
    let (Some(open), Some(repository)) = (&state.open, repository) else {
        return Vec::new();
    };
    snap.queue
        .closed(open, repository)
        .into_iter()
        .map(|w| {
            let spec = w.spec();
            Intent::Remove(Removal {
                slug: w.slug.clone(),
                key: Some(w.key.clone()),
                branch: Some(w.branch.clone()),
                requester: spec.owner(),
                exact: false,
            })
        })
        .collect()
}

fn removal(s: &Stale) -> Intent {
    Intent::Remove(Removal {
        slug: s.slug.clone(),
        key: crate::model::slug_of_file_name(&s.file).map(str::to_string),
        branch: Some(s.branch.clone()),
        requester: Owner::default(),
        exact: true,
    })
}
