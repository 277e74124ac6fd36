//! Admission: when room frees up, the requests waiting in the queue get it, first come first, in
//! the same commit that freed it.

use super::planner::Planner;
use super::upsert::outcome;
use super::{Action, AppLookup, Change, Plan, TOLD};
use crate::clusters::{Ask, Placement};

impl Planner<'_> {
    /// Admit every waiting request that fits now, in order (one that does not fit does not hold
    /// back one behind it that fits elsewhere).
    pub fn admit(&mut self, out: &mut Plan, others: &AppLookup) {
        let waiting = self.queue.entries.clone();
        for w in waiting {
            let layout = &self.opts.layout;
            let live = layout
                .clusters
                .iter()
                .any(|c| self.exists_after(&layout.file(c, &w.key)));
            if live {
                // Deployed some other way meanwhile: it waits no more.
                self.queue.remove(&w.key);
                continue;
            }
            let Some(admission) = others(&w) else {
                continue;
            };
            let ask = Ask {
                cluster: w.cluster.as_deref(),
                author: w.author.as_deref(),
                moving: false,
            };
            let name = match self.place_in(ask, Some(&admission.allowed)) {
                Ok(Placement::Into(name)) => name,
                Ok(Placement::Full(_)) => continue,
                Err(e) => {
                    tracing::warn!(key = %w.key, "a waiting request cannot be placed: {e}");
                    continue;
                }
            };
            let mut spec = w.spec();
            spec.cluster = Some(name.clone());
            let rendered = match admission.renderer.render(&spec, self.now) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(key = %w.key, "a waiting request cannot be rendered: {e}");
                    continue;
                }
            };
            let layout = &self.opts.layout;
            let Some(cluster) = layout.named(&name) else {
                continue;
            };
            let file = layout.file(cluster, &w.key);
            let change = Change::Write {
                file: file.clone(),
                content: rendered.content.clone(),
                before: None,
            };
            self.count(std::slice::from_ref(&change));
            self.queue.remove(&w.key);
            let mut o = outcome(Action::Created, &spec, file, Some(rendered));
            o.cluster = Some(name);
            o.admitted = Some(Box::new(w));
            out.outcomes.push(o);
            out.changes.push(change);
        }
    }
}

impl Planner<'_> {
    /// When requests left the queue in this plan (admitted, or their change closed), the first
    /// [`TOLD`] still waiting moved up: each with its new place, if its application owns it (the
    /// queue is read from Git: a request no configured application vouches for is not acted
    /// on). One queued by this very plan was told its place by its own reply.
    pub fn moved_up(
        &self,
        out: &Plan,
        others: &AppLookup,
    ) -> Vec<(crate::clusters::Waiting, usize, usize)> {
        let left = out
            .outcomes
            .iter()
            .any(|o| o.admitted.is_some() || o.action == Action::Dequeued);
        if !left {
            return Vec::new();
        }
        let total = self.queue.len();
        let fresh = |key: &str| {
            out.outcomes
                .iter()
                .any(|o| o.action == Action::Queued && o.file == key)
        };
        self.queue
            .entries
            .iter()
            .enumerate()
            .take(TOLD)
            .filter(|(_, w)| !fresh(&w.key) && others(w).is_some())
            .map(|(i, w)| (w.clone(), i + 1, total))
            .collect()
    }
}
