//! `serve`: webhooks over HTTP on 127.0.0.1, verified, answered at once and handled in order.

mod support;

use std::time::{Duration, Instant};

use flux_ephemeral::webhook::sign_github;
use serde_json::{json, Value};
use support::serving::{request, Serving, SECRET};
use support::TestEnv;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

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

async fn fake_github() -> MockServer {
    let server = MockServer::start().await;
    let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("GET"))
        .and(path("/repos/org/app/collaborators/writer/permission"))
        .respond_with(ok(json!({"permission": "write", "role_name": "write"})))
        .mount(&server)
        .await;
    let mut pr: Value = serde_json::from_str(include_str!(
        "fixtures/github/pull_request.opened.payload.json"
    ))
    .unwrap();
    pr["pull_request"]["number"] = json!(7);
    pr["pull_request"]["head"]["ref"] = json!("served");
    pr["pull_request"]["head"]["repo"]["full_name"] = json!("org/app");
    pr["pull_request"]["base"]["repo"]["full_name"] = json!("org/app");
    Mock::given(method("GET"))
        .and(path("/repos/org/app/pulls/7"))
        .respond_with(ok(pr["pull_request"].clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/repos/org/app/statuses/"))
        .respond_with(ok(json!({"id": 1})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ok(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/org/app/issues/7/comments"))
        .respond_with(ok(json!({"id": 1})))
        .mount(&server)
        .await;
    server
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
