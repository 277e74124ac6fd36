//! The pure planner: (files in the instances directory, what is wanted) → changes.
//!
//! Deploy, destroy and cleanup are all the same call with different intents.

use std::time::SystemTime;

use serde::Serialize;

mod admit;
mod planner;
mod remove;
mod upsert;

use crate::clusters::{Layout, Queue, Waiting};
use crate::error::Result;
use crate::model::{EnvSpec, Owner};
use crate::overlay::Files;
use crate::render::{Rendered, Renderer};
use planner::Planner;

/// What somebody wants for one environment. (A plan holds a handful of these: the size
/// difference between the variants costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// The environment should exist as described.
    Upsert(EnvSpec),
    /// The environment should not exist.
    Remove(Removal),
}

/// An environment to remove, and who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub slug: String,
    /// The sync file's key when it is not the slug (see [`EnvSpec::key`]).
    pub key: Option<String>,
    /// When given, the environment must belong to this branch (a mismatch is an error).
    pub branch: Option<String>,
    /// Who asks: another owner's environment is left alone.
    pub requester: Owner,
    /// The slug was named directly (`destroy --slug`): a file of an earlier version,
    /// `sync-<slug>.yaml` without an owner, is found by it too.
    pub exact: bool,
}

/// One file change, relative to the instances directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Write {
        file: String,
        content: String,
        before: Option<String>,
    },
    Delete {
        file: String,
        before: String,
    },
}

impl Change {
    pub fn file(&self) -> &str {
        match self {
            Change::Write { file, .. } | Change::Delete { file, .. } => file,
        }
    }
}

/// What happened to one environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Destroyed,
    #[default]
    Absent,
    /// No allowed cluster had room: it waits in the queue.
    Queued,
    /// Taken out of the queue before it got room.
    Dequeued,
}

impl Action {
    pub fn changed(self) -> bool {
        matches!(
            self,
            Action::Created
                | Action::Updated
                | Action::Destroyed
                | Action::Queued
                | Action::Dequeued
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    pub slug: String,
    /// Relative to the instances directory (with clusters, to their common directory).
    pub file: String,
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub rendered: Option<Rendered>,
    /// The cluster it is in (or was removed from).
    pub cluster: Option<String>,
    /// It moved here from this cluster.
    pub moved_from: Option<String>,
    /// Its place in the queue and the queue's length, when it waits.
    pub queued: Option<(usize, usize)>,
    /// Why it waits.
    pub waits_for: Option<String>,
    /// It waited in the queue and was admitted by this change.
    pub admitted: Option<Box<crate::clusters::Waiting>>,
    /// An admitted request's GitHub Deployments or GitLab environment, named as its
    /// application's configuration says.
    pub deployment_environment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Record a new deploy time even when nothing else changed (extends a time to live).
    pub refresh: bool,
    /// Refuse to create an environment beyond this many.
    pub max_environments: Option<usize>,
    /// The clusters and caps (the default: one cluster, no caps).
    pub layout: Layout,
    /// The requests waiting for room, as read.
    pub queue: Queue,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub outcomes: Vec<Outcome>,
    /// The queue after this plan, when it changed (`None` inside: it is empty now).
    pub queue: Option<Queue>,
    /// Requests still waiting that moved up because others left the queue, with their new
    /// place and the queue's length: the first [`TOLD`], each owned by a configured application.
    pub moved_up: Vec<(Waiting, usize, usize)>,
}

/// How many waiting requests are told their new place after a plan that moved the queue (so a
/// long queue does not spend the forge's request budget on every commit; the others are told as
/// they come within reach).
pub const TOLD: usize = 25;

/// How a queued request of an application is rendered when its turn comes: that application's
/// renderer and the clusters it may use.
pub struct Admission<'r> {
    pub renderer: &'r Renderer,
    pub allowed: Vec<String>,
}

/// The [`Admission`] of a waiting request's application; `None`: it keeps waiting.
pub type AppLookup<'r> = dyn Fn(&Waiting) -> Option<Admission<'r>> + 'r;

impl Outcome {
    /// The clusters this outcome touched (where it is, and where it moved from).
    pub fn clusters(&self) -> Vec<String> {
        self.cluster
            .iter()
            .chain(&self.moved_from)
            .cloned()
            .collect()
    }
}

impl Plan {
    /// Every cluster a changed outcome touched, each once.
    pub fn clusters(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .outcomes
            .iter()
            .filter(|o| o.action.changed())
            .flat_map(Outcome::clusters)
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.queue.is_none()
    }

    /// The commit message: a summary line naming every action, then one line per environment.
    pub fn commit_message(&self) -> String {
        let changed: Vec<&Outcome> = self
            .outcomes
            .iter()
            .filter(|o| o.action.changed())
            .collect();
        let verb = |o: &Outcome| match (o.action, &o.admitted, &o.moved_from) {
            (Action::Created, Some(_), _) => "admit",
            (Action::Created, None, _) => "deploy",
            (Action::Updated, _, Some(_)) => "move",
            (Action::Updated, _, None) => "update",
            (Action::Queued, _, _) => "queue",
            (Action::Dequeued, _, _) => "unqueue",
            _ => "destroy",
        };
        let mut msg = match changed.as_slice() {
            [one] => format!("flux-ephemeral: {} {}", verb(one), one.slug),
            many => format!("flux-ephemeral: change {} environments", many.len()),
        };
        msg.push_str("\n\n");
        for o in &changed {
            msg.push_str(&format!("{} {}", verb(o), o.slug));
            if let Some(b) = &o.branch {
                msg.push_str(&format!(" (branch {b}"));
                match &o.sha {
                    Some(sha) => msg.push_str(&format!(" at {sha})")),
                    None => msg.push(')'),
                }
            }
            msg.push_str(&format!(": {}\n", o.file));
        }
        msg
    }
}

/// Plan the changes that bring `files` to what `intents` ask for (queued requests wait: see
/// [`plan_admitting`]).
pub fn plan(
    files: &Files,
    intents: &[Intent],
    renderer: &Renderer,
    now: SystemTime,
    opts: &PlanOptions,
) -> Result<Plan> {
    plan_admitting(files, intents, renderer, now, opts, &|_| None)
}

/// [`plan`], admitting queued requests of any application `others` knows how to render.
pub fn plan_admitting(
    files: &Files,
    intents: &[Intent],
    renderer: &Renderer,
    now: SystemTime,
    opts: &PlanOptions,
    others: &AppLookup,
) -> Result<Plan> {
    let mut planner = Planner::new(files, renderer, now, opts);
    let mut out = Plan::default();
    for intent in intents {
        let (outcome, change) = match intent {
            Intent::Upsert(spec) => planner.upsert(spec)?,
            Intent::Remove(target) => planner.remove(target)?,
        };
        planner.count(&change);
        out.outcomes.push(outcome);
        out.changes.extend(change);
    }
    planner.admit(&mut out, others);
    out.moved_up = planner.moved_up(&out, others);
    planner.finish(out)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod cluster_tests;
