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

/// A GitOps repository whose configuration takes previews of the Gitea repository `repo`, with
/// `config` added.
fn gitops_for(gitea: &Gitea, repo: &str, config: &str) -> TestEnv {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(&format!(
                "gitea_repository: {repo}\nsource_url: {}/{repo}.git\n{config}",
                gitea.url
            )),
        )],
        "previews of the Gitea repository",
    );
    env
}

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
    let Some(w) = World::new("served", "", false).await else {
        return;
    };
    let (gitea, repo, number) = (&w.gitea, &w.repo, w.number);
    let slug = w.slug();

    // The writer asks: the head is deployed, the bot answers once and sets its status.
    w.comment(&w.writer, "/deploy-ephemeral").await;
    until("the writer's comment deployed the head", || {
        w.env.sync_file(&slug).is_some_and(|f| f.contains(&w.head))
    })
    .await;
    w.reply_saying(&gitea.admin, "flux-ephemeral").await;
    let start = Instant::now();
    loop {
        let statuses = gitea
            .admin(
                "GET",
                &format!("/repos/{repo}/commits/{}/statuses", w.head),
                None,
            )
            .await;
        let ours = statuses
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["context"] == "flux-ephemeral" && s["status"] == "success");
        if ours {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no status: {statuses}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A stranger's comment changes nothing.
    let commits = w.env.commit_count();
    w.comment(&w.stranger, "/destroy-ephemeral").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.env.commit_count(),
        commits,
        "a stranger changed the GitOps repository"
    );
    assert!(w.env.sync_file(&slug).is_some());

    // A delivery with a bad signature is refused.
    let body = json!({"action": "created"}).to_string();
    let (code, _) = w.serve.post(
        "/hooks/gitea",
        &[
            ("X-Gitea-Event", "issue_comment".into()),
            ("X-Gitea-Signature", "00".repeat(32)),
        ],
        &body,
    );
    assert_eq!(code, 401);

    // A new commit moves the preview; the bot keeps one comment.
    let next = gitea.commit_on(repo, &w.branch, "b.txt").await;
    until("the push moved the preview", || {
        w.env.sync_file(&slug).is_some_and(|f| f.contains(&next))
    })
    .await;
    let bots = gitea
        .comments(repo, number)
        .await
        .into_iter()
        .filter(|c| c["user"]["login"] == gitea.admin.as_str())
        .count();
    assert_eq!(bots, 1);

    // Closing removes it.
    gitea
        .admin(
            "PATCH",
            &format!("/repos/{repo}/pulls/{number}"),
            Some(json!({"state": "closed"})),
        )
        .await;
    until("closing removed the preview", || {
        w.env.sync_file(&slug).is_none()
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

/// `cleanup` lists the Gitea repository's open pull requests and removes the preview of one
/// that closed; `doctor` reaches the Gitea and says the token may write.
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_and_doctor_read_the_real_gitea() {
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let repo = gitea.repository("swept").await;
    let head = gitea
        .branch_with_commit(&repo, "feature/swept", "s.txt")
        .await;
    let number = gitea
        .pull_request(&repo, "feature/swept", "to be swept")
        .await;
    let env = gitops_for(&gitea, &repo, "");
    let vars = [
        ("GITEA_URL", gitea.url.as_str()),
        ("GITEA_TOKEN", gitea.admin_token.as_str()),
    ];
    let remote = env.remote.to_str().unwrap().to_string();
    let number_text = number.to_string();
    let deployed = env
        .run_with(
            &[
                "deploy",
                "--repo",
                &remote,
                "--branch",
                "feature/swept",
                "--sha",
                &head,
                "--id",
                &number_text,
                "--output",
                "json",
            ],
            &vars,
        )
        .ok()
        .json();
    assert_eq!(deployed["action"], "created", "{deployed}");
    let slug = support::slug_of("feature/swept");

    // Open: kept.
    let kept = env
        .run_with(&["cleanup", "--repo", &remote, "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(kept["forge"], "gitea", "{kept}");
    assert_eq!(kept["removed"], json!([]), "{kept}");
    assert!(env.sync_file(&slug).is_some());

    // Closed: removed.
    gitea
        .admin(
            "PATCH",
            &format!("/repos/{repo}/pulls/{number}"),
            Some(json!({"state": "closed"})),
        )
        .await;
    let swept = env
        .run_with(&["cleanup", "--repo", &remote, "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(
        swept["removed"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    assert!(env.sync_file(&slug).is_none());

    let doctor = env
        .run_with(&["doctor", "--repo", &remote, "--output", "json"], &vars)
        .json();
    let forge = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "application app: forge")
        .cloned()
        .unwrap_or_else(|| panic!("{doctor}"));
    assert_eq!(forge["verdict"], "ok", "{forge}");
    assert!(!doctor.to_string().contains(&gitea.admin_token));
}

/// The client speaks Gitea's own API description (`/swagger.v1.json` of the running Gitea): every
/// operation it calls exists, with the query parameters it sends, the fields it reads in the
/// documented answer and the fields it sends in the documented body
/// (`tests/contracts/gitea/operations.txt`).
#[tokio::test(flavor = "multi_thread")]
async fn the_gitea_client_is_held_to_giteas_own_api_description() {
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let spec: serde_json::Value = reqwest::get(format!("{}/swagger.v1.json", gitea.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Follow `$ref`s (`#/responses/X`, `#/definitions/X`) and arrays down to an object schema.
    fn resolve<'a>(
        spec: &'a serde_json::Value,
        mut v: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        for _ in 0..10 {
            if let Some(r) = v["$ref"].as_str() {
                let mut at = spec;
                for part in r.trim_start_matches("#/").split('/') {
                    at = &at[part];
                }
                v = at;
            } else if v.get("schema").is_some() {
                v = &v["schema"];
            } else if v["type"] == "array" {
                v = &v["items"];
            } else {
                break;
            }
        }
        v
    }
    let list = std::fs::read_to_string(format!(
        "{}/tests/contracts/gitea/operations.txt",
        support::ROOT
    ))
    .unwrap();
    let mut problems = Vec::new();
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let (method, path) = cols[0].split_once(' ').unwrap();
        let fields = |i: usize| {
            cols[i]
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect::<Vec<_>>()
        };
        let op = &spec["paths"][path][method.to_ascii_lowercase()];
        if op.is_null() {
            problems.push(format!("{method} {path}: not in Gitea's API"));
            continue;
        }
        let answer = resolve(&spec, &op["responses"][cols[1]]);
        for f in fields(2) {
            if answer["properties"][f].is_null() {
                problems.push(format!("{method} {path}: answer {} has no {f}", cols[1]));
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for q in fields(3) {
            if !params.iter().any(|p| p["in"] == "query" && p["name"] == q) {
                problems.push(format!(
                    "{method} {path}: query parameter {q} is not declared"
                ));
            }
        }
        let body = params
            .iter()
            .find(|p| p["in"] == "body")
            .map(|p| resolve(&spec, p));
        for f in fields(4) {
            if body.is_none_or(|b| b["properties"][f].is_null()) {
                problems.push(format!("{method} {path}: the body takes no {f}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "departures from Gitea's API:\n{}",
        problems.join("\n")
    );
}

/// A Gitea repository with a pull request from `feature/<name>`, a writer and a stranger, and
/// `serve` receiving its webhooks with `config` added to the GitOps configuration.
struct World {
    gitea: Gitea,
    repo: String,
    number: u64,
    head: String,
    branch: String,
    writer: support::gitea::GiteaUser,
    stranger: support::gitea::GiteaUser,
    env: TestEnv,
    serve: Serving,
}

impl World {
    async fn new(name: &str, config: &str, bot_not_admin: bool) -> Option<World> {
        let gitea = Gitea::from_env()?;
        let repo = gitea.repository(name).await;
        let writer = gitea.user("writer").await;
        let stranger = gitea.user("stranger").await;
        gitea
            .admin(
                "PUT",
                &format!("/repos/{repo}/collaborators/{}", writer.login),
                Some(json!({"permission": "write"})),
            )
            .await;
        let branch = format!("feature/{name}");
        let head = gitea.branch_with_commit(&repo, &branch, "a.txt").await;
        let number = gitea.pull_request(&repo, &branch, name).await;
        let env = gitops_for(&gitea, &repo, config);
        // The bot's account: the admin, or (to show what happens without admin) a mere user.
        let token = if bot_not_admin {
            stranger.token.clone()
        } else {
            gitea.admin_token.clone()
        };
        let serve = Serving::start(
            &env,
            env.remote.to_str().unwrap(),
            &[
                ("GITEA_URL", gitea.url.clone()),
                ("GITEA_TOKEN", token),
                ("GITEA_WEBHOOK_SECRET", SECRET.into()),
            ],
        );
        gitea
            .webhook(
                &repo,
                &format!("http://127.0.0.1:{}/hooks/gitea", serve.port),
                SECRET,
            )
            .await;
        Some(World {
            gitea,
            repo,
            number,
            head,
            branch,
            writer,
            stranger,
            env,
            serve,
        })
    }

    async fn comment(&self, who: &support::gitea::GiteaUser, body: &str) {
        let (status, c) = self
            .gitea
            .call(
                &who.token,
                "POST",
                &format!("/repos/{}/issues/{}/comments", self.repo, self.number),
                Some(json!({"body": body})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
    }

    /// The bot's reply, once it says `needle`.
    async fn reply_saying(&self, bot: &str, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let comments = self.gitea.comments(&self.repo, self.number).await;
            if let Some(c) = comments.iter().find(|c| {
                c["user"]["login"] == bot && c["body"].as_str().is_some_and(|b| b.contains(needle))
            }) {
                return c["body"].as_str().unwrap().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no reply saying {needle:?}: {comments:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn slug(&self) -> String {
        support::slug_of(&self.branch)
    }

    /// The commit status `context` on the head, posted as the admin (a CI system's).
    async fn ci_status(&self, context: &str, state: &str) {
        self.gitea
            .admin(
                "POST",
                &format!("/repos/{}/statuses/{}", self.repo, self.head),
                Some(json!({"context": context, "state": state, "description": "ci"})),
            )
            .await;
    }
}

/// With `require_checks`, a request while CI runs waits and says for what (Gitea's combined
/// status); once CI passed, asking again deploys.
#[tokio::test(flavor = "multi_thread")]
async fn require_checks_reads_giteas_combined_status() {
    let Some(w) = World::new("checked", "require_checks: [ci/build]\n", false).await else {
        return;
    };
    w.ci_status("ci/build", "pending").await;
    w.comment(&w.writer, "/deploy-ephemeral").await;
    let said = w.reply_saying(&w.gitea.admin, "ci/build").await;
    assert!(said.contains("wait"), "{said}");
    assert!(w.env.sync_file(&w.slug()).is_none());
    w.ci_status("ci/build", "success").await;
    w.comment(&w.writer, "/deploy-ephemeral").await;
    until("deployed once CI passed", || {
        w.env
            .sync_file(&w.slug())
            .is_some_and(|f| f.contains(&w.head))
    })
    .await;
}

/// With `deploy_label`, adding the label on Gitea deploys the pull request.
#[tokio::test(flavor = "multi_thread")]
async fn a_label_on_a_gitea_pull_request_deploys_it() {
    let Some(w) = World::new("labelled", "deploy_label: preview\n", false).await else {
        return;
    };
    let label = w
        .gitea
        .admin(
            "POST",
            &format!("/repos/{}/labels", w.repo),
            Some(json!({"name": "preview", "color": "#00aabb"})),
        )
        .await;
    w.gitea
        .admin(
            "POST",
            &format!("/repos/{}/issues/{}/labels", w.repo, w.number),
            Some(json!({"labels": [label["id"]]})),
        )
        .await;
    until("the label deployed the pull request", || {
        w.env
            .sync_file(&w.slug())
            .is_some_and(|f| f.contains(&w.head))
    })
    .await;
}

/// A bot account that may not read permissions (not an admin of the repository) trusts nobody:
/// even a writer is refused, and the log says what the bot lacks.
#[tokio::test(flavor = "multi_thread")]
async fn without_admin_the_bot_trusts_nobody() {
    let Some(w) = World::new("no-admin", "", true).await else {
        return;
    };
    // The bot here is the stranger's account, which may not read the writer's permission.
    w.comment(&w.writer, "/deploy-ephemeral").await;
    let said = w.reply_saying(&w.stranger.login, "may not deploy").await;
    assert!(said.contains(&w.writer.login), "{said}");
    assert!(w.env.sync_file(&w.slug()).is_none());
    let _ = &w.serve;
}

/// `resync` lists the Gitea repository and moves a preview that missed a push to the pull
/// request's head.
#[tokio::test(flavor = "multi_thread")]
async fn resync_moves_a_preview_that_missed_a_gitea_push() {
    let Some(gitea) = Gitea::from_env() else {
        return;
    };
    let repo = gitea.repository("drift").await;
    let head = gitea
        .branch_with_commit(&repo, "feature/drift", "d.txt")
        .await;
    let number = gitea.pull_request(&repo, "feature/drift", "drifting").await;
    let env = gitops_for(&gitea, &repo, "");
    let vars = [
        ("GITEA_URL", gitea.url.as_str()),
        ("GITEA_TOKEN", gitea.admin_token.as_str()),
    ];
    let remote = env.remote.to_str().unwrap().to_string();
    let n = number.to_string();
    env.run_with(
        &[
            "deploy",
            "--repo",
            &remote,
            "--branch",
            "feature/drift",
            "--sha",
            &head,
            "--id",
            &n,
        ],
        &vars,
    )
    .ok();
    let next = gitea.commit_on(&repo, "feature/drift", "e.txt").await;
    let out = env
        .run_with(&["resync", "--repo", &remote, "--output", "json"], &vars)
        .ok()
        .json();
    let slug = support::slug_of("feature/drift");
    assert!(
        env.sync_file(&slug).is_some_and(|f| f.contains(&next)),
        "{out}"
    );
}

/// The filters on Gitea's own answers: a draft pull request (Gitea's `WIP:` title) and a change
/// outside `paths` (Gitea's changed files) are answered with why; a change under `paths` deploys.
#[tokio::test(flavor = "multi_thread")]
async fn filters_read_giteas_pull_request_and_its_files() {
    let Some(w) = World::new("filtered", "paths: [\"src/**\"]\n", false).await else {
        return;
    };
    // The branch changes a.txt only: outside `paths`.
    w.comment(&w.writer, "/deploy-ephemeral").await;
    let said = w.reply_saying(&w.gitea.admin, "src/**").await;
    assert!(said.contains("src/**"), "{said}");
    assert!(w.env.sync_file(&w.slug()).is_none());
    // A commit under src/: now it deploys.
    let sha = w.gitea.commit_on(&w.repo, &w.branch, "src/main.rs").await;
    w.comment(&w.writer, "/deploy-ephemeral").await;
    until("a change under paths deployed", || {
        w.env.sync_file(&w.slug()).is_some_and(|f| f.contains(&sha))
    })
    .await;
    // A draft (`WIP:` in Gitea) is not deployed by a push, and a command says why.
    w.gitea
        .admin(
            "PATCH",
            &format!("/repos/{}/pulls/{}", w.repo, w.number),
            Some(json!({"title": "WIP: not yet"})),
        )
        .await;
    let (_, pr) = w
        .gitea
        .call(
            &w.gitea.admin_token,
            "GET",
            &format!("/repos/{}/pulls/{}", w.repo, w.number),
            None,
        )
        .await;
    assert_eq!(
        pr["draft"], true,
        "Gitea marks a WIP: title as a draft: {pr}"
    );
    let later = w.gitea.commit_on(&w.repo, &w.branch, "src/more.rs").await;
    w.comment(&w.writer, "/deploy-ephemeral").await;
    let said = w.reply_saying(&w.gitea.admin, "draft").await;
    assert!(said.contains("draft"), "{said}");
    assert!(w
        .env
        .sync_file(&w.slug())
        .is_some_and(|f| !f.contains(&later)));
}
