//! `serve`: webhooks over HTTP on 127.0.0.1, verified, answered at once and handled in order.

use crate::support;

use std::time::{Duration, Instant};

use flux_ephemeral::signatures::sign_github;
use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::serving::{request, Serving, SECRET};
use support::TestEnv;

fn comment(who: &str) -> String {
    let mut e: Value = serde_json::from_str(include_str!(
        "../fixtures/github/issue_comment.created.payload.json"
    ))
    .unwrap();
    e["issue"]["number"] = json!(7);
    e["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/org/app/pulls/7"});
    e["comment"]["body"] = json!("/deploy-ephemeral");
    e["comment"]["user"]["login"] = json!(who);
    e["repository"] = support::payloads::github_repo("org/app");
    support::contract::assert_github_webhook("issue_comment", &e);
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

/// The events `serve` reads, as GitHub names them.
const READ_EVENTS: [&str; 10] = [
    "issue_comment",
    "pull_request",
    "push",
    "check_run",
    "check_suite",
    "status",
    "workflow_run",
    "deployment_status",
    "ping",
    "installation",
];

/// Wait until `done` holds, or fail with `what`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every payload GitHub captured (`@octokit/webhooks-examples`) of every event `serve` reads goes
/// through `serve`, signed: none is answered with a 5xx, and `serve` stays healthy and ready.
#[tokio::test(flavor = "multi_thread")]
async fn every_captured_github_payload_goes_through_serve() {
    let Some(_) = support::contract::github_webhook_examples("ping") else {
        support::skip("GitHub's webhook examples are not fetched (scripts/contracts.sh)");
        return;
    };
    let env = TestEnv::new();
    let api = fake_github().await;
    let mut s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", api.uri()),
            ("GITHUB_TOKEN", "ghs-test".into()),
        ],
    );
    let port = s.port;
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = 0;
        for event in READ_EVENTS {
            let examples = support::contract::github_webhook_examples(event).unwrap();
            assert!(!examples.is_empty(), "no captured {event} payload");
            for payload in examples {
                let body = payload.to_string();
                let headers = support::serving::github_headers_unchecked(event, &body);
                let (status, text) = request(port, "POST", "/hooks/github", &headers, &body);
                assert!(
                    (200..500).contains(&status),
                    "{event}.{}: {status} {text}",
                    payload["action"]
                );
                seen += 1;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert!(seen >= 40, "only {seen} captured payloads");
    // Deliveries are handled in order: once a trusted deploy after them lands, all were handled.
    let body = comment("writer");
    let headers = support::serving::github_headers("issue_comment", &body);
    assert_eq!(s.post("/hooks/github", &headers, &body).0, 202);
    until(
        "serve handled every captured payload and then a deploy",
        || env.sync_file("served").is_some(),
    )
    .await;
    assert_eq!(s.get("/healthz").0, 200);
    assert_eq!(s.get("/readyz").0, 200);
    assert!(s.child.try_wait().unwrap().is_none(), "serve exited");
}

/// GitHub's captured pull request (Codertocat/Hello-World #2 from `changes`), deployed by a
/// trusted `/deploy-ephemeral` on it, moved by `synchronize` and destroyed by `closed`: each
/// payload as GitHub captured it, with only what the scenario needs changed.
#[tokio::test(flavor = "multi_thread")]
async fn captured_github_payloads_deploy_move_and_destroy() {
    let Some(prs) = support::contract::github_webhook_examples("pull_request") else {
        support::skip("GitHub's webhook examples are not fetched (scripts/contracts.sh)");
        return;
    };
    let pick = |action: &str| {
        prs.iter()
            .find(|p| p["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no captured pull_request.{action}"))
    };
    let (sync, closed) = (pick("synchronize"), pick("closed"));
    let repo = sync["repository"]["full_name"]
        .as_str()
        .unwrap()
        .to_string();
    let number = sync["number"].as_u64().unwrap();
    let branch = sync["pull_request"]["head"]["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let old = "1111111111111111111111111111111111111111";
    let new = sync["pull_request"]["head"]["sha"]
        .as_str()
        .unwrap()
        .to_string();
    let mut comment = support::contract::github_webhook_examples("issue_comment")
        .unwrap()
        .into_iter()
        .find(|c| c["action"] == "created")
        .unwrap();
    let who = comment["comment"]["user"]["login"]
        .as_str()
        .unwrap()
        .to_string();
    // On a pull request GitHub's issue carries `pull_request` (the captures are on an issue).
    comment["issue"]["number"] = json!(number);
    comment["issue"]["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "diff_url": format!("https://github.com/{repo}/pull/{number}.diff"),
        "patch_url": format!("https://github.com/{repo}/pull/{number}.patch"),
        "merged_at": null,
    });
    comment["comment"]["body"] = json!("/deploy-ephemeral");
    let env = TestEnv::new();
    let config = format!("source_url: https://github.com/{repo}.git\n");
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some(&config))],
        "previews of the captured repository",
    );
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission(&repo, &who, "admin");
    gh.pull(&repo, github_pull(&repo, number, &branch, old, &repo));
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghs-test".into()),
        ],
    );
    let post = |event: &str, payload: &Value| {
        let body = payload.to_string();
        let headers = support::serving::github_headers_unchecked(event, &body);
        let (status, text) = s.post("/hooks/github", &headers, &body);
        assert_eq!(status, 202, "{event}: {text}");
    };
    let slug = support::slug_of(&branch);
    post("issue_comment", &comment);
    until("the comment deployed the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(old))
    })
    .await;
    gh.edit_pull(&repo, number, |p| p["head"]["sha"] = json!(new));
    post("pull_request", &sync);
    until("synchronize moved the preview to the new head", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(&new))
    })
    .await;
    gh.edit_pull(&repo, number, |p| {
        p["state"] = json!("closed");
        p["merged"] = closed["pull_request"]["merged"].clone();
    });
    post("pull_request", &closed);
    until("closed destroyed the preview", || {
        env.sync_file(&slug).is_none()
    })
    .await;
}
