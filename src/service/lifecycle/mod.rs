//! The lifecycle pass of `cleanup` (and `serve`'s periodic pass, which runs cleanup's logic):
//! warnings before expiry, idle and office-hours sleep, office-hours wake, in the same commit as
//! the removals. The decisions are `crate::lifecycle`'s; this renders them and speaks.

pub mod commands;
pub mod respec;

use std::collections::BTreeSet;
use std::time::SystemTime;

use serde::Serialize;

use crate::error::Error;
use crate::forge::ChangeForge;
use crate::lifecycle::{expiry, steps, Step};
use crate::model::{format_time, EnvRecord, SleepReason};
use crate::overlay::Files;
use crate::plan::Intent;
use crate::settings::Settings;

/// One environment the pass changes (it stays), and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub slug: String,
    pub file: String,
    pub branch: String,
    pub id: Option<String>,
    pub steps: Vec<Step>,
}

/// Post the expiry warnings due at `now` before anything is committed, so the mark that a
/// warning went out (`warned-for`) is recorded only for a warning that did: one whose post failed
/// is due again at the next pass. Returns the files whose warning is settled (posted, or its
/// change is not open: nobody to tell) and the failures. Without `replies` (nothing to post
/// with) every due warning counts as settled.
pub fn warn_first(
    records: &[EnvRecord],
    replies: Option<&dyn ChangeForge>,
    open: Option<&BTreeSet<String>>,
    settings: &Settings,
    now: SystemTime,
) -> (BTreeSet<String>, Vec<Error>) {
    let mut settled = BTreeSet::new();
    let mut failures = Vec::new();
    for r in records {
        let Some(expires_at) =
            steps(r, now, &settings.lifecycle)
                .into_iter()
                .find_map(|s| match s {
                    Step::Warn { expires_at } => Some(expires_at),
                    _ => None,
                })
        else {
            continue;
        };
        let (Some(replies), Some(number)) = (replies, still_open(r.id.as_deref(), open)) else {
            settled.insert(r.file.clone());
            continue;
        };
        let body = crate::replies::expiry_warning(&r.slug, expires_at, now, &settings.commands);
        match replies.reply(number, &body) {
            Ok(()) => {
                settled.insert(r.file.clone());
            }
            Err(e) => {
                tracing::warn!("expiry warning not posted (due again at the next pass): {e}");
                failures.push(e);
            }
        }
    }
    (settled, failures)
}

/// The intents for the environments in `records` that stay (none of `gone`): each one's file
/// rendered again with its warning mark, sleep or wake. A warning is marked only when it is
/// among `warned` ([`warn_first`]); otherwise it stays due.
pub fn intents(
    records: &[EnvRecord],
    gone: &BTreeSet<&str>,
    files: &Files,
    settings: &Settings,
    now: SystemTime,
    warned: &BTreeSet<String>,
) -> (Vec<Intent>, Vec<Changed>) {
    let policy = &settings.lifecycle;
    let mut out = Vec::new();
    let mut changed = Vec::new();
    for r in records.iter().filter(|r| !gone.contains(r.file.as_str())) {
        let todo: Vec<Step> = steps(r, now, policy)
            .into_iter()
            .filter(|s| match s {
                Step::Expire { .. } => false,
                Step::Warn { .. } => warned.contains(&r.file),
                _ => true,
            })
            .collect();
        let Some(content) = files.get(&r.file).filter(|_| !todo.is_empty()) else {
            continue;
        };
        let mut spec = crate::service::lifecycle::respec::spec_of(r, content, settings);
        // Neither the warning nor sleep moves the expiry.
        spec.lifecycle.expires_at = expiry(r, policy);
        for step in &todo {
            match step {
                Step::Warn { expires_at } => {
                    spec.lifecycle.warned_for = Some(format_time(*expires_at))
                }
                Step::Sleep { reason } => spec.lifecycle.sleeping = Some((now, *reason)),
                // Office hours began: awake, and idle only from now.
                Step::Wake => {
                    spec.lifecycle.sleeping = None;
                    spec.lifecycle.active_at = Some(now);
                }
                Step::Expire { .. } => {}
            }
        }
        out.push(Intent::Upsert(spec));
        changed.push(Changed {
            slug: r.slug.clone(),
            file: r.file.clone(),
            branch: r.branch.clone(),
            id: r.id.clone(),
            steps: todo,
        });
    }
    (out, changed)
}

