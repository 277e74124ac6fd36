//! Which environments are stale: the pure part of `cleanup`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::EnvRecord;

/// What the forge said, read once before the Git transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgeState {
    /// Open pull/merge request numbers; `None` when no forge was asked.
    pub open: Option<BTreeSet<String>>,
    /// Available GitLab environment names; `None` when not asked.
    pub available_environments: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The pull/merge request is no longer open.
    Closed { id: String },
    /// The GitLab environment is stopped or gone.
    EnvironmentStopped { environment: String },
    /// The time to live ran out.
    TtlExpired { ttl: String, deployed_at: String },
    /// The recorded activity time is ahead of the clock: written by hand, it cannot be vouched
    /// for, so neither can the time to live.
    TimeAhead { active_at: String },
}

impl Reason {
    pub fn describe(&self) -> String {
        match self {
            Reason::Closed { id } => format!("pull/merge request {id} is no longer open"),
            Reason::EnvironmentStopped { environment } => {
                format!("GitLab environment {environment} is no longer available")
            }
            Reason::TtlExpired { ttl, deployed_at } => {
                format!("its time to live ({ttl}) ran out (deployed {deployed_at})")
            }
            Reason::TimeAhead { active_at } => format!(
                "its recorded activity time ({}) is ahead of the clock, so flux-ephemeral did not write it and cannot vouch for its time to live",
                crate::redact::remote_text(active_at, 40)
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    pub slug: String,
    pub branch: String,
    pub file: String,
    pub id: Option<String>,
    pub environment: Option<String>,
    /// `oci://HOST/REPOSITORY@sha256:…` of an OCI-sourced environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    pub reason: Reason,
}

/// The stale environments among `records`. Records the tool did not create never get here.
/// How long environments live: the default for records without their own, and the maximum any
/// record may claim (a hand-edited annotation cannot keep an environment forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    pub default: Option<Duration>,
    pub max: Duration,
}

pub fn stale(
    records: &[EnvRecord],
    forge: &ForgeState,
    now: SystemTime,
    ttl: TtlPolicy,
) -> Vec<Stale> {
    records
        .iter()
        .filter_map(|r| reason(r, forge, now, ttl).map(|reason| to_stale(r, reason)))
        .collect()
}

fn reason(r: &EnvRecord, forge: &ForgeState, now: SystemTime, policy: TtlPolicy) -> Option<Reason> {
    if let (Some(id), Some(open)) = (&r.id, &forge.open) {
        if !open.contains(id) {
            return Some(Reason::Closed { id: id.clone() });
        }
    }
    if let (Some(env), Some(available)) = (&r.environment, &forge.available_environments) {
        if !available.contains(env) {
            return Some(Reason::EnvironmentStopped {
                environment: env.clone(),
            });
        }
    }
    if crate::lifecycle::ahead_of(r, now) {
        return Some(Reason::TimeAhead {
            active_at: r
                .active_at
                .clone()
                .or(r.deployed_at.clone())
                .unwrap_or_default(),
        });
    }
    // The recorded expiry (an extension, capped), else the last activity plus the time to live.
    let life = crate::lifecycle::Policy {
        ttl: policy.default,
        max_ttl: policy.max,
        warn_before: crate::lifecycle::DEFAULT_WARN_BEFORE,
        sleep_after: None,
        awake_hours: None,
    };
    let expires = crate::lifecycle::expiry(r, &life)?;
    if expires <= now {
        let ttl = crate::lifecycle::ttl_of(r, &life).unwrap_or(policy.max);
        return Some(Reason::TtlExpired {
            ttl: humantime::format_duration(ttl).to_string(),
            deployed_at: r.deployed_at.clone().unwrap_or_default(),
        });
    }
    None
}

fn to_stale(r: &EnvRecord, reason: Reason) -> Stale {
    Stale {
        slug: r.slug.clone(),
        branch: r.branch.clone(),
        file: r.file.clone(),
        id: r.id.clone(),
        environment: r.environment.clone(),
        artifact: r.artifact.clone(),
        reason,
    }
}

/// Whether the record `r` belongs to application `app` (files of earlier versions record no
/// application: they belong to the one whose objects they hold).
pub fn in_scope(r: &EnvRecord, app: &crate::apps::Application, object_name: &str) -> bool {
    match &r.app {
        Some(a) => a == &app.name,
        None => !app.listed || r.name.as_deref() == Some(object_name),
    }
}

/// Refuse sweeping deletions: more than `max` at once, or more than half of all environments,
/// unless forced. An API that answers "nothing is open" by mistake must not empty the cluster.
pub fn guard(stale: usize, total: usize, max: usize, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if stale > max {
        return Err(Error::input(format!(
            "refusing to delete {stale} environments at once (--max-deletions {max}); check the forge, then raise it or pass --force"
        )));
    }
    if stale > 1 && stale * 2 > total {
        return Err(Error::input(format!(
            "refusing to delete {stale} of {total} environments (more than half) at once; check the forge, then pass --force"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_time;

    fn rec(
        slug: &str,
        id: Option<&str>,
        env: Option<&str>,
        deployed: &str,
        ttl: Option<&str>,
    ) -> EnvRecord {
        EnvRecord {
            slug: slug.into(),
            file: format!("sync-{slug}.yaml"),
            branch: slug.into(),
            name: None,
            app: None,
            forge: None,
            repository: None,
            artifact: None,
            sha: None,
            id: id.map(Into::into),
            author: None,
            environment: env.map(Into::into),
            deployed_at: Some(deployed.into()),
            ttl: ttl.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        let now = parse_time("2026-01-10T00:00:00Z").unwrap();
        let forge = ForgeState {
            open: Some(["1".to_string(), "3".to_string()].into()),
            available_environments: Some(["review/a".to_string()].into()),
        };
        let records = vec![
            rec("open", Some("1"), None, "2026-01-09T00:00:00Z", None),
            rec("closed", Some("2"), None, "2026-01-09T00:00:00Z", None),
            rec(
                "env-live",
                None,
                Some("review/a"),
                "2026-01-09T00:00:00Z",
                None,
            ),
            rec(
                "env-stopped",
                None,
                Some("review/b"),
                "2026-01-09T00:00:00Z",
                None,
            ),
            rec(
                "old-own-ttl",
                Some("3"),
                None,
                "2026-01-08T00:00:00Z",
                Some("24h"),
            ),
            rec(
                "young-own-ttl",
                None,
                None,
                "2026-01-09T12:00:00Z",
                Some("24h"),
            ),
            rec("old-default-ttl", None, None, "2026-01-01T00:00:00Z", None),
        ];
        let got: Vec<(String, &str)> = stale(
            &records,
            &forge,
            now,
            policy(Some(Duration::from_secs(72 * 3600))),
        )
        .into_iter()
        .map(|s| {
            let kind = match s.reason {
                Reason::Closed { .. } => "closed",
                Reason::EnvironmentStopped { .. } => "stopped",
                Reason::TtlExpired { .. } => "ttl",
                Reason::TimeAhead { .. } => "ahead",
            };
            (s.slug, kind)
        })
        .collect();
        let want: Vec<(String, &str)> = vec![
            ("closed".into(), "closed"),
            ("env-stopped".into(), "stopped"),
            ("old-own-ttl".into(), "ttl"),
            ("old-default-ttl".into(), "ttl"),
        ];
        assert_eq!(got, want);
        // Without forge answers, only time decides.
        assert_eq!(
            stale(&records, &ForgeState::default(), now, policy(None)).len(),
            1
        );
    }

    fn policy(default: Option<Duration>) -> TtlPolicy {
        TtlPolicy {
            default,
            max: crate::config::DEFAULT_MAX_TTL,
        }
    }

    #[test]
    fn hand_edited_times_never_panic() {
        let now = parse_time("2026-01-10T00:00:00Z").unwrap();
        let records = vec![
            // Longer than max_ttl: capped at 30 days, so it ran out.
            rec(
                "forever",
                None,
                None,
                "2025-01-01T00:00:00Z",
                Some("500000000000y"),
            ),
            rec("capped", None, None, "2025-01-01T00:00:00Z", Some("90d")),
            rec(
                "garbage-ttl",
                None,
                None,
                "2025-01-01T00:00:00Z",
                Some("soon"),
            ),
            rec("garbage-time", None, None, "yesterday", Some("1h")),
            rec(
                "far-future",
                None,
                None,
                "9999-12-31T23:59:59Z",
                Some("100y"),
            ),
        ];
        let huge = TtlPolicy {
            default: None,
            max: Duration::from_secs(u64::MAX),
        };
        let got: Vec<String> = stale(&records, &ForgeState::default(), now, policy(None))
            .into_iter()
            .map(|s| s.slug)
            .collect();
        // A deploy time that is not a time: expired at the cap, so removed. One ahead of the
        // clock was written by hand: it cannot be vouched for, so removed too.
        assert_eq!(got, vec!["forever", "capped", "garbage-time", "far-future"]);
        // A maximum that overflows the clock is no reason to panic either.
        assert!(stale(&records, &ForgeState::default(), now, huge)
            .iter()
            .any(|s| s.slug == "far-future"));
    }

    #[test]
    fn guards() {
        assert!(guard(3, 10, 50, false).is_ok());
        assert!(guard(51, 200, 50, false)
            .unwrap_err()
            .message
            .contains("--max-deletions"));
        assert!(guard(6, 10, 50, false)
            .unwrap_err()
            .message
            .contains("more than half"));
        assert!(guard(1, 1, 50, false).is_ok(), "one of one is not a sweep");
        assert!(guard(600, 600, 50, true).is_ok());
    }
}
