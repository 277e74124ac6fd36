//! `serve` as an always-on service: signed deliveries against the real server on 127.0.0.1, a
//! GitOps repository on `git daemon` and a stateful fake GitHub. Bursts land in few commits,
//! redeliveries do nothing twice, a SIGTERM mid-burst loses nothing accepted, two replicas lose
//! nothing either.

use crate::support;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_forges::{github_pull, FakeGitHub};
use support::servers::git_daemon;
use support::serving::{github_headers, request, Serving};
use support::TestEnv;

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

fn comment(number: u64, body: &str) -> String {
    support::payloads::github_comment("org/app", number, "writer", body).to_string()
}

fn branch(n: u64) -> String {
    format!("feature/burst-{n}")
}

async fn github(prs: u64) -> FakeGitHub {
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    for n in 1..=prs {
        gh.pull(
            "org/app",
            github_pull("org/app", n, &branch(n), SHA, "org/app"),
        );
    }
    gh
}

fn vars(gh: &FakeGitHub) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_API_URL", gh.uri()),
        ("GITHUB_TOKEN", "ghs-test".into()),
    ]
}

/// The fake's variables, and a journal in `state`.
fn journaled(gh: &FakeGitHub, state: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut v = vars(gh);
    v.push(("FLUX_EPHEMERAL_STATE_DIR", state.display().to_string()));
    v
}

/// POST one signed deployment comment for pull request `n` with delivery id `id`.
fn deliver(port: u16, n: u64, id: &str) -> (u16, String) {
    let body = comment(n, "/deploy-ephemeral");
    let mut headers = github_headers("issue_comment", &body);
    headers.push(("X-GitHub-Delivery", id.to_string()));
    request(port, "POST", "/hooks/github", &headers, &body)
}

