//! Deploy only when CI is green (`require_checks`), end to end through `handle` (the code path
//! `serve` runs for each delivery) with the shared fake GitHub: a request waits and says so, a
//! completed check releases it, a failed check deploys nothing, a check of a commit nobody waits
//! for changes nothing, and `--wait-checks` polls.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::payloads::github_comment;
use support::{Run, TestEnv};

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const BRANCH: &str = "feature/checked";

async fn world() -> (TestEnv, FakeGitHub) {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(
                "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n\
                 require_checks: [build, test]\n",
            ),
        )],
        "config",
    );
    let gh = FakeGitHub::start("bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull("org/app", github_pull("org/app", 7, BRANCH, SHA, "org/app"));
    (env, gh)
}

async fn handle(env: &TestEnv, gh: &FakeGitHub, name: &str, event: &Value, extra: &[&str]) -> Run {
    gh.delivered(name, event);
    let file = support::event_file(env, name, event);
    let mut c = env.command();
    c.args([
        "handle",
        "--event-name",
        name,
        "--event-file",
        file.to_str().unwrap(),
    ])
    .args(["--repo", env.remote.to_str().unwrap(), "--output", "json"])
    .args(extra)
    .env("GITHUB_API_URL", gh.uri())
    .env("GITHUB_TOKEN", "ghs-test-token");
    support::run_async(c).await
}

fn check_run_event(sha: &str, numbers: &[u64]) -> Value {
    support::payloads::github_check_run("org/app", sha, "test", "success", numbers)
}

fn deployed(env: &TestEnv) -> bool {
    env.sync_file(&support::slug_of(BRANCH)).is_some()
}

fn said(gh: &FakeGitHub) -> String {
    gh.comments("org/app", 7)
        .last()
        .and_then(|c| c["body"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_for_its_checks_and_a_completed_check_releases_it() {
    let (env, gh) = world().await;
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "in_progress", None);
    let commits = env.commit_count();
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "waiting", "{out}");
    assert!(said(&gh).contains("waits for test"), "{}", said(&gh));
    let statuses = gh.statuses("org/app");
    assert_eq!(statuses.last().unwrap().1, "pending");
    assert!(statuses
        .last()
        .unwrap()
        .2
        .starts_with("waiting for checks (#7): test"));
    assert_eq!(env.commit_count(), commits, "nothing deployed yet");

    // A check of a commit nobody waits for changes nothing.
    let other = "2222222222222222222222222222222222222222";
    let out = handle(&env, &gh, "check_run", &check_run_event(other, &[9]), &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "ignored", "{out}");

    // test passes: the check_run event releases the preview.
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    let out = handle(&env, &gh, "check_run", &check_run_event(SHA, &[7]), &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(deployed(&env));
    assert!(said(&gh).contains("feature-checked"), "{}", said(&gh));
    assert_eq!(gh.statuses("org/app").last().unwrap().1, "success");

    // Released once: a second completed check finds nobody waiting.
    let out = handle(&env, &gh, "check_run", &check_run_event(SHA, &[7]), &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "ignored", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_event_without_a_pull_request_finds_the_waiting_change() {
    let (env, gh) = world().await;
    handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok();
    assert!(!deployed(&env));
    gh.post_status("org/app", SHA, "build", "success", "built");
    gh.post_status("org/app", SHA, "test", "success", "tested");
    let status = support::payloads::github_status("org/app", SHA, "test", "success");
    let out = handle(&env, &gh, "status", &status, &[]).await.ok().json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(deployed(&env));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_check_deploys_nothing_and_says_which() {
    let (env, gh) = world().await;
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "completed", Some("failure"));
    let commits = env.commit_count();
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(
        said(&gh).contains("not deployed: test failed"),
        "{}",
        said(&gh)
    );
    assert_eq!(gh.statuses("org/app").last().unwrap().1, "failure");
    assert_eq!(env.commit_count(), commits);
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_checks_polls_until_they_pass() {
    let (env, gh) = world().await;
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "in_progress", None);
    let later = gh.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        later.check_run("org/app", SHA, "test", "completed", Some("success"));
    });
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &["--wait-checks", "1m"],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(deployed(&env));
}

#[test]
fn a_check_name_that_is_not_one_is_a_configuration_error() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\nrequire_checks: [\"\"]\n"),
        )],
        "bad",
    );
    env.deploy(&["--branch", BRANCH])
        .fails_with(3, "require_checks");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_pass_releases_what_a_lost_webhook_missed() {
    let (env, gh) = world().await;
    handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok();
    assert!(!deployed(&env));
    // Both checks pass; the check_run webhook never arrives.
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    let mut c = env.command();
    c.args([
        "resync",
        "--github-repo",
        "org/app",
        "--repo",
        env.remote.to_str().unwrap(),
    ])
    .env("GITHUB_API_URL", gh.uri())
    .env("GITHUB_TOKEN", "ghs-test-token");
    support::run_async(c).await.ok();
    assert!(deployed(&env));
    assert_eq!(gh.statuses("org/app").last().unwrap().1, "success");
    let docs = env.docs(&support::slug_of(BRANCH));
    assert_eq!(docs[0]["spec"]["url"], "https://github.com/org/app.git");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_push_replaces_the_request_waiting_for_the_older_commit() {
    let (env, gh) = world().await;
    handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok();
    assert!(!deployed(&env));
    // The author pushes a fix; the new head's checks are green already.
    let new = "3333333333333333333333333333333333333333";
    gh.pull("org/app", github_pull("org/app", 7, BRANCH, new, "org/app"));
    gh.check_run("org/app", new, "build", "completed", Some("success"));
    gh.check_run("org/app", new, "test", "completed", Some("success"));
    let mut push = support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &github_pull("org/app", 7, BRANCH, new, "org/app"),
        "writer",
    );
    push["before"] = json!(SHA);
    push["after"] = json!(new);
    let out = handle(&env, &gh, "pull_request", &push, &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert_eq!(
        env.docs(&support::slug_of(BRANCH))[0]["spec"]["ref"]["commit"],
        new
    );
    // The old commit's checks completing later change nothing.
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    let out = handle(&env, &gh, "check_run", &check_run_event(SHA, &[7]), &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "ignored", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn through_serve_a_completed_check_run_deploys_the_waiting_preview() {
    let (env, gh) = world().await;
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "in_progress", None);
    let s = support::serving::Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghs-test-token".into()),
        ],
    );
    let post = |event: &str, body: String| {
        let headers = support::serving::github_headers(event, &body);
        let port = s.port;
        async move {
            tokio::task::spawn_blocking(move || {
                support::serving::request(port, "POST", "/hooks/github", &headers, &body)
            })
            .await
            .unwrap()
        }
    };
    let eventually = |what: &str, f: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !f() {
            assert!(
                start.elapsed().as_secs() < 30,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let comment = github_comment("org/app", 7, "writer", "/deploy-ephemeral").to_string();
    assert_eq!(post("issue_comment", comment).await.0, 202);
    tokio::task::block_in_place(|| {
        eventually("the waiting status", &|| {
            gh.statuses("org/app")
                .iter()
                .any(|(_, state, d)| state == "pending" && d.starts_with("waiting for checks"))
        })
    });
    assert!(!deployed(&env));
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    assert_eq!(
        post("check_run", check_run_event(SHA, &[7]).to_string())
            .await
            .0,
        202
    );
    tokio::task::block_in_place(|| eventually("the preview", &|| deployed(&env)));
    // The reply follows the push.
    tokio::task::block_in_place(|| {
        eventually("the reply", &|| said(&gh).contains("feature-checked"))
    });
}

/// GitHub lists check runs in pages: a failure on a later page still keeps the preview out.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_check_on_a_later_page_deploys_nothing() {
    let (env, gh) = world().await;
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\nrequire_checks: [\"*\"]\n"),
        )],
        "every check",
    );
    gh.page_size(2);
    for name in ["build", "lint", "docs"] {
        gh.check_run("org/app", SHA, name, "completed", Some("success"));
    }
    gh.check_run("org/app", SHA, "e2e", "completed", Some("failure"));
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(said(&gh).contains("e2e failed"), "{}", said(&gh));
    assert!(!deployed(&env));
    let pages = gh
        .requests()
        .await
        .iter()
        .filter(|r| r.ends_with("/check-runs"))
        .count();
    assert_eq!(pages, 2, "both pages of check runs were read");
}

