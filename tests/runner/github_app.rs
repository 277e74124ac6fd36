//! GitHub as a GitHub App, and the API budget: `serve` against the fake GitHub playing GitHub's
//! rules for Apps (JWTs, installation tokens that expire, one installation per organisation), and
//! the requests one preview's life costs, counted.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::serving::Serving;
use support::TestEnv;

const OLD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW: &str = "1f0c7a1e5b9d4c3a2e6f8b7d9c0a1b2c3d4e5f60";

/// At most this many requests (that count against GitHub's rate limit) for one preview's life
/// through `serve`: a comment deploys it, a push moves it, closing removes it.
const LIFE_BUDGET: usize = 13;

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `serve` has handled everything it was sent (its journal is empty) and the fake
/// has heard nothing more for a moment.
async fn settled(s: &Serving, gh: &FakeGitHub) {
    let mut seen = usize::MAX;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _ = s;
        let n = gh.billed().len();
        if n == seen {
            return;
        }
        seen = n;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not settle"
        );
    }
}

fn post(s: &Serving, event: &str, payload: &Value) {
    let body = payload.to_string();
    let headers = support::serving::github_headers(event, &body);
    let (status, text) = s.post("/hooks/github", &headers, &body);
    assert_eq!(status, 202, "{event}: {text}");
}

/// A deploy by comment, a push and a close, each step's requests counted.
async fn life(
    env: &TestEnv,
    gh: &FakeGitHub,
    s: &Serving,
    repo: &str,
    installation: Option<u64>,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let with = |mut v: Value| {
        if let Some(id) = installation {
            v["installation"] =
                json!({"id": id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="});
        }
        v
    };
    let slug = support::slug_of("served");
    let mut steps = Vec::new();
    gh.take_billed();
    // As on GitHub, the comment is in the conversation before its webhook is delivered.
    gh.add_comment(repo, 7, "writer", "/deploy-ephemeral");
    post(
        s,
        "issue_comment",
        &with(support::payloads::github_comment(
            repo,
            7,
            "writer",
            "/deploy-ephemeral",
        )),
    );
    until("the comment deployed the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(OLD))
    })
    .await;
    settled(s, gh).await;
    steps.push(("deploy by comment", gh.take_billed()));
    gh.edit_pull(repo, 7, |p| p["head"]["sha"] = json!(NEW));
    let pr = gh_pull(gh, repo);
    let mut push = support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &pr,
        "writer",
    );
    push["before"] = json!(OLD);
    push["after"] = json!(NEW);
    post(s, "pull_request", &with(push));
    until("the push moved the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(NEW))
    })
    .await;
    settled(s, gh).await;
    steps.push(("push", gh.take_billed()));
    gh.edit_pull(repo, 7, |p| p["state"] = json!("closed"));
    let pr = gh_pull(gh, repo);
    post(
        s,
        "pull_request",
        &with(support::payloads::github_pr_event(
            "pull_request.closed.payload.json",
            "closed",
            &pr,
            "writer",
        )),
    );
    until("closing removed the preview", || {
        env.sync_file(&slug).is_none()
    })
    .await;
    settled(s, gh).await;
    steps.push(("close", gh.take_billed()));
    steps
}

fn gh_pull(gh: &FakeGitHub, repo: &str) -> Value {
    gh.pull_value(repo, 7)
}

