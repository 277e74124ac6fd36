//! Waiting without cluster credentials: Flux's notification Providers post a commit status on the
//! application commit for each preview object (context `kustomization/<name>/<provider id>` or
//! `helmrelease/<name>/…`); read the head commit's statuses until Flux's says success or failure.

use std::time::{Duration, Instant};

use super::readiness::Verdict;
use super::targets::ObjectRef;
use super::{WaitOutcome, WaitState};
use crate::error::Result;
use crate::forge::{ChangeForge, CommitStatus};

/// Whether `context` is exactly the one Flux's notification-controller posts for `deployer`:
/// `<kind>/<name>/` and the first group of the Provider's UID, eight hex digits
/// (notification-controller's `generateDefaultCommitStatus`: `kustomization/app-x/6a2968b8`,
/// checked against a real notification-controller in tests/real_flux_notify.rs). A context that
/// merely starts the same way was posted by someone else.
fn is_fluxs_context(context: &str, deployer: &ObjectRef) -> bool {
    context
        .strip_prefix(&deployer.flux_id())
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How far the forge's clock may be behind ours.
const SKEW: Duration = Duration::from_secs(5);

/// Flux's own status among a commit's statuses, for `deployer`: only statuses in Flux's exact
/// context form count, and (when the push time is known) only those posted after the push; the
/// newest wins.
pub fn fluxs_status<'a>(
    statuses: &'a [CommitStatus],
    deployer: &ObjectRef,
    pushed_at: Option<std::time::SystemTime>,
    author: Option<&str>,
) -> Option<&'a CommitStatus> {
    let after_push = |s: &&CommitStatus| match (pushed_at, s.created_at) {
        (None, _) => true,
        (Some(p), Some(c)) => c + SKEW >= p,
        (Some(_), None) => false,
    };
    statuses
        .iter()
        .filter(|s| is_fluxs_context(&s.context, deployer))
        // With an author configured (the account Flux's Provider posts as), nobody else's.
        .filter(|s| {
            author.is_none_or(|a| {
                s.author
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(a))
            })
        })
        .filter(after_push)
        .max_by_key(|s| s.created_at)
}

/// What Flux's status says.
pub fn verdict_of(s: &CommitStatus) -> Verdict {
    match s.state.as_str() {
        "success" => Verdict::Ready,
        "failure" | "failed" | "error" | "canceled" => Verdict::Failed {
            reason: s.state.clone(),
            message: s.description.clone(),
        },
        other => Verdict::Pending(format!("Flux says {other}: {}", s.description)),
    }
}

/// Flux's verdict among a commit's statuses, for `deployer` ([`fluxs_status`]); pending while
/// Flux has said nothing.
pub fn flux_verdict(
    statuses: &[CommitStatus],
    deployer: &ObjectRef,
    pushed_at: Option<std::time::SystemTime>,
    author: Option<&str>,
) -> Verdict {
    match fluxs_status(statuses, deployer, pushed_at, author) {
        Some(s) => verdict_of(s),
        None => Verdict::Pending(format!(
            "no commit status from Flux for {}",
            deployer.flux_id()
        )),
    }
}

/// Poll `forge` for the statuses of `sha` every `every` until Flux's is final or `timeout` passes.
pub fn wait(
    forge: &dyn ChangeForge,
    sha: &str,
    deployer: &ObjectRef,
    pushed_at: Option<std::time::SystemTime>,
    author: Option<&str>,
    timeout: Duration,
    every: Duration,
) -> Result<WaitOutcome> {
    let start = Instant::now();
    let outcome = |state, message: String| WaitOutcome {
        state,
        message,
        seconds: start.elapsed().as_secs_f64(),
        via: "forge",
    };
    loop {
        let last = match forge.commit_statuses(sha) {
            Ok(statuses) => match flux_verdict(&statuses, deployer, pushed_at, author) {
                Verdict::Ready => return Ok(outcome(WaitState::Ready, "Ready".into())),
                Verdict::Failed { message, .. } => return Ok(outcome(WaitState::Failed, message)),
                Verdict::Pending(why) => why,
            },
            // A forge hiccup is not Flux's failure: keep asking until the time is up.
            Err(e) => e.message,
        };
        if start.elapsed() + every > timeout {
            return Ok(outcome(WaitState::TimedOut, last));
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_fluxs_context() {
        let dep = ObjectRef {
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            kind: "Kustomization".into(),
            name: "app-x".into(),
            namespace: "flux-system".into(),
        };
        let st = |context: &str, state: &str| CommitStatus {
            context: context.into(),
            state: state.into(),
            description: "health check failed after 30s".into(),
            created_at: None,
            author: None,
        };
        assert!(matches!(
            flux_verdict(&[st("ci/build", "success")], &dep, None, None),
            Verdict::Pending(_)
        ));
        assert!(matches!(
            flux_verdict(
                &[st("kustomization/app-x-other/1a2b3c4d", "success")],
                &dep,
                None,
                None
            ),
            Verdict::Pending(_)
        ));
        assert_eq!(
            flux_verdict(
                &[st("kustomization/app-x/1a2b3c4d", "success")],
                &dep,
                None,
                None
            ),
            Verdict::Ready
        );
        assert!(matches!(
            flux_verdict(
                &[st("kustomization/app-x/1a2b3c4d", "failure")],
                &dep,
                None,
                None
            ),
            Verdict::Failed { .. }
        ));
        // Someone else's status that merely starts like Flux's does not count.
        assert!(matches!(
            flux_verdict(
                &[
                    st("kustomization/app-x/1a2b3c4d", "failure"),
                    st("kustomization/app-x/anything-else", "success")
                ],
                &dep,
                None,
                None
            ),
            Verdict::Failed { .. }
        ));
        // Flux's success for an earlier deployment of the same commit does not count.
        let t = |secs: u64| std::time::UNIX_EPOCH + Duration::from_secs(secs);
        let at = |context: &str, state: &str, secs: u64| CommitStatus {
            created_at: Some(t(secs)),
            ..st(context, state)
        };
        assert!(matches!(
            flux_verdict(
                &[at("kustomization/app-x/1a2b3c4d", "success", 1000)],
                &dep,
                Some(t(2000)),
                None
            ),
            Verdict::Pending(_)
        ));
        assert_eq!(
            flux_verdict(
                &[
                    at("kustomization/app-x/1a2b3c4d", "success", 1000),
                    at("kustomization/app-x/1a2b3c4d", "failure", 2001)
                ],
                &dep,
                Some(t(2000)),
                None
            ),
            Verdict::Failed {
                reason: "failure".into(),
                message: "health check failed after 30s".into()
            }
        );
        // Only the configured author's, when one is configured.
        let by = |who: &str, state: &str| CommitStatus {
            author: Some(who.into()),
            ..st("kustomization/app-x/1a2b3c4d", state)
        };
        let both = [by("flux-bot", "failure"), by("mallory", "success")];
        assert!(matches!(
            flux_verdict(&both, &dep, None, Some("flux-bot")),
            Verdict::Failed { .. }
        ));
        assert!(matches!(
            flux_verdict(&[by("mallory", "success")], &dep, None, Some("flux-bot")),
            Verdict::Pending(_)
        ));
    }
}