/// The change's number, when it is one and (as far as the listing says) still open.
fn still_open(id: Option<&str>, open: Option<&BTreeSet<String>>) -> Option<u64> {
    id.filter(|id| open.is_none_or(|o| o.contains(*id)))
        .and_then(|id| id.parse().ok())
}

/// After the commit: the idle sleep notice (with the warning, when one went out in the same
/// pass), on each change that is still open. Office-hours sleep and wake say nothing (they happen every night).
/// Returns how many comments were posted and the failures (warnings, never fatal).
pub fn comment(
    changed: &[Changed],
    replies: &dyn ChangeForge,
    open: Option<&BTreeSet<String>>,
    settings: &Settings,
    now: SystemTime,
) -> (usize, Vec<Error>) {
    let mut posted = 0;
    let mut failures = Vec::new();
    for c in changed {
        let Some(number) = still_open(c.id.as_deref(), open) else {
            continue;
        };
        // One comment per change and pass (the bot keeps one comment per change, edited).
        let bodies: Vec<String> = c
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Warn { expires_at } => Some(crate::replies::expiry_warning(
                    &c.slug,
                    *expires_at,
                    now,
                    &settings.commands,
                )),
                Step::Sleep {
                    reason: SleepReason::Idle,
                } => {
                    let idle = settings
                        .lifecycle
                        .sleep_after
                        .map(|d| humantime::format_duration(d).to_string())
                        .unwrap_or_default();
                    Some(crate::replies::asleep(
                        &c.slug,
                        &format!("no activity for {idle}"),
                        &settings.commands,
                    ))
                }
                _ => None,
            })
            .collect();
        // A warning alone went out before the commit ([`warn_first`]); with an idle-sleep
        // notice the two are posted together, so the one comment keeps both.
        let idle = c.steps.iter().any(|s| {
            matches!(
                s,
                Step::Sleep {
                    reason: SleepReason::Idle
                }
            )
        });
        if bodies.is_empty() || !idle {
            continue;
        }
        let marker = crate::events::REPLY_MARKER;
        let body = format!(
            "{marker}\n{}",
            bodies
                .iter()
                .map(|b| b.trim_start_matches(marker).trim())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        match replies.reply(number, &body) {
            Ok(()) => posted += 1,
            Err(e) => {
                tracing::warn!("{e}");
                failures.push(e);
            }
        }
    }
    (posted, failures)
}

/// The whole pass over `records` for what no other repair touches (`touched`): the expired are
/// removed, the rest warned, put to sleep or woken. serve's periodic pass runs this beside its
/// resync; cleanup has its own listing of closed changes and uses [`intents`].
pub fn pass(
    records: &[EnvRecord],
    touched: &BTreeSet<&str>,
    files: &Files,
    settings: &Settings,
    now: SystemTime,
    warned: &BTreeSet<String>,
) -> (Vec<Intent>, Vec<crate::cleanup::Stale>, Vec<Changed>) {
    let candidates: Vec<EnvRecord> = records
        .iter()
        .filter(|r| !touched.contains(r.file.as_str()))
        .cloned()
        .collect();
    let policy = crate::cleanup::TtlPolicy {
        default: settings.ttl,
        max: settings.max_ttl,
    };
    let expired = crate::cleanup::stale(
        &candidates,
        &crate::cleanup::ForgeState::default(),
        now,
        policy,
    );
    let mut gone: BTreeSet<&str> = touched.clone();
    gone.extend(expired.iter().map(|s| s.file.as_str()));
    let mut out: Vec<Intent> = expired
        .iter()
        .map(|s| {
            Intent::Remove(crate::plan::Removal {
                slug: s.slug.clone(),
                key: crate::model::slug_of_file_name(&s.file).map(str::to_string),
                branch: Some(s.branch.clone()),
                requester: Default::default(),
                exact: true,
            })
        })
        .collect();
    let (life, changed) = intents(&candidates, &gone, files, settings, now, warned);
    out.extend(life);
    (out, expired, changed)
}

/// The removal notice of each expired environment whose change is still open.
pub fn comment_expired(
    expired: &[crate::cleanup::Stale],
    replies: &dyn ChangeForge,
    open: Option<&BTreeSet<String>>,
    settings: &Settings,
) -> (usize, Vec<Error>) {
    let mut posted = 0;
    let mut failures = Vec::new();
    for s in expired {
        let Some(number) = still_open(s.id.as_deref(), open) else {
            continue;
        };
        match replies.reply(
            number,
            &crate::replies::removed_by_cleanup(s, &settings.commands),
        ) {
            Ok(()) => posted += 1,
            Err(e) => failures.push(e),
        }
    }
    (posted, failures)
}
