//! Deploy and destroy one environment, shared by `deploy`, `destroy`, `env` and `handle`: one
//! reconcile each.

use super::artifact::ArtifactOptions;
use super::input::EnvInput;
use super::notify_wait::{NotifyOptions, WaitOptions};
use crate::error::{Error, Result};
use crate::git::Store;
use crate::output::Extras;
use crate::output::{print_ignored, print_single, write_dotenv};
use crate::plan::{Intent, PlanOptions, Removal};
use crate::reconcile::first_snapshot;
use crate::reconcile::{ConfigSource, Report, RunOptions, Snapshot};

pub use super::gitops::{locate, open, Repo};
pub use super::mode::Mode;

/// What one reconcile did.
pub enum Done {
    Report(Box<Report>),
    /// Nothing was asked: the filters rejected the environment, or the intent was skipped.
    Ignored(String),
}

/// What one environment needs, as decided on a fresh snapshot (short-lived: its size does not
/// matter).
#[allow(clippy::large_enum_variant)]
pub enum Wanted {
    Intent(Intent),
    /// Nothing to do, and why.
    Nothing(String),
}

/// Run the intent built from each fresh snapshot, unless the environment filters reject it.
/// `first`: see [`reconcile`].
pub fn run(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    environment: Option<&str>,
    mode: &Mode,
    intent: &mut dyn FnMut(&Snapshot) -> Result<Wanted>,
) -> Result<Done> {
    let mut ignored: Option<String> = None;
    let mut intents = |snap: &Snapshot| {
        ignored = None;
        if let Some(reason) = environment.and_then(|e| snap.settings.filter.rejects(e)) {
            ignored = Some(reason);
            return Ok(vec![]);
        }
        match intent(snap)? {
            Wanted::Intent(i) => Ok(vec![i]),
            Wanted::Nothing(reason) => {
                ignored = Some(reason);
                Ok(vec![])
            }
        }
    };
    let opts = RunOptions {
        dry_run: mode.dry_run,
        plan: PlanOptions {
            refresh: mode.refresh,
            ..PlanOptions::default()
        },
        max_attempts: 10,
        requested_by: mode.requested_by.clone(),
    };
    let report = crate::service::clusters::transaction(store, config, first, &mut intents, &opts)?;
    Ok(match ignored {
        Some(reason) => Done::Ignored(reason),
        None => Done::Report(Box::new(report)),
    })
}

fn finish(done: Done, store: &Store, mode: &Mode, extras: &Extras) -> Result<()> {
    match done {
        Done::Ignored(reason) => print_ignored(mode.format, &reason),
        Done::Report(report) => {
            print_single(
                mode.format,
                &report,
                &store.location().display(),
                mode.dry_run,
                extras,
            );
            if let Some(path) = &mode.dotenv {
                write_dotenv(path, &report)?;
            }
        }
    }
    Ok(())
}

pub fn deploy_intent(input: &EnvInput) -> impl FnMut(&Snapshot) -> Result<Wanted> + '_ {
    move |snap| Ok(Wanted::Intent(Intent::Upsert(input.spec(&snap.settings)?)))
}

pub fn destroy_intent(input: &EnvInput) -> impl FnMut(&Snapshot) -> Result<Wanted> + '_ {
    move |snap| {
        let slug = input.slug(&snap.settings)?;
        // A slug derived from the branch must belong to that branch; a given slug (GitLab's) is
        // the environment's own name.
        let branch = if input.slug.is_none() {
            input.branch.clone()
        } else {
            None
        };
        Ok(Wanted::Intent(Intent::Remove(Removal {
            key: snap.settings.application.key(&slug),
            slug,
            branch,
            requester: input.requester(&snap.settings)?,
            exact: input.slug.is_some(),
        })))
    }
}

/// What a deploy does besides the commit: push an artifact first, notify Flux and wait after.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    pub artifact: ArtifactOptions,
    pub notify: NotifyOptions,
    pub wait: Option<WaitOptions>,
}