fn report(steps: &[(&str, Vec<(String, String)>)]) -> (usize, String) {
    let mut total = 0;
    let mut text = String::new();
    for (step, calls) in steps {
        total += calls.len();
        text.push_str(&format!("{step}: {}\n", calls.len()));
        for (who, call) in calls {
            text.push_str(&format!("    {call}  ({who})\n"));
        }
    }
    (total, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previews_life_costs_at_most_13_requests() {
    let env = TestEnv::new();
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull(
        "org/app",
        github_pull("org/app", 7, "served", OLD, "org/app"),
    );
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghp_test".into()),
        ],
    );
    let steps = life(&env, &gh, &s, "org/app", None).await;
    let (total, text) = report(&steps);
    eprintln!("one preview's life through serve, with a token:\n{text}");
    assert!(
        total <= LIFE_BUDGET,
        "{total} requests, over the budget of {LIFE_BUDGET}:\n{text}"
    );
    // Nothing was lost to save them: one comment, edited; the deployment went inactive.
    let bots: Vec<Value> = gh
        .comments("org/app", 7)
        .into_iter()
        .filter(|c| c["user"]["login"] == "flux-bot")
        .collect();
    assert_eq!(bots.len(), 1, "{bots:?}");
    assert!(
        bots[0]["body"].as_str().unwrap().contains("removed"),
        "{bots:?}"
    );
    let deployments = gh.deployments("org/app");
    assert!(!deployments.is_empty());
    for d in &deployments {
        let last = d["statuses"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default();
        assert_eq!(last["state"], "inactive", "{d}");
    }
}

const APP_ID: u64 = 4242;
const SLUG: &str = "flux-previews";

fn key(name: &str) -> String {
    format!("{}/tests/fixtures/github-app/{name}", support::ROOT)
}

/// What the bot asks of an installation (`doctor` reads it back).
fn permissions() -> Value {
    json!({"contents": "write", "issues": "write", "pull_requests": "write", "statuses": "write",
           "deployments": "write", "checks": "read", "actions": "read", "metadata": "read"})
}

/// The fake GitHub playing GitHub for the App, installed on `org` (org/app and the GitOps
/// repository org/gitops) and on `other` (other/web), each with pull request #7.
async fn app_world() -> FakeGitHub {
    let gh = FakeGitHub::start(&format!("{SLUG}[bot]")).await;
    gh.app(
        APP_ID,
        SLUG,
        &std::fs::read(key("app-key.pub.pem")).unwrap(),
    );
    gh.install(11, "org", &["org/app", "org/gitops"], permissions());
    gh.install(22, "other", &["other/web"], permissions());
    for (repo, branch) in [("org/app", "served"), ("other/web", "web")] {
        gh.permission(repo, "writer", "write");
        gh.pull(repo, github_pull(repo, 7, branch, OLD, repo));
    }
    gh
}

fn installed(mut event: Value, id: u64) -> Value {
    event["installation"] =
        json!({"id": id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="});
    event
}

/// `serve` as a GitHub App for two organisations, its GitOps repository on the GitHub server:
/// every token it holds lives 4 s, and it keeps deploying past all of them (API calls and
/// pushes); each repository's calls use its own installation's token; Git gets `x-access-token`
/// with a token scoped to the GitOps repository; nothing secret reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn serve_as_a_github_app_outlives_its_tokens_and_keeps_installations_apart() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("applications:\n  - name: app\n    github_repository: org/app\n  - name: web\n    github_repository: other/web\n"),
        )],
        "two organisations' applications",
    );
    let gh = app_world().await;
    gh.token_ttl(Duration::from_secs(4));
    let Some(git) = support::github::git_server::GitHubGit::start(
        &gh,
        env.remote.parent().unwrap(),
        &env.path("git-http"),
    )
    .await
    else {
        return;
    };
    let log = env.path("serve.log");
    let s = Serving::start_logging(
        &env,
        &format!("{}/org/gitops.git", git.url),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_SERVER_URL", git.url.clone()),
            ("FLUX_EPHEMERAL_GITHUB_APP_ID", APP_ID.to_string()),
            (
                "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE",
                key("app-key.pkcs1.pem"),
            ),
            ("FLUX_EPHEMERAL_LOG", "debug".into()),
        ],
        &log,
    );
    let file_of = |repo: &str| {
        let (app, branch) = if repo == "org/app" {
            ("app", "served")
        } else {
            ("web", "web")
        };
        env.sync_file(&format!("{app}-{}", support::slug_of(branch)))
    };
    for (repo, id) in [("org/app", 11), ("other/web", 22)] {
        let c = support::payloads::github_comment(repo, 7, "writer", "/deploy-ephemeral");
        gh.delivered("issue_comment", &c);
        post(&s, "issue_comment", &installed(c, id));
        let start = Instant::now();
        while file_of(repo).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{repo} was not deployed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every token held so far expires.
    tokio::time::sleep(Duration::from_secs(5)).await;
    gh.edit_pull("org/app", 7, |p| p["head"]["sha"] = json!(NEW));
    let mut push = support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &gh.pull_value("org/app", 7),
        "writer",
    );
    push["before"] = json!("0000000000000000000000000000000000000001");
    post(&s, "pull_request", &installed(push, 11));
    until("the push moved org/app's preview past every token", || {
        file_of("org/app").is_some_and(|f| f.contains(NEW))
    })
    .await;
    settled(&s, &gh).await;

    // No request was refused; each repository's went as its own installation.
    let billed = gh.billed();
    assert!(billed.iter().all(|(who, _)| who != "refused"), "{billed:?}");
    for (who, call) in billed.iter().filter(|(who, _)| who != "app") {
        if call.contains("/repos/org/") {
            assert_eq!(who, "installation 11", "{call}");
        }
        if call.contains("/repos/other/") {
            assert_eq!(who, "installation 22", "{call}");
        }
    }
    // Tokens for Git were scoped to the GitOps repository, and Git used them as x-access-token.
    let minted = gh.minted();
    assert!(
        minted
            .iter()
            .any(|(id, scope)| *id == 11
                && scope.as_deref() == Some(&["org/gitops".to_string()][..])),
        "{minted:?}"
    );
    let seen = git.seen();
    assert!(
        seen.iter().all(|(user, _)| user == "x-access-token"),
        "{seen:?}"
    );
    let tokens: std::collections::BTreeSet<&String> = seen.iter().map(|(_, t)| t).collect();
    assert!(
        tokens.len() >= 2,
        "the pushes outlived the first token: {tokens:?}"
    );
    assert!(tokens
        .iter()
        .all(|t| t.starts_with("ghs_4242_") && t.len() > 40));
    // The replies are the App's, one per pull request.
    for repo in ["org/app", "other/web"] {
        let mine = gh.comments(repo, 7);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["user"]["login"], format!("{SLUG}[bot]"));
    }
    // What each installation has left, in /metrics.
    let (_, metrics) = s.get("/metrics");
    for id in [11, 22] {
        assert!(
            metrics.contains(&format!(
                "flux_ephemeral_github_rate_limit_remaining{{credential=\"installation {id}\"}}"
            )),
            "{metrics}"
        );
    }
    // Nothing secret in the log.
    drop(s);
    let text = std::fs::read_to_string(&log).unwrap();
    let key_text = std::fs::read_to_string(key("app-key.pkcs1.pem")).unwrap();
    let key_line = key_text.lines().nth(1).unwrap();
    assert!(
        !text.contains("ghs_") && !text.contains(key_line) && !text.contains("PRIVATE KEY"),
        "{text}"
    );
}

