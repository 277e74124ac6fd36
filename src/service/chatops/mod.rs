//! ChatOps: act on pull/merge request events — comments, close/merge, pushes, labels — in three
//! steps, so the server can apply many events in one Git transaction:
//!
//! 1. [`prepare`]: decide, check trust and the change's state with the forge, push an artifact;
//!    refusals and answers end here, before any Git.
//! 2. [`apply`]: one transaction for every prepared event (an event whose change alone would be
//!    refused is answered, and does not hold back the others).
//! 3. [`finish`]: replies, commit statuses, Flux notification and wait, per event.

mod apply;
mod deploy;
mod finish;
mod life;
mod prepare;

use std::time::Duration;

use serde_json::json;

use super::artifact::ArtifactOptions;
use super::environment::{self, Mode, Wanted};
use super::input::EnvInput;
use super::notify_wait::{NotifyOptions, WaitOptions};
use crate::chatops::LifeCommand;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::forge::{ChangeForge, DryRun, Status};
use crate::git::Store;
use crate::output::Format;
use crate::plan::Intent;
use crate::reconcile::{ConfigSource, Snapshot};
use crate::settings::Settings;

pub use apply::{apply, Applied};
pub use finish::finish;
pub use prepare::prepare;

/// What handling one event came to: `deployed`, `destroyed`, `unchanged`, `refused` or `ignored`
/// (with `--dry-run`: `would_deploy`, `would_destroy`).
#[derive(Debug, Clone)]
pub struct Handled {
    pub action: &'static str,
    pub reason: String,
    pub slug: Option<String>,
    pub commit: Option<String>,
    pub preview_url: Option<String>,
    pub notified: Option<bool>,
    pub wait: Option<crate::flux::WaitOutcome>,
}

impl Handled {
    pub fn only(action: &'static str, reason: impl Into<String>) -> Self {
        Handled {
            action,
            reason: reason.into(),
            slug: None,
            commit: None,
            preview_url: None,
            notified: None,
            wait: None,
        }
    }

    pub fn print(&self, format: Format) {
        if self.action == "ignored" {
            return crate::output::print_ignored(format, &self.reason);
        }
        match format {
            Format::Json => {
                let mut v = json!({
                    "action": self.action, "reason": self.reason, "slug": self.slug, "commit": self.commit,
                    "preview_url": self.preview_url, "changed": self.commit.is_some(),
                });
                if let Some(n) = self.notified {
                    v["notified"] = json!(n);
                }
                if let Some(w) = &self.wait {
                    v["wait"] = json!(w);
                }
                crate::output::json_line(&v);
            }
            Format::Text => {
                let mut line = format!("{}: {}", self.action, self.reason);
                if let Some(s) = &self.slug {
                    line.push_str(&format!(" (environment {s})"));
                }
                if let Some(c) = &self.commit {
                    line.push_str(&format!(", commit {c}"));
                }
                if let Some(w) = &self.wait {
                    line.push_str(&format!("; preview {}", w.describe()));
                }
                println!("{line}");
            }
        }
    }

