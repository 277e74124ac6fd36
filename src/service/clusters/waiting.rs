//! When requests leave the queue (admitted, or their change closed), the ones still waiting move
//! up: each one's commit status says its new place. Which ones, the planner decided
//! ([`crate::plan::Plan::moved_up`]: the first few, each owned by a configured application).

use std::collections::HashMap;

use crate::forge::{ChangeForge, Status};
use crate::reconcile::Report;

/// Re-tell the places of the requests that moved up in the queue: one API client per repository.
pub fn tell_places(report: &Report) {
    let mut clients: HashMap<(&str, &str), Box<dyn ChangeForge>> = HashMap::new();
    for (w, position, total) in &report.plan.moved_up {
        let (Some(forge), Some(repository), Some(sha)) = (
            w.forge.as_deref(),
            w.repository.as_deref(),
            w.sha.as_deref(),
        ) else {
            continue;
        };
        let client = match clients.entry((forge, repository)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                match super::admitted::forge_of(forge, repository) {
                    Ok(c) => e.insert(c),
                    Err(err) => {
                        tracing::warn!(key = %w.key, "could not tell a waiting request its new place: {err}");
                        continue;
                    }
                }
            }
        };
        let text = crate::replies::queued_status(*position, *total);
        if let Err(e) = client.set_status(sha, Status::Pending, &text, None) {
            tracing::warn!(key = %w.key, "could not tell a waiting request its new place: {e}");
        }
    }
}