/// `handle` as the App, with a delivery that names no installation (a CI job's event file): the
/// installation is asked of GitHub; a second deploy edits the App's comment, found by the App's
/// login from `GET /app`, with no FLUX_EPHEMERAL_BOT_LOGIN and no `GET /user` (403 for an App).
#[tokio::test(flavor = "multi_thread")]
async fn handle_as_a_github_app_finds_its_installation_and_its_own_comment() {
    let env = TestEnv::new();
    let gh = app_world().await;
    let run = |body: &str| {
        let c = support::payloads::github_comment("org/app", 7, "writer", body);
        gh.delivered("issue_comment", &c);
        let vars = [
            ("GITHUB_API_URL", gh.uri()),
            ("FLUX_EPHEMERAL_GITHUB_APP_ID", APP_ID.to_string()),
            (
                "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY",
                std::fs::read_to_string(key("app-key.pkcs8.pem")).unwrap(),
            ),
        ];
        let env = &env;
        async move { support::handle_event(env, "issue_comment", &c, &vars).await }
    };
    let out = run("/deploy-ephemeral").await.ok().json();
    assert_eq!(out["action"], "deployed", "{out}");
    let out = run("/deploy-ephemeral").await.ok().json();
    assert_eq!(out["action"], "unchanged", "{out}");
    let mine = gh.comments("org/app", 7);
    assert_eq!(mine.len(), 1, "one comment, edited: {mine:?}");
    let billed = gh.billed();
    assert!(
        billed
            .iter()
            .any(|(who, c)| who == "app" && c == "GET /repos/org/app/installation"),
        "{billed:?}"
    );
    assert!(
        billed
            .iter()
            .any(|(who, c)| who == "app" && c == "GET /app"),
        "{billed:?}"
    );
    assert!(!billed.iter().any(|(_, c)| c == "GET /user"), "{billed:?}");
    assert!(billed.iter().all(|(who, _)| who != "refused"), "{billed:?}");
}

