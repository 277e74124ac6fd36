//! ChatOps on GitLab: Note and Merge Request hooks against a fake GitLab API (wiremock) and a real
//! bare GitOps repository.

mod support;

use serde_json::{json, Value};
use support::{Run, TestEnv};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHA: &str = "562e173be03b8ff2efb05345d12df18815438a4b";
const NEW_SHA: &str = "2222222222222222222222222222222222222222";

fn fixture(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{}/tests/fixtures/gitlab/{name}", support::ROOT))
            .unwrap(),
    )
    .unwrap()
}

/// A note on merge request !1 of project 5 by `user` (id 1 is a Maintainer, 2 a stranger).
fn note(user_id: u64, body: &str) -> Value {
    let mut n = fixture("note_merge_request.json");
    n["object_attributes"]["note"] = json!(body);
    n["user"]["id"] = json!(user_id);
    n["user"]["username"] = json!(if user_id == 1 { "root" } else { "stranger" });
    n["project"]["id"] = json!(5);
    n["project"]["path_with_namespace"] = json!("org/app");
    n
}

fn merge_request(action: &str, user_id: u64) -> Value {
    let mut m = fixture("merge_request.json");
    m["project"]["id"] = json!(5);
    m["project"]["path_with_namespace"] = json!("org/app");
    m["user"]["id"] = json!(user_id);
    let oa = &mut m["object_attributes"];
    oa["action"] = json!(action);
    oa["iid"] = json!(1);
    oa["source_branch"] = json!("master");
    oa["source_project_id"] = json!(5);
    oa["target_project_id"] = json!(5);
    oa["last_commit"]["id"] = json!(NEW_SHA);
    if action == "update" {
        oa["oldrev"] = json!(SHA);
    }
    m["changes"] = json!({});
    m
}

/// Merge request !1 as GitLab's API answers it: head `sha`, `state`, from `source_project`. A later
/// call wins over earlier ones (the merge request moved on).
async fn mr_api(server: &MockServer, sha: &str, state: &str, source_project: u64) {
    use std::sync::atomic::{AtomicU8, Ordering};
    static PRIORITY: AtomicU8 = AtomicU8::new(200);
    let mr = json!({"id": 101, "iid": 1, "project_id": 5, "title": "MS-Viewport", "state": state,
        "source_branch": "master", "target_branch": "main", "sha": sha,
        "source_project_id": source_project, "target_project_id": 5,
        "author": {"id": 1, "username": "root"}});
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/merge_requests/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(mr))
        .with_priority(PRIORITY.fetch_sub(1, Ordering::SeqCst))
        .mount(server)
        .await;
}

