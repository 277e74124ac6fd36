//! The gates a deploy request passes in `chatops::prepare` before it becomes a transaction: the
//! filters (drafts, bots, labels, paths) and the required checks, and the waiting request a
//! completed check releases.

use std::time::Duration;

use crate::change_filter::Skip;
use crate::checks::Gate;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::forge::ChangeForge;

/// The commit a `ChecksCompleted` event names.
pub(super) fn event_sha(t: &crate::events::Trigger) -> Option<&str> {
    match t {
        crate::events::Trigger::ChecksCompleted { sha } => Some(sha),
        _ => None,
    }
}

/// The open change whose head is `sha` and on which the bot's own latest `flux-ephemeral`
/// status says it waits for checks; its number.
pub(super) fn waiting_change(
    forge: &dyn ChangeForge,
    event: &Event,
    sha: &str,
) -> Result<Option<u64>> {
    // Only the change that asked is released, whatever else has the same head.
    match waits(forge, sha) {
        None => return Ok(None),
        Some(asked) if asked != 0 => return Ok(Some(asked)),
        Some(_) => {}
    }
    if event.change.number != 0 {
        return Ok(Some(event.change.number));
    }
    Ok(forge
        .open_changes()?
        .into_iter()
        .find(|c| c.sha == sha)
        .and_then(|c| c.number.parse().ok()))
}

/// The checks of `sha` against `required`, polled for up to `patience` while they run.
pub(super) fn gate(
    forge: &dyn ChangeForge,
    sha: &str,
    required: &[String],
    patience: Option<Duration>,
) -> Result<Gate> {
    let deadline = patience.map(|p| std::time::Instant::now() + p);
    loop {
        let gate = crate::checks::evaluate(required, &forge.checks(sha)?);
        match (&gate, deadline) {
            (Gate::Waiting(_), Some(d)) if std::time::Instant::now() < d => {
                std::thread::sleep(Duration::from_secs(10).min(d - std::time::Instant::now()));
            }
            _ => return Ok(gate),
        }
    }
}

/// Why the filters keep this change from a preview, if they do. A push that only moves an
/// existing preview is not stopped by the author or paths filters (they are about new
/// previews); the changed files are read only when `paths` is set and nothing else decided.
pub(super) fn filtered(
    c: &crate::events::Change,
    explicit: bool,
    only_if_present: bool,
    forge: &dyn ChangeForge,
    filters: &crate::change_filter::ChangeFilters,
) -> Result<Option<Skip>> {
    if let Some(skip) = crate::change_filter::check(c, explicit || only_if_present, filters) {
        return Ok(Some(skip));
    }
    if only_if_present || filters.paths.is_empty() {
        return Ok(None);
    }
    let files = forge.changed_files(c.number)?;
    let touches = crate::change_filter::touches(&files, filters).map_err(Error::config)?;
    Ok((!touches).then(|| Skip::Paths(filters.paths.clone())))
}

/// The change whose request waits on `sha`, when the bot's own latest `flux-ephemeral` status on
/// it says one does: its number (`0` for a status of an earlier version, which named none). A
/// status of that name by anyone else proves nothing.
pub(super) fn waits(forge: &dyn ChangeForge, sha: &str) -> Option<u64> {
    let statuses = forge.commit_statuses(sha).ok()?;
    let bot = forge.bot_login()?;
    statuses
        .iter()
        .filter(|s| s.context == "flux-ephemeral")
        .max_by_key(|s| s.created_at)
        .filter(|s| {
            // GitHub's pending is GitLab's running.
            matches!(s.state.as_str(), "pending" | "running")
                && s.author
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&bot))
        })
        .and_then(|s| crate::replies::waiting_for(&s.description))
}

/// Whether the request waiting on `sha` (if any) is change `number`'s.
pub(super) fn waits_for(forge: &dyn ChangeForge, sha: &str, number: u64) -> bool {
    waits(forge, sha).is_some_and(|asked| asked == 0 || asked == number)
}
