//! Is a preview Ready at the pushed revision? The objects' status, as the Flux docs describe it,
//! read without I/O.
//!
//! - The source (GitRepository, OCIRepository) has the artifact of the revision:
//!   `status.artifact.revision` ends with it (`sha1:<sha>`, `sha256:<digest>`).
//! - The Kustomization is `Ready=True` for its current spec (`status.observedGeneration ==
//!   metadata.generation`) and applied that revision (`status.lastAppliedRevision`). A Ready left
//!   over from the previous revision is not ready. A HelmRelease's revisions are chart versions:
//!   with a chart from Git (`reconcileStrategy: Revision`) helm-controller appends the commit's
//!   first 12 hex digits as build metadata (`0.1.0+d7c66a4d2f87`), which must be ours; a chart
//!   version without it counts once the source has the revision and the generation is current.
//! - Ready=False for a reason Flux retries by itself (the source or a dependency not ready yet,
//!   an artifact not there yet) is still pending: helm-controller says `SourceNotReady` for a
//!   moment after every new commit.
//! - `Ready=False` for this revision (the Kustomization's `lastAttemptedRevision` is ours and the
//!   Ready condition's own `observedGeneration` is current; `status.observedGeneration` only moves
//!   on success and starts at -1) is a failure, with Flux's reason and message.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not there yet, and why (for the timeout message).
    Pending(String),
    Ready,
    Failed {
        reason: String,
        message: String,
    },
}

fn ready_condition(obj: &Value) -> Option<&Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Reasons Flux sets while it waits for something else and retries on its own.
fn transient(ready: &Value) -> bool {
    let reason = ready["reason"].as_str().unwrap_or("");
    matches!(reason, "SourceNotReady" | "DependencyNotReady")
        || (reason == "ArtifactFailed"
            && ready["message"]
                .as_str()
                .is_some_and(|m| m.to_ascii_lowercase().contains("retrying")))
}