/// Bad App credentials are told plainly, with what to fix, and never printed.
#[test]
fn bad_app_credentials_say_what_to_fix() {
    let env = TestEnv::new();
    let event = env.path("event.json");
    std::fs::write(
        &event,
        support::payloads::github_comment("org/app", 7, "writer", "/deploy-ephemeral").to_string(),
    )
    .unwrap();
    let base = [
        "handle",
        "--event-name",
        "issue_comment",
        "--event-file",
        event.to_str().unwrap(),
    ];
    // A key without an App id.
    env.run_with(
        &base,
        &[(
            "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nnot-a-key\n",
        )],
    )
    .fails_with(3, "FLUX_EPHEMERAL_GITHUB_APP_ID");
    // An App without a key.
    env.run_with(&base, &[("FLUX_EPHEMERAL_GITHUB_APP_ID", "4242")])
        .fails_with(3, "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE");
    // A key that is not one: refused without echoing it.
    let out = env
        .run_with(&base, &[("FLUX_EPHEMERAL_GITHUB_APP_ID", "4242"), ("FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n")])
        .fails_with(3, "not an RSA private key");
    assert!(
        !out.stderr.contains("c2VjcmV0LWtleS1tYXRlcmlhbA"),
        "{}",
        out.stderr
    );
}

/// The fake GitHub answers Apps as GitHub does: a token reaches only its installation's
/// repositories (404 elsewhere), an expired one is 401, `GET /user` is 403, and the App's own
/// endpoints take only its JWT.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_github_answers_apps_as_github_does() {
    let gh = app_world().await;
    gh.token_ttl(Duration::from_secs(2));
    let pem = std::fs::read(key("app-key.pkcs8.pem")).unwrap();
    let app = octocrab::Octocrab::builder()
        .base_uri(gh.uri())
        .unwrap()
        .app(
            APP_ID.into(),
            octocrab::auth::EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .build()
        .unwrap();
    let status = |r: Result<Value, octocrab::Error>| match r {
        Ok(_) => 200,
        Err(octocrab::Error::GitHub { source, .. }) => source.status_code.as_u16(),
        Err(e) => panic!("{e}"),
    };
    // The App's own endpoints: its JWT, nothing else.
    assert_eq!(status(app.get("/app", None::<&()>).await), 200);
    let (org, token) = app.installation_and_token(11.into()).await.unwrap();
    use octocrab::secrecy::ExposeSecret;
    let token = token.expose_secret().to_string();
    assert!(
        token.starts_with("ghs_4242_") && token.len() > 40,
        "{token}"
    );
    let as_token = octocrab::Octocrab::builder()
        .base_uri(gh.uri())
        .unwrap()
        .personal_token(token.clone())
        .build()
        .unwrap();
    assert_eq!(status(as_token.get("/app", None::<&()>).await), 401);
    // Its own installation's repositories only.
    assert_eq!(
        status(org.get("/repos/org/app/pulls/7", None::<&()>).await),
        200
    );
    assert_eq!(
        status(as_token.get("/repos/other/web/pulls/7", None::<&()>).await),
        404
    );
    assert_eq!(status(as_token.get("/user", None::<&()>).await), 403);
    // Expired: 401.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        status(as_token.get("/repos/org/app/pulls/7", None::<&()>).await),
        401
    );
    assert!(!gh.token_reaches(&token, "org/gitops"));
}