    /// The exit status: a wait that ended badly is 6 or 7; everything handled is 0.
    pub fn status(&self) -> Result<()> {
        match self.wait.as_ref().and_then(crate::flux::WaitOutcome::error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Print a refusal in `handle`'s words.
pub fn print_refused(format: Format, reason: &str) {
    Handled::only("refused", reason).print(format);
}

/// Print a deploy's report in `handle`'s words.
pub fn print_deployed(format: Format, report: &crate::reconcile::Report, reason: &str) {
    let Some(o) = report.plan.outcomes.first() else {
        return;
    };
    let action = if o.action.changed() && report.commit.is_some() {
        "deployed"
    } else {
        "unchanged"
    };
    Handled {
        action,
        reason: reason.to_string(),
        slug: Some(o.slug.clone()),
        commit: report.commit.clone(),
        preview_url: o.rendered.as_ref().and_then(|r| r.preview_url.clone()),
        notified: None,
        wait: None,
    }
    .print(format);
}

/// What every event of a batch shares: the settings and environments read before acting, and
/// the options of the run.
pub struct Context {
    pub settings: Settings,
    pub files: crate::overlay::Files,
    pub mode: Mode,
    /// The OCI artifact to deploy (`handle --artifact DIR`), for `source: oci`.
    pub artifact: ArtifactOptions,
    pub notify: NotifyOptions,
    pub wait: Option<WaitOptions>,
    /// With `require_checks`: poll the checks this long before answering "waiting".
    pub wait_checks: Option<Duration>,
}

impl Context {
    pub fn new(first: &Snapshot, mode: Mode) -> Self {
        Context {
            settings: first.settings.clone(),
            files: first.files.clone(),
            mode,
            artifact: ArtifactOptions::default(),
            notify: NotifyOptions::default(),
            wait: None,
            wait_checks: None,
        }
    }
}

/// The first step's result.
pub enum Step<'f> {
    /// Answered, refused or ignored: nothing to commit.
    Done(Handled),
    /// A change to make in the next transaction.
    Act(Box<Pending<'f>>),
}

/// An event ready for the transaction.
pub struct Pending<'f> {
    pub event: Event,
    forge: DryRun<'f>,
    input: EnvInput,
    kind: Kind,
}

enum Kind {
    /// `only_if_present`: move an existing environment, never create one.
    Deploy {
        only_if_present: bool,
        ttl_in_force: Option<Duration>,
    },
    Destroy,
    /// Extend, sleep or wake the existing environment.
    Life {
        command: LifeCommand,
        asked: Option<Duration>,
    },
}

impl Pending<'_> {
    /// The pull/merge request this event is about: events of one change keep their order.
    pub fn key(&self) -> (String, u64) {
        (self.event.repository.clone(), self.event.change.number)
    }

    fn reply(&self, body: String) {
        if let Err(e) = self.forge.reply(self.event.change.number, &body) {
            tracing::warn!("could not reply: {e}");
        }
    }

    fn status(&self, st: Status, text: &str, url: Option<&str>) {
        if let Some(sha) = &self.event.change.sha {
            if let Err(e) = self.forge.set_status(sha, st, text, url) {
                tracing::warn!("could not set the commit status: {e}");
            }
        }
    }

    /// What the transaction should do for this event, on a fresh snapshot.
    fn wanted(&self, snap: &Snapshot) -> Result<Wanted> {
        match &self.kind {
            Kind::Deploy {
                only_if_present,
                ttl_in_force,
            } => {
                let mut spec = self.input.spec(&snap.settings)?;
                spec.refresh = ttl_in_force.is_some();
                // A push to a change whose request waits in the queue updates the request (it
                // keeps its place): admitted later, it deploys the new head.
                let waiting = snap.queue.position(spec.key()).is_some();
                if *only_if_present && !present_for(snap, &spec) && !waiting {
                    return Ok(Wanted::Nothing(
                        "new commits, but no environment to move".into(),
                    ));
                }
                Ok(Wanted::Intent(Intent::Upsert(spec)))
            }
            Kind::Destroy => environment::destroy_intent(&self.input)(snap),
            Kind::Life { command, asked } => crate::service::lifecycle::commands::wanted(
                &self.input,
                command,
                *asked,
                snap,
                std::time::SystemTime::now(),
            ),
        }
    }
}

/// One event, start to end (`handle`): prepare, apply alone, finish, print.
pub fn handle(
    event: Event,
    forge: &dyn ChangeForge,
    ctx: &Context,
    store: &Store,
    config: &ConfigSource,
    first: Snapshot,
) -> Result<()> {
    let handled = match prepare(event, forge, ctx)? {
        Step::Done(h) => h,
        Step::Act(p) => {
            let applied = apply(store, config, Some(first), &[&*p], &ctx.mode)
                .pop()
                .unwrap_or_else(|| Err(Error::internal("no result")));
            finish(&p, applied, ctx)?
        }
    };
    handled.print(ctx.mode.format);
    handled.status()
}

/// Whether `spec`'s environment exists and belongs to the same owner (a push moves only the
/// environment of its own pull/merge request).
fn present_for(snap: &Snapshot, spec: &crate::model::EnvSpec) -> bool {
    match snap
        .settings
        .layout
        .lookup(&snap.files, spec.key())
        .and_then(|(file, c)| crate::overlay::classify(&file, c))
    {
        Some(crate::overlay::Entry::Managed(r)) => {
            !r.owner().conflicts(&spec.owner()) && r.branch == spec.branch
        }
        _ => false,
    }
}

fn describe(t: &crate::events::Trigger) -> String {
    use crate::events::Trigger;
    match t {
        Trigger::Comment(_) => "asked in a comment".into(),
        Trigger::Closed { merged: true } => "the pull/merge request was merged".into(),
        Trigger::Closed { merged: false } => "the pull/merge request was closed".into(),
        Trigger::Pushed { .. } => "pushed new commits".into(),
        Trigger::Labels { .. } => "changed the labels".into(),
        Trigger::ReadyForReview { .. } => "marked it ready for review".into(),
        Trigger::ChecksCompleted { .. } => "its checks passed".into(),
    }
}
