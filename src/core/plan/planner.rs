//! The planner's state across one plan: what is counted against the caps, and the queue.

use std::time::SystemTime;

use super::{Action, Change, Plan, PlanOptions};
use crate::clusters::{place, Ask, Occupancy, Placement, Queue};
use crate::error::Result;
use crate::overlay::{classify, Entry, Files};
use crate::render::Renderer;

pub(super) struct Planner<'a> {
    pub files: &'a Files,
    pub renderer: &'a Renderer,
    pub now: SystemTime,
    pub opts: &'a PlanOptions,
    /// Environments counted for `max_environments`.
    pub live: usize,
    pub queue: Queue,
    /// The changes planned so far.
    planned: Vec<Change>,
    /// Counted against the caps, once something needs it.
    occupancy: Option<Occupancy>,
}

impl<'a> Planner<'a> {
    pub fn new(
        files: &'a Files,
        renderer: &'a Renderer,
        now: SystemTime,
        opts: &'a PlanOptions,
    ) -> Self {
        // Counting means parsing every sync file: only when a cap asks for it.
        let live = match opts.max_environments {
            Some(_) => crate::overlay::records(files).len(),
            None => 0,
        };
        Planner {
            files,
            renderer,
            now,
            opts,
            live,
            queue: opts.queue.clone(),
            planned: Vec::new(),
            occupancy: None,
        }
    }

    /// Count `changes` (planned for one intent) in.
    pub fn count(&mut self, changes: &[Change]) {
        if let Some(occ) = &mut self.occupancy {
            for c in changes {
                count_change(occ, self.opts, c);
            }
        }
        self.planned.extend_from_slice(changes);
    }

    /// Where a preview of this run's application can go now, under the caps.
    pub fn place(&mut self, ask: Ask) -> Result<Placement> {
        self.place_in(ask, None)
    }

    /// [`Self::place`] for an application that may use only `allowed` clusters.
    pub fn place_in(&mut self, ask: Ask, allowed: Option<&[String]>) -> Result<Placement> {
        let mut restricted;
        let mut layout = &self.opts.layout;
        if let Some(a) = allowed {
            restricted = layout.clone();
            restricted.allowed = a.to_vec();
            layout = &restricted;
        }
        let capped = layout.max_per_author.is_some()
            || layout.clusters.iter().any(|c| c.max_previews.is_some());
        if !capped {
            return place(layout, &Occupancy::default(), ask);
        }
        let (files, opts, planned) = (self.files, self.opts, &self.planned);
        let occ = self.occupancy.get_or_insert_with(|| {
            let records = crate::overlay::records(files);
            let mut occ = Occupancy::of(&opts.layout, records.iter());
            for c in planned {
                count_change(&mut occ, opts, c);
            }
            occ
        });
        place(layout, occ, ask)
    }

    /// The file `file` as this plan leaves it: written, deleted, or as it was.
    pub fn exists_after(&self, file: &str) -> bool {
        match self.planned.iter().rev().find(|c| c.file() == file) {
            Some(Change::Write { .. }) => true,
            Some(Change::Delete { .. }) => false,
            None => self.files.contains_key(file),
        }
    }

    /// Every waiting request's place, and the queue when it changed.
    pub fn finish(self, mut out: Plan) -> Result<Plan> {
        let total = self.queue.len();
        for o in out
            .outcomes
            .iter_mut()
            .filter(|o| o.action == Action::Queued)
        {
            let key = o.file.clone();
            o.queued = self.queue.position(&key).map(|p| (p, total));
            o.file = self.opts.layout.queue_file.clone();
        }
        if self.queue != self.opts.queue {
            out.queue = Some(self.queue);
        }
        Ok(out)
    }
}

fn count_change(occ: &mut Occupancy, opts: &PlanOptions, c: &Change) {
    let layout = &opts.layout;
    let mut add = |file: &str, content: &str, delta: isize| {
        if let Some(Entry::Managed(r)) = classify(file, content) {
            occ.add(layout, &r, delta);
        }
    };
    match c {
        Change::Write {
            file,
            content,
            before,
        } => {
            if let Some(b) = before {
                add(file, b, -1);
            }
            add(file, content, 1);
        }
        Change::Delete { file, before } => add(file, before, -1),
    }
}
