//! Every text flux-ephemeral posts on a pull/merge request, in one place. Each starts with the
//! reply marker, so the bot finds (and edits) its own comment and never acts on it.

use crate::cleanup::{Reason, Stale};
use crate::command::{ParseError, Prefixes};
use crate::events::REPLY_MARKER;

/// Left on a pull/merge request whose environment cleanup removed while it is still open.
pub fn removed_by_cleanup(s: &Stale, p: &Prefixes) -> String {
    let why = match &s.reason {
        Reason::TtlExpired { ttl, .. } => format!("it expired (time to live {ttl})"),
        other => other.describe(),
    };
    format!(
        "{REPLY_MARKER}\nflux-ephemeral removed the preview environment `{}` of branch `{}`: {why}.\n\n\
         Comment `{}` to deploy it again.",
        s.slug, s.branch, p.deploy
    )
}

/// The commit status on a head that resync did not deploy (at most 140 characters: GitHub's
/// limit for a status description).
pub fn outdated(deployed_sha: &str, deploy: &str) -> String {
    let short: String = deployed_sha.chars().take(12).collect();
    format!("Preview is at {short}, not this commit: comment {deploy} to update it")
        .chars()
        .take(140)
        .collect()
}

/// What a deploy did.
pub struct Deployed<'a> {
    pub slug: &'a str,
    pub namespace: &'a str,
    pub preview_url: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub changed: bool,
    /// When its time to live runs out, if one is in force.
    pub until: Option<String>,
    /// What Flux said, when the bot waited for it.
    pub flux: Option<&'a crate::wait_outcome::WaitOutcome>,
    /// The cluster it runs in, with `clusters` configured.
    pub cluster: Option<&'a str>,
    /// It waited in the queue and got room just now.
    pub admitted: bool,
}

pub fn deployed(d: &Deployed, p: &Prefixes) -> String {
    use crate::wait_outcome::WaitState;
    let head = match (d.flux.map(|w| w.state), d.changed) {
        (Some(WaitState::Ready), _) => "is ready",
        (Some(WaitState::Failed), _) => "failed in Flux",
        (Some(WaitState::TimedOut), _) => "is not ready yet",
        (None, true) if d.admitted => "left the queue and is being deployed",
        (None, true) => "is being deployed",
        (None, false) => "is up to date",
    };
    let mut text = format!(
        "{REPLY_MARKER}\n### Preview environment `{}` {head}\n\n| | |\n|---|---|\n",
        d.slug
    );
    if let Some(c) = d.cluster {
        text.push_str(&format!("| Cluster | `{c}` |\n"));
    }
    text.push_str(&format!("| Namespace | `{}` |\n", d.namespace));
    if let Some(url) = d.preview_url {
        text.push_str(&format!("| Preview | {url} |\n"));
    }
    if let Some(sha) = d.sha {
        text.push_str(&format!("| Commit | `{sha}` |\n"));
    }
    if let Some(c) = d.commit {
        text.push_str(&format!("| GitOps commit | `{c}` |\n"));
    }
    if let Some(u) = &d.until {
        text.push_str(&format!(
            "| Kept until | {u} (comment `{}` to keep it longer) |\n",
            p.extend
        ));
    }
    match d.flux {
        Some(w) => {
            let said = match w.state {
                WaitState::Ready => match d.preview_url {
                    Some(url) => format!("ready at {url} (in {:.0} s)", w.seconds),
                    None => format!("ready (in {:.0} s)", w.seconds),
                },
                WaitState::Failed => format!("failed: {}", w.message),
                WaitState::TimedOut => format!("not ready after {:.0} s: {}", w.seconds, w.message),
            };
            text.push_str(&format!("| Flux | {said} |\n"));
            text.push_str(&format!("\nComment `{}` to remove it.", p.destroy));
        }
        None => text.push_str(&format!(
            "\nFlux applies it within its interval. Comment `{}` to remove it.",
            p.destroy
        )),
    }
    text
}

/// The commit status (and deployment status) of a request waiting for room.
pub fn queued_status(position: usize, total: usize) -> String {
    format!("queued, position {position} of {total}")
}

