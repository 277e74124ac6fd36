//! A test environment that reads like a script: a real bare GitOps repository, the real binary,
//! and real Git servers on 127.0.0.1. Missing server binaries skip a test with a message naming the
//! package, unless FLUX_EPHEMERAL_REQUIRE_SERVERS=1 (CI) turns the skip into a failure.
#![allow(dead_code)]

pub mod browser;
pub mod contract;
pub mod fake_forges;
pub mod fake_kube;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod payloads;
pub mod real_flux;
pub mod servers;
pub mod serving;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_flux-ephemeral");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
    #[track_caller]
    pub fn fails_with(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:#?}"
        );
        self
    }
}

/// A temporary world: HOME, a bare GitOps repository seeded with the example layout.
pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    /// The bare repository, served under `dir/srv`.
    pub remote: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fe-test-")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let srv = dir.path().join("srv");
        std::fs::create_dir_all(&srv).unwrap();
        let remote = srv.join("gitops.git");
        let env = TestEnv { dir, home, remote };
        env.seed(&[(
            ".flux-ephemeral.yaml",
            "source_url: https://git.example.com/org/app.git\n",
        )]);
        env
    }

    /// Create the bare repository with the example overlays plus `extra` files, one commit.
    fn seed(&self, extra: &[(&str, &str)]) {
        let work = self.dir.path().join("seed");
        std::fs::create_dir_all(&work).unwrap();
        copy_dir(&Path::new(ROOT).join("overlays"), &work.join("overlays"));
        for (path, content) in extra {
            write(&work.join(path), content);
        }
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "seed"]);
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                self.remote.to_str().unwrap(),
            ],
        );
        std::fs::remove_dir_all(&work).unwrap();
    }

    /// Commit `files` (path → Some(content) or None to delete) to main as another writer would.
    pub fn commit_as_other(&self, files: &[(&str, Option<&str>)], message: &str) {
        let work = self.dir.path().join(format!("other-{}", rand_suffix()));
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                self.remote.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        for (path, content) in files {
            match content {
                Some(c) => write(&work.join(path), c),
                None => std::fs::remove_file(work.join(path)).unwrap(),
            }
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", message]);
        // Like a person would: when somebody pushed first, rebase and push again.
        for _ in 0..50 {
            let pushed = Command::new("git")
                .args(["push", "-q", "origin", "main"])
                .current_dir(&work)
                .output()
                .unwrap();
            if pushed.status.success() {
                std::fs::remove_dir_all(&work).unwrap();
                return;
            }
            git(&work, &["pull", "-q", "--rebase", "origin", "main"]);
        }
        panic!("could not push as the other writer");
    }

    /// The binary with a clean environment: only what the test passes reaches it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("FLUX_EPHEMERAL_HOME", self.home.join("demo"))
            .current_dir(self.dir.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// The binary as [`run_with`](Self::run_with), its clock moved by `offset` (libfaketime's
    /// relative form, e.g. `+2m`); `None` (skipped, with a message) without `faketime`.
    pub fn run_later(&self, offset: &str, args: &[&str], env: &[(&str, &str)]) -> Option<Run> {
        if Command::new("faketime")
            .args(["+0s", "true"])
            .status()
            .is_err()
        {
            skip("faketime is not installed (apt-get install faketime)");
            return None;
        }
        let mut c = Command::new("faketime");
        c.args(["-f", offset])
            .arg(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("FLUX_EPHEMERAL_HOME", self.home.join("demo"))
            .current_dir(self.dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
        Some(to_run(c.output().unwrap()))
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        to_run(c.output().unwrap())
    }

    /// The context Flux's notification-controller gives its commit status for the preview of
    /// `branch` (`kustomization/<name>/<first 8 hex of the Provider's UID>`), as `list` names it.
    pub fn flux_status_context(&self, branch: &str) -> String {
        let listed = self
            .run(&[
                "list",
                "--repo",
                self.remote.to_str().unwrap(),
                "--output",
                "json",
            ])
            .ok()
            .json();
        let all = listed
            .as_array()
            .or_else(|| listed["environments"].as_array());
        let name = all
            .unwrap_or_else(|| panic!("{listed}"))
            .iter()
            .find(|e| e["branch"] == branch)
            .and_then(|e| e["name"].as_str())
            .unwrap_or_else(|| panic!("{branch} not listed: {listed}"));
        format!("kustomization/{name}/6a2968b8")
    }

    /// `deploy --repo <remote> ...` against the local bare repository.
    pub fn deploy(&self, args: &[&str]) -> Run {
        let mut all = vec!["deploy", "--repo", self.remote.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run(&all)
    }

    pub fn destroy(&self, args: &[&str]) -> Run {
        let mut all = vec!["destroy", "--repo", self.remote.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run(&all)
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut all = vec!["--git-dir", self.remote.to_str().unwrap()];
        all.extend_from_slice(args);
        git(self.dir.path(), &all)
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "main"]).trim().to_string()
    }

    pub fn commit_count(&self) -> usize {
        self.git(&["rev-list", "--count", "main"])
            .trim()
            .parse()
            .unwrap()
    }

    /// The sync files of the instances directory on main (the watcher `sync.yaml` and the
    /// environments' `sync-*.yaml`; the example notification manifests beside them left out).
    pub fn instances(&self) -> Vec<String> {
        self.git(&[
            "ls-tree",
            "--name-only",
            "main",
            "overlays/ephemeral-instances/",
        ])
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .filter(|f| f.starts_with("sync") || f == ".keep")
        .collect()
    }

    pub fn file(&self, path: &str) -> Option<String> {
        let out = Command::new("git")
            .args([
                "--git-dir",
                self.remote.to_str().unwrap(),
                "show",
                &format!("main:{path}"),
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    /// The subjects of the GitOps repository's commits on main, newest first.
    pub fn log(&self) -> String {
        let out = Command::new("git")
            .args([
                "--git-dir",
                self.remote.to_str().unwrap(),
                "log",
                "--format=%B",
                "main",
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn sync_file(&self, slug: &str) -> Option<String> {
        self.file(&format!("overlays/ephemeral-instances/sync-{slug}.yaml"))
    }

    /// Every YAML document of a sync file.
    pub fn docs(&self, slug: &str) -> Vec<serde_yaml_ng::Value> {
        let text = self
            .sync_file(slug)
            .unwrap_or_else(|| panic!("no sync file for {slug}"));
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| <serde_yaml_ng::Value as serde::Deserialize>::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// `handle --event-name NAME` on `event` against the GitOps repository, with `vars` set (the
/// fake forge's URL and token), from an async test.
pub async fn handle_event(
    env: &TestEnv,
    name: &str,
    event: &serde_json::Value,
    vars: &[(&str, String)],
) -> Run {
    let file = event_file(env, name, event);
    let mut c = env.command();
    c.args([
        "handle",
        "--event-name",
        name,
        "--event-file",
        file.to_str().unwrap(),
    ])
    .args(["--repo", env.remote.to_str().unwrap(), "--output", "json"]);
    for (k, v) in vars {
        c.env(k, v);
    }
    run_async(c).await
}

/// GitHub delivers `event` (of `name`): the fake learns of it (a comment it carries is listed
/// from then on), then `handle` runs on it against the fake with an installation token.
pub async fn handle_on_github(
    env: &TestEnv,
    gh: &fake_forges::FakeGitHub,
    name: &str,
    event: &serde_json::Value,
) -> Run {
    gh.delivered(name, event);
    let vars = [
        ("GITHUB_API_URL", gh.uri()),
        ("GITHUB_TOKEN", "ghs-test-token".to_string()),
    ];
    handle_event(env, name, event, &vars).await
}

/// Write `event` (of `name`) to `event.json` for `handle --event-file`. A GitHub event (GitLab's
/// are "… Hook") must be a payload GitHub would send: its webhook schema, else the test fails.
pub fn event_file(env: &TestEnv, name: &str, event: &serde_json::Value) -> PathBuf {
    if !name.contains("Hook") {
        contract::assert_github_webhook(name, event);
    }
    let file = env.path("event.json");
    std::fs::write(&file, event.to_string()).unwrap();
    file
}

/// The slug the binary derives for `branch`.
pub fn slug_of(branch: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "render",
            "--branch",
            branch,
            "--source-url",
            "x",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["slug"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Run `c` from async tests (a fake forge serves on the runtime meanwhile).
pub async fn run_async(mut c: Command) -> Run {
    tokio::task::spawn_blocking(move || to_run(c.output().unwrap()))
        .await
        .unwrap()
}

pub fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn git(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "Other Writer")
        .env("GIT_AUTHOR_EMAIL", "other@example.com")
        .env("GIT_COMMITTER_NAME", "Other Writer")
        .env("GIT_COMMITTER_EMAIL", "other@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Skip (or, in CI, fail) a test whose server binary is missing.
pub fn skip(reason: &str) {
    if std::env::var("FLUX_EPHEMERAL_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("required for this test but missing: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}
