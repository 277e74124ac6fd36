//! ChatOps on GitLab: Note and Merge Request hooks against the stateful fake GitLab API and a real
//! bare GitOps repository.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{gitlab_merge_request, FakeGitLab, GITLAB_BOT_ID};
use support::{Run, TestEnv};

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

/// Merge request !1 as GitLab's API answers it from now on: head `sha`, `state`, from
/// `source_project`.
fn mr_api(gl: &FakeGitLab, sha: &str, state: &str, source_project: u64) {
    let mut mr = gitlab_merge_request(5, 1, "master", sha);
    mr["state"] = json!(state);
    mr["title"] = json!("MS-Viewport");
    mr["source_project_id"] = json!(source_project);
    gl.merge_request(mr);
}

/// GitLab with project 5 (org/app), merge request !1, root (user 1) a Maintainer, user 2 not a
/// member.
async fn fake_gitlab() -> FakeGitLab {
    let gl = FakeGitLab::start().await;
    gl.project(5, "org/app");
    gl.project(77, "evil/app");
    gl.member(5, 1, 40);
    mr_api(&gl, SHA, "opened", 5);
    gl
}

/// The notes on !1 as they are now (the bot's own is edited in place).
async fn notes(gl: &FakeGitLab) -> Vec<String> {
    gl.notes(5, 1)
        .iter()
        .map(|n| n["body"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn handle(env: &TestEnv, server: &FakeGitLab, kind: &str, event: &Value) -> Run {
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
    let statuses = server.statuses(5).len();
    assert_eq!(statuses, 2, "running, then success");

    // A new commit moves it; merging removes it.
    mr_api(&server, NEW_SHA, "opened", 5);
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
    mr_api(&server, SHA, "opened", 77);
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
    let server = fake_gitlab().await;
    server.add_note(5, 1, 3, "please review");
    server.add_note(5, 1, 1, "<!-- flux-ephemeral -->\nforged by a person");
    server.add_note(5, 1, GITLAB_BOT_ID, "<!-- flux-ephemeral -->\nold");
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed");
    let notes = notes(&server).await;
    assert_eq!(notes.len(), 3, "no new note: {notes:?}");
    assert_eq!(notes[0], "please review");
    assert!(
        notes[1].contains("forged by a person"),
        "another person's note is untouched"
    );
    assert!(
        notes[2].contains("is being deployed"),
        "the bot's own note is edited: {notes:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chatops_preview_gets_a_gitlab_environment_with_its_url_and_it_stops_on_destroy() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(
                "source_url: https://git.example.com/org/app.git\n\
                 preview_url: \"https://{{ slug }}.preview.example.com\"\n",
            ),
        )],
        "preview URL",
    );
    let server = fake_gitlab().await;
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let slug = support::slug_of("master");
    let envs = server.environments(5);
    let e = envs
        .iter()
        .find(|e| e["name"] == format!("review/{slug}").as_str())
        .unwrap_or_else(|| panic!("no review environment: {envs:?}"));
    assert_eq!(e["tier"], "development");
    assert_eq!(
        e["external_url"],
        format!("https://{slug}.preview.example.com").as_str()
    );
    // A deployment of the MR's head in it, so the MR widget shows "View app".
    let deployments = server.deployments(5);
    let d = deployments
        .iter()
        .find(|d| d["environment"] == format!("review/{slug}").as_str())
        .unwrap_or_else(|| panic!("no deployment: {deployments:?}"));
    assert_eq!(d["sha"], SHA);
    assert_eq!(d["ref"], "master");
    assert_eq!(d["status"], "success");

    let out = handle(&env, &server, "Note Hook", &note(1, "/destroy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed", "{out}");
    let envs = server.environments(5);
    let e = envs
        .iter()
        .find(|e| e["name"] == format!("review/{slug}").as_str())
        .unwrap();
    assert_eq!(e["state"], "stopping", "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn require_pipeline_waits_for_the_head_pipeline_and_its_hook_releases_it() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://git.example.com/org/app.git\nrequire_pipeline: true\n"),
        )],
        "require the pipeline",
    );
    let server = fake_gitlab().await;
    server.pipeline(5, SHA, "running");
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "waiting", "{out}");
    assert!(
        notes(&server).await[0].contains("waits for pipeline"),
        "{:?}",
        notes(&server).await
    );
    assert!(env.sync_file("master").is_none());
    // The pipeline succeeds; its hook releases the preview.
    server.pipeline(5, SHA, "success");
    let hook = json!({"object_kind": "pipeline",
        "object_attributes": {"id": 31, "sha": SHA, "status": "success", "ref": "master"},
        "merge_request": {"iid": 1},
        "project": {"id": 5, "path_with_namespace": "org/app"},
        "user": {"id": 1, "username": "root"}});
    let out = handle(&env, &server, "Pipeline Hook", &hook)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(env.sync_file("master").is_some());
    // A failed pipeline deploys nothing and says so.
    server.pipeline(5, SHA, "failed");
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(notes(&server).await[0].contains("not deployed: pipeline failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_read_the_merge_request_diffs() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://git.example.com/org/app.git\npaths: [\"src/**\"]\n"),
        )],
        "paths",
    );
    let server = fake_gitlab().await;
    server.diffs(5, 1, &["docs/a.md", "README.md"]);
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(notes(&server).await[0].contains("src/**"));
    let mut files: Vec<String> = (0..150).map(|i| format!("docs/{i}.md")).collect();
    files.push("src/main.rs".into());
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    server.diffs(5, 1, &refs);
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_merge_request_is_deployed_when_it_is_marked_ready() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://git.example.com/org/app.git\ndeploy_label: preview\n"),
        )],
        "label",
    );
    let server = fake_gitlab().await;
    server.edit_merge_request(5, 1, |m| {
        m["draft"] = json!(true);
        m["labels"] = json!(["preview"]);
    });
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(notes(&server).await[0].contains("draft"));
    // Marked ready: GitLab's update hook says draft went from true to false.
    server.edit_merge_request(5, 1, |m| m["draft"] = json!(false));
    let mut hook = merge_request("update", 1);
    hook["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("oldrev");
    hook["changes"] = json!({"draft": {"previous": true, "current": false}});
    hook["labels"] = json!([{"title": "preview"}]);
    let out = handle(&env, &server, "Merge Request Hook", &hook)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(env.sync_file("master").is_some());
}

