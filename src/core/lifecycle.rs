//! A preview's life, the pure part: from what its sync file records and the clock, what the
//! lifecycle pass does to it. In this order: warn before it expires, put it to sleep (idle, or
//! outside office hours) or wake it (office hours began), remove it when it expired.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::awake_hours::AwakeHours;
use crate::model::{format_time, EnvRecord, SleepReason};

/// The lifecycle settings of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The configured time to live, for records without their own.
    pub ttl: Option<Duration>,
    /// No environment lives longer than this after its last activity.
    pub max_ttl: Duration,
    /// Warn this long before expiry (never more than half the time to live).
    pub warn_before: Duration,
    /// Sleep after this long without activity; off when `None`.
    pub sleep_after: Option<Duration>,
    /// Office hours; outside them, everything sleeps.
    pub awake_hours: Option<AwakeHours>,
}

pub const DEFAULT_WARN_BEFORE: Duration = Duration::from_secs(24 * 3600);

/// What the pass does to one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Post the expiry warning once for this expiry.
    Warn {
        #[serde(serialize_with = "as_time")]
        expires_at: SystemTime,
    },
    Sleep {
        reason: SleepReason,
    },
    /// Office hours began: wake what they put to sleep.
    Wake,
    Expire {
        #[serde(serialize_with = "as_time")]
        expires_at: SystemTime,
    },
}

fn as_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*t))
}

/// The record's own time to live, else the configured one; capped by `max_ttl`.
pub fn ttl_of(r: &EnvRecord, p: &Policy) -> Option<Duration> {
    r.ttl
        .as_deref()
        .and_then(|t| humantime::parse_duration(t.trim()).ok())
        .or(p.ttl)
        .map(|t| t.min(p.max_ttl))
}

/// When the environment expires. The recorded expiry, never later than the last activity plus
/// `max_ttl` (a hand-edited annotation cannot keep it forever); without one, the last activity
/// plus its time to live. A recorded expiry that does not parse counts as the cap; a record whose
/// activity time does not parse has expired. `None`: no time to live applies.
pub fn expiry(r: &EnvRecord, p: &Policy) -> Option<SystemTime> {
    let life = r.lifecycle();
    let garbage_time = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| crate::model::parse_time(s).is_none())
    };
    let Some(active) = life.active_at else {
        // Neither active-at nor deployed-at reads as a time.
        return (garbage_time(&r.active_at) || garbage_time(&r.deployed_at))
            .then_some(SystemTime::UNIX_EPOCH);
    };
    let cap = active.checked_add(p.max_ttl);
    match (life.expires_at, garbage_time(&r.expires_at)) {
        (Some(e), _) => Some(cap.map_or(e, |c| e.min(c))),
        (None, true) => cap,
        (None, false) => ttl_of(r, p).and_then(|t| active.checked_add(t)),
    }
}

/// How far ahead of the expiry the warning goes: `warn_before`, at most half the time to live.
pub fn warn_window(r: &EnvRecord, p: &Policy) -> Duration {
    match ttl_of(r, p) {
        Some(ttl) => p.warn_before.min(ttl / 2),
        None => p.warn_before,
    }
}

/// How far ahead of the pass's clock a recorded activity time may be (another runner's clock).
/// flux-ephemeral never records a time ahead of its own clock, so a later one was written by
/// hand: like an activity time that does not read, it cannot be vouched for, and the environment
/// expires. That keeps `max_ttl` a cap nobody can lift by editing `active-at`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Whether `r`'s activity time is ahead of the clock `now` by more than [`CLOCK_SKEW`].
pub fn ahead_of(r: &EnvRecord, now: SystemTime) -> bool {
    let ahead = now.checked_add(CLOCK_SKEW).unwrap_or(now);
    r.lifecycle().active_at.is_some_and(|a| a > ahead)
}