/// Wait until every one of `n` environments has its sync file.
async fn all_landed(env: &TestEnv, n: u64, within: Duration) {
    let start = Instant::now();
    loop {
        let files = env.instances();
        let missing: Vec<u64> = (1..=n)
            .filter(|i| !files.contains(&format!("sync-{}.yaml", support::slug_of(&branch(*i)))))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < within,
            "not deployed after {within:?}: pull requests {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_lands_in_few_commits_and_redeliveries_do_nothing_twice() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let gh = github(20).await;
    let s = Serving::start(&env, &daemon.url, &vars(&gh));
    let before = env.commit_count();
    let port = s.port;
    let start = Instant::now();
    let answers = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (1..=20u64)
            .map(|n| std::thread::spawn(move || deliver(port, n, &format!("delivery-{n}"))))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(answers.iter().all(|a| a.0 == 202), "{answers:?}");
    all_landed(&env, 20, Duration::from_secs(60)).await;
    let commits = env.commit_count() - before;
    eprintln!(
        "MEASURED: 20 deliveries landed in {commits} commits, {:?}",
        start.elapsed()
    );
    assert!(commits < 10, "{commits} commits for 20 deliveries");
    // A redelivery of an accepted delivery is acknowledged and not handled again.
    let comments_before: usize = (1..=20).map(|n| gh.comments("org/app", n).len()).sum();
    let again = tokio::task::spawn_blocking(move || deliver(port, 3, "delivery-3"))
        .await
        .unwrap();
    assert_eq!(again.0, 200, "{again:?}");
    assert!(again.1.contains("duplicate"), "{again:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let comments_after: usize = (1..=20).map(|n| gh.comments("org/app", n).len()).sum();
    assert_eq!(comments_before, comments_after);
    // Every pull request got its own reply and statuses.
    assert!((1..=20).all(|n| gh.comments("org/app", n).len() == 1));
    // The service says what it did.
    let (status, metrics) = s.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("flux_ephemeral_events_total"), "{metrics}");
    assert!(metrics.contains("outcome=\"deployed\""), "{metrics}");
    assert!(
        metrics.contains("flux_ephemeral_batch_size_bucket"),
        "{metrics}"
    );
    assert_eq!(s.get("/readyz").0, 200);
    // The readiness pass counts each cluster's previews and the queue.
    let (_, metrics) = s.get("/metrics");
    assert!(
        metrics.contains("flux_ephemeral_previews{cluster=\"default\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flux_ephemeral_queued_previews 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_refused() {
    let env = TestEnv::new();
    let gh = github(1).await;
    let s = Serving::start(&env, env.remote.to_str().unwrap(), &vars(&gh));
    let port = s.port;
    let status = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            c,
            "POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issue_comment\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{",
            30 * 1024 * 1024
        )
        .unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut c, &mut answer);
        answer.split_whitespace().nth(1).unwrap_or("0").parse::<u16>().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_burst_loses_nothing_that_was_accepted() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let gh = github(20).await;
    let state = env.path("state");
    let vars = journaled(&gh, &state);
    let s = Serving::start(&env, &daemon.url, &vars);
    let port = s.port;
    let accepted = tokio::task::spawn_blocking(move || {
        (1..=20u64)
            .filter(|n| deliver(port, *n, &format!("d-{n}")).0 == 202)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(accepted, 20);
    // Stop it at once: it finishes the batch in flight and exits 0.
    let pid = s.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut s = s;
    let start = Instant::now();
    let code = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st.code();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(0));
    // The next process handles what the first accepted and did not get to.
    let _again = Serving::start(&env, &daemon.url, &vars);
    all_landed(&env, 20, Duration::from_secs(60)).await;
    let start = Instant::now();
    while std::fs::read_dir(&state).unwrap().count() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "journal not emptied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_repository_lose_nothing() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let gh = github(12).await;
    let a = Serving::start(&env, &daemon.url, &vars(&gh));
    let b = Serving::start(&env, &daemon.url, &vars(&gh));
    let (pa, pb) = (a.port, b.port);
    tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (1..=12u64)
            .map(|n| {
                let port = if n % 2 == 0 { pa } else { pb };
                std::thread::spawn(move || assert_eq!(deliver(port, n, &format!("r-{n}")).0, 202))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    })
    .await
    .unwrap();
    all_landed(&env, 12, Duration::from_secs(60)).await;
}

#[test]
fn serve_refuses_to_start_without_a_configured_repository() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("app: app\n"))],
        "nothing configured",
    );
    let out = env.run_with(
        &[
            "serve",
            "--repo",
            env.remote.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("GITHUB_WEBHOOK_SECRET", "s")],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("which repositories"), "{out:?}");
    let _ = Stdio::null();
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_events_are_healed_by_resync() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\n"),
        )],
        "a repository",
    );
    const OLD: &str = "1111111111111111111111111111111111111111";
    for n in 1..=3u64 {
        env.run(&[
            "deploy",
            "--repo",
            &daemon.url,
            "--branch",
            &branch(n),
            "--sha",
            OLD,
            "--id",
            &n.to_string(),
        ])
        .ok();
    }
    // The webhooks were lost: #1 was closed, #2 and #3 got new commits (#3 by a stranger).
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "writer", "write");
    let mut one = github_pull("org/app", 1, &branch(1), OLD, "org/app");
    one["state"] = json!("closed");
    gh.pull("org/app", one);
    let mut two = github_pull("org/app", 2, &branch(2), SHA, "org/app");
    two["user"]["login"] = json!("writer");
    gh.pull("org/app", two);
    let mut three = github_pull("org/app", 3, &branch(3), SHA, "org/app");
    three["user"]["login"] = json!("stranger");
    gh.pull("org/app", three);
    let run = |extra: &[&str]| {
        let mut c = env.command();
        c.args(["resync", "--repo", &daemon.url, "--output", "json"])
            .args(extra)
            .env("GITHUB_API_URL", gh.uri())
            .env("GITHUB_TOKEN", "ghs-test");
        support::run_async(c)
    };
    let dry = run(&["--dry-run"]).await.ok().json();
    assert_eq!(dry["repairs"].as_array().unwrap().len(), 2, "{dry}");
    assert!(
        env.sync_file(&support::slug_of(&branch(1))).is_some(),
        "a dry run changes nothing"
    );
    // serve heals at start (and every --resync-interval).
    let s = Serving::start(
        &env,
        &daemon.url,
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghs-test".into()),
            ("FLUX_EPHEMERAL_RESYNC_INTERVAL", "1s".into()),
        ],
    );
    let start = Instant::now();
    while env.sync_file(&support::slug_of(&branch(1))).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "closed #1 not removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        s.get("/readyz").0,
        200,
        "the GitOps repository and GitHub answer"
    );
    drop(s);
    let docs = env.docs(&support::slug_of(&branch(2)));
    assert_eq!(
        docs[0]["spec"]["ref"]["commit"], SHA,
        "#2 moved to its head"
    );
    let docs = env.docs(&support::slug_of(&branch(3)));
    assert_eq!(
        docs[0]["spec"]["ref"]["commit"], OLD,
        "a stranger's commits do not reach the cluster"
    );
    let again = run(&[]).await.ok().json();
    assert_eq!(again["repairs"].as_array().unwrap().len(), 0, "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resync_never_deploys_what_the_event_path_would_refuse() {
    // allowlist_only: a writer who is not on the list pushes to an allowed author's branch. The
    // push event is refused; resync must not move the preview either: it marks the head outdated.
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\nallowlist_only: true\nallowed_users: [alice]\n"),
        )],
        "allowlist only",
    );
    const OLD: &str = "1111111111111111111111111111111111111111";
    let repo = env.remote.to_str().unwrap().to_string();
    env.run(&[
        "deploy",
        "--repo",
        &repo,
        "--branch",
        &branch(2),
        "--sha",
        OLD,
        "--id",
        "2",
    ])
    .ok();
    let gh = FakeGitHub::start("flux-bot").await;
    gh.permission("org/app", "mallory", "write");
    let mut two = github_pull("org/app", 2, &branch(2), SHA, "org/app");
    two["user"]["login"] = json!("alice");
    gh.pull("org/app", two);
    let mut c = env.command();
    c.args(["resync", "--repo", &repo, "--output", "json"])
        .env("GITHUB_API_URL", gh.uri())
        .env("GITHUB_TOKEN", "ghs-test");
    let out = support::run_async(c).await.ok().json();
    assert_eq!(out["repairs"][0]["repair"], "outdated", "{out}");
    let docs = env.docs(&support::slug_of(&branch(2)));
    assert_eq!(
        docs[0]["spec"]["ref"]["commit"], OLD,
        "the unattributed head is not deployed"
    );
    let statuses = gh.statuses("org/app");
    assert!(
        statuses.iter().any(|(sha, state, text)| sha == SHA
            && state == "pending"
            && text.contains("/deploy-ephemeral")),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_needs_the_forge_to_answer() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\n"),
        )],
        "a repository",
    );
    // Nothing listens there: GitHub cannot be reached.
    let down = format!("http://127.0.0.1:{}", support::servers::free_port());
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", down),
            ("GITHUB_TOKEN", "ghs-test".into()),
        ],
    );
    let start = Instant::now();
    while s.get("/readyz").0 != 503 {
        assert!(start.elapsed() < Duration::from_secs(20), "still ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.get("/healthz").0, 200, "alive all the same");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_the_gitops_repository_could_not_take_stays_journaled() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let gh = github(1).await;
    let state = env.path("state");
    let vars = journaled(&gh, &state);
    let s = Serving::start(&env, &daemon.url, &vars);
    // The GitOps repository goes away after start-up (the daemon answers "not found").
    let away = env.remote.with_extension("away");
    std::fs::rename(&env.remote, &away).unwrap();
    let port = s.port;
    let answer = tokio::task::spawn_blocking(move || deliver(port, 1, "kept-1"))
        .await
        .unwrap();
    assert_eq!(answer.0, 202);
    let start = Instant::now();
    while s.get("/readyz").0 != 503 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the failure was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let journaled = || {
        std::fs::read_dir(&state)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    };
    assert_eq!(journaled(), 1, "the delivery is still journaled");
    // The forge redelivers it (same id): not a duplicate to drop, a nudge to retry now.
    let answer = tokio::task::spawn_blocking(move || deliver(port, 1, "kept-1"))
        .await
        .unwrap();
    assert_eq!(answer.0, 202, "{answer:?}");
    assert!(answer.1.contains("retrying"), "{answer:?}");
    // Back again: the running service retries it by itself, no restart needed.
    std::fs::rename(&away, &env.remote).unwrap();
    all_landed(&env, 1, Duration::from_secs(40)).await;
    let start = Instant::now();
    while journaled() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "journal not emptied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "payloads are the service's alone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_is_replayed_while_health_already_answers() {
    let env = TestEnv::new();
    let Some(daemon) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let gh = github(40).await;
    let state = env.path("state");
    let mut vars = journaled(&gh, &state);
    vars.push(("FLUX_EPHEMERAL_RESYNC_INTERVAL", "0".into()));
    let s = Serving::start(&env, &daemon.url, &vars);
    let away = env.remote.with_extension("away");
    std::fs::rename(&env.remote, &away).unwrap();
    let port = s.port;
    tokio::task::spawn_blocking(move || {
        for n in 1..=40 {
            assert_eq!(deliver(port, n, &format!("backlog-{n}")).0, 202);
        }
    })
    .await
    .unwrap();
    drop(s);
    std::fs::rename(&away, &env.remote).unwrap();
    // The next start listens (and answers /healthz) before the backlog is handled.
    let s = Serving::start(&env, &daemon.url, &vars);
    assert_eq!(s.get("/healthz").0, 200);
    let landed = env
        .instances()
        .iter()
        .filter(|f| f.starts_with("sync-"))
        .count();
    assert!(
        landed < 40,
        "the backlog was replayed before serving ({landed} landed)"
    );
    all_landed(&env, 40, Duration::from_secs(60)).await;
    let start = Instant::now();
    while s.get("/readyz").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not ready after the backlog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `.flux-ephemeral.yaml` that does not read, in the GitOps repository: `serve` starts all the
/// same, `/readyz` names the problem, a delivery is kept (not dropped) and its change is told why
/// it waits; once a commit fixes the file the delivery is applied and `/readyz` is ready again.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_configuration_keeps_deliveries_until_a_commit_fixes_it() {
    let env = TestEnv::new();
    let good = "source_url: https://github.com/org/app.git\n";
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ntll: 2d\n"),
        )],
        "a typo",
    );
    let gh = github(1).await;
    let state = env.path("state");
    let mut s = Serving::start(&env, env.remote.to_str().unwrap(), &journaled(&gh, &state));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "serve exited on a bad configuration"
    );
    let (status, why) = s.get("/readyz");
    assert_eq!(status, 503, "{why}");
    assert!(
        why.contains("configuration") && why.contains("tll"),
        "{why}"
    );
    let port = s.port;
    let answer = tokio::task::spawn_blocking(move || deliver(port, 1, "kept-1"))
        .await
        .unwrap();
    assert_eq!(answer.0, 202, "{answer:?}");
    // Kept, and the change is told why it waits.
    let start = Instant::now();
    while gh.comments("org/app", 1).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "nobody was told");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let told = gh.comments("org/app", 1)[0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        told.contains("waits") && told.contains(".flux-ephemeral.yaml"),
        "{told}"
    );
    assert!(
        !told.contains("tll"),
        "the GitOps configuration's error is not posted: {told}"
    );
    assert!(env.sync_file(&support::slug_of(&branch(1))).is_none());
    assert_eq!(
        std::fs::read_dir(&state)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json"))
            .count(),
        1,
        "the delivery stays journaled"
    );
    // A commit fixes it: the kept delivery lands, and the reply is the usual one.
    env.commit_as_other(&[(".flux-ephemeral.yaml", Some(good))], "fix the typo");
    all_landed(&env, 1, Duration::from_secs(40)).await;
    let start = Instant::now();
    while s.get("/readyz").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{:?}",
            s.get("/readyz")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let said = gh.comments("org/app", 1);
    assert_eq!(said.len(), 1, "one comment, edited: {said:?}");
    assert!(
        !said[0]["body"].as_str().unwrap().contains("waits"),
        "{said:?}"
    );
}
