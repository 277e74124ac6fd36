//! Previews across clusters through ChatOps on GitHub: placement, `cluster=`, the queue (its
//! place said in the reply, the commit status and a `queued` deployment), a queued change that
//! closes leaving the queue (the ones behind it told their new place), and the head of the queue
//! admitted by the commit that frees room, its pull request then told it is deployed. From the
//! CLI: a destroy says whom its commit admitted.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::payloads::{github_comment, github_pr_event};
use support::{Run, TestEnv};

const SHAS: [&str; 3] = [
    "7777777777777777777777777777777777777777",
    "8888888888888888888888888888888888888888",
    "9999999999999999999999999999999999999999",
];

fn branch(n: u64) -> String {
    format!("feature/pr-{n}")
}

async fn world() -> (TestEnv, FakeGitHub) {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(
                "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n\
                 clusters:\n  - name: eu\n    instances_dir: clusters/eu/previews\n    max_previews: 1\n\
                 \x20 - name: us\n    instances_dir: clusters/us/previews\n    max_previews: 1\n",
            ),
        )],
        "config",
    );
    let gh = FakeGitHub::start("bot").await;
    gh.permission("org/app", "writer", "write");
    for (i, n) in [7u64, 8, 9].into_iter().enumerate() {
        gh.pull(
            "org/app",
            github_pull("org/app", n, &branch(n), SHAS[i], "org/app"),
        );
    }
    (env, gh)
}

async fn handle(env: &TestEnv, gh: &FakeGitHub, name: &str, event: &Value) -> Run {
    support::handle_on_github(env, gh, name, event).await
}

async fn comment(env: &TestEnv, gh: &FakeGitHub, n: u64, body: &str) -> Value {
    handle(
        env,
        gh,
        "issue_comment",
        &github_comment("org/app", n, "writer", body),
    )
    .await
    .ok()
    .json()
}

async fn close(env: &TestEnv, gh: &FakeGitHub, n: u64, sha: &str) -> Value {
    gh.edit_pull("org/app", n, |p| p["state"] = json!("closed"));
    let mut pr = github_pull("org/app", n, &branch(n), sha, "org/app");
    pr["state"] = json!("closed");
    let event = github_pr_event("pull_request.closed.payload.json", "closed", &pr, "writer");
    handle(env, gh, "pull_request", &event).await.ok().json()
}

