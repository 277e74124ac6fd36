//! One Git transaction: fetch, plan, commit, publish — and on a lost race, all of it again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::Oid;

use crate::config::{FileConfig, FILE_NAME};
use crate::error::{Error, Result};
use crate::git::{Published, Store};
use crate::overlay::Files;
use crate::plan::{plan_admitting, Admission, Change, Intent, Plan, PlanOptions};
use crate::settings::Settings;

/// Where the configuration comes from, besides the flags.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// `--config FILE`: parsed, with the directory relative template paths resolve against.
    pub local: Option<(FileConfig, PathBuf)>,
    /// Flags and their environment variables; they win over any file.
    pub flags: FileConfig,
    /// Where the run comes from: it chooses the application and must be a configured repository.
    pub origin: crate::apps::Origin,
}

impl ConfigSource {
    /// Load `--config FILE` if given.
    pub fn load(path: Option<&Path>, flags: FileConfig) -> Result<Self> {
        let local = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    Error::config(format!("cannot read --config {}: {e}", p.display()))
                })?;
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                Some((FileConfig::parse(&text, &p.display().to_string())?, dir))
            }
            None => None,
        };
        Ok(ConfigSource {
            local,
            flags,
            origin: crate::apps::Origin::default(),
        })
    }

    /// The target branch named by flags or `--config`, if any.
    pub fn target_branch(&self) -> Option<String> {
        self.flags.target_branch.clone().or_else(|| {
            self.local
                .as_ref()
                .and_then(|(c, _)| c.target_branch.clone())
        })
    }
}

/// Everything one attempt works with.
pub struct Snapshot {
    pub settings: Settings,
    /// The sync files of every cluster, relative to `settings.instances_dir`.
    pub files: Files,
    /// The requests waiting for room.
    pub queue: crate::clusters::Queue,
    pub renderer: crate::render::Renderer,
    pub tip: Oid,
    /// Read from the remote just now (else from a persistent mirror, unverified: an attempt on it
    /// that would end without a push reads the remote first).
    pub verified: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub plan: PlanOptions,
    pub max_attempts: u32,
    /// Who asked (the previews page's user): a `Requested-by:` trailer in the commit message.
    pub requested_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub plan: Plan,
    pub commit: Option<String>,
    pub target_branch: String,
    pub instances_dir: String,
    /// `clusters` is configured: outcomes name their cluster.
    pub clustered: bool,
    /// The queue's file in the repository.
    pub queue_file: String,
    pub attempts: u32,
    /// With `--dry-run`: the change as a unified diff.
    pub diff: Option<String>,
}

impl Report {
    /// An outcome's file as a path in the repository.
    pub fn path(&self, file: &str) -> String {
        if file == self.queue_file {
            return file.to_string();
        }
        crate::clusters::layout::join(&self.instances_dir, file)
    }
}

/// The target branch: named by flags or `--config`, else the repository's default.
pub fn target_branch(store: &Store, config: &ConfigSource) -> Result<String> {
    match config.target_branch() {
        Some(b) => Ok(b),
        None => store.default_branch(),
    }
}

/// Read the target branch once, before a transaction, and pin `config` to it, so that the
/// snapshot can serve the transaction's first attempt.
pub fn first_snapshot(store: &Store, config: &mut ConfigSource) -> Result<Snapshot> {
    let branch = target_branch(store, config)?;
    config.flags.target_branch = Some(branch.clone());
    snapshot(store, &branch, config)
}

/// Like [`first_snapshot`], but from where a persistent mirror (`--cache-dir`) last saw the target
/// branch, without a round trip to the remote, when it has it. Safe for a transaction: the push
/// compares the remote's tip with the snapshot's before it sends anything, and an attempt that
/// would end without a push (nothing to change, a dry run, an ignored environment) reads the
/// remote first. Not for decisions taken outside the transaction.
pub fn cached_snapshot(store: &Store, config: &mut ConfigSource) -> Result<Snapshot> {
    let branch = target_branch(store, config)?;
    config.flags.target_branch = Some(branch.clone());
    match store.cached_tip(&branch) {
        Some(tip) => Ok(Snapshot {
            verified: false,
            ..snapshot_at(store, &branch, tip, config)?
        }),
        None => snapshot(store, &branch, config),
    }
}

/// The names of the applications the configuration lists (none without a list).
pub fn application_names(store: &Store, config: &ConfigSource) -> Result<Vec<String>> {
    Ok(read_config(store, config)?
        .applications
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.name)
        .collect())
}

