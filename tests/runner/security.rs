//! Hostile input, tried as an attacker would: each test is one hole, over the real binary, a GitOps
//! repository served by `git daemon` on 127.0.0.1 and a fake forge that records every request.

use crate::support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_forges::FakeGitHub;
use support::payloads::{fixture, github_comment, github_repo};
use support::servers::{git_daemon, Server};
use support::serving::{github_headers, request, Serving, GL_TOKEN};
use support::{Run, TestEnv};

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const BRANCH: &str = "feature/login";
const TOKEN: &str = "ghs-SECRET-token-value";

/// Pull request #7 of org/app as GitHub's API answers it.
fn pull_request(state: &str, merged: bool) -> Value {
    let mut pr = support::github::shapes::pull("org/app", 7, BRANCH, SHA, "org/app");
    pr["state"] = json!(state);
    pr["merged"] = json!(merged);
    pr
}

/// A fake GitHub: `writer` may write, the bot is `flux-bot`, pull request #7 is `pr`, and the
/// comments listed are `comments` (written by others). Every request is recorded.
async fn fake_github(pr: Value, comments: Value) -> FakeGitHub {
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    gh.pull("org/app", pr);
    for c in comments.as_array().unwrap() {
        gh.add_comment(
            "org/app",
            7,
            c["user"]["login"].as_str().unwrap(),
            c["body"].as_str().unwrap(),
        );
    }
    gh
}