/// What the pass does to `r` at `now`, in order. An expired environment is only removed.
pub fn steps(r: &EnvRecord, now: SystemTime, p: &Policy) -> Vec<Step> {
    let life = r.lifecycle();
    if ahead_of(r, now) {
        return vec![Step::Expire { expires_at: now }];
    }
    let expires = expiry(r, p);
    if let Some(e) = expires.filter(|e| *e <= now) {
        return vec![Step::Expire { expires_at: e }];
    }
    let mut out = Vec::new();
    if let Some(e) = expires {
        let due = e
            .duration_since(now)
            .is_ok_and(|left| left <= warn_window(r, p));
        if due && life.warned_for.as_deref() != Some(format_time(e).as_str()) {
            out.push(Step::Warn { expires_at: e });
        }
    }
    let awake_now = p.awake_hours.as_ref().map(|h| h.is_awake(now));
    match life.sleeping {
        None => {
            let idle = match (p.sleep_after, life.active_at) {
                (Some(after), Some(active)) => {
                    now.duration_since(active).is_ok_and(|idle| idle >= after)
                }
                _ => false,
            };
            if awake_now == Some(false) {
                out.push(Step::Sleep {
                    reason: SleepReason::OfficeHours,
                });
            } else if idle {
                out.push(Step::Sleep {
                    reason: SleepReason::Idle,
                });
            }
        }
        Some((_, SleepReason::OfficeHours)) if awake_now != Some(false) => out.push(Step::Wake),
        Some(_) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    fn rec(active: &str, expires: Option<&str>) -> EnvRecord {
        EnvRecord {
            slug: "s".into(),
            file: "sync-s.yaml".into(),
            branch: "b".into(),
            name: None,
            app: None,
            forge: None,
            repository: None,
            artifact: None,
            sha: None,
            id: Some("1".into()),
            author: None,
            environment: None,
            deployed_at: Some(active.into()),
            ttl: None,
            title: None,
            active_at: Some(active.into()),
            expires_at: expires.map(Into::into),
            sleeping_since: None,
            sleep_reason: None,
            warned_for: None,
            source_url: None,
            cluster: None,
        }
    }

    fn policy() -> Policy {
        Policy {
            ttl: Some(Duration::from_secs(72 * H)),
            max_ttl: Duration::from_secs(7 * 24 * H),
            warn_before: DEFAULT_WARN_BEFORE,
            sleep_after: Some(Duration::from_secs(2 * H)),
            awake_hours: None,
        }
    }

    #[test]
    fn table() {
        let p = policy();
        let deployed = "2026-11-30T08:00:00Z";
        let mut warned = rec(deployed, Some("2026-12-03T08:00:00Z"));
        warned.warned_for = Some("2026-12-03T08:00:00Z".into());
        let mut asleep = rec(deployed, Some("2026-12-03T08:00:00Z"));
        asleep.sleeping_since = Some("2026-11-30T10:00:00Z".into());
        asleep.sleep_reason = Some("idle".into());
        let mut garbage = rec(deployed, Some("next tuesday"));
        garbage.ttl = Some("forever".into());
        let mut garbage_active = rec("yesterday", None);
        garbage_active.deployed_at = Some("yesterday".into());
        let cases: Vec<(&str, EnvRecord, &str, Vec<&str>)> = vec![
            (
                "fresh",
                rec(deployed, Some("2026-12-03T08:00:00Z")),
                "2026-11-30T09:00:00Z",
                vec![],
            ),
            (
                "idle two hours",
                rec(deployed, Some("2026-12-03T08:00:00Z")),
                "2026-11-30T10:00:00Z",
                vec!["sleep"],
            ),
            (
                "inside the warning window",
                rec(deployed, Some("2026-12-03T08:00:00Z")),
                "2026-12-02T09:00:00Z",
                vec!["warn", "sleep"],
            ),
            (
                "warned already for this expiry",
                warned.clone(),
                "2026-12-02T09:00:00Z",
                vec!["sleep"],
            ),
            (
                "asleep and warned",
                {
                    let mut w = asleep.clone();
                    w.warned_for = warned.warned_for.clone();
                    w
                },
                "2026-12-02T09:00:00Z",
                vec![],
            ),
            (
                "expired",
                rec(deployed, Some("2026-12-03T08:00:00Z")),
                "2026-12-03T08:00:00Z",
                vec!["expire"],
            ),
            (
                "no expiry recorded: active + ttl",
                rec(deployed, None),
                "2026-12-03T08:00:01Z",
                vec!["expire"],
            ),
            (
                "extended beyond the cap",
                rec(deployed, Some("2027-06-01T00:00:00Z")),
                "2026-12-07T08:00:00Z",
                vec!["expire"],
            ),
            (
                "garbage expiry: the cap",
                garbage.clone(),
                "2026-12-07T07:59:59Z",
                vec!["warn", "sleep"],
            ),
            (
                "garbage expiry at the cap",
                garbage,
                "2026-12-07T08:00:00Z",
                vec!["expire"],
            ),
            (
                "garbage activity: expired",
                garbage_active,
                "2026-11-30T09:00:00Z",
                vec!["expire"],
            ),
        ];
        for (what, r, now, want) in cases {
            let got: Vec<&str> = steps(&r, at(now), &p)
                .iter()
                .map(|s| match s {
                    Step::Warn { .. } => "warn",
                    Step::Sleep { .. } => "sleep",
                    Step::Wake => "wake",
                    Step::Expire { .. } => "expire",
                })
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn the_warning_window_is_at_most_half_the_time_to_live() {
        let p = Policy {
            ttl: Some(Duration::from_secs(10 * H)),
            ..policy()
        };
        let r = rec("2026-11-30T08:00:00Z", None);
        assert_eq!(warn_window(&r, &p), Duration::from_secs(5 * H));
        // 4 h before expiry: warn; 6 h before: not yet.
        assert!(
            steps(&r, at("2026-11-30T14:00:00Z"), &p).contains(&Step::Warn {
                expires_at: at("2026-11-30T18:00:00Z")
            })
        );
        assert!(!steps(&r, at("2026-11-30T12:00:00Z"), &p)
            .iter()
            .any(|s| matches!(s, Step::Warn { .. })));
    }

    #[test]
    fn office_hours_sleep_everything_and_wake_only_their_own() {
        let p = Policy {
            sleep_after: None,
            awake_hours: Some(AwakeHours::parse("Mon-Fri 07:00-20:00 UTC").unwrap()),
            ..policy()
        };
        let r = rec("2026-11-30T08:00:00Z", Some("2026-12-03T08:00:00Z"));
        assert_eq!(
            steps(&r, at("2026-11-30T20:00:00Z"), &p),
            vec![Step::Sleep {
                reason: SleepReason::OfficeHours
            }]
        );
        let mut night = r.clone();
        night.sleeping_since = Some("2026-11-30T20:00:00Z".into());
        night.sleep_reason = Some("office-hours".into());
        assert!(steps(&night, at("2026-12-01T03:00:00Z"), &p).is_empty());
        assert_eq!(
            steps(&night, at("2026-12-01T07:00:00Z"), &p),
            vec![Step::Wake]
        );
        // Asked to sleep, or idle: office hours do not wake it.
        let mut asked = night.clone();
        asked.sleep_reason = Some("requested".into());
        assert!(steps(&asked, at("2026-12-01T07:00:00Z"), &p).is_empty());
    }
}

#[cfg(test)]
mod hand_edited {
    use super::*;

    fn rec(active: &str, expires: Option<&str>) -> EnvRecord {
        let mut r = EnvRecord {
            slug: "s".into(),
            file: "sync-s.yaml".into(),
            branch: "b".into(),
            id: Some("1".into()),
            ..EnvRecord::default()
        };
        r.active_at = Some(active.into());
        r.deployed_at = Some("2026-11-30T08:00:00Z".into());
        r.expires_at = expires.map(Into::into);
        r
    }

    fn policy() -> Policy {
        Policy {
            ttl: Some(Duration::from_secs(48 * 3600)),
            max_ttl: Duration::from_secs(72 * 3600),
            warn_before: DEFAULT_WARN_BEFORE,
            sleep_after: None,
            awake_hours: Some(AwakeHours::parse("Mon-Fri 07:00-20:00 UTC").unwrap()),
        }
    }

    #[test]
    fn an_activity_time_ahead_of_the_clock_cannot_keep_a_preview() {
        let now = humantime::parse_rfc3339("2026-11-30T21:00:00Z").unwrap();
        for (active, expires) in [
            ("9999-12-31T23:00:00Z", None),
            ("2999-01-01T00:00:00Z", Some("2999-01-04T00:00:00Z")),
            ("2026-12-01T00:00:00Z", None),
        ] {
            assert_eq!(
                steps(&rec(active, expires), now, &policy()),
                vec![Step::Expire { expires_at: now }],
                "{active}"
            );
        }
        // Within the clock skew allowed between runners, it is believed.
        let near = rec("2026-11-30T21:30:00Z", None);
        assert!(!steps(&near, now, &policy())
            .iter()
            .any(|s| matches!(s, Step::Expire { .. })));
    }

    #[test]
    fn times_beyond_rfc3339_are_written_not_panicked_on() {
        let r = rec("9999-12-31T23:00:00Z", None);
        let e = expiry(&r, &policy()).unwrap();
        assert_eq!(format_time(e), "9999-12-31T23:59:59Z");
    }
}
