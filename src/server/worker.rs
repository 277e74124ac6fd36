//! The worker: takes every delivery waiting when it is free, and applies the changes of a batch
//! in one Git transaction — one fetch, one commit, one push — with replies and statuses still per
//! event. Events of one pull/merge request keep their order; a refused event does not hold back
//! the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use super::job::Job;
use super::journal::Journal;
use super::metrics::Metrics;
use crate::error::ErrorKind;
use crate::events::Forge;
use crate::git::Store;
use crate::reconcile::{first_snapshot, ConfigSource};
use crate::service::chatops::{self, Applied, Handled, Step};
use crate::service::environment::Mode;
use crate::service::hook::{Handler, Work};

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
    pub ready: Arc<AtomicBool>,
    /// At most this many deliveries in one transaction.
    pub max_batch: usize,
    /// Repair drift this often (and once at start); `None`: never.
    pub resync_every: Option<std::time::Duration>,
    /// Journal entries of deliveries that failed for a reason that may pass (the GitOps
    /// repository or the forge could not be reached): retried after a backoff.
    pub kept: std::sync::Mutex<std::collections::HashSet<String>>,
    /// What the previews page shows, refreshed with every readiness check (30 s).
    pub previews: Option<Arc<super::ui::PreviewsCache>>,
    /// The cluster, when `serve` has credentials for it: Flux's verdict on each preview.
    pub kube: Option<crate::flux::kube_wait::KubeWaiter>,
    /// Without the cluster: Flux's commit statuses on the forges, read sparingly.
    pub status_reads: Option<std::sync::Mutex<crate::service::flux_state::StatusReads>>,
    /// Count only the commit statuses this account posts (Flux's Provider's).
    pub status_author: Option<String>,
}

fn forge_name(f: Forge) -> &'static str {
    match f {
        Forge::GitHub => "github",
        Forge::GitLab => "gitlab",
    }
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
                self.resync(store, config);
                next_resync = self.resync_every.map(|d| Instant::now() + d);
            }
            if next_check <= now {
                self.check(store, config);
                next_check = Instant::now() + Duration::from_secs(30);
            }
        }
    }

    /// Readiness: the GitOps repository can be read, and the forge of every configured
    /// application answers.
    fn check(&self, store: &Store, config: &ConfigSource) {
        let ok = match self.unready(store, config) {
            None => true,
            Some(e) => {
                tracing::warn!("not ready: {e}");
                false
            }
        };
        self.ready.store(ok, Ordering::SeqCst);
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
        // One instances directory for every application: the first snapshot has them all.
        if let (Some(cache), Some((_, Ok(snap)))) = (&self.previews, apps.first()) {
            cache.update(&snap.files, read_at);
            if let Some(kube) = &self.kube {
                cache.set_verdicts(crate::service::flux_state::verdicts(kube, &snap.files));
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
            self.group(store, config, &group);
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            for job in &group {
                if let (Some(j), Some(id)) = (&self.journal, &job.journal_id) {
                    if kept.remove(id) {
                        if j.retry_later(id) {
                            tracing::warn!(id, "kept in the journal: retried after a backoff");
                            self.metrics.queue_depth.inc();
                        } else {
                            self.metrics.quarantined.inc();
                        }
                    } else {
                        j.done(id);
                    }
                }
            }
        }
    }

    fn record(&self, job: &Job, handled: &Handled) {
        let kind = job.event.clone().unwrap_or_default();
        self.metrics
            .event(forge_name(job.forge), &kind, handled.action);
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
        self.metrics.event(forge_name(job.forge), &kind, outcome);
        if matches!(e.kind, ErrorKind::Remote | ErrorKind::Conflict) {
            self.ready.store(false, Ordering::SeqCst);
            if let Some(id) = &job.journal_id {
                self.kept
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone());
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
            Err(e) => return jobs.iter().for_each(|j| self.failed(j, &e)),
        };
        self.ready.store(true, Ordering::SeqCst);
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

/// The pull/merge request number a payload names (for logs).
fn change_number(body: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["issue"]["number"]
        .as_u64()
        .or_else(|| v["pull_request"]["number"].as_u64())
        .or_else(|| v["merge_request"]["iid"].as_u64())
        .or_else(|| v["object_attributes"]["iid"].as_u64())
}
