//! `cleanup` against the stateful fake GitHub and GitLab APIs and a real bare repository.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{gitlab_merge_request, FakeGitHub, FakeGitLab};
use support::{Run, TestEnv};

/// Pull request #n of org/app from `feature/<n>`, as GitHub's API returns it.
fn pull(n: u64) -> Value {
    support::github::shapes::pull(
        "org/app",
        n,
        &format!("feature/{n}"),
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "org/app",
    )
}

/// GitHub answering the open pull request list with `per_page` items a page and Link headers;
/// every other pull request of 1..=20 is closed (cleanup reads each absent one to be sure).
async fn fake_github(open: &[u64], per_page: usize) -> FakeGitHub {
    let gh = FakeGitHub::start("bot").await;
    gh.page_size(per_page);
    for n in 1..=20u64.max(open.iter().copied().max().unwrap_or(0)) {
        let mut pr = pull(n);
        if !open.contains(&n) {
            pr["state"] = json!("closed");
        }
        gh.pull("org/app", pr);
    }
    gh
}

/// How often the open pull request list was asked for (once per page).
async fn list_requests(gh: &FakeGitHub) -> usize {
    gh.requests()
        .await
        .iter()
        .filter(|r| *r == "GET /repos/org/app/pulls")
        .count()
}

fn seed(env: &TestEnv, prs: &[u64]) {
    for n in prs {
        env.deploy(&["--branch", &format!("feature/{n}"), "--id", &n.to_string()])
            .ok();
    }
}

async fn cleanup(env: &TestEnv, args: &[&str], vars: &[(&str, String)]) -> Run {
    let mut c = env.command();
    c.args([
        "cleanup",
        "--repo",
        env.remote.to_str().unwrap(),
        "--output",
        "json",
    ])
    .args(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    support::run_async(c).await
}

/// Record a deploy long ago, as another writer would edit the file.
fn age(env: &TestEnv, slug: &str) {
    // Deployed and last active in 2020.
    let re = regex::Regex::new(r#"(deployed-at|active-at): "[^"]+""#).unwrap();
    let aged = re
        .replace_all(
            &env.sync_file(slug).unwrap(),
            r#"$1: "2020-01-01T00:00:00Z""#,
        )
        .into_owned();
    env.commit_as_other(
        &[(
            &format!("overlays/ephemeral-instances/sync-{slug}.yaml"),
            Some(aged.as_str()),
        )],
        "age it",
    );
}

fn gh(server: &FakeGitHub) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_API_URL", server.uri()),
        ("GITHUB_TOKEN", "ghs-test-token".into()),
    ]
}

