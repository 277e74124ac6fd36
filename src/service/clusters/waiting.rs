//! When requests leave the queue (admitted, or their change closed), the ones still waiting move
//! up: each one's commit status says its new place. Only the first [`TOLD`] are told, so a long
//! queue does not spend the forge's request budget on every commit; the others are told as they
//! come within reach.

use crate::forge::Status;
use crate::plan::Action;
use crate::reconcile::Report;

/// How many waiting requests have their place re-told after a commit that moved the queue.
pub const TOLD: usize = 25;

/// Re-tell the places of the requests still waiting, when this commit took some out of the queue.
pub fn tell_places(report: &Report) {
    let outcomes = &report.plan.outcomes;
    let left = outcomes
        .iter()
        .any(|o| o.admitted.is_some() || o.action == Action::Dequeued);
    let Some(queue) = report.plan.queue.as_ref().filter(|_| left) else {
        return;
    };
    let total = queue.entries.len();
    for (i, w) in queue.entries.iter().enumerate().take(TOLD) {
        // A request queued by this very commit was told its place by its own reply.
        let fresh = outcomes
            .iter()
            .any(|o| o.action == Action::Queued && o.slug == w.slug);
        let (Some(forge), Some(repository), Some(sha)) = (
            w.forge.as_deref(),
            w.repository.as_deref(),
            w.sha.as_deref(),
        ) else {
            continue;
        };
        if fresh {
            continue;
        }
        let text = crate::replies::queued_status(i + 1, total);
        let told = super::admitted::forge_of(forge, repository)
            .and_then(|f| f.set_status(sha, Status::Pending, &text, None));
        if let Err(e) = told {
            tracing::warn!(key = %w.key, "could not tell a waiting request its new place: {e}");
        }
    }
}