async fn fake_gitlab() -> MockServer {
    let server = MockServer::start().await;
    mr_api(&server, SHA, "opened", 5).await;
    let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("GET"))
        .and(path("/api/v4/user"))
        .respond_with(ok(json!({"id": 99, "username": "bot"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/members/all/1"))
        .respond_with(ok(json!({"id": 1, "username": "root", "name": "Administrator", "state": "active", "access_level": 40})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/members/all/2"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/v4/projects/5/statuses/[0-9a-f]{40}$"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 1, "status": "success", "name": "flux-ephemeral"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/merge_requests/1/notes"))
        .respond_with(ok(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/projects/5/merge_requests/1/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 7, "body": "x"})))
        .mount(&server)
        .await;
    server
}

/// The notes posted on !1, decoded from GitLab's form-encoded requests.
async fn notes(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|r| {
            r.method.as_str() == "POST"
                && r.url.path() == "/api/v4/projects/5/merge_requests/1/notes"
        })
        .filter_map(|r| {
            url::form_urlencoded::parse(&r.body)
                .find(|(k, _)| k == "body")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

async fn handle(env: &TestEnv, server: &MockServer, kind: &str, event: &Value) -> Run {
    let vars = [
        ("GITLAB_URL", server.uri()),
        ("GITLAB_TOKEN", "glpat-test".to_string()),
    ];
    support::handle_event(env, kind, event, &vars).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_maintainers_note_deploys_and_merging_destroys() {
    let env = TestEnv::new();
    let server = fake_gitlab().await;
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let posted = notes(&server).await;
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].contains("is being deployed") && posted[0].contains("`app-master`"),
        "{posted:?}"
    );
    let docs = env.docs("master");
    assert_eq!(docs[0]["spec"]["ref"]["commit"], SHA);
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/id"],
        "1"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/author"],
        "root"
    );
    let statuses = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("/statuses/"))
        .count();
    assert_eq!(statuses, 2, "running, then success");

    // A new commit moves it; merging removes it.
    mr_api(&server, NEW_SHA, "opened", 5).await;
    let out = handle(
        &env,
        &server,
        "Merge Request Hook",
        &merge_request("update", 1),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert_eq!(env.docs("master")[0]["spec"]["ref"]["commit"], NEW_SHA);
    let out = handle(
        &env,
        &server,
        "Merge Request Hook",
        &merge_request("merge", 1),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "destroyed", "{out}");
    assert!(env.sync_file("master").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_is_refused_and_closing_cleans_up() {
    let env = TestEnv::new();
    let server = fake_gitlab().await;
    let head = env.head();
    let out = handle(&env, &server, "Note Hook", &note(2, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "refused");
    assert!(notes(&server).await[0].contains("may not deploy previews"));
    assert_eq!(env.head(), head);
    handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok();
    let out = handle(
        &env,
        &server,
        "Merge Request Hook",
        &merge_request("close", 2),
    )
    .await
    .ok()
    .json();
    assert_eq!(
        out["action"], "destroyed",
        "anyone who can close may clean up: {out}"
    );
    assert!(env.sync_file("master").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_help_and_forks() {
    let env = TestEnv::new();
    let server = fake_gitlab().await;
    assert_eq!(
        handle(
            &env,
            &server,
            "Note Hook",
            &note(1, "/deploy-ephemeral help")
        )
        .await
        .ok()
        .json()["action"],
        "ignored"
    );
    assert!(notes(&server).await[0].contains("`/destroy-ephemeral` removes it"));
    handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok();
    let out = handle(&env, &server, "Note Hook", &note(1, "/destroy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
    let mut fork = note(1, "/deploy-ephemeral");
    fork["merge_request"]["source_project_id"] = json!(77);
    mr_api(&server, SHA, "opened", 77).await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": 77, "http_url_to_repo": "https://gitlab.example.com/evil/app.git"}),
        ))
        .mount(&server)
        .await;
    let head = env.head();
    assert_eq!(
        handle(&env, &server, "Note Hook", &fork).await.ok().json()["action"],
        "refused"
    );
    assert_eq!(env.head(), head);
    assert!(notes(&server).await.last().unwrap().contains("forks"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bots_note_is_edited_not_repeated() {
    let env = TestEnv::new();
    let server = MockServer::start().await;
    mr_api(&server, SHA, "opened", 5).await;
    let ok = |v: Value| ResponseTemplate::new(200).set_body_json(v);
    Mock::given(method("GET"))
        .and(path("/api/v4/user"))
        .respond_with(ok(json!({"id": 99, "username": "bot"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/members/all/1"))
        .respond_with(ok(json!({"id": 1, "username": "root", "access_level": 30})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/v4/projects/5/statuses/"))
        .respond_with(ok(json!({"id": 1})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/projects/5/merge_requests/1/notes"))
        .respond_with(ok(json!([
            {"id": 10, "body": "please review", "author": {"id": 3, "username": "someone"}, "system": false},
            {"id": 12, "body": "<!-- flux-ephemeral -->\nforged by a person", "author": {"id": 1, "username": "root"}, "system": false},
            {"id": 11, "body": "<!-- flux-ephemeral -->\nold", "author": {"id": 99, "username": "bot"}, "system": false}
        ])))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/projects/5/merge_requests/1/notes/11"))
        .respond_with(ok(json!({"id": 11})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v4/projects/5/merge_requests/1/notes"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed");
}
