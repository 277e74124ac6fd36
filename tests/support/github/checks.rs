//! Check runs of a commit, paged as GitHub pages them.

use serde_json::{json, Value};

use super::{paged, Answer, Req, State};

pub(super) fn list(s: &mut State, req: &Req, repo: &str, sha: &str) -> Answer {
    let all = s
        .check_runs
        .get(&(repo.to_string(), sha.to_string()))
        .cloned()
        .unwrap_or_default();
    let total = all.len();
    paged(
        s,
        req,
        all,
        |runs| json!({"total_count": total, "check_runs": Value::Array(runs)}),
    )
}