pub fn deploy(repo: &Repo, input: &EnvInput, steps: &Steps, mode: &Mode) -> Result<()> {
    input.branch()?;
    let (store, mut config) = open(repo, mode.dry_run)?;
    config.origin = input.origin();
    // The settings first: with an artifact, it is packed and pushed before the transaction, and
    // the same snapshot serves the transaction's first attempt. Without one, a warm mirror's
    // snapshot serves it without a round trip (the push verifies it); an artifact is pushed only
    // on settings read from the remote.
    let mut first = if steps.artifact.artifact.is_some() {
        first_snapshot(&store, &mut config)?
    } else {
        crate::reconcile::cached_snapshot(&store, &mut config)?
    };
    if !first.verified && steps.artifact.wanted(&first.settings) {
        first = first_snapshot(&store, &mut config)?;
    }
    let the_settings = first.settings.clone();
    let (input, pushed) = steps.artifact.prepare(&the_settings, input, mode.dry_run)?;
    let done = run(
        &store,
        &config,
        Some(first),
        input.environment.as_deref(),
        mode,
        &mut deploy_intent(&input),
    )?;
    let Done::Report(report) = &done else {
        return finish(done, &store, mode, &Extras::default());
    };
    let notified = steps.notify.notify(
        &the_settings,
        &report.target_branch,
        report.commit.as_deref(),
        mode.dry_run,
        &report.plan.clusters(),
    );
    // A request that waits in the queue has nothing to wait for in a cluster yet.
    let placed = report
        .plan
        .outcomes
        .first()
        .filter(|o| o.action != crate::plan::Action::Queued);
    let waited = match (steps.wait.as_ref().filter(|w| w.wait), placed) {
        (Some(w), Some(o)) if !mode.dry_run => {
            let content = o
                .rendered
                .as_ref()
                .map(|r| r.content.as_str())
                .unwrap_or("");
            let forge = super::notify_wait::ci_forge();
            let context = the_settings.layout.context(o.cluster.as_deref());
            Some(w.wait_for(content, forge.as_deref(), context)?)
        }
        _ => None,
    };
    let extras = Extras {
        pushed: pushed.as_ref(),
        notified,
        wait: waited.as_ref(),
    };
    finish(done, &store, mode, &extras)?;
    match waited.as_ref().and_then(crate::flux::WaitOutcome::error) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn destroy(repo: &Repo, input: &EnvInput, notify: &NotifyOptions, mode: &Mode) -> Result<()> {
    if input.slug.is_none() {
        input.branch()?;
    }
    let (store, mut config) = open(repo, mode.dry_run)?;
    config.origin = input.origin();
    let first = first_snapshot(&store, &mut config)?;
    let the_settings = first.settings.clone();
    let done = run(
        &store,
        &config,
        Some(first),
        input.environment.as_deref(),
        mode,
        &mut destroy_intent(input),
    )?;
    notify_and_finish(done, &store, &the_settings, notify, mode)
}

/// Notify Flux when a commit landed, then print what was done.
pub(crate) fn notify_and_finish(
    done: Done,
    store: &Store,
    settings: &crate::settings::Settings,
    notify: &NotifyOptions,
    mode: &Mode,
) -> Result<()> {
    let notified = match &done {
        Done::Report(r) => notify.notify(
            settings,
            &r.target_branch,
            r.commit.as_deref(),
            mode.dry_run,
            &r.plan.clusters(),
        ),
        Done::Ignored(_) => None,
    };
    finish(
        done,
        store,
        mode,
        &Extras {
            notified,
            ..Extras::default()
        },
    )
}

/// A GitLab environment job: `start` deploys the job's branch at its commit as GitLab's
/// environment, `stop` destroys it, `prepare`, `verify` and `access` do nothing.
pub fn environment_job(repo: &Repo, steps: &Steps, mode: &Mode) -> Result<()> {
    use crate::ci::{from_process, EnvAction, Provider};
    let ci = from_process()?
        .filter(|c| c.provider == Provider::GitLab)
        .ok_or_else(|| {
            Error::input(
                "`env` runs inside a GitLab CI job with an environment (GITLAB_CI is not set)",
            )
        })?;
    let action = ci.action.ok_or_else(|| {
        Error::input("CI_ENVIRONMENT_ACTION is not set: give the job an `environment:` with `action: start` or `stop`")
    })?;
    let input = EnvInput::default().with_ci(Some(ci))?;
    match action {
        EnvAction::Start => deploy(repo, &input, steps, mode),
        EnvAction::Stop => destroy(repo, &input, &steps.notify, mode),
        EnvAction::Other => {
            print_ignored(
                mode.format,
                "CI_ENVIRONMENT_ACTION is neither start nor stop",
            );
            Ok(())
        }
    }
}