/// The configuration file as it is (`--config`, else the target branch's), before any application
/// is chosen: one fetch.
pub fn read_config(store: &Store, config: &ConfigSource) -> Result<FileConfig> {
    Ok(match &config.local {
        Some((c, _)) => c.clone(),
        None => {
            let branch = target_branch(store, config)?;
            let tip = store.fetch(&branch)?;
            match store.read_file(tip, FILE_NAME)? {
                Some(text) => FileConfig::parse(&text, &format!("{FILE_NAME} in {branch}"))?,
                None => FileConfig::default(),
            }
        }
    })
}

/// One snapshot for each application the configuration serves (each listed one, or the one),
/// all from one fetch of the target branch: a periodic pass reads the repository once. Each
/// comes with the configuration pinned to the branch and the application; an application whose
/// settings do not resolve gets its error.
pub fn per_application(
    store: &Store,
    config: &ConfigSource,
) -> Result<Vec<(ConfigSource, Result<Snapshot>)>> {
    let mut config = config.clone();
    let branch = target_branch(store, &config)?;
    config.flags.target_branch = Some(branch.clone());
    let tip = store.fetch(&branch)?;
    let file = match &config.local {
        Some((c, _)) => c.clone(),
        None => match store.read_file(tip, FILE_NAME)? {
            Some(text) => FileConfig::parse(&text, &format!("{FILE_NAME} in {branch}"))?,
            None => FileConfig::default(),
        },
    };
    let apps: Vec<Option<String>> = match file.applications {
        Some(list) if !list.is_empty() => list.into_iter().map(|a| Some(a.name)).collect(),
        _ => vec![config.flags.app.clone()],
    };
    Ok(apps
        .into_iter()
        .map(|app| {
            let mut for_app = config.clone();
            for_app.flags.app = app;
            let snap = snapshot_at(store, &branch, tip, &for_app);
            (for_app, snap)
        })
        .collect())
}

/// Read the target branch, resolve the configuration, and read the instances directory.
pub fn snapshot(store: &Store, branch: &str, config: &ConfigSource) -> Result<Snapshot> {
    let tip = store.fetch(branch)?;
    snapshot_at(store, branch, tip, config)
}

/// [`snapshot`] of a tip already fetched.
pub fn snapshot_at(
    store: &Store,
    branch: &str,
    tip: Oid,
    config: &ConfigSource,
) -> Result<Snapshot> {
    let mut snap = settings_at(store, branch, tip, config)?;
    snap.files = store.read_layout(tip, &snap.settings.layout)?;
    let queue_file = &snap.settings.layout.queue_file;
    if let Some(text) = store.read_file(tip, queue_file)? {
        snap.queue = crate::clusters::Queue::parse(&text, queue_file)?;
    }
    Ok(snap)
}

/// The settings and renderer of `tip`, without reading the sync files.
fn settings_at(store: &Store, branch: &str, tip: Oid, config: &ConfigSource) -> Result<Snapshot> {
    let (file, from_repo) = match &config.local {
        Some((c, _)) => (c.clone(), false),
        None => match store.read_file(tip, FILE_NAME)? {
            Some(text) => {
                let c = FileConfig::parse(&text, &format!("{FILE_NAME} in {branch}"))?;
                if c.target_branch.is_some() {
                    return Err(Error::config(format!(
                        "{FILE_NAME} in the repository cannot set target_branch (it is read from that branch); use --target-branch"
                    )));
                }
                (c, true)
            }
            None => (FileConfig::default(), false),
        },
    };
    let origin = crate::apps::Origin {
        app: config.flags.app.clone(),
        ..config.origin.clone()
    };
    let settings = Settings::resolve_for(file, config.flags.clone(), &origin)?;
    let renderer = settings.renderer(|path| {
        let from_flag = config.flags.template.as_deref() == Some(path);
        if from_flag || !from_repo {
            // A --template path is relative to the working directory, a --config one to its file.
            let base = match (&config.local, from_flag) {
                (Some((_, dir)), false) => dir.clone(),
                _ => PathBuf::new(),
            };
            let full = base.join(path);
            return std::fs::read_to_string(&full).map(Some).map_err(|e| {
                Error::config(format!("cannot read template {}: {e}", full.display()))
            });
        }
        // From the repository: a path inside it, never one that reaches out of it.
        let inside = crate::config::normalize_dir(path).map_err(|_| {
            Error::config(format!(
                "template {path:?} must be kustomization, helm, or a relative path inside the GitOps repository"
            ))
        })?;
        store.read_file(tip, &inside)
    })?;
    Ok(Snapshot {
        settings,
        files: Files::new(),
        queue: crate::clusters::Queue::default(),
        renderer,
        tip,
        verified: true,
    })
}