/// A deploy that waits for room.
pub fn queued(slug: &str, position: usize, total: usize, why: &str, p: &Prefixes) -> String {
    format!(
        "{REPLY_MARKER}\n### Preview environment `{slug}` is queued, position {position} of {total}\n\n\
         No cluster has room for it: {why}. It is deployed, and this comment updated, as soon as \
         a preview goes away. Asking again keeps its place; comment `{}` to leave the queue.",
        p.destroy
    )
}

/// A waiting request taken out of the queue.
pub fn dequeued(slug: &str, why: &str) -> String {
    format!("{REPLY_MARKER}\nPreview environment `{slug}` left the queue ({why}); nothing was deployed.")
}

pub fn destroyed(slug: &str, commit: Option<&str>, why: &str) -> String {
    match commit {
        Some(c) => format!(
            "{REPLY_MARKER}\nPreview environment `{slug}` removed ({why}; GitOps commit `{c}`)."
        ),
        None => {
            format!("{REPLY_MARKER}\nThere is no preview environment `{slug}` to remove ({why}).")
        }
    }
}

/// Why a deploy on a pull/merge request that is not open is refused.
pub fn not_open(number: u64, state: crate::events::ChangeState) -> String {
    use crate::events::ChangeState::*;
    let how = match state {
        Merged => "merged",
        Closed => "closed",
        Open | Unknown => "not known to be open",
    };
    format!(
        "pull/merge request #{number} is {how}; no preview is deployed for it (no close event would ever remove it)"
    )
}

pub fn refused(who: &str, why: &str) -> String {
    format!("{REPLY_MARKER}\n@{who}, flux-ephemeral did not act: {why}.")
}

pub fn help(p: &Prefixes) -> String {
    format!(
        "{REPLY_MARKER}\n### flux-ephemeral\n\n\
         - `{d}` deploys this branch's head commit as a preview environment (people with write access).\n\
         - `{d} ttl=24h` does the same and removes it after 24 hours.\n\
         - `{x}` removes it. Closing or merging removes it too.\n\
         - `{e}` keeps it for another time to live (`{e} 2d`: two days from now, at most the configured maximum).\n\
         - `{s}` scales it to zero now; `{w}` wakes it (a push or a deploy wakes it too).\n\
         - `{d} help` shows this.",
        d = p.deploy,
        x = p.destroy,
        e = p.extend,
        s = p.sleep,
        w = p.wake,
    )
}

/// `2026-12-03 08:00 UTC (in 11 h)`: an instant in UTC and relative to `now`.
pub fn when(t: std::time::SystemTime, now: std::time::SystemTime) -> String {
    let utc = crate::model::format_time(t);
    let exact = utc.get(..16).unwrap_or(&utc).replace('T', " ");
    format!("{exact} UTC ({})", relative(t, now))
}

/// `in 11 h`, `3 d ago`.
pub fn relative(t: std::time::SystemTime, now: std::time::SystemTime) -> String {
    match t.duration_since(now) {
        Ok(d) => format!("in {}", rough(d)),
        Err(e) => format!("{} ago", rough(e.duration())),
    }
}

/// A duration to the unit that matters: `11 h`, `3 d`, `25 min`.
fn rough(d: std::time::Duration) -> String {
    // Rounded to the nearest unit: 22 h 59 min 59 s is `23 h`.
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let near = |unit: u64| (s + unit / 2) / unit;
    match s {
        0..=119 => "1 min".into(),
        120..=7199 => format!("{} min", near(60)),
        7200..=172_799 => format!("{} h", near(3600)),
        _ => format!("{} d", near(86_400)),
    }
}

/// The warning before expiry, posted once per expiry.
pub fn expiry_warning(
    slug: &str,
    expires: std::time::SystemTime,
    now: std::time::SystemTime,
    p: &Prefixes,
) -> String {
    format!(
        "{REPLY_MARKER}\nThe preview environment `{slug}` expires {}.\n\n\
         To keep it, comment `{}` (or `{} 2d`).",
        when(expires, now),
        p.extend,
        p.extend
    )
}