/// `doctor` with App credentials: the App's slug and id, the installation holding the GitOps
/// repository and each application repository (or that none does), what an installation lacks,
/// and the budget left; nothing secret printed.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_the_app_its_installations_and_their_budget() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("applications:\n  - name: app\n    github_repository: org/app\n  - name: web\n    github_repository: other/web\n  - name: lost\n    github_repository: nobody/lost\n"),
        )],
        "three applications",
    );
    let gh = FakeGitHub::start(&format!("{SLUG}[bot]")).await;
    gh.app(
        APP_ID,
        SLUG,
        &std::fs::read(key("app-key.pub.pem")).unwrap(),
    );
    gh.install(11, "org", &["org/app", "org/gitops"], permissions());
    // The `other` organisation accepted fewer permissions.
    gh.install(
        22,
        "other",
        &["other/web"],
        json!({"issues": "write", "metadata": "read"}),
    );
    let Some(git) = support::github::git_server::GitHubGit::start(
        &gh,
        env.remote.parent().unwrap(),
        &env.path("git-http"),
    )
    .await
    else {
        return;
    };
    let key_file = key("app-key.pkcs1.pem");
    let repo = format!("{}/org/gitops.git", git.url);
    let mut c = env.command();
    c.args(["doctor", "--repo", &repo, "--output", "json"])
        .env("GITHUB_API_URL", gh.uri())
        .env("GITHUB_SERVER_URL", &git.url)
        .env("FLUX_EPHEMERAL_GITHUB_APP_ID", APP_ID.to_string())
        .env("FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE", &key_file);
    let run = support::run_async(c).await;
    let out: Value = serde_json::from_str(run.stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("{run:?}"));
    let checks = out["checks"].as_array().unwrap();
    let find = |subject: &str| {
        checks
            .iter()
            .find(|c| c["subject"] == subject)
            .unwrap_or_else(|| panic!("no check {subject}: {out}"))
    };
    let app = find("GitHub App");
    assert_eq!(app["verdict"], "ok", "{app}");
    assert!(
        app["detail"]
            .as_str()
            .unwrap()
            .contains("flux-previews (App ID 4242)"),
        "{app}"
    );
    assert!(find("GitHub App on org/gitops")["detail"]
        .as_str()
        .unwrap()
        .contains("installation 11"));
    let org = find("GitHub App on org/app");
    assert_eq!(org["verdict"], "ok", "{org}");
    let web = find("GitHub App on other/web");
    assert_eq!(web["verdict"], "warning", "{web}");
    assert!(
        web["detail"]
            .as_str()
            .unwrap()
            .contains("pull_requests: write"),
        "{web}"
    );
    let lost = find("GitHub App on nobody/lost");
    assert_eq!(lost["verdict"], "failed", "{lost}");
    assert!(
        lost["detail"].as_str().unwrap().contains("not installed"),
        "{lost}"
    );
    let budget = find("GitHub budget (installation 11)");
    assert!(
        budget["detail"]
            .as_str()
            .unwrap()
            .contains("of 5000 requests left"),
        "{budget}"
    );
    assert_eq!(run.code, 3, "a failed check sets the exit code: {run:?}");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("ghs_") && !all.contains(key_text.lines().nth(1).unwrap()));
}

