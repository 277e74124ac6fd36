//! The same deploy over every transport users have: git daemon, smart HTTP with basic auth, SSH with
//! a deploy key and known_hosts, and the failures they produce (refusing hook, wrong token, unknown
//! host key, server down).

use crate::support;

use support::servers::{free_port, git_daemon, http_backend, sshd};
use support::{write, TestEnv, SHA};

fn srv(env: &TestEnv) -> std::path::PathBuf {
    env.remote.parent().unwrap().to_path_buf()
}

#[test]
fn git_daemon_deploy_destroy_with_and_without_cache() {
    let env = TestEnv::new();
    let Some(server) = git_daemon(&srv(&env)) else {
        return;
    };
    let cache = env.path("cache");
    let cache = cache.to_str().unwrap();
    let out = env
        .run(&[
            "deploy",
            "--repo",
            &server.url,
            "--branch",
            "feature/git",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["commit"].as_str().unwrap(), env.head());
    let slug = out["slug"].as_str().unwrap().to_string();
    assert!(env.sync_file(&slug).is_some());

    // Warm cache: the second run reuses the mirror and still sees the remote's new commits.
    env.run(&[
        "deploy",
        "--repo",
        &server.url,
        "--cache-dir",
        cache,
        "--branch",
        "b1",
    ])
    .ok();
    env.commit_as_other(&[("README.md", Some("another writer\n"))], "other writer");
    let other = env.head();
    env.run(&[
        "deploy",
        "--repo",
        &server.url,
        "--cache-dir",
        cache,
        "--branch",
        "b2",
        "--sha",
        SHA,
    ])
    .ok();
    assert_eq!(
        env.git(&["rev-parse", "main~1"]).trim(),
        other,
        "the other writer's commit is kept"
    );
    assert!(env.file("README.md").is_some());
    assert_eq!(
        std::fs::read_dir(cache).unwrap().count(),
        2,
        "one mirror and its lock"
    );

    let out = env
        .run(&[
            "destroy",
            "--repo",
            &server.url,
            "--cache-dir",
            cache,
            "--branch",
            "feature/git",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
    assert!(env.sync_file(&slug).is_none());
    let list = env
        .run(&["list", "--repo", &server.url, "--output", "json"])
        .ok()
        .json();
    assert_eq!(list["environments"].as_array().unwrap().len(), 2);
}

#[test]
fn a_refusing_pre_receive_hook_gives_a_clear_error_and_changes_nothing() {
    let env = TestEnv::new();
    let hook = env.remote.join("hooks/pre-receive");
    write(
        &hook,
        "#!/bin/sh\necho 'pushes to main need a signed-off commit' >&2\nexit 1\n",
    );
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .unwrap();
    let Some(server) = git_daemon(&srv(&env)) else {
        return;
    };
    let head = env.head();
    let out = env
        .run(&["deploy", "--repo", &server.url, "--branch", "x"])
        .fails_with(4, "refused the push");
    assert!(
        out.stderr.contains("signed-off"),
        "the hook's words reach the user: {out:?}"
    );
    assert_eq!(env.head(), head);
}

#[test]
fn a_server_that_is_down_gives_a_clear_error() {
    let env = TestEnv::new();
    let url = format!("git://127.0.0.1:{}/gitops.git", free_port());
    env.run(&["deploy", "--repo", &url, "--branch", "x"])
        .fails_with(4, "is the server up");
    let url = format!("http://127.0.0.1:{}/gitops.git", free_port());
    env.run(&[
        "deploy",
        "--repo",
        &url,
        "--branch",
        "x",
        "--target-branch",
        "main",
    ])
    .fails_with(4, "fetch");
}

#[test]
fn smart_http_with_basic_auth() {
    let env = TestEnv::new();
    let token = "s3cr3t-t0ken-value";
    let Some(server) = http_backend(&srv(&env), &env.path("http"), "deployer", token) else {
        return;
    };

    // No token: says how to give one.
    env.run(&["deploy", "--repo", &server.url, "--branch", "h"])
        .fails_with(4, "GIT_TOKEN");

    // A wrong token: refused, and the token never shows.
    let out = env.run_with(
        &["deploy", "--repo", &server.url, "--branch", "h"],
        &[
            ("GIT_TOKEN", "wrong-token-123"),
            ("GIT_USERNAME", "deployer"),
        ],
    );
    let out = out.fails_with(4, "refused the token");
    assert!(!out.stderr.contains("wrong-token-123") && !out.stdout.contains("wrong-token-123"));

    // The right token from the environment, then from a file.
    let out = env
        .run_with(
            &[
                "deploy",
                "--repo",
                &server.url,
                "--branch",
                "h",
                "--output",
                "json",
                "-vv",
            ],
            &[("GIT_TOKEN", token), ("GIT_USERNAME", "deployer")],
        )
        .ok();
    assert!(
        !out.stderr.contains(token) && !out.stdout.contains(token),
        "token leaked into output"
    );
    assert_eq!(out.json()["commit"].as_str().unwrap(), env.head());
    let file = env.path("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    env.run_with(
        &[
            "destroy",
            "--repo",
            &server.url,
            "--branch",
            "h",
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[("GIT_USERNAME", "deployer")],
    )
    .ok();
    assert!(env.sync_file("h").is_none());
    let log = env.git(&["log", "--format=%B", "main"]);
    assert!(!log.contains(token));
}

#[test]
fn ssh_with_a_deploy_key_and_known_hosts() {
    let env = TestEnv::new();
    let Some(ssh) = sshd(&srv(&env), &env.path("ssh")) else {
        return;
    };
    let key = ssh.key.to_str().unwrap();
    let url = ssh.server.url.clone();

    // Unknown host: refused, with the fix in the message.
    let out = env.run(&["deploy", "--repo", &url, "--branch", "s", "--ssh-key", key]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("known_hosts"), "{out:?}");

    // The explicit opt-out works (for tests only).
    env.run(&[
        "deploy",
        "--repo",
        &url,
        "--branch",
        "s",
        "--ssh-key",
        key,
        "--insecure-ignore-host-key",
    ])
    .ok();
    assert!(env.sync_file("s").is_some());

    // With the host key in ~/.ssh/known_hosts, no opt-out is needed.
    write(&env.home.join(".ssh/known_hosts"), &ssh.known_hosts_line);
    env.run(&[
        "deploy",
        "--repo",
        &url,
        "--branch",
        "s2",
        "--ssh-key",
        key,
        "--sha",
        SHA,
    ])
    .ok();
    assert!(env.sync_file("s2").is_some());

    // A key the server does not know is refused with a hint.
    let other = env.path("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    env.run(&[
        "deploy",
        "--repo",
        &url,
        "--branch",
        "s3",
        "--ssh-key",
        other.to_str().unwrap(),
    ])
    .fails_with(4, "refused the SSH key");
}

#[test]
fn a_warm_shallow_mirror_with_nothing_new_to_fetch_still_pushes() {
    // Regression: libgit2's open_bare skips the shallow grafts, so a push from a warm mirror whose
    // fetch brought nothing walked past the shallow boundary into commits it never had.
    let env = TestEnv::new();
    env.commit_as_other(
        &[("README.md", Some("history below the shallow boundary\n"))],
        "older history",
    );
    let Some(server) = git_daemon(&srv(&env)) else {
        return;
    };
    let cache = env.path("cache");
    let cache = cache.to_str().unwrap();
    env.run(&[
        "deploy",
        "--repo",
        &server.url,
        "--cache-dir",
        cache,
        "--branch",
        "first",
    ])
    .ok();
    env.run(&[
        "deploy",
        "--repo",
        &server.url,
        "--cache-dir",
        cache,
        "--branch",
        "second",
    ])
    .ok();
    env.run(&[
        "destroy",
        "--repo",
        &server.url,
        "--cache-dir",
        cache,
        "--branch",
        "first",
    ])
    .ok();
    assert_eq!(env.instances(), vec!["sync-second.yaml", "sync.yaml"]);
}

#[test]
fn a_warm_mirror_is_never_taken_for_the_remote() {
    // The mirror remembers an environment that another writer has since removed: the deploy
    // must not answer "unchanged" from memory, and a dry run must show the remote's state.
    let env = TestEnv::new();
    let Some(server) = git_daemon(&srv(&env)) else {
        return;
    };
    let cache = env.path("cache");
    let cache = cache.to_str().unwrap();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--repo",
            &server.url,
            "--cache-dir",
            cache,
            "--branch",
            "feature/warm",
            "--sha",
            SHA,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        env.run(&args).ok().json()
    };
    let first = deploy(&[]);
    let slug = first["slug"].as_str().unwrap().to_string();
    let file = format!("overlays/ephemeral-instances/sync-{slug}.yaml");
    env.commit_as_other(&[(&file, None)], "someone removed it");
    let dry = deploy(&["--dry-run"]);
    assert_eq!(dry["action"], "created", "{dry}");
    let again = deploy(&[]);
    assert_eq!(again["action"], "created", "{again}");
    assert!(env.sync_file(&slug).is_some());
    // Nothing changed since: unchanged, and nothing committed.
    let head = env.head();
    assert_eq!(deploy(&[])["action"], "unchanged");
    assert_eq!(env.head(), head);
}