fn last_comment(gh: &FakeGitHub, n: u64) -> String {
    let all = gh.comments("org/app", n);
    all.last()
        .map(|c| c["body"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn status_of(gh: &FakeGitHub, sha: &str) -> (String, String) {
    let all = gh.statuses("org/app");
    let last = all
        .iter()
        .rev()
        .find(|(s, _, _)| s == sha)
        .expect("a status");
    (last.1.clone(), last.2.clone())
}

fn sync_files(env: &TestEnv, dir: &str) -> Vec<String> {
    let out = std::process::Command::new("git")
        .args([
            "--git-dir",
            env.remote.to_str().unwrap(),
            "ls-tree",
            "--name-only",
            "main",
            &format!("{dir}/"),
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_clusters_queue_the_request_and_the_freeing_commit_admits_it() {
    let (env, gh) = world().await;
    // In order: #7 into eu, #8 asks for us.
    let out = comment(&env, &gh, 7, "/deploy-ephemeral").await;
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(
        last_comment(&gh, 7).contains("| Cluster | `eu` |"),
        "{}",
        last_comment(&gh, 7)
    );
    let out = comment(&env, &gh, 8, "/deploy-ephemeral cluster=us").await;
    assert_eq!(out["action"], "deployed", "{out}");
    assert_eq!(sync_files(&env, "clusters/us/previews").len(), 1);

    // An unknown cluster is refused, naming the allowed ones.
    let out = comment(&env, &gh, 9, "/deploy-ephemeral cluster=ap").await;
    assert_eq!(out["action"], "refused", "{out}");
    assert!(
        last_comment(&gh, 9).contains("the clusters it may use are: eu, us"),
        "{}",
        last_comment(&gh, 9)
    );

    // Both full: #9 waits, and says so everywhere.
    let out = comment(&env, &gh, 9, "/deploy-ephemeral").await;
    assert_eq!(out["action"], "queued", "{out}");
    let said = last_comment(&gh, 9);
    assert!(said.contains("is queued, position 1 of 1"), "{said}");
    assert_eq!(
        status_of(&gh, SHAS[2]),
        ("pending".into(), "queued, position 1 of 1".into())
    );
    let queued: Vec<Value> = gh
        .deployments("org/app")
        .into_iter()
        .filter(|d| d["ref"] == SHAS[2])
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["statuses"][0]["state"], "queued", "{queued:?}");
    let queue = env
        .file(".flux-ephemeral-queue.yaml")
        .expect("the queue in the GitOps repository");
    assert!(queue.contains("feature/pr-9"), "{queue}");

    // Asking again keeps the place and commits nothing.
    let before = env.log();
    let out = comment(&env, &gh, 9, "/deploy-ephemeral").await;
    assert_eq!(out["action"], "queued", "{out}");
    assert_eq!(env.log(), before);

    // #7 closes: the same commit removes it and admits #9 into eu; #9 is told.
    let out = close(&env, &gh, 7, SHAS[0]).await;
    assert_eq!(out["action"], "destroyed", "{out}");
    let log = env.log();
    assert!(log.contains("admit "), "{log}");
    assert!(env.file(".flux-ephemeral-queue.yaml").is_none());
    let files = sync_files(&env, "clusters/eu/previews");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].contains("pr-9"), "{files:?}");
    let said = last_comment(&gh, 9);
    assert!(
        said.contains("left the queue and is being deployed"),
        "{said}"
    );
    assert!(said.contains("| Cluster | `eu` |"), "{said}");
    assert_eq!(status_of(&gh, SHAS[2]).0, "success");
    let admitted = gh
        .deployments("org/app")
        .into_iter()
        .filter(|d| d["ref"] == SHAS[2])
        .any(|d| {
            d["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["state"] == "success")
        });
    assert!(admitted, "{:?}", gh.deployments("org/app"));
    assert!(gh.violations().is_empty(), "{:?}", gh.violations());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_change_that_closes_leaves_the_queue() {
    let (env, gh) = world().await;
    comment(&env, &gh, 7, "/deploy-ephemeral").await;
    comment(&env, &gh, 8, "/deploy-ephemeral").await;
    let out = comment(&env, &gh, 9, "/deploy-ephemeral").await;
    assert_eq!(out["action"], "queued", "{out}");
    // A push to the waiting change updates its request, in its place.
    let newer = "abababababababababababababababababababab";
    gh.edit_pull("org/app", 9, |p| p["head"]["sha"] = json!(newer));
    let pushed = github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &github_pull("org/app", 9, &branch(9), newer, "org/app"),
        "writer",
    );
    let out = handle(&env, &gh, "pull_request", &pushed).await.ok().json();
    assert_eq!(out["action"], "queued", "{out}");
    let queue = env.file(".flux-ephemeral-queue.yaml").unwrap();
    assert!(queue.contains(newer) && !queue.contains(SHAS[2]), "{queue}");
    assert_eq!(
        status_of(&gh, newer),
        ("pending".into(), "queued, position 1 of 1".into())
    );
    // #10 waits behind it.
    let tenth = "1010101010101010101010101010101010101010";
    gh.pull(
        "org/app",
        github_pull("org/app", 10, &branch(10), tenth, "org/app"),
    );
    let out = comment(&env, &gh, 10, "/deploy-ephemeral").await;
    assert_eq!(out["action"], "queued", "{out}");
    assert_eq!(status_of(&gh, tenth).1, "queued, position 2 of 2");
    let out = close(&env, &gh, 9, newer).await;
    assert_eq!(out["action"], "dequeued", "{out}");
    // #10 moved up, and its status says so.
    assert_eq!(
        status_of(&gh, tenth),
        ("pending".into(), "queued, position 1 of 1".into())
    );
    assert!(
        last_comment(&gh, 9).contains("left the queue"),
        "{}",
        last_comment(&gh, 9)
    );
    let queue = env.file(".flux-ephemeral-queue.yaml").unwrap();
    assert!(
        queue.contains("feature/pr-10") && !queue.contains("feature/pr-9"),
        "{queue}"
    );
    // Nothing else moved.
    assert_eq!(sync_files(&env, "clusters/eu/previews").len(), 1);
    assert_eq!(sync_files(&env, "clusters/us/previews").len(), 1);
    assert!(gh.violations().is_empty(), "{:?}", gh.violations());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destroy_says_whom_its_commit_admitted() {
    let (env, _gh) = world().await;
    let sha = ["--sha", SHAS[0]];
    for b in ["feature/a", "feature/b"] {
        env.deploy(&[&["--branch", b][..], &sha[..]].concat()).ok();
    }
    let out = env
        .deploy(&[&["--branch", "feature/c", "--output", "json"][..], &sha[..]].concat())
        .ok()
        .json();
    assert_eq!(out["action"], "queued", "{out}");
    assert_eq!(out["queued"], json!({"position": 1, "of": 1}), "{out}");
    // Nothing runs it yet: `wait` says it waits in the queue instead of naming a missing file.
    let wait = |branch: &str| {
        env.run(&[
            "wait",
            "--repo",
            env.remote.to_str().unwrap(),
            "--branch",
            branch,
        ])
    };
    wait("feature/c").fails_with(1, "waits in the queue for room (position 1 of 1)");
    wait("feature/zz").fails_with(1, "in none of the clusters eu, us");

    // A dry run says what it would admit, and writes nothing.
    let before = env.log();
    let dry = env
        .destroy(&["--branch", "feature/a", "--dry-run"])
        .ok()
        .stdout;
    assert!(
        dry.contains("would admit feature-c-") && dry.contains("into cluster eu"),
        "{dry}"
    );
    assert_eq!(env.log(), before);

    let out = env
        .destroy(&["--branch", "feature/a", "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed", "{out}");
    let admitted = out["admitted"].as_array().expect("admitted");
    assert_eq!(admitted.len(), 1, "{out}");
    assert_eq!(admitted[0]["branch"], "feature/c", "{out}");
    assert_eq!(admitted[0]["cluster"], "eu", "{out}");
    assert_eq!(admitted[0]["commit"], out["commit"], "{out}");
    assert!(
        admitted[0]["file"]
            .as_str()
            .unwrap()
            .starts_with("clusters/eu/previews/sync-feature-c-"),
        "{out}"
    );

    // In text: the admitted line follows the commit.
    env.deploy(&[&["--branch", "feature/d"][..], &sha[..]].concat())
        .ok();
    let text = env.destroy(&["--branch", "feature/b"]).ok().stdout;
    assert!(
        text.contains("admitted:  feature-d-") && text.contains("into cluster us"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_edited_queue_is_printed_as_data() {
    let (env, _gh) = world().await;
    env.commit_as_other(
        &[(
            ".flux-ephemeral-queue.yaml",
            Some(
                "queue:\n- key: feature-x\n  slug: feature-x\n  branch: \"x\\e[31mred\\nfake line\"\n  queued_at: \"2026-12-07T10:00:00Z\"\n",
            ),
        )],
        "a hand edit",
    );
    let out = env
        .run(&["list", "--repo", env.remote.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(out.contains("1. feature-x"), "{out}");
    assert!(
        !out.contains('\u{1b}') && !out.contains("\nfake line"),
        "{out}"
    );

    // A key flux-ephemeral could not have written stops with what to do.
    env.commit_as_other(
        &[(
            ".flux-ephemeral-queue.yaml",
            Some("queue:\n- {key: ../x, slug: x, branch: b, queued_at: t}\n"),
        )],
        "a bad hand edit",
    );
    env.run(&["list", "--repo", env.remote.to_str().unwrap()])
        .fails_with(3, "fix or delete it");
}