fn slug(n: u64) -> String {
    support::slug_of(&format!("feature/{n}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_pull_requests_go_in_one_commit_and_the_rest_stays() {
    let env = TestEnv::new();
    seed(&env, &[1, 2, 3, 4, 5, 6]);
    env.deploy(&["--branch", "no-pr"]).ok();
    let foreign = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n";
    env.commit_as_other(
        &[("overlays/ephemeral-instances/sync-mine.yaml", Some(foreign))],
        "hand-made",
    );
    let server = fake_github(&[1, 2, 3, 4], 2).await;
    let before = env.commit_count();
    let out = cleanup(&env, &["--github-repo", "org/app"], &gh(&server))
        .await
        .ok()
        .json();
    assert_eq!(list_requests(&server).await, 2, "two pages, each read once");
    let removed: Vec<&str> = out["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 2);
    assert_eq!(out["removed"][0]["reason"]["kind"], "closed");
    assert_eq!(
        env.commit_count(),
        before + 1,
        "one commit for all deletions"
    );
    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    for n in [5, 6] {
        assert!(env.sync_file(&slug(n)).is_none());
        assert!(message.contains(&slug(n)), "{message}");
    }
    for n in [1, 2, 3, 4] {
        assert!(env.sync_file(&slug(n)).is_some());
    }
    assert!(env.sync_file("no-pr").is_some());
    assert_eq!(env.sync_file("mine").as_deref(), Some(foreign));

    // Nothing stale: nothing committed.
    let server = fake_github(&[1, 2, 3, 4], 100).await;
    let out = cleanup(&env, &["--github-repo", "org/app"], &gh(&server))
        .await
        .ok()
        .json();
    assert_eq!(out["changed"], false);
    assert_eq!(env.commit_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_time_to_live_removes_and_says_why_on_the_open_pull_request() {
    let env = TestEnv::new();
    seed(&env, &[1, 2]);
    let s1 = slug(1);
    age(&env, &s1);
    let server = fake_github(&[1, 2], 100).await;
    let out = cleanup(
        &env,
        &["--github-repo", "org/app", "--ttl", "72h"],
        &gh(&server),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["removed"].as_array().unwrap().len(), 1);
    assert_eq!(out["removed"][0]["reason"]["kind"], "ttl_expired");
    assert_eq!(out["comments"], 1);
    let said = server.comments("org/app", 1);
    assert_eq!(said.len(), 1);
    assert!(said[0]["body"].as_str().unwrap().contains("time to live"));
    assert!(env.sync_file(&s1).is_none());
    assert!(env.sync_file(&slug(2)).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_api_deletes_nothing() {
    let env = TestEnv::new();
    seed(&env, &[1, 2]);
    let server = fake_github(&[1, 2], 100).await;
    server.fail("GET", "/repos/org/app/pulls", 502);
    let head = env.head();
    let out = cleanup(&env, &["--github-repo", "org/app"], &gh(&server)).await;
    let out = out.fails_with(4, "list open pull requests");
    assert!(!out.stderr.contains("ghs-test-token"));
    assert_eq!(env.head(), head);
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeping_deletions_are_refused_without_force_and_dry_run_changes_nothing() {
    let env = TestEnv::new();
    seed(&env, &[1, 2, 3]);
    let head = env.head();
    // Every pull request closed: more than half would go.
    let server = fake_github(&[], 100).await;
    cleanup(&env, &["--github-repo", "org/app"], &gh(&server))
        .await
        .fails_with(1, "more than half");
    let server = fake_github(&[], 100).await;
    cleanup(
        &env,
        &[
            "--github-repo",
            "org/app",
            "--max-deletions",
            "2",
            "--force",
        ],
        &gh(&server),
    )
    .await
    .ok();
    assert_eq!(env.instances(), vec!["sync.yaml"]);

    let env = TestEnv::new();
    seed(&env, &[1, 2, 3, 4, 5]);
    let head2 = env.head();
    let server = fake_github(&[3, 4, 5], 100).await;
    cleanup(
        &env,
        &["--github-repo", "org/app", "--max-deletions", "1"],
        &gh(&server),
    )
    .await
    .fails_with(1, "--max-deletions 1");
    let server = fake_github(&[3, 4, 5], 100).await;
    let out = cleanup(
        &env,
        &["--github-repo", "org/app", "--dry-run"],
        &gh(&server),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["removed"].as_array().unwrap().len(), 2);
    assert!(out["diff"]
        .as_str()
        .unwrap()
        .contains("--- a/overlays/ephemeral-instances/sync-"));
    assert_eq!(env.head(), head2);
    assert_ne!(head, head2);
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_closed_merge_requests_and_stopped_environments() {
    let env = TestEnv::new();
    // MR !1 open, !2 closed; environment review/a available, review/b stopped.
    env.deploy(&["--branch", "feature/1", "--id", "1"]).ok();
    env.deploy(&["--branch", "feature/2", "--id", "2"]).ok();
    env.deploy(&[
        "--branch",
        "a",
        "--slug",
        "review-a",
        "--environment",
        "review/a",
    ])
    .ok();
    env.deploy(&[
        "--branch",
        "b",
        "--slug",
        "review-b",
        "--environment",
        "review/b",
    ])
    .ok();
    env.deploy(&["--branch", "c"]).ok();
    // review/a's time ran out: removed, and its GitLab environment stopped.
    age(&env, "review-a");
    let server = FakeGitLab::start().await;
    server.project(7, "group/app");
    let mut one = gitlab_merge_request(
        7,
        1,
        "feature/1",
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    one["author"] = json!({"id": 3, "username": "alice"});
    server.merge_request(one);
    let mut two = gitlab_merge_request(
        7,
        2,
        "feature/2",
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    );
    two["state"] = json!("closed");
    server.merge_request(two);
    server.environment(7, json!({"id": 9, "name": "review/a", "slug": "review-a", "external_url": "https://review-a.example.com", "state": "available", "tier": "development"}));
    server.environment(7, json!({"id": 10, "name": "production", "slug": "production", "external_url": null, "state": "available", "tier": "production"}));
    server.environment(7, json!({"id": 11, "name": "review/b", "slug": "review-b", "external_url": null, "state": "stopped", "tier": "development"}));
    let vars = vec![
        ("GITLAB_URL", server.uri()),
        ("GITLAB_TOKEN", "glpat-test".to_string()),
    ];
    let out = cleanup(
        &env,
        &[
            "--gitlab-project",
            "group/app",
            "--ttl",
            "72h",
            "--force",
            "--stop-gitlab-environments",
            "--delete-stopped-review-apps",
        ],
        &vars,
    )
    .await
    .ok()
    .json();
    let mut kinds: Vec<(String, String)> = out["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["slug"].as_str().unwrap().to_string(),
                r["reason"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 3, "{out}");
    assert_eq!(kinds[0].1, "closed");
    assert_eq!(
        kinds[1],
        ("review-a".to_string(), "ttl_expired".to_string())
    );
    assert_eq!(
        kinds[2],
        ("review-b".to_string(), "environment_stopped".to_string())
    );
    assert_eq!(out["stopped_environments"], 1);
    let requests = server.requests().await;
    let count = |r: &str| requests.iter().filter(|x| *x == r).count();
    assert_eq!(
        count("POST /api/v4/projects/group%2Fapp/environments/9/stop"),
        1,
        "{requests:?}"
    );
    assert_eq!(
        count("DELETE /api/v4/projects/group%2Fapp/environments/review_apps"),
        1
    );
    assert_eq!(count("GET /api/v4/projects/group%2Fapp/merge_requests"), 1);
    // The listing, and the lookup of the closed merge request's ChatOps environment
    // (review/<slug>) to stop it.
    assert_eq!(count("GET /api/v4/projects/group%2Fapp/environments"), 2);
    assert!(env.sync_file("review-a").is_none() && env.sync_file("c").is_some());
    assert!(env.sync_file("review-b").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_forge_only_time_decides() {
    let env = TestEnv::new();
    seed(&env, &[1]);
    let out = cleanup(&env, &["--ttl", "72h"], &[]).await.ok().json();
    assert_eq!(out["forge"], "none");
    assert_eq!(out["removed"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_comment_is_a_warning_not_a_failure() {
    let env = TestEnv::new();
    seed(&env, &[1, 2]);
    let s1 = slug(1);
    age(&env, &s1);
    let server = fake_github(&[1, 2], 100).await;
    server.fail("GET", "/repos/org/app/issues/1/comments", 500);
    let out = cleanup(
        &env,
        &["--github-repo", "org/app", "--ttl", "72h"],
        &gh(&server),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["comments"], 0);
    assert_eq!(out["problems"].as_array().unwrap().len(), 1, "{out}");
    assert!(
        env.sync_file(&s1).is_none(),
        "the environment is removed all the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_shifts_while_paged_destroys_nothing_open() {
    // 130 open pull requests in pages of 100; #1 closes between page 1 and page 2, so #101
    // slides off both pages. #101 is still open and keeps its preview (#1 was seen open: the
    // next run removes it).
    let env = TestEnv::new();
    seed(&env, &[1, 101]);
    let server = fake_github(&(1..=130).collect::<Vec<u64>>(), 100).await;
    server.close_after_first_page("org/app", 1);
    let out = cleanup(&env, &["--github-repo", "org/app", "--force"], &gh(&server))
        .await
        .ok()
        .json();
    assert_eq!(out["removed"], json!([]), "{out}");
    assert!(env.sync_file(&slug(101)).is_some(), "open #101 kept");
    let asked = server.requests().await;
    assert!(
        asked.iter().any(|r| r == "GET /repos/org/app/pulls/101"),
        "{asked:?}"
    );
    // A failed confirmation deletes nothing.
    let server = fake_github(&[], 100).await;
    server.fail("GET", "/repos/org/app/pulls/101", 502);
    let head = env.head();
    cleanup(&env, &["--github-repo", "org/app", "--force"], &gh(&server))
        .await
        .fails_with(4, "");
    assert_eq!(env.head(), head);
}