/// Apply `intents` (computed from each fresh snapshot) to the target branch. `first`, when the
/// caller already read the branch (to learn its settings), serves the first attempt instead of a
/// second fetch; it must be of the target branch.
pub fn reconcile(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    intents: &mut dyn FnMut(&Snapshot) -> Result<Vec<Intent>>,
    opts: &RunOptions,
) -> Result<Report> {
    let branch = target_branch(store, config)?;
    let max = opts.max_attempts.max(1);
    let mut last_reason = String::new();
    let mut first = first;
    for attempt in 1..=max {
        let started = std::time::Instant::now();
        let snap = match first.take() {
            Some(s) => s,
            None => snapshot(store, &branch, config)?,
        };
        tracing::debug!(elapsed = ?started.elapsed(), tip = %snap.tip, files = snap.files.len(), "read the target branch");
        let wanted = intents(&snap)?;
        let verify = !snap.verified;
        let planned = plan_on(store, config, &snap, &wanted, &opts.plan)?;
        let dir = snap.settings.instances_dir.clone();
        let layout = &snap.settings.layout;
        let mut report = Report {
            plan: planned,
            commit: None,
            target_branch: branch.clone(),
            instances_dir: dir.clone(),
            clustered: layout.configured,
            queue_file: layout.queue_file.clone(),
            attempts: attempt,
            diff: None,
        };
        // What a mirror remembered is only trusted for a push the remote can refuse.
        if verify && (report.plan.is_empty() || opts.dry_run) {
            tracing::debug!("nothing to push on the mirror's snapshot: reading the remote");
            continue;
        }
        if report.plan.is_empty() {
            return Ok(report);
        }
        let outside = queue_change(&snap, &report.plan);
        if opts.dry_run {
            let mut d = diff(&dir, &report.plan.changes);
            d.push_str(&diff("", &outside));
            report.diff = Some(d);
            return Ok(report);
        }
        let mut message = report.plan.commit_message();
        if let Some(who) = &opts.requested_by {
            let who: String = who.chars().filter(|c| !c.is_control()).take(200).collect();
            message.push_str(&format!("\nRequested-by: {who}\n"));
        }
        let keep: Vec<String> = layout
            .clusters
            .iter()
            .map(|c| c.instances_dir.clone())
            .collect();
        let tree = crate::git::Tree {
            dir: &dir,
            changes: &report.plan.changes,
            outside: &outside,
            keep: &keep,
        };
        let Some(commit) = store.commit(snap.tip, &tree, &message, &snap.settings.author)? else {
            return Ok(report);
        };
        tracing::debug!(elapsed = ?started.elapsed(), %commit, "committed");
        let published = store.publish(&branch, snap.tip, commit)?;
        tracing::debug!(elapsed = ?started.elapsed(), "publish finished");
        match published {
            Published::Done => {
                tracing::info!(%commit, attempt, "published");
                report.commit = Some(commit.to_string());
                return Ok(report);
            }
            Published::Stale => {
                tracing::debug!(attempt, "{branch} moved since it was read; fetching again");
                last_reason = "the branch kept moving".into();
            }
            Published::Lost(reason) => {
                tracing::info!(attempt, %reason, "another writer moved {branch} first; fetching again");
                last_reason = reason;
                std::thread::sleep(backoff(attempt));
            }
        }
    }
    Err(Error::conflict(format!(
        "{branch} of {} kept moving: gave up after {max} attempts ({last_reason}); nothing was lost, run again",
        store.location().display()
    )))
}

/// Plan `wanted` on `snap`, admitting waiting requests of any application.
fn plan_on(
    store: &Store,
    config: &ConfigSource,
    snap: &Snapshot,
    wanted: &[Intent],
    opts: &PlanOptions,
) -> Result<Plan> {
    let mut plan_opts = opts.clone();
    plan_opts.max_environments = plan_opts
        .max_environments
        .or(snap.settings.max_environments);
    plan_opts.layout = snap.settings.layout.clone();
    plan_opts.queue = snap.queue.clone();
    let others = if snap.queue.is_empty() {
        Vec::new()
    } else {
        other_applications(store, config, snap)
    };
    let lookup = |w: &crate::clusters::Waiting| admission(snap, &others, w);
    let mut planned = plan_admitting(
        &snap.files,
        wanted,
        &snap.renderer,
        SystemTime::now(),
        &plan_opts,
        &lookup,
    )?;
    for o in &mut planned.outcomes {
        if let Some(w) = &o.admitted {
            let s = settings_of(snap, &others, w.app.as_deref());
            let gitlab = w.forge.as_deref() == Some("gitlab");
            o.deployment_environment = Some(s.deployment_environment(&o.slug, gitlab));
        }
    }
    Ok(planned)
}

