//! GitHub Deployments: every preview deployed through ChatOps is a transient deployment of the
//! head commit, whose statuses carry the preview's URL and the bot's comment; only the newest is
//! active; closing makes it inactive; an API that refuses is a warning, never a failed deploy.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::payloads::github_comment;
use support::{Run, TestEnv};

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW_SHA: &str = "1111111111111111111111111111111111111111";
const BRANCH: &str = "feature/deployed";

async fn world() -> (TestEnv, FakeGitHub) {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(
                "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n\
                 preview_url: \"https://{{ slug }}.preview.example.com\"\n",
            ),
        )],
        "config",
    );
    let gh = FakeGitHub::start("bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull("org/app", github_pull("org/app", 7, BRANCH, SHA, "org/app"));
    (env, gh)
}

async fn handle(env: &TestEnv, gh: &FakeGitHub, name: &str, event: &Value) -> Run {
    support::handle_on_github(env, gh, name, event).await
}

fn pr_event(action: &str, sha: &str) -> Value {
    support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        action,
        &github_pull("org/app", 7, BRANCH, sha, "org/app"),
        "writer",
    )
}

fn states(d: &Value) -> Vec<String> {
    d["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_is_a_deployment_with_its_url_and_only_the_newest_is_active() {
    let (env, gh) = world().await;
    let slug = support::slug_of(BRANCH);
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let list = gh.deployments("org/app");
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d["ref"], SHA);
    assert_eq!(d["environment"], format!("preview/{slug}").as_str());
    assert_eq!(d["transient_environment"], true);
    assert_eq!(d["production_environment"], false);
    assert_eq!(d["request"]["auto_merge"], false);
    assert_eq!(d["request"]["required_contexts"], json!([]));
    // Without a wait for Flux the verdict follows at once: one status, no `in_progress`.
    assert_eq!(states(d), ["success"]);
    let success = &d["statuses"][0];
    assert_eq!(
        success["environment_url"],
        format!("https://{slug}.preview.example.com").as_str()
    );
    let comment: Vec<Value> = gh
        .comments("org/app", 7)
        .into_iter()
        .filter(|c| c["user"]["login"] != "writer")
        .collect();
    assert_eq!(success["log_url"], comment[0]["html_url"], "{success}");

    // A push: a new deployment at the new head; the first one becomes inactive.
    gh.pull(
        "org/app",
        github_pull("org/app", 7, BRANCH, NEW_SHA, "org/app"),
    );
    let out = handle(&env, &gh, "pull_request", &pr_event("synchronize", NEW_SHA))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let list = gh.deployments("org/app");
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["ref"], NEW_SHA);
    assert_eq!(states(&list[0]), ["success", "inactive"]);
    assert_eq!(states(&list[1]), ["success"]);

    // Closed: the newest becomes inactive too.
    let mut closed = github_pull("org/app", 7, BRANCH, NEW_SHA, "org/app");
    closed["state"] = json!("closed");
    gh.pull("org/app", closed.clone());
    let mut e = pr_event("closed", NEW_SHA);
    e["pull_request"] = closed;
    let out = handle(&env, &gh, "pull_request", &e).await.ok().json();
    assert_eq!(out["action"], "destroyed", "{out}");
    let list = gh.deployments("org/app");
    assert_eq!(states(&list[1]), ["success", "inactive"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_deployments_permission_still_deploys() {
    let (env, gh) = world().await;
    gh.fail("POST", "/repos/org/app/deployments", 403);
    let out = handle(
        &env,
        &gh,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(env.sync_file(&support::slug_of(BRANCH)).is_some());
    assert!(gh.deployments("org/app").is_empty());
}