/// A named required check that GitHub lists on a later page is found there.
#[tokio::test(flavor = "multi_thread")]
async fn a_required_check_on_a_later_page_is_found() {
    let (env, gh) = world().await;
    gh.page_size(1);
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(deployed(&env));
}

/// A request waits on #7 at SHA; someone opens #6 from the same branch into another base, so
/// its head is SHA too. The checks' completion releases #7, the change that asked, and only it:
/// from a check run listing both, from a status event, and from the periodic pass.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_change_that_asked_is_released() {
    let (env, gh) = world().await;
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "test", "in_progress", None);
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "waiting", "{out}");
    let mut other = github_pull("org/app", 6, BRANCH, SHA, "org/app");
    other["base"]["ref"] = json!("release");
    gh.pull("org/app", other);
    gh.check_run("org/app", SHA, "test", "completed", Some("success"));
    let out = handle(&env, &gh, "check_run", &check_run_event(SHA, &[6, 7]), &[])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let slug = support::slug_of(BRANCH);
    let annotations = &env.docs(&slug)[0]["metadata"]["annotations"];
    assert_eq!(annotations["flux-ephemeral.io/id"], "7", "{annotations:?}");
    assert!(gh.comments("org/app", 6).is_empty(), "#6 asked for nothing");
}

/// `handle --wait-checks` in the CI job the README suggests, with `require_checks: ["*"]`: the
/// job's own check run (and its unfinished siblings of the same workflow run) is not waited for;
/// a check of another run still is.
#[tokio::test(flavor = "multi_thread")]
async fn wait_checks_does_not_wait_for_its_own_job() {
    let (env, gh) = world().await;
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\nrequire_checks: [\"*\"]\n"),
        )],
        "every check",
    );
    gh.check_run("org/app", SHA, "build", "completed", Some("success"));
    gh.check_run("org/app", SHA, "preview", "in_progress", None);
    gh.check_run_details(
        "org/app",
        SHA,
        "preview",
        "https://github.com/org/app/actions/runs/4242/job/99",
    );
    let event = github_comment("org/app", 7, "writer", "/deploy-ephemeral");
    let file = support::event_file(&env, "issue_comment", &event);
    let run = |vars: &[(&str, &str)]| {
        let mut c = env.command();
        c.args(["handle", "--event-name", "issue_comment", "--event-file"])
            .arg(&file)
            .args([
                "--repo",
                env.remote.to_str().unwrap(),
                "--output",
                "json",
                "--wait-checks",
                "2s",
            ])
            .env("GITHUB_API_URL", gh.uri())
            .env("GITHUB_TOKEN", "ghs-test-token");
        for (k, v) in vars {
            c.env(k, v);
        }
        support::run_async(c)
    };
    // Outside that run, the unfinished job is a check like any other: it waits.
    let out = run(&[("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_ID", "1111")])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "waiting", "{out}");
    // In the job itself: deployed.
    let out = run(&[("GITHUB_ACTIONS", "true"), ("GITHUB_RUN_ID", "4242")])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(deployed(&env));
}
