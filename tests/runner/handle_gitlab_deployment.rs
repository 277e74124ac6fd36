//! `handle` with GitLab Deployment Hook events against the shared stateful fake GitLab API and a real
//! bare repository.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::FakeGitLab;
use support::{Run, TestEnv};

const FULL_SHA: &str = "279484c09fbe69ededfced8c1bb6e6d24616b468";
const SLUG: &str = "review-feature-lo-8a2kd3";

/// The fixture hook, moved to a review environment.
fn hook(status: &str, environment: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(include_str!("../fixtures/gitlab/deployment.json")).unwrap();
    v["status"] = json!(status);
    v["environment"] = json!(environment);
    v["environment_slug"] = json!(SLUG);
    v["environment_external_url"] = json!(format!("https://app-{SLUG}.example.com"));
    v["ref"] = json!("feature/login");
    // The repository this GitOps repository takes previews for (its source_url's path).
    v["project"]["path_with_namespace"] = json!("org/app");
    v
}

/// GitLab's answer to GET /projects/:id/deployments/:id, shaped like the real API.
fn deployment_api() -> Value {
    json!({
        "id": 15, "iid": 2, "ref": "feature/login", "sha": FULL_SHA,
        "created_at": "2021-04-28T19:49:00.000Z", "updated_at": "2021-04-28T19:50:00.000Z", "status": "success",
        "user": { "id": 42, "name": "User1", "username": "user1", "state": "active",
                  "avatar_url": "https://www.gravatar.com/avatar/e64c?s=80&d=identicon", "web_url": "http://10.126.0.2:3000/user1" },
        "environment": { "id": 9, "name": "review/feature-login", "external_url": format!("https://app-{SLUG}.example.com") },
        "deployable": { "id": 796, "status": "success", "stage": "deploy", "name": "start-review", "ref": "feature/login", "tag": false }
    })
}

/// GitLab with deployment 15 of project 30, answering only the token `glpat-test-token`.
async fn fake_gitlab() -> FakeGitLab {
    let gl = FakeGitLab::start().await;
    gl.require_token("glpat-test-token");
    gl.project(30, "org/app");
    gl.deployment(30, 15, deployment_api());
    gl
}

/// How often the deployment was read.
async fn deployment_reads(gl: &FakeGitLab) -> usize {
    gl.requests()
        .await
        .iter()
        .filter(|r| *r == "GET /api/v4/projects/30/deployments/15")
        .count()
}

async fn handle(env: &TestEnv, server: &FakeGitLab, payload: &Value, token: &str) -> Run {
    let vars = [
        ("GITLAB_URL", server.uri()),
        ("GITLAB_TOKEN", token.to_string()),
    ];
    support::handle_event(env, "Deployment Hook", payload, &vars).await
}

fn env_without_source_url() -> TestEnv {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("app: app\ngitlab_project: org/app\n"),
        )],
        "source from the hook",
    );
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_deployment_deploys_at_the_full_sha() {
    let env = env_without_source_url();
    let server = fake_gitlab().await;
    let expected_reads = 1;
    let out = handle(
        &env,
        &server,
        &hook("success", "review/feature-login"),
        "glpat-test-token",
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed");
    assert_eq!(out["slug"], SLUG);
    let docs = env.docs(SLUG);
    assert_eq!(
        docs[0]["spec"]["ref"]["commit"], FULL_SHA,
        "the full sha comes from the Deployments API"
    );
    assert_eq!(
        docs[0]["spec"]["url"],
        "http://10.126.0.2:3000/root/test-deployment-webhooks.git"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/branch"],
        "feature/login"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/author"],
        "user1"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/environment"],
        "review/feature-login"
    );
    assert_eq!(
        out["preview_url"],
        format!("https://app-{SLUG}.example.com")
    );
    assert_eq!(
        deployment_reads(&server).await,
        expected_reads,
        "reads of the Deployments API"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn other_statuses_and_filtered_environments_are_ignored_without_api_calls() {
    let env = env_without_source_url();
    let server = fake_gitlab().await;
    let expected_reads = 0;
    let head = env.head();
    let out = handle(
        &env,
        &server,
        &hook("failed", "review/feature-login"),
        "glpat-test-token",
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "ignored");
    let out = handle(
        &env,
        &server,
        &hook("success", "staging"),
        "glpat-test-token",
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "ignored");
    assert!(out["reason"]
        .as_str()
        .unwrap()
        .contains("include_environment"));
    assert_eq!(env.head(), head);
    assert_eq!(
        deployment_reads(&server).await,
        expected_reads,
        "reads of the Deployments API"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_a_clear_error_that_does_not_show_the_token() {
    let env = env_without_source_url();
    let server = fake_gitlab().await;
    let expected_reads = 0;
    let head = env.head();
    let out = handle(
        &env,
        &server,
        &hook("running", "review/feature-login"),
        "glpat-wrong-secret",
    )
    .await;
    let out = out.fails_with(4, "GITLAB_TOKEN");
    assert!(
        !out.stderr.contains("glpat-wrong-secret") && !out.stdout.contains("glpat-wrong-secret")
    );
    assert_eq!(env.head(), head);
    assert_eq!(
        deployment_reads(&server).await,
        expected_reads,
        "reads of the Deployments API"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_unknown_events_are_refused_clearly() {
    let env = TestEnv::new();
    let server = fake_gitlab().await;
    let expected_reads = 0;
    let out = handle(
        &env,
        &server,
        &json!({"object_kind": "deployment", "status": "success"}),
        "glpat-test-token",
    )
    .await;
    out.fails_with(1, "malformed Deployment Hook");
    let file = env.path("push.json");
    std::fs::write(&file, "{\"object_kind\":\"push\"}").unwrap();
    env.run(&[
        "handle",
        "--event-file",
        file.to_str().unwrap(),
        "--repo",
        env.remote.to_str().unwrap(),
    ])
    .fails_with(1, "not handled");
    assert_eq!(
        deployment_reads(&server).await,
        expected_reads,
        "reads of the Deployments API"
    );
}
