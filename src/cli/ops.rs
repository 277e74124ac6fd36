//! Deploy and destroy, shared by `deploy`, `destroy`, `env` and `handle`: one reconcile each.

use std::cell::RefCell;
use std::path::PathBuf;

use super::args::{EnvInput, RepoArgs, SettingsArgs};
use super::artifact::ArtifactArgs;
use super::flux::{NotifyArgs, WaitArgs};
use crate::config::FileConfig;
use crate::error::Result;
use crate::git::Store;
use crate::output::Extras;
use crate::output::{print_ignored, print_single, write_dotenv};
use crate::plan::{Intent, PlanOptions, Removal};
use crate::reconcile::first_snapshot;
use crate::reconcile::{reconcile, ConfigSource, Report, RunOptions, Snapshot};

/// How a deploy or destroy runs and reports.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    pub dry_run: bool,
    pub format: super::Format,
    pub dotenv: Option<PathBuf>,
    /// Record a new deploy time even when nothing else changed.
    pub refresh: bool,
}

/// What one reconcile did.
pub enum Done {
    Report(Box<Report>),
    /// Nothing was asked: the filters rejected the environment, or the intent was skipped.
    Ignored(String),
}

/// The store and settings. `dry_run`: create nothing, not even the demo repository.
pub fn open(
    repo: &RepoArgs,
    settings: &SettingsArgs,
    dry_run: bool,
) -> Result<(Store, ConfigSource)> {
    super::args::check_ttl(&settings.ttl)?;
    let location = repo.location(dry_run)?;
    let config = ConfigSource::load(repo.config.as_deref(), settings.to_file_config())?;
    let config = ConfigSource {
        flags: FileConfig {
            target_branch: repo.target_branch.clone(),
            ..config.flags
        },
        ..config
    };
    let store = Store::open(location, repo.auth()?, repo.cache_dir.as_deref())?;
    Ok((store, config))
}

/// Run the intent built from each fresh snapshot, unless the environment filters reject it.
/// An intent of `Err(reason)` means "nothing to do". `first`: see [`reconcile`].
pub fn run(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    environment: Option<&str>,
    mode: &Mode,
    intent: &dyn Fn(&Snapshot) -> Result<std::result::Result<Intent, String>>,
) -> Result<Done> {
    let ignored: RefCell<Option<String>> = RefCell::new(None);
    let intents = |snap: &Snapshot| {
        if let Some(reason) = environment.and_then(|e| snap.settings.filter.rejects(e)) {
            *ignored.borrow_mut() = Some(reason);
            return Ok(vec![]);
        }
        match intent(snap)? {
            Ok(i) => Ok(vec![i]),
            Err(reason) => {
                *ignored.borrow_mut() = Some(reason);
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
    };
    let report = reconcile(store, config, first, &intents, &opts)?;
    Ok(match ignored.into_inner() {
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

pub fn deploy_intent(
    input: &EnvInput,
) -> impl Fn(&Snapshot) -> Result<std::result::Result<Intent, String>> + '_ {
    move |snap| Ok(Ok(Intent::Upsert(input.spec(&snap.settings)?)))
}

pub fn destroy_intent(
    input: &EnvInput,
) -> impl Fn(&Snapshot) -> Result<std::result::Result<Intent, String>> + '_ {
    move |snap| {
        let slug = input.slug(&snap.settings)?;
        // A slug derived from the branch must belong to that branch; a given slug (GitLab's) is
        // the environment's own name.
        let branch = if input.slug.is_none() {
            input.branch.clone()
        } else {
            None
        };
        Ok(Ok(Intent::Remove(Removal {
            key: snap.settings.application.key(&slug),
            slug,
            branch,
            requester: input.requester(&snap.settings)?,
            exact: input.slug.is_some(),
        })))
    }
}

/// What a deploy does besides the commit: push an artifact first, notify Flux and wait after.
pub struct Steps<'a> {
    pub artifact: &'a ArtifactArgs,
    pub notify: &'a NotifyArgs,
    pub wait: Option<&'a WaitArgs>,
}

pub fn deploy(
    repo: &RepoArgs,
    settings: &SettingsArgs,
    input: &EnvInput,
    steps: &Steps,
    mode: &Mode,
) -> Result<()> {
    input.branch()?;
    let (store, mut config) = open(repo, settings, mode.dry_run)?;
    config.origin = input.origin();
    // The settings first: with an artifact, it is packed and pushed before the transaction, and
    // the same snapshot serves the transaction's first attempt.
    let first = first_snapshot(&store, &mut config)?;
    let the_settings = first.settings.clone();
    let (input, pushed) = steps.artifact.prepare(&the_settings, input, mode.dry_run)?;
    let done = run(
        &store,
        &config,
        Some(first),
        input.environment.as_deref(),
        mode,
        &deploy_intent(&input),
    )?;
    let Done::Report(report) = &done else {
        return finish(done, &store, mode, &Extras::default());
    };
    let notified = steps.notify.notify(
        &the_settings,
        &report.target_branch,
        report.commit.as_deref(),
        mode.dry_run,
    );
    let waited = match (steps.wait.filter(|w| w.wait), report.plan.outcomes.first()) {
        (Some(w), Some(o)) if !mode.dry_run => {
            let content = o
                .rendered
                .as_ref()
                .map(|r| r.content.as_str())
                .unwrap_or("");
            let forge = super::flux::ci_forge();
            Some(w.wait_for(content, forge.as_deref())?)
        }
        _ => None,
    };
    let extras = Extras {
        pushed: pushed.as_ref(),
        notified,
        wait: waited.as_ref(),
    };
    finish(done, &store, mode, &extras)?;
    match waited.as_ref().and_then(crate::error::Error::from_wait) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn destroy(
    repo: &RepoArgs,
    settings: &SettingsArgs,
    input: &EnvInput,
    notify: &NotifyArgs,
    mode: &Mode,
) -> Result<()> {
    if input.slug.is_none() {
        input.branch()?;
    }
    let (store, mut config) = open(repo, settings, mode.dry_run)?;
    config.origin = input.origin();
    let first = first_snapshot(&store, &mut config)?;
    let the_settings = first.settings.clone();
    let done = run(
        &store,
        &config,
        Some(first),
        input.environment.as_deref(),
        mode,
        &destroy_intent(input),
    )?;
    let notified = match &done {
        Done::Report(r) => notify.notify(
            &the_settings,
            &r.target_branch,
            r.commit.as_deref(),
            mode.dry_run,
        ),
        Done::Ignored(_) => None,
    };
    finish(
        done,
        &store,
        mode,
        &Extras {
            notified,
            ..Extras::default()
        },
    )
}