/// An environment the lifecycle pass (idle, office hours) or a command put to sleep.
pub fn asleep(slug: &str, why: &str, p: &Prefixes) -> String {
    format!(
        "{REPLY_MARKER}\nThe preview environment `{slug}` is asleep ({why}): its workloads are \
         scaled to zero. Comment `{}`, push to this branch or deploy it to wake it.",
        p.wake
    )
}

/// How the bot's pending status on a commit that waits for its checks begins: it marks the
/// request, so a completed check can release it.
pub const WAITING: &str = "waiting for checks";

/// That status (at most 140 characters), naming the change that asked (`#35` on GitHub, `!35`
/// on GitLab), so the checks' completion releases that change and no other with the same head.
pub fn waiting_status(names: &[String], number: u64, gitlab: bool) -> String {
    let sigil = if gitlab { '!' } else { '#' };
    format!("{WAITING} ({sigil}{number}): {}", names.join(", "))
        .chars()
        .take(140)
        .collect()
}

/// The change a waiting status names: `Some(n)`; `Some(0)` for one written before statuses named
/// it (`waiting for checks: …`); `None` when it is not a waiting status.
pub fn waiting_for(description: &str) -> Option<u64> {
    let rest = description.strip_prefix(WAITING)?;
    if rest.starts_with(": ") {
        return Some(0);
    }
    let number = rest
        .strip_prefix(" (#")
        .or_else(|| rest.strip_prefix(" (!"))?
        .split_once("):")?
        .0;
    number.parse().ok().filter(|n| *n > 0)
}

/// The reply to a deploy request whose commit's checks are not done.
pub fn waiting_for_checks(names: &[String]) -> String {
    format!(
        "{REPLY_MARKER}\nThe preview environment waits for {} to pass; it is deployed when they do.",
        names.join(", ")
    )
}

/// A required check failed: nothing deployed.
pub fn check_failed(name: &str) -> String {
    format!("not deployed: {name} failed")
}

/// A change the filters keep from a preview, answering a command.
pub fn skipped(why: &str) -> String {
    format!("{REPLY_MARKER}\nNo preview environment for this change: {why}.")
}

/// The answer to `/extend-ephemeral`.
pub fn extended(
    slug: &str,
    expires: std::time::SystemTime,
    now: std::time::SystemTime,
    capped: Option<std::time::Duration>,
) -> String {
    let cap = capped.map_or(String::new(), |max| {
        format!(
            " That is the longest allowed here (max_ttl {}).",
            humantime::format_duration(max)
        )
    });
    format!(
        "{REPLY_MARKER}\nThe preview environment `{slug}` now expires {}.{cap}",
        when(expires, now)
    )
}

/// The answer to `/wake-ephemeral`.
pub fn waking(slug: &str) -> String {
    format!("{REPLY_MARKER}\nThe preview environment `{slug}` is waking up: Flux scales its workloads back.")
}

/// A woken environment after the wait.
pub fn woke(slug: &str, outcome: &crate::wait_outcome::WaitOutcome) -> String {
    format!(
        "{REPLY_MARKER}\nThe preview environment `{slug}`: {}",
        outcome.describe()
    )
}

/// A lifecycle command on a change without an environment (or one already in that state).
pub fn nothing_to(command: &crate::chatops::LifeCommand) -> String {
    format!(
        "there is no preview environment to {} on this change",
        command.verb()
    )
}

pub fn mistake(e: &ParseError, p: &Prefixes) -> String {
    format!(
        "{REPLY_MARKER}\n{e}. Comment `{} help` for usage.",
        p.deploy
    )
}

pub fn failed(message: &str) -> String {
    format!("{REPLY_MARKER}\nflux-ephemeral could not update the preview environment: {message}")
}

/// A delivery kept because the GitOps repository's `.flux-ephemeral.yaml` does not read. The
/// error itself is not posted: the GitOps repository may be private while the change is public
/// (`/readyz` and the logs name it for whoever runs the bot).
pub fn waits_for_configuration() -> String {
    format!(
        "{REPLY_MARKER}\nThis waits: the GitOps repository's `.flux-ephemeral.yaml` does not read \
         (the bot's readiness check and logs say why). It is handled as soon as a commit fixes it."
    )
}
