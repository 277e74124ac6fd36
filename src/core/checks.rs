//! Deploy only when CI is green, the pure part: the checks a commit has (GitHub check runs and
//! commit statuses) against the ones `require_checks` names.

/// One check as the forge reports it for a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Queued, running, or a pending status.
    Pending,
    /// Success, neutral or skipped.
    Passed,
    /// Failure, error, cancelled, timed out, action required.
    Failed,
}

/// What the required checks say of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Green,
    /// Still waiting for these.
    Waiting(Vec<String>),
    /// This one failed.
    Failed(String),
}

/// Our own status and Flux's (`kustomization/…`, `helmrelease/…`) never gate a deploy.
fn ours(name: &str) -> bool {
    name == "flux-ephemeral"
        || name.starts_with("kustomization/")
        || name.starts_with("helmrelease/")
}

/// The gate of `required` (names, or `*` for every check the commit has; at least one must have
/// reported) over `checks`. A name reported several times counts by its worst state.
pub fn evaluate(required: &[String], checks: &[Check]) -> Gate {
    let relevant: Vec<&Check> = checks.iter().filter(|c| !ours(&c.name)).collect();
    let all = required.iter().any(|r| r == "*");
    let names: Vec<String> = if all {
        let mut n: Vec<String> = relevant.iter().map(|c| c.name.clone()).collect();
        n.sort();
        n.dedup();
        if n.is_empty() {
            return Gate::Waiting(vec!["the commit's checks".into()]);
        }
        n
    } else {
        required.to_vec()
    };
    let mut waiting = Vec::new();
    for name in names {
        let of_name: Vec<CheckState> = relevant
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.state)
            .collect();
        if of_name.contains(&CheckState::Failed) {
            return Gate::Failed(name);
        }
        if of_name.is_empty() || of_name.contains(&CheckState::Pending) {
            waiting.push(name);
        }
    }
    if waiting.is_empty() {
        Gate::Green
    } else {
        Gate::Waiting(waiting)
    }
}

/// GitHub's check run (`status`, `conclusion`) as a state.
pub fn of_check_run(status: &str, conclusion: Option<&str>) -> CheckState {
    match (status, conclusion) {
        ("completed", Some("success" | "neutral" | "skipped")) => CheckState::Passed,
        ("completed", _) => CheckState::Failed,
        _ => CheckState::Pending,
    }
}

/// A commit status's state (GitHub `success`/`failure`/`error`/`pending`).
pub fn of_status(state: &str) -> CheckState {
    match state {
        "success" => CheckState::Passed,
        "failure" | "error" => CheckState::Failed,
        _ => CheckState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::*;

    fn c(name: &str, state: CheckState) -> Check {
        Check {
            name: name.into(),
            state,
        }
    }

    #[test]
    fn table() {
        let req = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: Vec<(&str, Vec<String>, Vec<Check>, Gate)> = vec![
            (
                "nothing yet",
                req(&["build"]),
                vec![],
                Gate::Waiting(req(&["build"])),
            ),
            (
                "running",
                req(&["build"]),
                vec![c("build", Pending)],
                Gate::Waiting(req(&["build"])),
            ),
            (
                "green",
                req(&["build", "test"]),
                vec![c("build", Passed), c("test", Passed), c("lint", Failed)],
                Gate::Green,
            ),
            (
                "one failed",
                req(&["build", "test"]),
                vec![c("build", Passed), c("test", Failed)],
                Gate::Failed("test".into()),
            ),
            (
                "rerun still running",
                req(&["test"]),
                vec![c("test", Passed), c("test", Pending)],
                Gate::Waiting(req(&["test"])),
            ),
            (
                "all: one failed",
                req(&["*"]),
                vec![c("build", Passed), c("lint", Failed)],
                Gate::Failed("lint".into()),
            ),
            (
                "all: none reported",
                req(&["*"]),
                vec![c("flux-ephemeral", Pending)],
                Gate::Waiting(req(&["the commit's checks"])),
            ),
            (
                "all: ours and Flux's do not count",
                req(&["*"]),
                vec![
                    c("build", Passed),
                    c("flux-ephemeral", Pending),
                    c("kustomization/app-x/1a2b3c4d", Failed),
                ],
                Gate::Green,
            ),
        ];
        for (what, required, checks, want) in cases {
            assert_eq!(evaluate(&required, &checks), want, "{what}");
        }
    }

    #[test]
    fn states() {
        assert_eq!(of_check_run("completed", Some("success")), Passed);
        assert_eq!(of_check_run("completed", Some("skipped")), Passed);
        assert_eq!(of_check_run("completed", Some("timed_out")), Failed);
        assert_eq!(of_check_run("in_progress", None), Pending);
        assert_eq!(of_status("error"), Failed);
        assert_eq!(of_status("pending"), Pending);
    }
}