/// The requests the fake received that change something (POST, PATCH, PUT, DELETE), as
/// `METHOD path`.
async fn writes(gh: &FakeGitHub) -> Vec<String> {
    gh.server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

async fn bodies(gh: &FakeGitHub, method_name: &str) -> Vec<String> {
    gh.server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == method_name)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// A GitOps repository served by git daemon (`None`: skipped, the reason printed).
fn served() -> Option<(TestEnv, Server)> {
    let env = TestEnv::new();
    let daemon = git_daemon(env.remote.parent().unwrap())?;
    Some((env, daemon))
}

async fn handle(
    env: &TestEnv,
    daemon: &Server,
    name: &str,
    event: &Value,
    api: &FakeGitHub,
    extra: &[&str],
) -> Run {
    api.delivered(name, event);
    let file = support::event_file(env, name, event);
    let mut c = env.command();
    c.args(["handle", "--event-name", name, "--event-file"])
        .arg(&file)
        .args(["--repo", &daemon.url, "--output", "json"])
        .args(extra)
        .env("GITHUB_API_URL", api.uri())
        .env("GITHUB_TOKEN", TOKEN);
    support::run_async(c).await
}

/// Wait until the server's worker had time to act on anything it accepted.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gitlab_route_never_handles_a_github_event() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let api = fake_github(pull_request("open", false), json!([])).await;
    env.deploy(&["--branch", BRANCH, "--id", "7"]).ok();
    let head = env.head();
    let s = Serving::start(
        &env,
        &daemon.url,
        &[
            ("GITHUB_API_URL", api.uri()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ],
    );
    // Whoever holds the GitLab token writes a GitHub-shaped destroy as "writer".
    let body = github_comment("org/app", 7, "writer", "/destroy-ephemeral").to_string();
    let port = s.port;
    let out = tokio::task::spawn_blocking(move || {
        let token = ("X-Gitlab-Token", GL_TOKEN.to_string());
        let post = |path, headers: &[(&str, String)], body: &str| {
            request(port, "POST", path, headers, body)
        };
        [
            post(
                "/hooks/gitlab",
                &[token.clone(), ("X-Gitlab-Event", "issue_comment".into())],
                &body,
            ),
            post(
                "/hooks/gitlab",
                &[token, ("X-Gitlab-Event", "Note Hook".into())],
                &body,
            ),
        ]
    })
    .await
    .unwrap();
    for (status, text) in &out {
        assert_eq!(*status, 400, "{text}");
    }
    assert!(out[0].1.contains("not a GitLab hook"), "{out:?}");
    assert!(out[1].1.contains("malformed Note Hook"), "{out:?}");
    settle().await;
    assert_eq!(env.head(), head, "nothing was destroyed");
    assert!(env.sync_file(&support::slug_of(BRANCH)).is_some());
    assert!(
        api.requests().await.is_empty(),
        "GitHub was never asked anything"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn github_events_the_bot_does_not_act_on_are_acknowledged() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let s = Serving::start(&env, &daemon.url, &[]);
    let out = tokio::task::spawn_blocking(move || {
        let mut push = fixture("github/push.payload.json");
        push["ref"] = json!("refs/heads/main");
        let push = push.to_string();
        let ping = fixture("github/ping.payload.json").to_string();
        (
            s.post("/hooks/github", &github_headers("push", &push), &push),
            s.post("/hooks/github", &github_headers("ping", &ping), &ping),
            s.post(
                "/hooks/gitlab",
                &[
                    ("X-Gitlab-Token", GL_TOKEN.into()),
                    ("X-Gitlab-Event", "Job Hook".into()),
                ],
                "{}",
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(out.0 .0, 202, "{out:?}");
    assert!(out.0 .1.contains("ignored"), "{out:?}");
    assert_eq!(out.1 .0, 200, "{out:?}");
    assert_eq!(out.2 .0, 202, "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_cannot_read_the_bots_environment() {
    let Some((env, daemon)) = served() else {
        return;
    };
    env.commit_as_other(
        &[
            (
                ".flux-ephemeral.yaml",
                Some("source_url: https://git.example.com/org/app.git\npreview_url: \"https://{{ get_env(name='GITHUB_TOKEN') }}.example.com\"\n"),
            ),
        ],
        "a preview URL that reads the environment",
    );
    let head = env.head();
    let run = |env: &TestEnv| {
        env.run_with(
            &["deploy", "--repo", &daemon.url, "--branch", BRANCH],
            &[("GITHUB_TOKEN", TOKEN), ("GIT_TOKEN", TOKEN)],
        )
    };
    let out = run(&env).fails_with(3, "preview_url template");
    assert!(out.stderr.contains("get_env() is not available"), "{out:?}");
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
    // The same through a template file in the GitOps repository.
    env.commit_as_other(
        &[
            (
                ".flux-ephemeral.yaml",
                Some("source_url: https://git.example.com/org/app.git\ntemplate: templates/leak.yaml.tera\n"),
            ),
            (
                "templates/leak.yaml.tera",
                Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: {{ flux_namespace }}\n  annotations: {{ annotations | json_encode() }}\ndata:\n  token: {{ get_env(name='GIT_TOKEN') | yaml }}\n"),
            ),
        ],
        "a template that reads the environment",
    );
    let head2 = env.head();
    assert_ne!(head, head2);
    let out = run(&env).fails_with(3, "template templates/leak.yaml.tera");
    assert!(out.stderr.contains("not available"), "{out:?}");
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
    assert_eq!(env.head(), head2, "nothing committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_bots_own_comment_is_edited() {
    let Some((env, daemon)) = served() else {
        return;
    };
    // Mallory's comment carries the marker; the bot has not commented yet.
    let api = fake_github(
        pull_request("open", false),
        json!([
            {"id": 41, "body": "<!-- flux-ephemeral -->\nI look like the bot", "user": {"login": "mallory", "type": "User"}},
            {"id": 42, "body": "<!-- flux-ephemeral -->\nso do I", "user": {"login": "some-app[bot]", "type": "Bot"}}
        ]),
    )
    .await;
    let s = Serving::start(
        &env,
        &daemon.url,
        &[
            ("GITHUB_API_URL", api.uri()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ],
    );
    let body = github_comment("org/app", 7, "writer", "/deploy-ephemeral").to_string();
    let port = s.port;
    let (status, text) = tokio::task::spawn_blocking(move || {
        let headers = github_headers("issue_comment", &body);
        request(port, "POST", "/hooks/github", &headers, &body)
    })
    .await
    .unwrap();
    assert_eq!(status, 202, "{text}");
    let start = Instant::now();
    while !writes(&api)
        .await
        .iter()
        .any(|w| w.contains("/issues/7/comments"))
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no reply");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = writes(&api).await;
    assert!(
        !w.iter().any(|w| w.starts_with("PATCH")),
        "nobody else's comment is edited: {w:?}"
    );
    assert!(w.contains(&"POST /repos/org/app/issues/7/comments".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_does_not_block_the_server() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let s = Serving::start(&env, &daemon.url, &[]);
    let port = s.port;
    let elapsed = tokio::task::spawn_blocking(move || {
        // Announce 100,000 bytes, send 5, and keep the connection open.
        let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
        slow.write_all(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nX-GitHub-Event: ping\r\n\r\nhello")
            .unwrap();
        let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
        idle.write_all(b"GET /hea").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let (status, _) = s.get("/healthz");
        assert_eq!(status, 200);
        let ping = fixture("github/ping.payload.json").to_string();
        let (status, _) = s.post("/hooks/github", &github_headers("ping", &ping), &ping);
        assert_eq!(status, 200);
        let elapsed = start.elapsed();
        drop((slow, idle));
        elapsed
    })
    .await
    .unwrap();
    assert!(
        elapsed < Duration::from_secs(1),
        "answered in {elapsed:?} while a slow client was sending"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_times_to_live_are_refused_and_never_crash_cleanup() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let head = env.head();
    let out = env
        .run(&[
            "deploy",
            "--repo",
            &daemon.url,
            "--branch",
            BRANCH,
            "--ttl",
            "500000000000y",
        ])
        .fails_with(1, "longer than");
    assert_eq!(out.stdout, "");
    env.run(&[
        "deploy",
        "--repo",
        &daemon.url,
        "--branch",
        BRANCH,
        "--ttl",
        "31d",
    ])
    .fails_with(1, "maximum of 30days");
    assert_eq!(env.head(), head);
    // Through a comment: refused and answered.
    let api = fake_github(pull_request("open", false), json!([])).await;
    let out = handle(
        &env,
        &daemon,
        "issue_comment",
        &github_comment(
            "org/app",
            7,
            "writer",
            "/deploy-ephemeral ttl=500000000000y",
        ),
        &api,
        &[],
    )
    .await
    .ok()
    .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(bodies(&api, "POST")
        .await
        .iter()
        .any(|b| b.contains("longer than")));
    assert_eq!(env.head(), head);
    // A sync file edited by hand to live "forever" is capped by max_ttl, and cleanup survives it.
    env.run(&[
        "deploy",
        "--repo",
        &daemon.url,
        "--branch",
        BRANCH,
        "--ttl",
        "24h",
    ])
    .ok();
    let slug = support::slug_of(BRANCH);
    let file = format!("overlays/ephemeral-instances/sync-{slug}.yaml");
    let edited = env.file(&file).unwrap().replace(
        "flux-ephemeral.io/ttl: \"1day\"",
        "flux-ephemeral.io/ttl: \"500000000000y\"",
    );
    assert!(edited.contains("500000000000y"), "{edited}");
    env.commit_as_other(&[(&file, Some(&edited))], "live forever");
    let out = env
        .run(&["cleanup", "--repo", &daemon.url, "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["removed"].as_array().unwrap().len(), 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_writes_nothing_to_the_forge() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let api = fake_github(pull_request("open", false), json!([])).await;
    let head = env.head();
    let out = handle(
        &env,
        &daemon,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &api,
        &["--dry-run"],
    )
    .await
    .ok();
    assert_eq!(out.json()["action"], "would_deploy", "{out:?}");
    assert!(
        out.stderr.contains("dry run: would comment on #7"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("dry run: would set commit status"),
        "{out:?}"
    );
    assert_eq!(writes(&api).await, Vec::<String>::new());
    assert_eq!(env.head(), head);
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_that_do_not_show_when_rendered_are_not_run() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let api = fake_github(pull_request("open", false), json!([])).await;
    env.deploy(&["--branch", BRANCH, "--id", "7"]).ok();
    let head = env.head();
    for body in [
        // Inside a longer fence.
        "How to remove it:\n\n````md\n```\n/destroy-ephemeral\n````\n",
        // Inside an HTML comment.
        "Looks good!\n<!--\n/destroy-ephemeral\n-->\n",
    ] {
        let out = handle(
            &env,
            &daemon,
            "issue_comment",
            &github_comment("org/app", 7, "writer", body),
            &api,
            &[],
        )
        .await
        .ok()
        .json();
        assert_eq!(out["action"], "ignored", "{body}: {out}");
        assert_eq!(env.head(), head);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_and_merged_pull_requests_are_not_deployed() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let head = env.head();
    for (state, merged, word) in [("closed", false, "closed"), ("closed", true, "merged")] {
        // The payload says nothing about the state; the API does.
        let api = fake_github(pull_request(state, merged), json!([])).await;
        let out = handle(
            &env,
            &daemon,
            "issue_comment",
            &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
            &api,
            &[],
        )
        .await
        .ok()
        .json();
        assert_eq!(out["action"], "refused", "{out}");
        assert!(out["reason"].as_str().unwrap().contains(word), "{out}");
        assert!(bodies(&api, "POST")
            .await
            .iter()
            .any(|b| b.contains(&format!("#7 is {word}"))));
    }
    assert_eq!(env.head(), head);
}

#[tokio::test(flavor = "multi_thread")]
async fn shas_are_checked_before_they_reach_a_path() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let api = fake_github(pull_request("open", false), json!([])).await;
    let mut e = fixture("github/pull_request.synchronize.payload.json");
    e["pull_request"] = pull_request("open", false);
    e["pull_request"]["head"]["sha"] = json!("../../../user/repos");
    e["repository"] = github_repo("org/app");
    e["sender"]["login"] = json!("writer");
    handle(&env, &daemon, "pull_request", &e, &api, &[])
        .await
        .fails_with(1, "not a full commit id");
    // An API answer is not trusted either.
    let mut bad = pull_request("open", false);
    bad["head"]["sha"] = json!("abc/../../statuses");
    let api = fake_github(bad, json!([])).await;
    let out = handle(
        &env,
        &daemon,
        "issue_comment",
        &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        &api,
        &[],
    )
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("not a full commit id"), "{out:?}");
    assert!(writes(&api).await.iter().all(|w| !w.contains("statuses")));
}

#[test]
fn logs_are_plain_on_a_pipe_and_with_no_color() {
    let env = TestEnv::new();
    for vars in [&[][..], &[("NO_COLOR", "1")][..]] {
        let out = env.run_with(
            &["-vv", "list", "--repo", env.remote.to_str().unwrap()],
            vars,
        );
        assert!(
            out.stderr.contains("DEBUG") || out.stderr.contains("INFO"),
            "{out:?}"
        );
        assert!(!out.stderr.contains('\u{1b}'), "{out:?}");
    }
}

#[test]
fn a_dry_run_without_repo_creates_nothing() {
    let env = TestEnv::new();
    env.run(&["deploy", "--dry-run", "--branch", BRANCH])
        .fails_with(1, "a dry run creates nothing");
    assert!(!env.home.join("demo").exists());
}

#[test]
fn passwords_in_repository_urls_never_print() {
    let env = TestEnv::new();
    for repo in [
        "user:hunter2@127.0.0.1:org/gitops.git",
        "file://user:hunter2@localhost/srv/gitops.git",
        "https://user:hunter2@127.0.0.1:1/gitops.git",
    ] {
        let out = env.run(&[
            "deploy",
            "--repo",
            repo,
            "--branch",
            BRANCH,
            "--source-url",
            "x",
            "--output",
            "json",
        ]);
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            !out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"),
            "{repo}: {out:?}"
        );
    }
}

#[test]
fn configurations_that_would_crash_or_reach_out_are_configuration_errors() {
    let Some((env, daemon)) = served() else {
        return;
    };
    let deploy = |env: &TestEnv| env.run(&["deploy", "--repo", &daemon.url, "--branch", BRANCH]);
    for (config, needle) in [
        // Recursion until the stack overflows (SIGABRT), once.
        ("preview_url: '{% include \"preview_url\" %}'\n", "include"),
        // A string doubled in a loop until memory runs out, once.
        (
            "preview_url: '{% set_global s = \"xx\" %}{% for i in range(end=64) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}'\n",
            "set_global",
        ),
        ("preview_url: '{% for i in range(end=100000000) %}x{% endfor %}'\n", "at most 1000"),
        ("template: /etc/passwd\n", "relative path inside the GitOps repository"),
        ("template: ../../etc/passwd\n", "relative path inside the GitOps repository"),
        ("ttl: 0s\n", "is zero"),
    ] {
        env.commit_as_other(
            &[(
                ".flux-ephemeral.yaml",
                Some(&format!("source_url: https://git.example.com/org/app.git\n{config}")),
            )],
            "a hostile configuration",
        );
        let head = env.head();
        let out = deploy(&env);
        assert_eq!(out.code, 3, "{config}: {out:?}");
        assert!(out.stderr.contains(needle), "{config}: {out:?}");
        assert_eq!(env.head(), head, "nothing committed");
    }
}