/// The queue's file as the plan leaves it: written, deleted when empty, or untouched.
fn queue_change(snap: &Snapshot, plan: &Plan) -> Vec<Change> {
    let Some(queue) = &plan.queue else {
        return Vec::new();
    };
    let file = snap.settings.layout.queue_file.clone();
    let before = snap.queue.render();
    match (queue.render(), before) {
        (Some(content), before) => vec![Change::Write {
            file,
            content,
            before,
        }],
        (None, Some(before)) => vec![Change::Delete { file, before }],
        (None, None) => Vec::new(),
    }
}

/// The settings and renderer of every other application with a request in the queue: its turn
/// may come in this commit.
fn other_applications(
    store: &Store,
    config: &ConfigSource,
    snap: &Snapshot,
) -> Vec<(String, Snapshot)> {
    let mine = &snap.settings.application.name;
    let mut apps: Vec<String> = snap
        .queue
        .entries
        .iter()
        .filter_map(|w| w.app.clone())
        .filter(|a| a != mine)
        .collect();
    apps.sort();
    apps.dedup();
    let branch = config.target_branch().unwrap_or_default();
    apps.into_iter()
        .filter_map(|app| {
            let mut for_app = config.clone();
            for_app.flags.app = Some(app.clone());
            for_app.origin = crate::apps::Origin::default();
            match settings_at(store, &branch, snap.tip, &for_app) {
                Ok(s) => Some((app, s)),
                Err(e) => {
                    tracing::warn!(
                        app,
                        "a waiting request's application cannot be rendered: {e}"
                    );
                    None
                }
            }
        })
        .collect()
}

/// The settings of application `app` (this run's, or one of `others`).
fn settings_of<'s>(
    snap: &'s Snapshot,
    others: &'s [(String, Snapshot)],
    app: Option<&str>,
) -> &'s Settings {
    app.and_then(|a| others.iter().find(|(n, _)| n == a))
        .map(|(_, s)| &s.settings)
        .unwrap_or(&snap.settings)
}

/// How a waiting request is rendered: by its own application's settings. A request naming an
/// application the configuration does not list waits.
fn admission<'s>(
    snap: &'s Snapshot,
    others: &'s [(String, Snapshot)],
    w: &crate::clusters::Waiting,
) -> Option<Admission<'s>> {
    let mine = &snap.settings.application;
    let s = match w.app.as_deref() {
        None => snap,
        Some(a) if a == mine.name => snap,
        Some(a) => &others.iter().find(|(name, _)| name == a)?.1,
    };
    // Only what the application's configuration says it owns is admitted.
    let app = &s.settings.application;
    if w.repository.is_some()
        && app.repository.is_some()
        && !w
            .repository
            .as_deref()
            .unwrap_or("")
            .eq_ignore_ascii_case(app.repository.as_deref().unwrap_or(""))
    {
        tracing::warn!(key = %w.key, "a waiting request names another repository than its application's: left waiting");
        return None;
    }
    Some(Admission {
        renderer: &s.renderer,
        allowed: s.settings.layout.allowed.clone(),
    })
}

fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(6));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (u64::from(nanos) ^ u64::from(std::process::id()).wrapping_mul(2_654_435_761))
        % base.max(1);
    Duration::from_millis((base + jitter).min(3_000))
}

/// A unified diff of `changes`, with paths as in the repository.
pub fn diff(dir: &str, changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let path = crate::clusters::layout::join(dir, c.file());
        let (before, after) = match c {
            Change::Write {
                content, before, ..
            } => (before.as_deref().unwrap_or(""), content.as_str()),
            Change::Delete { before, .. } => (before.as_str(), ""),
        };
        let old = if matches!(c, Change::Write { before: None, .. }) {
            "/dev/null".to_string()
        } else {
            format!("a/{path}")
        };
        let new = if matches!(c, Change::Delete { .. }) {
            "/dev/null".to_string()
        } else {
            format!("b/{path}")
        };
        let text = similar::TextDiff::from_lines(before, after);
        out.push_str(&text.unified_diff().header(&old, &new).to_string());
    }
    out
}
