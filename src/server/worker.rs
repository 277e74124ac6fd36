//! The worker: takes every delivery waiting when it is free, and applies the changes of a batch
//! in one Git transaction — one fetch, one commit, one push — with replies and statuses still per
//! event. Events of one pull/merge request keep their order; a refused event does not hold back
//! the others.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use super::job::Job;
use super::journal::Journal;
use super::metrics::Metrics;
use super::readiness::Readiness;
use crate::error::{Error, ErrorKind};
use crate::git::Store;
use crate::reconcile::{first_snapshot, ConfigSource};
use crate::service::chatops::{self, Applied, Handled, Step};
use crate::service::environment::Mode;
use crate::service::hook::{Handler, Work};

/// Why a journaled delivery stays in the journal after its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A failure that may pass: retried after a backoff, set aside after too many.
    Retry,
    /// The GitOps repository's configuration does not read: tried again every 10 s, for as
    /// long as it takes a commit to fix it.
    Hold,
}

/// Without a journal, at most this many deliveries wait in memory for the configuration.
const MAX_HELD: usize = 1024;

/// What `/readyz` and the logs say about a configuration that does not read.
pub fn config_problem(e: &Error) -> String {
    format!("the configuration in the GitOps repository does not read ({e}); deliveries are kept until a commit fixes it")
}

/// A panic's message, for the log and `/readyz`.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Where the worker takes deliveries from.
pub enum Inbox {
    Memory(Receiver<Job>),
    /// The journal, and the HTTP side's wake-ups.
    Journal(Arc<Journal>, Receiver<()>),
}

pub struct Worker {
    pub handler: Handler,
    pub mode: Mode,
    pub journal: Option<Arc<Journal>>,
    pub metrics: Arc<Metrics>,
    pub ready: Arc<Readiness>,
    /// At most this many deliveries in one transaction.
    pub max_batch: usize,
    /// Repair drift this often (and once at start); `None`: never.
    pub resync_every: Option<std::time::Duration>,
    /// Journal entries of deliveries that failed for a reason that may pass (the GitOps
    /// repository or the forge could not be reached, a panic): retried after a backoff; or that
    /// wait for the GitOps repository's configuration to be fixed.
    pub kept: Mutex<HashMap<String, Keep>>,
    /// Without a journal: deliveries waiting for the configuration to be fixed, handled again
    /// when the readiness check finds it reads.
    pub held: Mutex<Vec<Job>>,
    /// Deliveries whose change was already told why it waits (told once).
    pub told: Mutex<HashSet<String>>,
    /// What the previews page shows, refreshed with every readiness check (30 s).
    pub previews: Option<Arc<super::page::PreviewsCache>>,
    /// The cluster, when `serve` has credentials for it: Flux's verdict on each preview.
    /// Each cluster's Kubernetes client, by kubeconfig context.
    pub kube: Option<crate::flux::kube_wait::KubeClients>,
    /// Without the cluster: Flux's commit statuses on the forges, read sparingly.
    pub status_reads: Option<std::sync::Mutex<crate::service::flux_state::StatusReads>>,
    /// Count only the commit statuses this account posts (Flux's Provider's).
    pub status_author: Option<String>,
}

