//! GitHub as a GitHub App, and the API budget: `serve` against the fake GitHub playing GitHub's
//! rules for Apps (JWTs, installation tokens that expire, one installation per organisation), and
//! the requests one preview's life costs, counted.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::serving::Serving;
use support::TestEnv;

const OLD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW: &str = "1f0c7a1e5b9d4c3a2e6f8b7d9c0a1b2c3d4e5f60";

/// At most this many requests (that count against GitHub's rate limit) for one preview's life
/// through `serve`: a comment deploys it, a push moves it, closing removes it.
const LIFE_BUDGET: usize = 13;

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `serve` has handled everything it was sent (its journal is empty) and the fake
/// has heard nothing more for a moment.
async fn settled(s: &Serving, gh: &FakeGitHub) {
    let mut seen = usize::MAX;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _ = s;
        let n = gh.billed().len();
        if n == seen {
            return;
        }
        seen = n;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not settle"
        );
    }
}

fn post(s: &Serving, event: &str, payload: &Value) {
    let body = payload.to_string();
    let headers = support::serving::github_headers(event, &body);
    let (status, text) = s.post("/hooks/github", &headers, &body);
    assert_eq!(status, 202, "{event}: {text}");
}

/// A deploy by comment, a push and a close, each step's requests counted.
async fn life(
    env: &TestEnv,
    gh: &FakeGitHub,
    s: &Serving,
    repo: &str,
    installation: Option<u64>,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let with = |mut v: Value| {
        if let Some(id) = installation {
            v["installation"] =
                json!({"id": id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="});
        }
        v
    };
    let slug = support::slug_of("served");
    let mut steps = Vec::new();
    gh.take_billed();
    // As on GitHub, the comment is in the conversation before its webhook is delivered.
    gh.add_comment(repo, 7, "writer", "/deploy-ephemeral");
    post(
        s,
        "issue_comment",
        &with(support::payloads::github_comment(
            repo,
            7,
            "writer",
            "/deploy-ephemeral",
        )),
    );
    until("the comment deployed the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(OLD))
    })
    .await;
    settled(s, gh).await;
    steps.push(("deploy by comment", gh.take_billed()));
    gh.edit_pull(repo, 7, |p| p["head"]["sha"] = json!(NEW));
    let pr = gh_pull(gh, repo);
    let mut push = support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &pr,
        "writer",
    );
    push["before"] = json!(OLD);
    push["after"] = json!(NEW);
    post(s, "pull_request", &with(push));
    until("the push moved the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(NEW))
    })
    .await;
    settled(s, gh).await;
    steps.push(("push", gh.take_billed()));
    gh.edit_pull(repo, 7, |p| p["state"] = json!("closed"));
    let pr = gh_pull(gh, repo);
    post(
        s,
        "pull_request",
        &with(support::payloads::github_pr_event(
            "pull_request.closed.payload.json",
            "closed",
            &pr,
            "writer",
        )),
    );
    until("closing removed the preview", || {
        env.sync_file(&slug).is_none()
    })
    .await;
    settled(s, gh).await;
    steps.push(("close", gh.take_billed()));
    steps
}

fn gh_pull(gh: &FakeGitHub, repo: &str) -> Value {
    gh.pull_value(repo, 7)
}

fn report(steps: &[(&str, Vec<(String, String)>)]) -> (usize, String) {
    let mut total = 0;
    let mut text = String::new();
    for (step, calls) in steps {
        total += calls.len();
        text.push_str(&format!("{step}: {}\n", calls.len()));
        for (who, call) in calls {
            text.push_str(&format!("    {call}  ({who})\n"));
        }
    }
    (total, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previews_life_costs_at_most_13_requests() {
    let env = TestEnv::new();
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull(
        "org/app",
        github_pull("org/app", 7, "served", OLD, "org/app"),
    );
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghp_test".into()),
        ],
    );
    let steps = life(&env, &gh, &s, "org/app", None).await;
    let (total, text) = report(&steps);
    eprintln!("one preview's life through serve, with a token:\n{text}");
    assert!(
        total <= LIFE_BUDGET,
        "{total} requests, over the budget of {LIFE_BUDGET}:\n{text}"
    );
    // Nothing was lost to save them: one comment, edited; the deployment went inactive.
    let bots: Vec<Value> = gh
        .comments("org/app", 7)
        .into_iter()
        .filter(|c| c["user"]["login"] == "flux-bot")
        .collect();
    assert_eq!(bots.len(), 1, "{bots:?}");
    assert!(
        bots[0]["body"].as_str().unwrap().contains("removed"),
        "{bots:?}"
    );
    let deployments = gh.deployments("org/app");
    assert!(!deployments.is_empty());
    for d in &deployments {
        let last = d["statuses"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default();
        assert_eq!(last["state"], "inactive", "{d}");
    }
}
