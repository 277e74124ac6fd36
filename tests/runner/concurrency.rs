//! Many writers at once: every deploy lands, no other writer's commit is lost.

use crate::support;

use std::process::Stdio;

use support::servers::git_daemon;
use support::{to_run, TestEnv};

const WRITERS: usize = 8;

/// Start `WRITERS` deploys at once against `url`, wait for all, return their outputs.
fn deploy_in_parallel(env: &TestEnv, url: &str, extra: &[&str]) -> Vec<support::Run> {
    let children: Vec<_> = (0..WRITERS)
        .map(|i| {
            let mut c = env.command();
            c.args([
                "deploy",
                "--repo",
                url,
                "--branch",
                &format!("feature/parallel-{i}"),
                "--output",
                "json",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| to_run(c.wait_with_output().unwrap()))
        .collect()
}

fn assert_all_landed(env: &TestEnv, runs: Vec<support::Run>, base_commits: usize) {
    let mut commits = Vec::new();
    for run in runs {
        let v = run.ok().json();
        assert_eq!(v["action"], "created");
        commits.push(v["commit"].as_str().unwrap().to_string());
    }
    let files = env.instances();
    assert_eq!(files.len(), WRITERS + 1, "{files:?}");
    assert_eq!(env.commit_count(), base_commits + WRITERS);
    let history = env.git(&["rev-list", "main"]);
    for c in commits {
        assert!(history.contains(&c), "commit {c} was lost");
    }
}

#[test]
fn parallel_deploys_to_a_local_repository_all_land() {
    let env = TestEnv::new();
    let base = env.commit_count();
    let runs = deploy_in_parallel(&env, env.remote.to_str().unwrap(), &[]);
    assert_all_landed(&env, runs, base);
}

#[test]
fn parallel_deploys_over_git_daemon_all_land() {
    let env = TestEnv::new();
    let Some(server) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let base = env.commit_count();
    let runs = deploy_in_parallel(&env, &server.url, &[]);
    assert_all_landed(&env, runs, base);
}

#[test]
fn parallel_deploys_sharing_a_cache_and_another_writer_lose_nothing() {
    let env = TestEnv::new();
    let Some(server) = git_daemon(env.remote.parent().unwrap()) else {
        return;
    };
    let cache = env.path("cache");
    let base = env.commit_count();
    let other = std::thread::scope(|s| {
        let h = s.spawn(|| {
            deploy_in_parallel(&env, &server.url, &["--cache-dir", cache.to_str().unwrap()])
        });
        env.commit_as_other(
            &[("NOTES.md", Some("written while the deploys run\n"))],
            "other writer",
        );
        let other = env.git(&["log", "--format=%H", "--grep=other writer", "main"]);
        assert_all_landed(&env, h.join().unwrap(), base + 1);
        other
    });
    let history = env.git(&["rev-list", "main"]);
    assert!(
        !other.trim().is_empty() && history.contains(other.trim()),
        "the other writer's commit was lost"
    );
    assert!(env.file("NOTES.md").is_some());
}
