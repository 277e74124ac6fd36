//! One preview's life with no fake at all: the real Gitea (`scripts/real-gitea.sh`) hosts the
//! application and the GitOps repository and sends its own signed webhooks to `serve`; the real
//! Flux fetches both from Gitea, applies the preview, and its notification-controller posts the
//! verdict on the Gitea commit through its `gitea` Provider, where `wait` reads it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::gitea::Gitea;
use crate::support::real_flux::{is_ready, RealFlux};
use crate::support::serving::Serving;
use crate::support::{slug_of, write, TestEnv, ROOT};

const SECRET: &str = "gitea-e2e-secret";
const WAIT: Duration = Duration::from_secs(180);

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "e2e")
        .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
        .env("GIT_COMMITTER_NAME", "e2e")
        .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Commit the files of `dir` as `main` and push them to `url`.
fn push_tree(dir: &Path, url: &str) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "seed"]);
    git(dir, &["push", "-q", url, "main"]);
}

fn copy_dir(from: &Path, to: &Path) {
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

/// Resident memory (KiB) of the process in `pid_file`.
fn rss_kib(pid_file: &Path) -> u64 {
    let Ok(pid) = std::fs::read_to_string(pid_file) else {
        return 0;
    };
    std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gitea_pull_request_previews_on_real_flux_with_no_fake() {
    let Some(flux) = RealFlux::connect() else {
        return;
    };
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let env = TestEnv::new();
    let app_repo = gitea.empty_repository("app").await;
    let gitops_repo = gitea.empty_repository("gitops").await;
    let tag = &app_repo[app_repo.len() - 4..];
    let app = format!("gt-{tag}");
    let ns = format!("e2e-{app}");
    let app_url = format!("{}/{app_repo}.git", gitea.url);
    let gitops_url = format!("{}/{gitops_repo}.git", gitea.url);

    // The application: the example overlay. The GitOps repository: the configuration, the
    // instances Kustomization and Flux's gitea Provider, adapted to this test's namespace.
    let work = env.path("app-work");
    copy_dir(
        &Path::new(ROOT).join("overlays/ephemeral"),
        &work.join("overlays/ephemeral"),
    );
    push_tree(&work, &gitea.push_url(&app_repo));
    let ops = env.path("gitops-work");
    let adapt = |text: String| text.replace("namespace: flux-system", &format!("namespace: {ns}"));
    write(
        &ops.join(".flux-ephemeral.yaml"),
        &format!(
            "gitea_repository: {app_repo}\nsource_url: {app_url}\nflux_namespace: {ns}\n\
             secret_ref: git-credentials\napp: {app}\n\
             preview_url: \"https://{{{{ slug }}}}.preview.example.com\"\n"
        ),
    );
    let sync = adapt(
        std::fs::read_to_string(Path::new(ROOT).join("overlays/ephemeral-instances/sync.yaml"))
            .unwrap(),
    );
    write(&ops.join("overlays/ephemeral-instances/sync.yaml"), &sync);
    let notifications = adapt(
        std::fs::read_to_string(Path::new(ROOT).join("examples/flux/notifications.yaml")).unwrap(),
    )
    .replace("type: github", "type: gitea")
    .replace(
        "https://github.com/example-org/app",
        &format!("{}/{app_repo}", gitea.url),
    )
    .replace("name: github-token", "name: gitea-token");
    write(
        &ops.join("overlays/ephemeral-instances/notifications.yaml"),
        &notifications,
    );
    push_tree(&ops, &gitea.push_url(&gitops_repo));

    // Flux fetches the GitOps repository from Gitea.
    tokio::task::block_in_place(|| {
        flux.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-credentials\n  namespace: {ns}\n\
             stringData:\n  username: {user}\n  password: {token}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: gitea-token\n  namespace: {ns}\n\
             stringData:\n  token: {token}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: {ns}\n\
             spec:\n  interval: 10s\n  url: {gitops_url}\n  ref:\n    branch: main\n  secretRef:\n    name: git-credentials\n",
            user = gitea.admin,
            token = gitea.admin_token,
        ));
        flux.apply(&sync);
        flux.eventually("ephemeral-instances Ready", WAIT, || {
            flux.get(Some(&ns), "kustomization", "ephemeral-instances")
                .filter(is_ready)
        });
    });

    // A pull request, a writer and a stranger.
    let writer = gitea.user("writer").await;
    let stranger = gitea.user("stranger").await;
    gitea
        .admin(
            "PUT",
            &format!("/repos/{app_repo}/collaborators/{}", writer.login),
            Some(json!({"permission": "write"})),
        )
        .await;
    let branch = "feature/e2e";
    let head = gitea
        .branch_with_commit(&app_repo, branch, "NOTES.md")
        .await;
    let number = gitea
        .pull_request(&app_repo, branch, "A preview on real Flux")
        .await;

    let s = Serving::start(
        &env,
        &gitops_url,
        &[
            ("GITEA_URL", gitea.url.clone()),
            ("GITEA_TOKEN", gitea.admin_token.clone()),
            ("GITEA_WEBHOOK_SECRET", SECRET.into()),
        ],
    );
    gitea
        .webhook(
            &app_repo,
            &format!("http://127.0.0.1:{}/hooks/gitea", s.port),
            SECRET,
        )
        .await;
    let name = format!("{app}-{}", slug_of(branch));

    // The writer asks; Flux brings the preview up Ready at the head.
    let asked = Instant::now();
    gitea
        .call(
            &writer.token,
            "POST",
            &format!("/repos/{app_repo}/issues/{number}/comments"),
            Some(json!({"body": "/deploy-ephemeral"})),
        )
        .await;
    let ready_at = |sha: &str| {
        let sha = sha.to_string();
        let (flux, ns, name) = (&flux, &ns, &name);
        move || {
            let k = flux.get(Some(ns), "kustomization", name)?;
            let rev = k["status"]["lastAppliedRevision"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (is_ready(&k) && rev.contains(&sha)).then_some(k)
        }
    };
    tokio::task::block_in_place(|| {
        flux.eventually("the preview Ready at the head", WAIT, ready_at(&head))
    });
    let push_to_ready = asked.elapsed();

    // Flux's gitea Provider posts its verdict on the Gitea commit.
    let start = Instant::now();
    loop {
        let statuses = gitea
            .admin(
                "GET",
                &format!("/repos/{app_repo}/commits/{head}/statuses"),
                None,
            )
            .await;
        let flux_said = statuses.as_array().unwrap().iter().any(|s| {
            s["context"]
                .as_str()
                .is_some_and(|c| c.starts_with("kustomization/"))
                && s["status"] == "success"
        });
        if flux_said {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no status from Flux's gitea Provider: {statuses}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // `wait` with no cluster credentials reads it on Gitea.
    let mut c = env.command();
    c.args([
        "wait",
        "--branch",
        branch,
        "--sha",
        &head,
        "--timeout",
        "2m",
        "--repo",
        &gitops_url,
        "--output",
        "json",
    ])
    .env("GITEA_URL", &gitea.url)
    .env("GITEA_TOKEN", &gitea.admin_token)
    .env("GITEA_REPOSITORY", &app_repo);
    let out = crate::support::run_async(c).await.ok().json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    assert_eq!(out["wait"]["via"], "forge", "{out}");

    // A stranger's comment changes nothing; a bad signature is refused.
    let tip_path = format!("/repos/{gitops_repo}/branches/main");
    let before = gitea.admin("GET", &tip_path, None).await["commit"]["id"].clone();
    gitea
        .call(
            &stranger.token,
            "POST",
            &format!("/repos/{app_repo}/issues/{number}/comments"),
            Some(json!({"body": "/destroy-ephemeral"})),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = gitea.admin("GET", &tip_path, None).await["commit"]["id"].clone();
    assert_eq!(after, before, "a stranger moved the GitOps repository");
    let (code, _) = s.post(
        "/hooks/gitea",
        &[
            ("X-Gitea-Event", "issue_comment".into()),
            ("X-Gitea-Signature", "ab".repeat(32)),
        ],
        "{}",
    );
    assert_eq!(code, 401);

    // A new commit moves the preview.
    let next = gitea.commit_on(&app_repo, branch, "MORE.md").await;
    tokio::task::block_in_place(|| {
        flux.eventually("the preview Ready at the new head", WAIT, ready_at(&next))
    });

    // Memory of Gitea and the stack together, while they serve.
    let gitea_dir = std::path::PathBuf::from(std::env::var("FLUX_EPHEMERAL_REAL_GITEA").unwrap());
    let gitea_kib = rss_kib(&gitea_dir.join("gitea.pid"));
    let stack_dir = std::path::PathBuf::from(std::env::var("FLUX_EPHEMERAL_REAL_FLUX").unwrap());
    let stack_kib: u64 = std::fs::read_dir(stack_dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .map(|e| rss_kib(&e.path()))
        .sum();
    eprintln!(
        "gitea e2e: comment to Ready {:.1} s; RSS Gitea {} MiB, the Flux stack {} MiB, together {} MiB",
        push_to_ready.as_secs_f64(),
        gitea_kib / 1024,
        stack_kib / 1024,
        (gitea_kib + stack_kib) / 1024
    );

    // Closing the pull request removes the preview; Flux prunes it.
    gitea
        .admin(
            "PATCH",
            &format!("/repos/{app_repo}/pulls/{number}"),
            Some(json!({"state": "closed"})),
        )
        .await;
    tokio::task::block_in_place(|| {
        flux.eventually("the preview pruned", WAIT, || {
            flux.get(Some(&ns), "kustomization", &name)
                .is_none()
                .then_some(())
        })
    });
    drop(s);
    tokio::task::block_in_place(|| {
        let _ = flux.kubectl(
            &[
                "delete",
                "namespace",
                &ns,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    });
}
