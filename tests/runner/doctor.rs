//! `doctor` against a real git daemon and the shared fake GitHub: what it reports, and its exit
//! codes.

use crate::support;

use serde_json::Value;
use support::fake_forges::FakeGitHub;
use support::servers::{git_daemon, Server};
use support::{Run, TestEnv};

async fn doctor(env: &TestEnv, url: &str, gh: &FakeGitHub, extra: &[&str]) -> Run {
    let mut c = env.command();
    c.args(["doctor", "--repo", url, "--output", "json"])
        .args(extra)
        .env("GITHUB_API_URL", gh.uri())
        .env("GITHUB_TOKEN", "ghs-test")
        .env("KUBECONFIG", "")
        .env("FLUX_RECEIVER_TOKEN", "receiver-token")
        .env_remove("KUBERNETES_SERVICE_HOST");
    support::run_async(c).await
}

/// A GitOps repository served by `git daemon`, with `config` as its `.flux-ephemeral.yaml`, and
/// the fake GitHub; `None` (skipped) without `git daemon`.
async fn world(config: &str) -> Option<(TestEnv, Server, FakeGitHub)> {
    let env = TestEnv::new();
    let daemon = git_daemon(env.remote.parent().unwrap())?;
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some(config))],
        "the configuration",
    );
    Some((env, daemon, FakeGitHub::start("flux-bot").await))
}

/// The check about `subject`: (verdict, detail).
fn check(out: &Value, subject: &str) -> (String, String) {
    let c = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == subject)
        .unwrap_or_else(|| panic!("no check {subject}: {out}"));
    (
        c["verdict"].as_str().unwrap().to_string(),
        c["detail"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sound_setup_and_what_is_off_in_it() {
    let config = "applications:\n  - name: web\n    github_repository: org/web\n    source_url: https://github.com/org/web.git\n";
    let Some((env, daemon, gh)) = world(config).await else {
        return;
    };
    let out = doctor(&env, &daemon.url, &gh, &[]).await.ok().json();
    assert_eq!(check(&out, "GitOps repository").0, "ok", "{out}");
    assert_eq!(check(&out, "configuration").0, "ok", "{out}");
    assert!(
        check(&out, "application web").1.contains("org/web"),
        "{out}"
    );
    let (verdict, detail) = check(&out, "application web: forge");
    assert_eq!(verdict, "ok", "{out}");
    assert!(detail.contains("may write"), "{out}");
    assert_eq!(check(&out, "application web: resync").0, "ok", "{out}");
    assert_eq!(check(&out, "Flux receiver").0, "warning", "{out}");
    assert_eq!(check(&out, "Kubernetes").0, "warning", "{out}");

    // A token that may not write is said, not silently accepted.
    gh.token_push(Some(false));
    let out = doctor(&env, &daemon.url, &gh, &[]).await.ok().json();
    let (verdict, detail) = check(&out, "application web: forge");
    assert_eq!(verdict, "warning", "{out}");
    assert!(detail.contains("may not write"), "{out}");

    // A token GitHub refuses: the run fails with the remote's exit code.
    gh.fail("GET", "/rate_limit", 401);
    let run = doctor(&env, &daemon.url, &gh, &[]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(check(&run.json(), "application web: forge").0, "failed");

    // A Receiver nobody answers for.
    let port = support::servers::free_port().to_string();
    let run = doctor(
        &env,
        &daemon.url,
        &FakeGitHub::start("flux-bot").await,
        &[
            "--receiver-url",
            &format!("http://127.0.0.1:{port}/hook/abc"),
        ],
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(check(&run.json(), "Flux receiver").0, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn resync_that_cannot_run_and_a_broken_template_are_named() {
    let Some((env, daemon, gh)) =
        world("source_url: https://git.example.com/org/other.git\n").await
    else {
        return;
    };
    let out = doctor(&env, &daemon.url, &gh, &[]).await.ok().json();
    let resync = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"].as_str().unwrap().ends_with(": resync"))
        .unwrap_or_else(|| panic!("{out}"));
    let (verdict, detail) = (
        resync["verdict"].as_str().unwrap(),
        resync["detail"].as_str().unwrap(),
    );
    assert_eq!(verdict, "warning", "{out}");
    assert!(detail.contains("github_repository"), "{out}");
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://git.example.com/org/other.git\npreview_url: '{% include \"x\" %}'\n"),
        )],
        "a broken template",
    );
    let run = doctor(&env, &daemon.url, &gh, &[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let (verdict, detail) = check(&run.json(), "configuration");
    assert_eq!(verdict, "failed");
    assert!(detail.contains("include"), "{detail}");
}

/// The newcomer's first `doctor`, on the demo repository: the demo is judged as the demo (its
/// placeholder application repository is not asked for over the network), and no library's own
/// log line shows at the default level.
#[test]
fn doctor_on_the_demo_repository_is_quiet_and_judges_the_demo_as_the_demo() {
    let env = support::TestEnv::new();
    env.run(&["deploy", "--branch", "feature/login"]).ok();
    let out = env.run(&["doctor"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("demo GitOps repository"), "{out:?}");
    assert!(!out.stdout.contains("FAILED"), "{out:?}");
    assert!(
        !out.stderr.contains("ERROR") && !out.stderr.contains("octocrab"),
        "{out:?}"
    );
}

/// A cluster taken out of the configuration while previews were still in its directory: Flux
/// keeps applying them, so doctor says where they are.
#[tokio::test(flavor = "multi_thread")]
async fn sync_files_where_no_cluster_is_are_named() {
    let config = "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n\
                  clusters:\n  - name: eu\n    instances_dir: clusters/eu/previews\n\
                  \x20 - name: ap\n    instances_dir: clusters/ap/previews\n";
    let Some((env, daemon, gh)) = world(config).await else {
        return;
    };
    for (branch, cluster) in [("feature/a", "eu"), ("feature/b", "ap")] {
        env.deploy(&["--branch", branch, "--cluster", cluster]).ok();
    }
    let out = doctor(&env, &daemon.url, &gh, &[]).await.ok().json();
    let named = out["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["subject"] == "sync files");
    assert!(!named, "{out}");

    // `ap` leaves the configuration; its preview stays in its directory.
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(
                "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n\
                 clusters:\n  - name: eu\n    instances_dir: clusters/eu/previews\n",
            ),
        )],
        "one cluster",
    );
    let out = doctor(&env, &daemon.url, &gh, &[]).await.ok().json();
    let (verdict, detail) = check(&out, "sync files");
    assert_eq!(verdict, "warning", "{out}");
    assert!(detail.contains("1 in clusters/ap/previews"), "{detail}");
    assert!(!detail.contains("clusters/eu"), "{detail}");
}
