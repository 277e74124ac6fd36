//! Waiting without cluster credentials: Flux's notification Providers post a commit status on the
//! application commit for each preview object (context `kustomization/<name>/<provider id>` or
//! `helmrelease/<name>/…`); read the head commit's statuses until Flux's says success or failure.

use std::time::{Duration, Instant};

use super::readiness::Verdict;
use super::targets::ObjectRef;
use super::{WaitOutcome, WaitState};
use crate::error::Result;
use crate::forge::{ChangeForge, CommitStatus};

/// Flux's verdict among a commit's statuses, for `deployer`.
pub fn flux_verdict(statuses: &[CommitStatus], deployer: &ObjectRef) -> Verdict {
    let prefix = format!("{}/", deployer.flux_id());
    let Some(s) = statuses.iter().find(|s| s.context.starts_with(&prefix)) else {
        return Verdict::Pending(format!(
            "no commit status from Flux for {}",
            deployer.flux_id()
        ));
    };
    match s.state.as_str() {
        "success" => Verdict::Ready,
        "failure" | "failed" | "error" | "canceled" => Verdict::Failed {
            reason: s.state.clone(),
            message: s.description.clone(),
        },
        other => Verdict::Pending(format!("Flux says {other}: {}", s.description)),
    }
}

/// Poll `forge` for the statuses of `sha` every `every` until Flux's is final or `timeout` passes.
pub fn wait(
    forge: &dyn ChangeForge,
    sha: &str,
    deployer: &ObjectRef,
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
            Ok(statuses) => match flux_verdict(&statuses, deployer) {
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
        };
        assert!(matches!(
            flux_verdict(&[st("ci/build", "success")], &dep),
            Verdict::Pending(_)
        ));
        assert!(matches!(
            flux_verdict(&[st("kustomization/app-x-other/1a2b3", "success")], &dep),
            Verdict::Pending(_)
        ));
        assert_eq!(
            flux_verdict(&[st("kustomization/app-x/1a2b3", "success")], &dep),
            Verdict::Ready
        );
        assert!(matches!(
            flux_verdict(&[st("kustomization/app-x/1a2b3", "failure")], &dep),
            Verdict::Failed { .. }
        ));
    }
}
