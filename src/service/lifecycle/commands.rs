//! The lifecycle commands on one environment: extend, sleep, wake. Shared by ChatOps
//! (`/extend-ephemeral`, `/sleep-ephemeral`, `/wake-ephemeral`), the CLI (`flux-ephemeral extend |
//! sleep | wake`) and the lifecycle pass. Each renders the environment again from its own sync
//! file with only its life changed, so what it previews stays as recorded.

use std::time::{Duration, SystemTime};

use crate::chatops::LifeCommand;
use crate::error::Result;
use crate::lifecycle::{expiry, ttl_of};
use crate::model::{EnvRecord, EnvSpec, SleepReason};
use crate::overlay::{classify, Entry};
use crate::plan::Intent;
use crate::reconcile::Snapshot;
use crate::service::environment::Wanted;
use crate::service::input::EnvInput;
use crate::settings::Settings;

/// The environment `input` names, with its file's content, when it exists and is ours.
pub fn find(input: &EnvInput, snap: &Snapshot) -> Result<Option<(EnvRecord, String)>> {
    let slug = input.slug(&snap.settings)?;
    let key = snap.settings.application.key(&slug).unwrap_or(slug);
    let Some((file, content)) = snap.settings.layout.lookup(&snap.files, &key) else {
        return Ok(None);
    };
    match classify(&file, content) {
        Some(Entry::Managed(r)) => {
            let requester = input.requester(&snap.settings)?;
            if r.owner().conflicts(&requester) {
                return Err(crate::error::Error::input(format!(
                    "environment {} belongs to {}; {} may not change it",
                    r.slug,
                    r.owner().describe(),
                    requester.describe()
                )));
            }
            Ok(Some((*r, content.to_string())))
        }
        _ => Ok(None),
    }
}

/// The longest extension asked for and what was granted: asking for more than `max_ttl` gets
/// `max_ttl`.
pub fn granted(
    asked: Option<Duration>,
    record: &EnvRecord,
    settings: &Settings,
) -> (Duration, bool) {
    let policy = &settings.lifecycle;
    let wanted = asked
        .or_else(|| ttl_of(record, policy))
        .unwrap_or(policy.max_ttl);
    (wanted.min(policy.max_ttl), wanted > policy.max_ttl)
}

/// The spec of `record` after `command` at `now`. Extending sets the expiry to now + the grant
/// and re-arms the warning; sleeping and waking keep the expiry; every command is activity.
pub fn changed_spec(
    record: &EnvRecord,
    content: &str,
    command: &LifeCommand,
    asked: Option<Duration>,
    settings: &Settings,
    now: SystemTime,
) -> EnvSpec {
    let mut spec = crate::service::lifecycle::respec::spec_of(record, content, settings);
    let life = &mut spec.lifecycle;
    life.expires_at = if crate::lifecycle::ahead_of(record, now) {
        // A hand-written activity time ahead of the clock is not kept: the command is the
        // activity, and the expiry counts from it.
        let policy = &settings.lifecycle;
        now.checked_add(ttl_of(record, policy).unwrap_or(policy.max_ttl))
    } else {
        expiry(record, &settings.lifecycle)
    };
    life.active_at = Some(now);
    match command {
        LifeCommand::Extend { .. } => {
            let (grant, _) = granted(asked, record, settings);
            life.expires_at = now.checked_add(grant);
            life.warned_for = None;
        }
        LifeCommand::Sleep => {
            if life.sleeping.is_none() {
                life.sleeping = Some((now, SleepReason::Requested));
            }
        }
        LifeCommand::Wake => life.sleeping = None,
    }
    spec
}

/// What the transaction does for `command` on the environment `input` names.
pub fn wanted(
    input: &EnvInput,
    command: &LifeCommand,
    asked: Option<Duration>,
    snap: &Snapshot,
    now: SystemTime,
) -> Result<Wanted> {
    let Some((record, content)) = find(input, snap)? else {
        return Ok(Wanted::Nothing(crate::replies::nothing_to(command)));
    };
    let asleep = record.lifecycle().sleeping.is_some();
    match command {
        LifeCommand::Sleep if asleep => {
            return Ok(Wanted::Nothing(format!(
                "{} is asleep already",
                record.slug
            )))
        }
        LifeCommand::Wake if !asleep => {
            return Ok(Wanted::Nothing(format!("{} is awake", record.slug)))
        }
        _ => {}
    }
    let spec = changed_spec(&record, &content, command, asked, &snap.settings, now);
    Ok(Wanted::Intent(Intent::Upsert(spec)))
}

/// `flux-ephemeral extend | sleep | wake`: the command on the environment `input` names, in one
/// commit; nothing to do (no environment, already asleep) commits nothing and says why.
pub fn run(
    repo: &crate::service::environment::Repo,
    input: &EnvInput,
    command: &LifeCommand,
    asked: Option<Duration>,
    notify: &crate::service::notify_wait::NotifyOptions,
    mode: &crate::service::environment::Mode,
) -> Result<()> {
    use crate::service::environment::open;
    if input.slug.is_none() {
        input.branch()?;
    }
    let (store, mut config) = open(repo, mode.dry_run)?;
    config.origin = input.origin();
    let first = crate::reconcile::first_snapshot(&store, &mut config)?;
    let settings = first.settings.clone();
    let now = SystemTime::now();
    let done = crate::service::environment::run(
        &store,
        &config,
        Some(first),
        input.environment.as_deref(),
        mode,
        &mut |snap: &Snapshot| wanted(input, command, asked, snap, now),
    )?;
    crate::service::environment::notify_and_finish(done, &store, &settings, notify, mode)
}

/// What the change is told after `command` changed its preview `slug` — the same words whether
/// a comment or the previews page asked (`why`). `expires`: the expiry the file now records;
/// `capped`: the maximum an extension was cut to.
pub fn told(
    command: &LifeCommand,
    slug: &str,
    expires: Option<SystemTime>,
    capped: Option<Duration>,
    why: &str,
    settings: &Settings,
    now: SystemTime,
) -> String {
    match command {
        LifeCommand::Extend { .. } => {
            crate::replies::extended(slug, expires.unwrap_or(now), now, capped)
        }
        LifeCommand::Sleep => crate::replies::asleep(slug, why, &settings.commands),
        LifeCommand::Wake => crate::replies::waking(slug),
    }
}