/// The previews page without cluster access reads Flux's commit status on GitLab, where the
/// application's project is configured by its numeric id.
#[tokio::test(flavor = "multi_thread")]
async fn the_previews_page_shows_fluxs_gitlab_commit_status() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("gitlab_project: \"5\"\n"))],
        "config",
    );
    let server = fake_gitlab().await;
    let out = handle(&env, &server, "Note Hook", &note(1, "/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    server.post_status(
        5,
        SHA,
        &env.flux_status_context("master"),
        "failed",
        "kustomize build failed: accumulating resources",
    );
    let s = support::serving::Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITLAB_URL", server.uri()),
            ("GITLAB_TOKEN", "glpat-test".into()),
            ("FLUX_EPHEMERAL_UI_TOKEN", "read-token-0123456789".into()),
        ],
    );
    let row = tokio::task::block_in_place(|| {
        let start = std::time::Instant::now();
        loop {
            let (_, body) = support::serving::request(
                s.port,
                "GET",
                "/api/previews",
                &[("Authorization", "Bearer read-token-0123456789".into())],
                "",
            );
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["rows"][0]["state"] == "failed" {
                return v["rows"][0].clone();
            }
            assert!(start.elapsed().as_secs() < 20, "{v}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    assert_eq!(row["change"], "1");
    assert!(row["message"]
        .as_str()
        .unwrap()
        .contains("kustomize build failed"));
}

/// The fake GitLab answers only the endpoints GitLab documents, with the parameters documented
/// for them (tests/contracts/gitlab/endpoints.txt); anything else is refused and fails the test.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_gitlab_refuses_what_gitlab_does_not_document() {
    let gl = FakeGitLab::start().await;
    let http = reqwest::Client::new();
    for url in [
        "/api/v4/projects/1/merge_requests?state=opened&colour=red",
        "/api/v4/projects/1/no-such-thing",
    ] {
        let sent = http.get(format!("{}{url}", gl.uri())).send().await.unwrap();
        assert_eq!(sent.status().as_u16(), 400, "{url}");
    }
    let v = gl.take_violations();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(
        v[0].contains("/projects/{id}/merge_requests") && v[0].contains("colour"),
        "{}",
        v[0]
    );
    assert!(v[1].contains("not an endpoint"), "{}", v[1]);
}