/// The periodic pass asks again with `If-None-Match`: an unchanged listing is a `304 Not
/// Modified`, which costs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_periodic_pass_asks_with_conditional_requests() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("github_repository: org/app\n"))],
        "previews of org/app",
    );
    let gh = FakeGitHub::start("flux-bot").await;
    gh.pull(
        "org/app",
        github_pull("org/app", 7, "served", OLD, "org/app"),
    );
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghp_test".into()),
            ("FLUX_EPHEMERAL_RESYNC_INTERVAL", "1s".into()),
        ],
    );
    let listing = "GET /repos/org/app/pulls";
    until("a second periodic listing", || {
        gh.not_modified().iter().any(|(_, c)| c == listing)
    })
    .await;
    drop(s);
    let billed = gh.billed().iter().filter(|(_, c)| c == listing).count();
    let free = gh
        .not_modified()
        .iter()
        .filter(|(_, c)| c == listing)
        .count();
    assert!(
        billed <= 1 && free >= 1,
        "billed {billed}, not modified {free}"
    );
}

/// As the App, with `require_checks`: a request while CI runs waits (the bot's own status says
/// so), and the completed check releases it: the waiting status is recognised as the App's own,
/// `<slug>[bot]`, with no FLUX_EPHEMERAL_BOT_LOGIN.
#[tokio::test(flavor = "multi_thread")]
async fn as_a_github_app_a_waiting_request_is_released_by_its_checks() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("github_repository: org/app\nrequire_checks: [test]\n"),
        )],
        "checks required",
    );
    let gh = app_world().await;
    gh.check_run("org/app", OLD, "test", "in_progress", None);
    let vars = [
        ("GITHUB_API_URL", gh.uri()),
        ("FLUX_EPHEMERAL_GITHUB_APP_ID", APP_ID.to_string()),
        (
            "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE",
            key("app-key.pkcs1.pem"),
        ),
    ];
    let comment = support::payloads::github_comment("org/app", 7, "writer", "/deploy-ephemeral");
    gh.delivered("issue_comment", &comment);
    let out = support::handle_event(&env, "issue_comment", &installed(comment, 11), &vars)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "waiting", "{out}");
    gh.check_run("org/app", OLD, "test", "completed", Some("success"));
    let done = support::payloads::github_check_run("org/app", OLD, "test", "success", &[7]);
    let out = support::handle_event(&env, "check_run", &installed(done, 11), &vars)
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(env.sync_file(&support::slug_of("served")).is_some());
    assert!(!gh.billed().iter().any(|(_, c)| c == "GET /user"));
}

/// A secondary rate limit (429 with `retry-after`) is waited out, said in the log, and the
/// reply lands.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_waited_out_and_said() {
    let env = TestEnv::new();
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull(
        "org/app",
        github_pull("org/app", 7, "served", OLD, "org/app"),
    );
    gh.throttle_once("POST", "/repos/org/app/issues/7/comments", 1);
    let comment = support::payloads::github_comment("org/app", 7, "writer", "/deploy-ephemeral");
    gh.delivered("issue_comment", &comment);
    let vars = [
        ("GITHUB_API_URL", gh.uri()),
        ("GITHUB_TOKEN", "ghp_test".to_string()),
        ("FLUX_EPHEMERAL_LOG", "flux_ephemeral=warn".to_string()),
    ];
    let run = support::handle_event(&env, "issue_comment", &comment, &vars).await;
    let stderr = run.stderr.clone();
    let out = run.ok().json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(stderr.contains("GitHub rate limit (429"), "{stderr}");
    assert!(stderr.contains("waiting 1 s"), "{stderr}");
    assert_eq!(
        gh.comments("org/app", 7).len(),
        1,
        "the reply landed after the wait"
    );
}
