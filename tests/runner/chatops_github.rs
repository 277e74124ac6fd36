//! ChatOps on GitHub: the real binary handles real-shaped events against a fake GitHub API
//! (the shared stateful fake) and a real bare GitOps repository.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::FakeGitHub;
use support::payloads::github_comment;
use support::{Run, TestEnv};

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW_SHA: &str = "1111111111111111111111111111111111111111";
const BRANCH: &str = "feature/chat";

/// A pull request as GitHub's API returns it.
fn pull_request(head_repo: &str, sha: &str) -> Value {
    let mut pr = support::github::shapes::pull("org/app", 7, BRANCH, sha, head_repo);
    pr["title"] = json!("Chat: \"quoted\" # title");
    pr["head"]["repo"]["fork"] = json!(head_repo != "org/app");
    pr
}

fn comment_event(who: &str, body: &str) -> Value {
    github_comment("org/app", 7, who, body)
}

fn pr_event(fixture_name: &str, action: &str, who: &str, sha: &str) -> Value {
    support::payloads::github_pr_event(fixture_name, action, &pull_request("org/app", sha), who)
}

/// The shared stateful fake GitHub, seen from these tests: pull request #7 of org/app, three
/// people with their permissions, and expectations on what the bot writes, checked when the
/// test ends.
struct Fake {
    gh: FakeGitHub,
    server: std::sync::Arc<wiremock::MockServer>,
    expected: std::sync::Mutex<Vec<(String, usize)>>,
}

impl Fake {
    async fn start(head_repo: &str) -> Fake {
        let gh = FakeGitHub::start("bot").await;
        gh.permission("org/app", "maintainer", "maintain");
        gh.permission("org/app", "writer", "write");
        gh.permission("org/app", "stranger", "read");
        gh.pull("org/app", pull_request(head_repo, SHA));
        Fake {
            server: gh.server.clone(),
            gh,
            expected: Default::default(),
        }
    }

    /// Pull request #7 as the API answers it from now on (its head moved, it was closed, ...).
    async fn pull(&self, pr: Value) {
        self.gh.pull("org/app", pr);
    }

    /// Comments others wrote on the pull request.
    async fn comments(&self, existing: Value) {
        for c in existing.as_array().unwrap() {
            self.gh.add_comment(
                "org/app",
                7,
                c["user"]["login"].as_str().unwrap(),
                c["body"].as_str().unwrap(),
            );
        }
    }

    /// The bot writes (creates or edits its comment with) text `containing` this, `times` times.
    async fn expect_new_comment(&self, containing: &str, times: u64) {
        self.expected
            .lock()
            .unwrap()
            .push((containing.to_string(), times as usize));
    }

    /// Bodies the bot wrote to comments: `(method, path, body)`.
    async fn writes(&self) -> Vec<(String, String, String)> {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() != "GET" && r.url.path().contains("comments"))
            .map(|r| {
                (
                    r.method.to_string(),
                    r.url.path().to_string(),
                    String::from_utf8_lossy(&r.body).into_owned(),
                )
            })
            .collect()
    }

    /// Check what `expect_new_comment` asked for.
    async fn verify(&self) {
        let writes = self.writes().await;
        for (containing, times) in self.expected.lock().unwrap().iter() {
            let n = writes
                .iter()
                .filter(|w| w.2.contains(containing.as_str()))
                .count();
            assert_eq!(n, *times, "comments containing {containing:?}: {writes:?}");
        }
    }

    async fn statuses(&self, state: &str) -> usize {
        self.gh
            .statuses("org/app")
            .iter()
            .filter(|s| s.1 == state)
            .count()
    }
}

async fn handle(env: &TestEnv, fake: &Fake, event_name: &str, event: &Value) -> Run {
    handle_with(env, fake, event_name, event, &[]).await
}

