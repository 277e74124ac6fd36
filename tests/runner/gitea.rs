//! Gitea as a forge, against the real Gitea of `scripts/real-gitea.sh`: no fake at all. Its own
//! signed webhooks reach `serve`, its own API answers the bot, and its Git server takes pushes
//! with its token.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::gitea::Gitea;
use support::serving::Serving;
use support::TestEnv;

const SECRET: &str = "gitea-hook-secret";

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A trusted writer's `/deploy-ephemeral` on a Gitea pull request reaches `serve` through
/// Gitea's own signed webhook and deploys the head; the bot answers in one comment and sets its
/// commit status; a new commit moves the preview; a stranger's comment changes nothing; a
/// delivery with a bad signature is refused; closing the pull request removes the preview.
#[tokio::test(flavor = "multi_thread")]
async fn a_gitea_pull_request_deploys_moves_and_closes_through_serve() {
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let repo = gitea.repository("app").await;
    let writer = gitea.user("writer").await;
    let stranger = gitea.user("stranger").await;
    gitea
        .admin(
            "PUT",
            &format!("/repos/{repo}/collaborators/{}", writer.login),
            Some(json!({"permission": "write"})),
        )
        .await;
    let head = gitea
        .branch_with_commit(&repo, "feature/gitea", "a.txt")
        .await;
    let number = gitea
        .pull_request(&repo, "feature/gitea", "Gitea's first preview")
        .await;

    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(&format!(
                "gitea_repository: {repo}\nsource_url: {}/{repo}.git\n",
                gitea.url
            )),
        )],
        "previews of the Gitea repository",
    );
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITEA_URL", gitea.url.clone()),
            ("GITEA_TOKEN", gitea.admin_token.clone()),
            ("GITEA_WEBHOOK_SECRET", SECRET.into()),
        ],
    );
    gitea
        .webhook(
            &repo,
            &format!("http://127.0.0.1:{}/hooks/gitea", s.port),
            SECRET,
        )
        .await;
    let slug = support::slug_of("feature/gitea");

    // The writer asks.
    let (status, c) = gitea
        .call(
            &writer.token,
            "POST",
            &format!("/repos/{repo}/issues/{number}/comments"),
            Some(json!({"body": "/deploy-ephemeral"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    until("the writer's comment deployed the head", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(&head))
    })
    .await;
    let bot_said = |comments: &[serde_json::Value]| {
        comments
            .iter()
            .filter(|c| {
                c["user"]["login"] == gitea.admin.as_str()
                    && c["body"]
                        .as_str()
                        .is_some_and(|b| b.contains("flux-ephemeral"))
            })
            .count()
    };
    let start = Instant::now();
    loop {
        let comments = gitea.comments(&repo, number).await;
        if bot_said(&comments) == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no reply: {comments:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let statuses = gitea
        .admin(
            "GET",
            &format!("/repos/{repo}/commits/{head}/statuses"),
            None,
        )
        .await;
    assert!(
        statuses
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["context"] == "flux-ephemeral" && s["status"] == "success"),
        "{statuses}"
    );

    // A stranger's comment changes nothing (and is told so).
    let commits = env.commit_count();
    gitea
        .call(
            &stranger.token,
            "POST",
            &format!("/repos/{repo}/issues/{number}/comments"),
            Some(json!({"body": "/destroy-ephemeral"})),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.commit_count(),
        commits,
        "a stranger changed the GitOps repository"
    );
    assert!(env.sync_file(&slug).is_some());

    // A delivery with a bad signature is refused.
    let body = json!({"action": "created"}).to_string();
    let (code, _) = s.post(
        "/hooks/gitea",
        &[
            ("X-Gitea-Event", "issue_comment".into()),
            ("X-Gitea-Signature", "00".repeat(32)),
        ],
        &body,
    );
    assert_eq!(code, 401);

    // A new commit moves the preview.
    let next = gitea.commit_on(&repo, "feature/gitea", "b.txt").await;
    until("the push moved the preview", || {
        env.sync_file(&slug).is_some_and(|f| f.contains(&next))
    })
    .await;
    // The bot kept one comment.
    assert_eq!(bot_said(&gitea.comments(&repo, number).await), 1);

    // Closing removes it.
    gitea
        .admin(
            "PATCH",
            &format!("/repos/{repo}/pulls/{number}"),
            Some(json!({"state": "closed"})),
        )
        .await;
    until("closing removed the preview", || {
        env.sync_file(&slug).is_none()
    })
    .await;
}

/// A GitOps repository hosted on Gitea is pushed to with GITEA_TOKEN.
#[tokio::test(flavor = "multi_thread")]
async fn a_gitops_repository_on_gitea_is_pushed_with_its_token() {
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let gitops = gitea.repository("gitops").await;
    let env = TestEnv::new();
    let url = format!("{}/{gitops}.git", gitea.url);
    let out = env
        .run_with(
            &[
                "deploy",
                "--repo",
                &url,
                "--branch",
                "feature/on-gitea",
                "--output",
                "json",
                "--source-url",
                "https://git.example.com/org/app.git",
            ],
            &[
                ("GITEA_URL", gitea.url.as_str()),
                ("GITEA_TOKEN", gitea.admin_token.as_str()),
            ],
        )
        .ok()
        .json();
    assert_eq!(out["action"], "created", "{out}");
    let file = format!(
        "/repos/{gitops}/contents/overlays/ephemeral-instances/sync-{}.yaml",
        support::slug_of("feature/on-gitea")
    );
    let (status, v) = gitea.call(&gitea.admin_token, "GET", &file, None).await;
    assert_eq!(status, 200, "{v}");
    // Without the token, the push is refused and says how to give one.
    let out = env.run_with(
        &[
            "deploy",
            "--repo",
            &url,
            "--branch",
            "feature/other",
            "--source-url",
            "https://git.example.com/org/app.git",
        ],
        &[],
    );
    assert_ne!(out.code, 0);
    assert!(!out.stderr.contains(&gitea.admin_token));
}