/// Does a HelmRelease's chart version belong to `revision` (`sha1:<sha>`, `branch@sha1:<sha>`)?
/// Only a version with build metadata from a Git source says; any other counts.
fn chart_matches(chart_version: Option<&str>, revision: Option<&str>) -> bool {
    let (Some(version), Some(want)) = (chart_version, revision) else {
        return true;
    };
    let Some((_, build)) = version.split_once('+') else {
        return true;
    };
    let sha = want.rsplit(':').next().unwrap_or(want);
    build.len() >= 7 && build.chars().all(|c| c.is_ascii_hexdigit()) && sha.starts_with(build)
        || !build.chars().all(|c| c.is_ascii_hexdigit())
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

/// Assess the source and the deployer (each `None` while it does not exist yet).
pub fn assess(source: Option<&Value>, deployer: Option<&Value>, revision: Option<&str>) -> Verdict {
    let matches = |r: Option<&str>| match (revision, r) {
        (None, _) => true,
        (Some(want), Some(have)) => have.ends_with(want),
        (Some(_), None) => false,
    };
    let Some(src) = source else {
        return Verdict::Pending("the source object does not exist yet".into());
    };
    let Some(dep) = deployer else {
        return Verdict::Pending("the Kustomization/HelmRelease does not exist yet".into());
    };
    let src_kind = text(src, "kind");
    let src_ready = ready_condition(src);
    if !matches(
        src.pointer("/status/artifact/revision")
            .and_then(Value::as_str),
    ) {
        // A source that cannot fetch the revision fails for its current generation.
        if let Some(c) = src_ready.filter(|c| {
            c["status"] == "False" && c["observedGeneration"].as_i64() == Some(generation(src))
        }) {
            return Verdict::Failed {
                reason: text(c, "reason"),
                message: format!("{src_kind}: {}", text(c, "message")),
            };
        }
        return Verdict::Pending(format!(
            "{src_kind} has not fetched {} yet",
            revision.unwrap_or("the revision")
        ));
    }
    let kind = text(dep, "kind");
    let helm = kind == "HelmRelease";
    let gen = generation(dep);
    let observed = dep
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let applied = dep
        .pointer("/status/lastAppliedRevision")
        .and_then(Value::as_str);
    let attempted = dep
        .pointer("/status/lastAttemptedRevision")
        .and_then(Value::as_str);
    let Some(ready) = ready_condition(dep) else {
        return Verdict::Pending(format!("{kind} has no Ready condition yet"));
    };
    let ours = |r: Option<&str>| {
        if helm {
            chart_matches(r, revision)
        } else {
            matches(r)
        }
    };
    match ready["status"].as_str() {
        Some("True") if observed == gen && ours(if helm { attempted } else { applied }) => {
            Verdict::Ready
        }
        Some("False")
            if ready["observedGeneration"].as_i64() == Some(gen)
                && ours(attempted)
                && !transient(ready) =>
        {
            Verdict::Failed {
                reason: text(ready, "reason"),
                message: text(ready, "message"),
            }
        }
        Some("True") => Verdict::Pending(format!(
            "{kind} is Ready at {} (generation {observed}), not yet at {} (generation {gen})",
            applied.unwrap_or("an earlier revision"),
            revision.unwrap_or("the new spec")
        )),
        _ => Verdict::Pending(format!(
            "{kind} is {}: {}",
            text(ready, "reason"),
            text(ready, "message")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const OLD: &str = "1111111111111111111111111111111111111111";

    fn git(rev: &str) -> Value {
        json!({"kind": "GitRepository", "metadata": {"generation": 2},
               "status": {"artifact": {"revision": format!("sha1:{rev}")},
                          "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]}})
    }

    fn ks(
        gen: i64,
        observed: i64,
        status: &str,
        reason: &str,
        applied: &str,
        attempted: &str,
    ) -> Value {
        json!({"kind": "Kustomization", "metadata": {"generation": gen},
               "status": {"observedGeneration": observed,
                          "lastAppliedRevision": format!("feature@sha1:{applied}"),
                          "lastAttemptedRevision": format!("feature@sha1:{attempted}"),
                          "conditions": [{"type": "Ready", "status": status, "reason": reason,
                                          "message": format!("{reason} happened"), "observedGeneration": gen}]}})
    }

    #[test]
    fn table() {
        let rev = format!("sha1:{SHA}");
        let r = Some(rev.as_str());
        let cases: Vec<(&str, Option<Value>, Option<Value>, &str)> = vec![
            ("nothing yet", None, None, "pending"),
            (
                "old source",
                Some(git(OLD)),
                Some(ks(3, 3, "True", "ReconciliationSucceeded", OLD, OLD)),
                "pending",
            ),
            (
                "progressing",
                Some(git(SHA)),
                Some(ks(3, 2, "Unknown", "Progressing", OLD, SHA)),
                "pending",
            ),
            (
                "stale Ready at the old sha with a new generation",
                Some(git(SHA)),
                Some(ks(3, 2, "True", "ReconciliationSucceeded", OLD, OLD)),
                "pending",
            ),
            (
                "ready at the sha",
                Some(git(SHA)),
                Some(ks(3, 3, "True", "ReconciliationSucceeded", SHA, SHA)),
                "ready",
            ),
            (
                "build failed",
                Some(git(SHA)),
                Some(ks(3, 2, "False", "BuildFailed", OLD, SHA)),
                "failed",
            ),
            (
                "health check failed",
                Some(git(SHA)),
                Some(ks(3, 2, "False", "HealthCheckFailed", OLD, SHA)),
                "failed",
            ),
            (
                "an old failure is not ours",
                Some(git(SHA)),
                Some(ks(3, 2, "False", "BuildFailed", OLD, OLD)),
                "pending",
            ),
        ];
        for (what, src, dep, want) in cases {
            let got = match assess(src.as_ref(), dep.as_ref(), r) {
                Verdict::Pending(_) => "pending",
                Verdict::Ready => "ready",
                Verdict::Failed { .. } => "failed",
            };
            assert_eq!(got, want, "{what}");
        }
        let Verdict::Failed { reason, message } = assess(
            Some(&git(SHA)),
            Some(&ks(3, 2, "False", "HealthCheckFailed", OLD, SHA)),
            r,
        ) else {
            panic!()
        };
        assert_eq!(reason, "HealthCheckFailed");
        assert_eq!(message, "HealthCheckFailed happened");
    }

    fn hr(gen: i64, status: &str, reason: &str, message: &str, chart: &str) -> Value {
        json!({"kind": "HelmRelease", "metadata": {"generation": gen},
               "status": {"observedGeneration": gen, "lastAttemptedRevision": chart,
                          "conditions": [{"type": "Ready", "status": status, "reason": reason,
                                          "message": message, "observedGeneration": gen}]}})
    }

    #[test]
    fn helm_releases_as_helm_controller_reports_them() {
        let rev = format!("sha1:{SHA}");
        let ours = format!("0.1.0+{}", &SHA[..12]);
        let old = format!("0.1.0+{}", &OLD[..12]);
        let cases = [
            ("installed from our commit", hr(2, "True", "InstallSucceeded", "ok", &ours), "ready"),
            ("Ready at the previous commit", hr(2, "True", "UpgradeSucceeded", "ok", &old), "pending"),
            ("a chart from a Helm repository", hr(2, "True", "InstallSucceeded", "ok", "1.2.3"), "ready"),
            (
                "the HelmChart not built yet (real helm-controller says this after every commit)",
                hr(2, "False", "SourceNotReady", "HelmChart 'ns/x' is not ready: latest generation of object has not been reconciled", &old),
                "pending",
            ),
            (
                "artifact not there yet",
                hr(2, "False", "ArtifactFailed", "Source not ready: artifact not found. Retrying in 5s", &ours),
                "pending",
            ),
            ("dependency", hr(2, "False", "DependencyNotReady", "dependency 'a' is not ready", &ours), "pending"),
            ("install failed", hr(2, "False", "InstallFailed", "context deadline exceeded", &ours), "failed"),
            ("an old commit's failure", hr(2, "False", "UpgradeFailed", "boom", &old), "pending"),
        ];
        for (what, dep, want) in cases {
            let got = match assess(Some(&git(SHA)), Some(&dep), Some(&rev)) {
                Verdict::Pending(_) => "pending",
                Verdict::Ready => "ready",
                Verdict::Failed { .. } => "failed",
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_source_that_cannot_fetch_fails() {
        let src = json!({"kind": "GitRepository", "metadata": {"generation": 4},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "GitOperationFailed",
                                       "message": "authentication required", "observedGeneration": 4}]}});
        let v = assess(
            Some(&src),
            Some(&ks(1, 1, "True", "x", OLD, OLD)),
            Some("sha1:abc"),
        );
        assert!(
            matches!(v, Verdict::Failed { ref reason, .. } if reason == "GitOperationFailed"),
            "{v:?}"
        );
    }
}