async fn handle_with(
    env: &TestEnv,
    fake: &Fake,
    event_name: &str,
    event: &Value,
    extra: &[(&str, &str)],
) -> Run {
    let mut vars = vec![
        ("GITHUB_API_URL", fake.gh.uri()),
        ("GITHUB_TOKEN", "ghs-test-token".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    fake.gh.delivered(event_name, event);
    support::handle_event(env, event_name, event, &vars).await
}

fn slug() -> String {
    support::slug_of(BRANCH)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_maintainers_comment_deploys_the_head_and_answers() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    fake.expect_new_comment("is being deployed", 1).await;
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("maintainer", "Looks good.\n\n/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert_eq!(out["slug"], slug());
    let docs = env.docs(&slug());
    assert_eq!(docs[0]["spec"]["ref"]["commit"], SHA);
    let ann = &docs[0]["metadata"]["annotations"];
    assert_eq!(ann["flux-ephemeral.io/id"], "7");
    assert_eq!(ann["flux-ephemeral.io/title"], "Chat: \"quoted\" # title");
    assert_eq!(ann["flux-ephemeral.io/branch"], BRANCH);
    // Nothing slow came between (no artifact, no wait): one status says the verdict.
    assert_eq!(fake.statuses("pending").await, 0);
    assert_eq!(fake.statuses("success").await, 1);
    fake.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redeploy_edits_the_bots_one_comment() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([
        {"id": 41, "body": "a person's comment", "user": {"login": "someone"}},
        {"id": 42, "body": "<!-- flux-ephemeral -->\nold", "user": {"login": "bot"}}
    ]))
    .await;

    handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
    )
    .await
    .ok();
    let count = env.commit_count();
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    // Deploying again extends the time to live: a new deploy time, nothing else.
    assert!(
        out["action"] == "deployed" || out["action"] == "unchanged",
        "{out}"
    );
    assert!(env.commit_count() <= count + 1);
    // Both replies edited the bot's own comment; nobody else's, and no new one.
    let writes = fake.writes().await;
    assert!(writes.iter().all(|w| w.0 == "PATCH"), "{writes:?}");
    let bots = fake.gh.comments("org/app", 7);
    assert_eq!(bots.len(), 2);
    assert_eq!(bots[0]["body"], "a person's comment");
    assert!(bots[1]["body"]
        .as_str()
        .unwrap()
        .contains("Preview environment"));
    assert_eq!(writes.len(), 2, "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn new_pushes_move_an_existing_environment_only() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    let head = env.head();
    let out = handle(
        &env,
        &fake,
        "pull_request",
        &pr_event(
            "pull_request.synchronize.payload.json",
            "synchronize",
            "writer",
            NEW_SHA,
        ),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "ignored", "no environment yet: {out}");
    assert_eq!(env.head(), head);
    handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
    )
    .await
    .ok();
    fake.pull(pull_request("org/app", NEW_SHA)).await;
    let out = handle(
        &env,
        &fake,
        "pull_request",
        &pr_event(
            "pull_request.synchronize.payload.json",
            "synchronize",
            "writer",
            NEW_SHA,
        ),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert_eq!(env.docs(&slug())[0]["spec"]["ref"]["commit"], NEW_SHA);
    // A stranger's push does not reach the cluster.
    let out = handle(
        &env,
        &fake,
        "pull_request",
        &pr_event(
            "pull_request.synchronize.payload.json",
            "synchronize",
            "stranger",
            SHA,
        ),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused");
    assert_eq!(env.docs(&slug())[0]["spec"]["ref"]["commit"], NEW_SHA);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_close_and_merge_remove_the_environment() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
    )
    .await
    .ok();
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/destroy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "destroyed");
    assert!(env.sync_file(&slug()).is_none());

    for merged in [false, true] {
        handle(
            &env,
            &fake,
            "issue_comment",
            &comment_event("writer", "/deploy-ephemeral"),
        )
        .await
        .ok();
        let mut closed = pr_event("pull_request.closed.payload.json", "closed", "author", SHA);
        closed["pull_request"]["merged"] = json!(merged);
        let out = handle(&env, &fake, "pull_request", &closed)
            .await
            .ok()
            .json();
        assert_eq!(out["action"], "destroyed", "{out}");
        assert!(env.sync_file(&slug()).is_none());
    }
    // Closing again: nothing to remove, nothing committed.
    let count = env.commit_count();
    let out = handle(
        &env,
        &fake,
        "pull_request",
        &pr_event("pull_request.closed.payload.json", "closed", "author", SHA),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "unchanged");
    assert_eq!(env.commit_count(), count);
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_deploy_and_destroy_when_configured() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ndeploy_label: preview\n"),
        )],
        "label",
    );
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    let mut labeled = pr_event(
        "pull_request.labeled.payload.json",
        "labeled",
        "writer",
        SHA,
    );
    labeled["label"] = support::github::shapes::label("org/app", "preview");
    let out = handle(&env, &fake, "pull_request", &labeled)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(env.sync_file(&slug()).is_some());
    let mut other = labeled.clone();
    other["label"]["name"] = json!("bug");
    assert_eq!(
        handle(&env, &fake, "pull_request", &other)
            .await
            .ok()
            .json()["action"],
        "ignored"
    );
    let mut unlabeled = labeled.clone();
    unlabeled["action"] = json!("unlabeled");
    let out = handle(&env, &fake, "pull_request", &unlabeled)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
    assert!(env.sync_file(&slug()).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_and_forks_are_refused_with_an_answer() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    fake.expect_new_comment("may not deploy previews", 1).await;
    let head = env.head();
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("stranger", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused");
    assert_eq!(env.head(), head);

    let fork = Fake::start("evil/app").await;
    fork.comments(json!([])).await;
    fork.expect_new_comment("forks", 1).await;
    let out = handle(
        &env,
        &fork,
        "issue_comment",
        &comment_event("maintainer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert_eq!(env.head(), head);

    // With allow_forks the environment fetches the fork.
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\nallow_forks: true\n"),
        )],
        "forks",
    );
    let out = handle(
        &env,
        &fork,
        "issue_comment",
        &comment_event("maintainer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "deployed");
    assert_eq!(
        env.docs(&slug())[0]["spec"]["url"],
        "https://github.com/evil/app.git"
    );
    fake.verify().await;
    fork.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_typos_are_answered_and_other_comments_ignored() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    fake.expect_new_comment("ttl=24h", 1).await;
    fake.expect_new_comment("did you mean", 1).await;
    let head = env.head();
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("stranger", "/deploy-ephemeral help"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "ignored");
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemera"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused");
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "```\n/deploy-ephemeral\n```"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "ignored");
    let mut edited = comment_event("writer", "/deploy-ephemeral");
    edited["action"] = json!("edited");
    edited["changes"] = json!({"body": {"from": "deploy please"}});
    assert_eq!(
        handle(&env, &fake, "issue_comment", &edited)
            .await
            .ok()
            .json()["action"],
        "ignored"
    );
    assert_eq!(env.head(), head);
    fake.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_environment_ttl_is_recorded() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral ttl=24h"),
    )
    .await
    .ok();
    assert_eq!(
        env.docs(&slug())[0]["metadata"]["annotations"]["flux-ephemeral.io/ttl"],
        "1day"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_cap_is_answered_as_a_refusal() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\nmax_environments: 1\n"),
        )],
        "cap",
    );
    env.deploy(&["--branch", "other"]).ok();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    fake.expect_new_comment("maximum (1)", 1).await;
    let head = env.head();
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert_eq!(env.head(), head);
    assert_eq!(fake.statuses("failure").await, 1);
    fake.verify().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_branch_is_read_once_per_event() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    fake.comments(json!([])).await;
    let debug = [("FLUX_EPHEMERAL_LOG", "flux_ephemeral=debug")];
    let out = handle_with(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/deploy-ephemeral"),
        &debug,
    )
    .await
    .ok();
    assert_eq!(
        out.stderr.matches("reading the target branch").count(),
        1,
        "{}",
        out.stderr
    );
    let out = handle_with(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "/destroy-ephemeral"),
        &debug,
    )
    .await
    .ok();
    assert_eq!(
        out.stderr.matches("reading the target branch").count(),
        1,
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ignored_events_report_the_same_fields() {
    let env = TestEnv::new();
    let fake = Fake::start("org/app").await;
    let out = handle(
        &env,
        &fake,
        "issue_comment",
        &comment_event("writer", "no command here"),
    )
    .await
    .ok()
    .json();
    let fields = out.as_object().unwrap();
    for key in ["action", "reason", "slug", "commit"] {
        assert!(fields.contains_key(key), "{key} missing: {out}");
    }
    assert_eq!(out["action"], "ignored");
}

/// The fake GitHub is held to GitHub's published contract in both directions: a request that
/// departs from GitHub's OpenAPI description is refused and recorded, naming the operation and
/// the parameter or field; so is an answer with a field GitHub does not document.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_github_refuses_what_githubs_contract_does_not_allow() {
    let Some(rest) = support::contract::github_rest() else {
        support::skip("GitHub's contracts are not fetched (scripts/contracts.sh)");
        return;
    };
    let gh = FakeGitHub::start("bot").await;
    let http = reqwest::Client::new();
    let sent = http
        .get(format!(
            "{}/repos/org/app/pulls?state=open&colour=red",
            gh.uri()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 422);
    let sent = http
        .post(format!("{}/repos/org/app/statuses/{SHA}", gh.uri()))
        .json(&json!({"state": "great", "context": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 422);
    let sent = http
        .get(format!("{}/repos/org/app/no-such-thing", gh.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 422);
    let v = gh.take_violations();
    assert_eq!(v.len(), 3, "{v:#?}");
    assert!(
        v[0].contains("GET /repos/{owner}/{repo}/pulls") && v[0].contains("\"colour\""),
        "{}",
        v[0]
    );
    assert!(
        v[1].contains("POST /repos/{owner}/{repo}/statuses/{sha}") && v[1].contains("/state"),
        "{}",
        v[1]
    );
    assert!(v[2].contains("no such operation"), "{}", v[2]);

    // The answers: GitHub's combined status lists `simple-commit-status`, which names no
    // creator; an answer that does (as this fake once did) departs from the contract.
    let combined = "GET /repos/{owner}/{repo}/commits/{ref}/status";
    let mut answer = support::github::shapes::combined("org/app", SHA, &[]);
    assert_eq!(
        rest.response(combined, 200, answer.to_string().as_bytes()),
        Ok(())
    );
    let status = support::github::shapes::status(
        1,
        "flux-ephemeral",
        "pending",
        None,
        None,
        "bot",
        "2026-01-01T00:00:00Z",
    );
    answer["statuses"] = json!([status]);
    let refused = rest
        .response(combined, 200, answer.to_string().as_bytes())
        .unwrap_err();
    assert!(
        refused.contains("/statuses/0") && refused.contains("creator"),
        "{refused}"
    );
    // A status GitHub does not document for the operation.
    let refused = rest.response(combined, 201, b"{}").unwrap_err();
    assert!(refused.contains("does not document"), "{refused}");
}
