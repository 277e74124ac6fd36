//! Step 2 of ChatOps: one Git transaction for every prepared event.

use super::Pending;
use crate::error::{Error, ErrorKind, Result};
use crate::git::Store;
use crate::plan::{plan, Intent, Outcome, PlanOptions};
use crate::reconcile::{ConfigSource, RunOptions, Snapshot};
use crate::service::environment::{Mode, Wanted};

/// What the transaction did for one event.
pub enum Applied {
    Changed {
        outcome: Box<Outcome>,
        commit: Option<String>,
        target_branch: String,
        /// Transactions tried (more than one: another writer moved the branch meanwhile).
        attempts: u32,
    },
    /// Nothing to do for it, and why.
    Ignored(String),
}

/// Step 2: one transaction for all `pending` events (of one application: they share the
/// settings). An event whose change alone would be refused (a cap, another owner's environment)
/// gets its error and the others go on; if only the combination fails, they go one by one.
pub fn apply(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    pending: &[&Pending],
    mode: &Mode,
) -> Vec<Result<Applied>> {
    let mut results: Vec<Option<Result<Applied>>> = (0..pending.len()).map(|_| None).collect();
    let mut included: Vec<usize> = Vec::new();
    let opts = RunOptions {
        dry_run: mode.dry_run,
        plan: PlanOptions::default(),
        max_attempts: 10,
        requested_by: None,
    };
    let mut intents = |snap: &Snapshot| -> Result<Vec<Intent>> {
        included.clear();
        let mut out = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            results[i] = None;
            match p.wanted(snap) {
                Ok(Wanted::Intent(intent)) => {
                    let limits = PlanOptions {
                        max_environments: snap.settings.max_environments,
                        layout: snap.settings.layout.clone(),
                        queue: snap.queue.clone(),
                        ..PlanOptions::default()
                    };
                    let alone = plan(
                        &snap.files,
                        std::slice::from_ref(&intent),
                        &snap.renderer,
                        std::time::SystemTime::now(),
                        &limits,
                    );
                    match alone {
                        Ok(_) => {
                            included.push(i);
                            out.push(intent);
                        }
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                Ok(Wanted::Nothing(why)) => results[i] = Some(Ok(Applied::Ignored(why))),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        Ok(out)
    };
    match crate::service::clusters::transaction(store, config, first, &mut intents, &opts) {
        Ok(report) => {
            for (j, i) in included.iter().enumerate() {
                results[*i] = Some(Ok(match report.plan.outcomes.get(j) {
                    Some(o) => Applied::Changed {
                        outcome: Box::new(o.clone()),
                        commit: report.commit.clone(),
                        target_branch: report.target_branch.clone(),
                        attempts: report.attempts,
                    },
                    None => Applied::Ignored("nothing to do".into()),
                }));
            }
        }
        // Each alone was fine, together they are not (a cap): one by one, in order.
        Err(e) if e.kind == ErrorKind::Input && pending.len() > 1 => {
            return pending
                .iter()
                .map(|p| {
                    apply(store, config, None, std::slice::from_ref(p), mode)
                        .pop()
                        .unwrap_or_else(|| Err(Error::internal("no result")))
                })
                .collect();
        }
        Err(e) => {
            for i in &included {
                results[*i] = Some(Err(e.clone()));
            }
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(e.clone()));
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("event left without a result"))))
        .collect()
}