impl Worker {
    /// Handle deliveries until the queue closes, or — with a journal — until `stop` is set
    /// (what is left is handled on the next start). With a journal, what an earlier run left
    /// is drained first, in batches, while the HTTP side already answers.
    pub fn run(&self, store: &Store, config: &ConfigSource, rx: Inbox, stop: &AtomicBool) {
        use std::time::{Duration, Instant};
        let mut next_resync = self.resync_every.map(|_| Instant::now());
        let mut next_check = Instant::now();
        loop {
            let batch = match &rx {
                Inbox::Journal(j, _) => j.take(self.max_batch),
                Inbox::Memory(_) => Vec::new(),
            };
            if !batch.is_empty() {
                self.metrics.queue_depth.dec_by(batch.len() as i64);
                self.process(store, config, batch);
                if stop.load(Ordering::SeqCst) && self.journal.is_some() {
                    tracing::info!("stopping after the batch in flight; the rest stays journaled");
                    return;
                }
                continue;
            }
            // While idle: check readiness every 30 s, resync when it is time.
            let mut due = next_resync.map_or(next_check, |r| r.min(next_check));
            if let Inbox::Journal(j, _) = &rx {
                if let Some(d) = j.next_due() {
                    due = due.min(d);
                }
            }
            let wait = due.saturating_duration_since(Instant::now());
            let woken = match &rx {
                Inbox::Memory(rx) => match rx.recv_timeout(wait) {
                    Ok(first) => {
                        let mut batch = vec![first];
                        while batch.len() < self.max_batch {
                            match rx.try_recv() {
                                Ok(j) => batch.push(j),
                                Err(_) => break,
                            }
                        }
                        self.metrics.queue_depth.dec_by(batch.len() as i64);
                        self.process(store, config, batch);
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                },
                Inbox::Journal(_, wake) => {
                    match wake.recv_timeout(wait.min(Duration::from_secs(1))) {
                        Ok(()) => true,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            };
            // In memory, the queue runs until it closes; with a journal, what is left stays.
            if stop.load(Ordering::SeqCst) && matches!(rx, Inbox::Journal(..)) {
                return;
            }
            if woken {
                continue;
            }
            let now = Instant::now();
            if next_resync.is_some_and(|r| r <= now) {
                self.guarded("the periodic resync", || self.resync(store, config));
                next_resync = self.resync_every.map(|d| Instant::now() + d);
            }
            if next_check <= now {
                self.guarded("the readiness check", || self.check(store, config));
                next_check = Instant::now() + Duration::from_secs(30);
            }
        }
    }

    /// Readiness: the GitOps repository can be read, and the forge of every configured
    /// application answers.
    fn check(&self, store: &Store, config: &ConfigSource) {
        match self.unready(store, config) {
            None => {
                self.ready.ready();
                lock(&self.told).clear();
                // Without a journal, what waited for the configuration is handled now.
                let held = std::mem::take(&mut *lock(&self.held));
                if !held.is_empty() {
                    tracing::info!(
                        "the configuration reads again: handling {} kept deliveries",
                        held.len()
                    );
                    self.process(store, config, held);
                }
            }
            Some(e) => {
                tracing::warn!("not ready: {e}");
                self.ready.unready(if e.kind == ErrorKind::Config {
                    config_problem(&e)
                } else {
                    e.to_string()
                });
            }
        }
    }

    /// Run `f`; a panic in it is logged and makes `/readyz` fail instead of ending the worker.
    fn guarded(&self, what: &str, f: impl FnOnce()) -> bool {
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => true,
            Err(p) => {
                let message = panic_message(&*p);
                tracing::error!("{what} panicked: {message}");
                self.ready.unready(format!("{what} panicked ({message})"));
                false
            }
        }
    }

    /// Why the service is not ready: one fetch of the GitOps repository, then the forge of every
    /// configured application (each listed one, or the one) must answer. The same read refreshes
    /// the previews page, and Flux's verdicts on it (from the cluster, else from the forges).
    fn unready(&self, store: &Store, config: &ConfigSource) -> Option<crate::error::Error> {
        let read_at = std::time::SystemTime::now();
        let apps = match crate::reconcile::per_application(store, config) {
            Ok(a) => a,
            Err(e) => return Some(e),
        };
        let gitlab_url = self.handler.gitlab_url.as_deref();
        let mut problem = None;
        let mut forges = Vec::new();
        for (_, snap) in &apps {
            let settings = match snap {
                Ok(s) => &s.settings,
                Err(e) => {
                    problem.get_or_insert_with(|| e.clone());
                    continue;
                }
            };
            match crate::service::resync::listing_on(settings, gitlab_url) {
                Ok(Some((forge, repository, name))) => {
                    if let Err(e) = forge.ping() {
                        problem.get_or_insert(e);
                    }
                    forges.push((settings.application.name.clone(), forge, repository, name));
                }
                Ok(None) => {}
                Err(e) => {
                    problem.get_or_insert(e);
                }
            }
        }
        if let Some((_, Ok(snap))) = apps.first() {
            let layout = &snap.settings.layout;
            self.metrics.clusters(layout, &snap.files, snap.queue.len());
        }
        // One instances directory for every application: the first snapshot has them all.
        if let (Some(cache), Some((_, Ok(snap)))) = (&self.previews, apps.first()) {
            let read = crate::previews::Read::of(
                snap.files.clone(),
                &snap.settings.layout,
                snap.queue.clone(),
            );
            cache.update(&read, read_at);
            if let Some(kube) = &self.kube {
                let layout = &snap.settings.layout;
                cache.set_verdicts(crate::service::flux_state::verdicts_in_clusters(
                    kube,
                    layout,
                    &snap.files,
                ));
            } else if let Some(reads) = &self.status_reads {
                let sources: Vec<_> = forges
                    .iter()
                    .map(|(app, forge, repository, name)| {
                        crate::service::flux_state::StatusSource {
                            application: app,
                            forge_name: name,
                            repository,
                            forge: forge.as_ref(),
                        }
                    })
                    .collect();
                if let Ok(mut reads) = reads.lock() {
                    cache.set_verdicts(reads.verdicts(
                        &sources,
                        &snap.files,
                        self.status_author.as_deref(),
                        std::time::Instant::now(),
                    ));
                }
            }
        }
        problem
    }

    /// Repair what the webhooks missed, for every application.
    fn resync(&self, store: &Store, config: &ConfigSource) {
        let gitlab_url = self.handler.gitlab_url.as_deref();
        for result in crate::service::resync::resync_all(store, config, gitlab_url, false) {
            match result {
                Ok(r) => {
                    if r.report.commit.is_some() {
                        self.metrics.commits.inc();
                    }
                    for repair in &r.repairs {
                        tracing::info!(repair = ?repair, commit = r.report.commit.as_deref().unwrap_or(""), "resync");
                    }
                }
                Err(e) => tracing::warn!("resync: {e}"),
            }
        }
    }

    /// Handle a batch: consecutive deliveries of one repository go in one transaction.
    pub fn process(&self, store: &Store, config: &ConfigSource, batch: Vec<Job>) {
        let mut groups: Vec<Vec<Job>> = Vec::new();
        for job in batch {
            let repo = crate::events::repository_of(job.forge, &job.body).map(|r| r.path);
            match groups.last_mut() {
                Some(g)
                    if g[0].forge == job.forge
                        && crate::events::repository_of(g[0].forge, &g[0].body).map(|r| r.path)
                            == repo =>
                {
                    g.push(job)
                }
                _ => groups.push(vec![job]),
            }
        }
        for group in groups {
            // A panic while handling a delivery is a bug: the delivery is kept and retried, then
            // set aside (the journal's quarantine), and /readyz says so.
            if !self.guarded("handling a delivery", || self.group(store, config, &group)) {
                let mut kept = lock(&self.kept);
                for id in group.iter().filter_map(|j| j.journal_id.clone()) {
                    kept.insert(id, Keep::Retry);
                }
            }
            let mut kept = lock(&self.kept);
            for job in &group {
                if let (Some(j), Some(id)) = (&self.journal, &job.journal_id) {
                    match kept.remove(id) {
                        Some(Keep::Retry) if j.retry_later(id) => {
                            tracing::warn!(id, "kept in the journal: retried after a backoff");
                            self.metrics.queue_depth.inc();
                        }
                        Some(Keep::Retry) => {
                            self.metrics.quarantined.inc();
                        }
                        Some(Keep::Hold) => {
                            j.hold(id);
                            self.metrics.queue_depth.inc();
                        }
                        None => j.done(id),
                    }
                }
            }
        }
    }

    fn record(&self, job: &Job, handled: &Handled) {
        let kind = job.event.clone().unwrap_or_default();
        self.metrics.event(job.forge.name(), &kind, handled.action);
        if handled.commit.is_some() {
            self.metrics
                .event_to_push
                .observe(job.accepted.elapsed().as_secs_f64());
        }
        let repository = crate::events::repository_of(job.forge, &job.body)
            .map(|r| r.path)
            .unwrap_or_default();
        let change = change_number(&job.body);
        tracing::info!(
            delivery = job.delivery.as_deref().unwrap_or(""),
            event = %kind,
            repository = %repository,
            change = change.unwrap_or(0),
            action = handled.action,
            slug = handled.slug.as_deref().unwrap_or(""),
            commit = handled.commit.as_deref().unwrap_or(""),
            "{}",
            handled.reason
        );
        handled.print(self.mode.format);
    }

    fn failed(&self, job: &Job, e: &crate::error::Error) {
        let kind = job.event.clone().unwrap_or_default();
        let outcome = if e.kind == ErrorKind::Refused {
            "refused"
        } else {
            "failed"
        };
        self.metrics.event(job.forge.name(), &kind, outcome);
        if matches!(e.kind, ErrorKind::Remote | ErrorKind::Conflict) {
            self.ready.unready(e.to_string());
            if let Some(id) = &job.journal_id {
                lock(&self.kept).insert(id.clone(), Keep::Retry);
            }
        }
        tracing::error!(
            delivery = job.delivery.as_deref().unwrap_or(""),
            event = %kind,
            "{e}"
        );
    }

    fn group(&self, store: &Store, config: &ConfigSource, jobs: &[Job]) {
        let mut config = config.clone();
        config.origin = crate::apps::Origin {
            app: None,
            repository: crate::events::repository_of(jobs[0].forge, &jobs[0].body),
            ci_repository: None,
        };
        let first = match first_snapshot(store, &mut config) {
            Ok(f) => f,
            Err(e) if e.kind == ErrorKind::Config => return self.hold(jobs, &e),
            Err(e) => return jobs.iter().for_each(|j| self.failed(j, &e)),
        };
        self.ready.ready();
        let ctx = self.handler.context(&first, &self.mode);
        // Parse every delivery and connect to its forge; then prepare each change event.
        let mut changes = Vec::new();
        for job in jobs {
            match self
                .handler
                .parse(job.forge, job.event.as_deref(), &job.body, &ctx.settings)
            {
                Ok(Work::Ignore(reason)) => self.record(job, &Handled::only("ignored", reason)),
                // Deployment hooks are rare: each in its own transaction.
                Ok(Work::Deployment(_)) => {
                    if let Err(e) =
                        self.handler
                            .handle(job.forge, job.event.as_deref(), &job.body, &self.mode)
                    {
                        self.failed(job, &e);
                    }
                }
                Ok(Work::Change(event)) => changes.push((job, event)),
                Err(e) => self.failed(job, &e),
            }
        }
        // The deliveries of a group come from one repository: one API client serves them all.
        let forge = match changes.first() {
            Some((job, event)) => match self.handler.forge_for(job.forge, event) {
                Ok(f) => Some(f),
                Err(e) => {
                    changes.iter().for_each(|(j, _)| self.failed(j, &e));
                    return;
                }
            },
            None => None,
        };
        let mut pending = Vec::new();
        for ((job, event), forge) in changes.iter().zip(std::iter::repeat(&forge)) {
            let Some(forge) = forge else { break };
            match chatops::prepare((**event).clone(), forge.as_ref(), &ctx) {
                Ok(Step::Done(h)) => self.record(job, &h),
                Ok(Step::Act(p)) => pending.push((*job, p)),
                Err(e) => self.failed(job, &e),
            }
        }
        // One transaction per run of events with distinct pull/merge requests: a second event
        // of the same change waits for the next, so they keep their order.
        let mut first = Some(first);
        let mut start = 0;
        while start < pending.len() {
            let mut keys = std::collections::HashSet::new();
            let mut end = start;
            while end < pending.len() && keys.insert(pending[end].1.key()) {
                end += 1;
            }
            let run: Vec<&chatops::Pending> =
                pending[start..end].iter().map(|(_, p)| &**p).collect();
            self.metrics.batch_size.observe(run.len() as f64);
            let results = chatops::apply(store, &config, first.take(), &run, &self.mode);
            let mut committed = std::collections::HashSet::new();
            for ((job, p), result) in pending[start..end].iter().zip(results) {
                if let Ok(Applied::Changed {
                    commit: Some(c),
                    attempts,
                    ..
                }) = &result
                {
                    if committed.insert(c.clone()) {
                        self.metrics.commits.inc();
                        self.metrics
                            .push_retries
                            .inc_by(attempts.saturating_sub(1) as u64);
                    }
                }
                match chatops::finish(p, result, &ctx) {
                    Ok(h) => self.record(job, &h),
                    Err(e) => self.failed(job, &e),
                }
            }
            start = end;
        }
    }
}

impl Worker {
    /// The GitOps repository's configuration does not read: keep `jobs` (in the journal, or in
    /// memory without one) until a commit fixes it, say so on `/readyz`, and tell each change
    /// once why it waits.
    fn hold(&self, jobs: &[Job], e: &Error) {
        let why = config_problem(e);
        tracing::error!("{why} ({} deliveries)", jobs.len());
        self.ready.unready(why);
        for job in jobs {
            match (&self.journal, &job.journal_id) {
                (Some(_), Some(id)) => {
                    lock(&self.kept).insert(id.clone(), Keep::Hold);
                }
                _ => {
                    // In memory the wait is bounded: beyond it, only a journal keeps more.
                    let mut held = lock(&self.held);
                    if held.len() < MAX_HELD {
                        held.push(job.clone());
                    } else {
                        tracing::error!("{MAX_HELD} deliveries wait in memory already: this one is dropped (run with --state-dir to keep every one)");
                    }
                }
            }
            // Told once per delivery; the key is small whatever the body.
            let key = job
                .journal_id
                .clone()
                .or_else(|| job.delivery.clone())
                .unwrap_or_else(|| {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(job.body.as_bytes()))
                });
            if lock(&self.told).insert(key) {
                self.tell(job);
            }
        }
    }

    /// Reply on the delivery's change (with the default command words: the configured ones do
    /// not read) that it waits for the configuration. Best effort: a failure is only logged.
    fn tell(&self, job: &Job) {
        let Ok(Work::Change(event)) = self.handler.parse_with(
            job.forge,
            job.event.as_deref(),
            &job.body,
            &Default::default(),
        ) else {
            return;
        };
        let text = crate::replies::waits_for_configuration();
        let told = self
            .handler
            .forge_for(job.forge, &event)
            .and_then(|forge| forge.reply(event.change.number, &text));
        if let Err(e) = told {
            tracing::warn!("could not tell the change why it waits: {e}");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pull/merge request number a payload names (for logs).
fn change_number(body: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["issue"]["number"]
        .as_u64()
        .or_else(|| v["pull_request"]["number"].as_u64())
        .or_else(|| v["merge_request"]["iid"].as_u64())
        .or_else(|| v["object_attributes"]["iid"].as_u64())
}
