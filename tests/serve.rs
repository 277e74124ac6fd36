//! `serve`: webhooks over HTTP on 127.0.0.1, verified, answered at once and handled in order.

mod support;

use std::time::{Duration, Instant};

use flux_ephemeral::webhook::sign_github;
use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::serving::{request, Serving, SECRET};
use support::TestEnv;

fn comment(who: &str) -> String {
    let mut e: Value = serde_json::from_str(include_str!(
        "fixtures/github/issue_comment.created.payload.json"
    ))
    .unwrap();
    e["issue"]["number"] = json!(7);
    e["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/org/app/pulls/7"});
    e["comment"]["body"] = json!("/deploy-ephemeral");
    e["comment"]["user"]["login"] = json!(who);
    e["repository"]["full_name"] = json!("org/app");
    e.to_string()
}

/// GitHub with pull request #7 of org/app from branch `served`, and `writer` who may write.
async fn fake_github() -> FakeGitHub {
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull(
        "org/app",
        github_pull(
            "org/app",
            7,
            "served",
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            "org/app",
        ),
    );
    gh
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_deliveries_are_handled_and_others_refused() {
    let env = TestEnv::new();
    let api = fake_github().await;
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", api.uri()),
            ("GITHUB_TOKEN", "ghs-test".into()),
        ],
    );
    let port = s.port;
    let post = |port, path, headers: &[(&str, String)], body: &str| {
        request(port, "POST", path, headers, body)
    };
    let head = env.head();
    let result = tokio::task::spawn_blocking(move || {
        let body = comment("writer");
        let event = ("X-GitHub-Event", "issue_comment".to_string());
        assert_eq!(
            post(port, "/hooks/github", std::slice::from_ref(&event), &body).0,
            401,
            "unsigned"
        );
        let wrong = (
            "X-Hub-Signature-256",
            sign_github(b"not-the-secret", body.as_bytes()),
        );
        assert_eq!(
            post(port, "/hooks/github", &[event.clone(), wrong], &body).0,
            401,
            "wrong secret"
        );
        let bad = "{\"action\": \"created\"}";
        let (status, text) = post(
            port,
            "/hooks/github",
            &[
                event.clone(),
                (
                    "X-Hub-Signature-256",
                    sign_github(SECRET.as_bytes(), bad.as_bytes()),
                ),
            ],
            bad,
        );
        assert_eq!(status, 400);
        assert!(text.contains("malformed"), "{text}");
        let (status, _) = post(
            port,
            "/hooks/gitlab",
            &[("X-Gitlab-Token", "guess".into())],
            "{}",
        );
        assert_eq!(status, 401);
        assert_eq!(post(port, "/elsewhere", &[], "").0, 404);
        let signed = (
            "X-Hub-Signature-256",
            sign_github(SECRET.as_bytes(), body.as_bytes()),
        );
        post(port, "/hooks/github", &[event, signed], &body)
    })
    .await
    .unwrap();
    assert_eq!(result.0, 202, "{result:?}");
    assert_eq!(env.head(), head, "refused deliveries changed nothing");
    // The accepted delivery is handled in the background.
    let start = Instant::now();
    while env.sync_file("served").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the accepted comment was not deployed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
