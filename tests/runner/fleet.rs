//! One GitOps repository for many applications, end to end: a GitHub repository (org/web) and a
//! GitLab project (org/api) with the same pull/merge request number and branch, over `git daemon`
//! with stateful fake GitHub and GitLab APIs.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, gitlab_merge_request, FakeGitHub, FakeGitLab};
use support::payloads::{fixture, github_comment};
use support::servers::{git_daemon, Server};
use support::{Run, TestEnv};

const BRANCH: &str = "feature/login";
const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const SHA_API: &str = "562e173be03b8ff2efb05345d12df18815438a4b";

const CONFIG: &str = "\
applications:
  - name: web
    github_repository: org/web
  - name: api
    gitlab_project: org/api
";

fn github_closed(repo: &str, pr: Value, who: &str) -> Value {
    let mut e =
        support::payloads::github_pr_event("pull_request.closed.payload.json", "closed", &pr, who);
    e["repository"] = support::payloads::github_repo(repo);
    e
}

fn gitlab_note(body: &str) -> Value {
    let mut n = fixture("gitlab/note_merge_request.json");
    n["object_attributes"]["note"] = json!(body);
    n["user"]["id"] = json!(1);
    n["user"]["username"] = json!("root");
    n["project"]["id"] = json!(42);
    n["project"]["path_with_namespace"] = json!("org/api");
    n["project"]["git_http_url"] = json!("https://gitlab.example.com/org/api.git");
    let mr = &mut n["merge_request"];
    mr["iid"] = json!(5);
    mr["source_branch"] = json!(BRANCH);
    mr["source_project_id"] = json!(42);
    mr["target_project_id"] = json!(42);
    mr["last_commit"]["id"] = json!(SHA_API);
    n
}

struct Fleet {
    env: TestEnv,
    daemon: Server,
    github: FakeGitHub,
    gitlab: FakeGitLab,
}

impl Fleet {
    async fn start() -> Option<Fleet> {
        let env = TestEnv::new();
        let daemon = git_daemon(env.remote.parent().unwrap())?;
        env.commit_as_other(&[(".flux-ephemeral.yaml", Some(CONFIG))], "fleet");
        let github = FakeGitHub::start("flux-bot").await;
        github.pull("org/web", github_pull("org/web", 5, BRANCH, SHA, "org/web"));
        github.permission("org/web", "writer", "write");
        let gitlab = FakeGitLab::start().await;
        gitlab.project(42, "org/api");
        gitlab.merge_request(gitlab_merge_request(42, 5, BRANCH, SHA_API));
        gitlab.member(42, 1, 40);
        Some(Fleet {
            env,
            daemon,
            github,
            gitlab,
        })
    }

    async fn handle(&self, name: &str, event: &Value) -> Run {
        self.github.delivered(name, event);
        let file = support::event_file(&self.env, name, event);
        let mut c = self.env.command();
        c.args(["handle", "--event-name", name, "--event-file"])
            .arg(&file)
            .args(["--repo", &self.daemon.url, "--output", "json"])
            .env("GITHUB_API_URL", self.github.uri())
            .env("GITHUB_TOKEN", "ghs-test")
            .env("GITLAB_URL", self.gitlab.uri())
            .env("GITLAB_TOKEN", "glpat-test");
        support::run_async(c).await
    }

    async fn run(&self, args: &[&str], vars: &[(&str, String)]) -> Run {
        let mut c = self.env.command();
        c.args(args).args(["--repo", &self.daemon.url]);
        for (k, v) in vars {
            c.env(k, v);
        }
        support::run_async(c).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_applications_with_the_same_pull_request_number_and_branch() {
    let Some(f) = Fleet::start().await else {
        return;
    };
    let slug = support::slug_of(BRANCH);
    let (web_file, api_file) = (
        format!("sync-web-{slug}.yaml"),
        format!("sync-api-{slug}.yaml"),
    );

    // Both deploy: distinct files, object names and namespaces; owners recorded; sources from
    // the events (no source_url is configured).
    let out = f
        .handle(
            "issue_comment",
            &github_comment("org/web", 5, "writer", "/deploy-ephemeral"),
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let out = f
        .handle("Note Hook", &gitlab_note("/deploy-ephemeral"))
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    let files = f.env.instances();
    assert!(
        files.contains(&web_file) && files.contains(&api_file),
        "{files:?}"
    );
    let doc = |file: &str| -> Vec<Value> {
        let text = f
            .env
            .file(&format!("overlays/ephemeral-instances/{file}"))
            .unwrap();
        serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    };
    let (web, api) = (doc(&web_file), doc(&api_file));
    assert_eq!(web[0]["metadata"]["name"], format!("web-{slug}"));
    assert_eq!(api[0]["metadata"]["name"], format!("api-{slug}"));
    assert_eq!(web[1]["spec"]["targetNamespace"], format!("web-{slug}"));
    assert_eq!(api[1]["spec"]["targetNamespace"], format!("api-{slug}"));
    assert_eq!(web[0]["spec"]["url"], "https://github.com/org/web.git");
    assert_eq!(
        api[0]["spec"]["url"],
        "https://gitlab.example.com/org/api.git"
    );
    assert_eq!(api[0]["spec"]["ref"]["commit"], SHA_API);
    let ann = &web[0]["metadata"]["annotations"];
    assert_eq!(ann["flux-ephemeral.io/app"], "web");
    assert_eq!(ann["flux-ephemeral.io/forge"], "github");
    assert_eq!(ann["flux-ephemeral.io/repository"], "org/web");
    assert_eq!(ann["flux-ephemeral.io/id"], "5");
    let ann = &api[0]["metadata"]["annotations"];
    assert_eq!(ann["flux-ephemeral.io/repository"], "org/api");
    assert_eq!(ann["flux-ephemeral.io/forge"], "gitlab");

    // Deploying again a second later commits nothing (no time to live is in force).
    let commits = f.env.commit_count();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = f
        .handle(
            "issue_comment",
            &github_comment("org/web", 5, "writer", "/deploy-ephemeral"),
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "unchanged", "{out}");
    assert_eq!(f.env.commit_count(), commits);

    // A stranger's fork pull request from a branch of the same name, closed: nothing happens to
    // PR #5's environment.
    let mut fork = github_pull("org/web", 6, BRANCH, SHA, "mallory/web");
    fork["state"] = json!("closed");
    f.github.pull("org/web", fork.clone());
    let out = f
        .handle("pull_request", &github_closed("org/web", fork, "mallory"))
        .await
        .ok()
        .json();
    assert_ne!(out["action"], "destroyed", "{out}");
    assert_eq!(f.env.commit_count(), commits);

    // A repository that is not configured cannot reach in, whoever administers it.
    f.github.pull(
        "mallory/playground",
        github_pull("mallory/playground", 5, BRANCH, SHA, "mallory/playground"),
    );
    f.github
        .permission("mallory/playground", "mallory", "admin");
    let out = f
        .handle(
            "issue_comment",
            &github_comment("mallory/playground", 5, "mallory", "/destroy-ephemeral"),
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "refused", "{out}");
    assert!(out["reason"]
        .as_str()
        .unwrap()
        .contains("mallory/playground"));
    assert_eq!(f.env.commit_count(), commits);
    assert!(f
        .github
        .requests()
        .await
        .iter()
        .all(|r| !r.contains("playground")));

    // Destroying one leaves the other.
    let out = f
        .handle(
            "issue_comment",
            &github_comment("org/web", 5, "writer", "/destroy-ephemeral"),
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed", "{out}");
    let files = f.env.instances();
    assert!(
        !files.contains(&web_file) && files.contains(&api_file),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_from_each_repositorys_ci_and_files_of_earlier_versions() {
    let Some(f) = Fleet::start().await else {
        return;
    };
    let slug = support::slug_of(BRANCH);
    f.handle(
        "issue_comment",
        &github_comment("org/web", 5, "writer", "/deploy-ephemeral"),
    )
    .await
    .ok();
    f.handle("Note Hook", &gitlab_note("/deploy-ephemeral"))
        .await
        .ok();
    // A sync file written by an earlier version: no application or repository recorded.
    let old_slug = support::slug_of("old/feature");
    let rendered = f
        .env
        .run(&[
            "render",
            "--branch",
            "old/feature",
            "--id",
            "5",
            "--source-url",
            "https://github.com/org/web.git",
        ])
        .ok()
        .stdout;
    let legacy: String = rendered
        .lines()
        .filter(|l| {
            ![
                "flux-ephemeral.io/app:",
                "flux-ephemeral.io/forge:",
                "flux-ephemeral.io/repository:",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let legacy_file = format!("overlays/ephemeral-instances/sync-{old_slug}.yaml");
    f.env.commit_as_other(
        &[(&legacy_file, Some(&legacy))],
        "an earlier version's file",
    );
    let list = f.run(&["list", "--output", "json"], &[]).await.ok().json();
    assert_eq!(list["environments"].as_array().unwrap().len(), 3, "{list}");

    // Both changes are closed; each repository's scheduled cleanup removes only its own.
    f.github
        .edit_pull("org/web", 5, |p| p["state"] = json!("closed"));
    f.gitlab
        .edit_merge_request(42, 5, |m| m["state"] = json!("closed"));
    let web_ci = [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_REPOSITORY", "org/web".into()),
        ("GITHUB_API_URL", f.github.uri()),
        ("GITHUB_TOKEN", "ghs-test".into()),
    ];
    let out = f
        .run(&["cleanup", "--output", "json"], &web_ci)
        .await
        .ok()
        .json();
    let removed: Vec<&str> = out["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec![format!("sync-web-{slug}.yaml")], "{out}");
    assert_eq!(out["kept"], 0, "only web's own environments count: {out}");
    let api_ci = [
        ("GITLAB_CI", "true".to_string()),
        ("CI_PROJECT_PATH", "org/api".into()),
        ("CI_PROJECT_ID", "42".into()),
        ("CI_API_V4_URL", format!("{}/api/v4", f.gitlab.uri())),
        ("GITLAB_TOKEN", "glpat-test".into()),
    ];
    let out = f
        .run(&["cleanup", "--output", "json"], &api_ci)
        .await
        .ok()
        .json();
    let removed: Vec<&str> = out["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec![format!("sync-api-{slug}.yaml")], "{out}");
    // The earlier version's file was judged by neither repository's list; it is still listed
    // and can be destroyed by its slug.
    assert!(f.env.file(&legacy_file).is_some());
    let out = f
        .run(
            &[
                "destroy", "--slug", &old_slug, "--app", "web", "--output", "json",
            ],
            &[],
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed", "{out}");
    assert!(f.env.file(&legacy_file).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ci_job_of_an_unlisted_repository_is_refused() {
    let Some(f) = Fleet::start().await else {
        return;
    };
    let head = f.env.head();
    let out = f
        .run(
            &["deploy", "--output", "json"],
            &[
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_REPOSITORY", "mallory/playground".into()),
                ("GITHUB_REF_NAME", BRANCH.into()),
                ("GITHUB_SHA", SHA.into()),
            ],
        )
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("mallory/playground"), "{out:?}");
    assert_eq!(f.env.head(), head);
    // The application's own job deploys, into its own file.
    let out = f
        .run(
            &["deploy", "--output", "json"],
            &[
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_REPOSITORY", "org/web".into()),
                ("GITHUB_REF_NAME", BRANCH.into()),
                ("GITHUB_SHA", SHA.into()),
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "created", "{out}");
    assert!(out["file"].as_str().unwrap().contains("sync-web-"), "{out}");
}

#[test]
fn without_a_list_two_prefixes_on_one_branch_never_overwrite_each_other() {
    let env = TestEnv::new();
    env.deploy(&["--app", "web", "--branch", BRANCH]).ok();
    let head = env.head();
    env.deploy(&["--app", "api", "--branch", BRANCH])
        .fails_with(1, "belongs to application web");
    assert_eq!(env.head(), head);
    // A second pull request from the same branch (to another base) is refused too, and its
    // close does not remove the first one's environment.
    env.deploy(&["--app", "web", "--branch", BRANCH, "--id", "1"])
        .ok();
    env.deploy(&["--app", "web", "--branch", BRANCH, "--id", "2"])
        .fails_with(1, "#1");
    let head = env.head();
    let out = env
        .destroy(&[
            "--app", "web", "--branch", BRANCH, "--id", "2", "--output", "json",
        ])
        .ok()
        .json();
    assert_eq!(out["action"], "absent", "{out}");
    assert_eq!(env.head(), head);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_extends_a_time_to_live_and_says_until_when() {
    let Some(f) = Fleet::start().await else {
        return;
    };
    let config = CONFIG.replace(
        "    github_repository: org/web\n",
        "    github_repository: org/web\n    ttl: 24h\n",
    );
    f.env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some(&config))],
        "web lives a day",
    );
    let comment = github_comment("org/web", 5, "writer", "/deploy-ephemeral");
    f.handle("issue_comment", &comment).await.ok();
    let commits = f.env.commit_count();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = f.handle("issue_comment", &comment).await.ok().json();
    assert_eq!(out["action"], "deployed", "the deploy time moves: {out}");
    assert_eq!(f.env.commit_count(), commits + 1);
    let replies = f.github.comments("org/web", 5);
    assert_eq!(replies.len(), 1, "one reply, edited: {replies:?}");
    assert!(
        replies[0]["body"].as_str().unwrap().contains("Kept until"),
        "{replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_github_actions_no_setting_is_needed_the_event_names_the_repository() {
    let env = TestEnv::new();
    // The seed workflow: a GitOps repository whose configuration names no source or repository.
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("app: app\n"))],
        "nothing configured",
    );
    let github = FakeGitHub::start("github-actions[bot]").await;
    github.pull("org/web", github_pull("org/web", 5, BRANCH, SHA, "org/web"));
    github.permission("org/web", "writer", "write");
    let file = env.path("event.json");
    std::fs::write(
        &file,
        github_comment("org/web", 5, "writer", "/deploy-ephemeral").to_string(),
    )
    .unwrap();
    let mut c = env.command();
    c.args([
        "handle",
        "--repo",
        env.remote.to_str().unwrap(),
        "--output",
        "json",
    ])
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_REPOSITORY", "org/web")
    .env("GITHUB_EVENT_NAME", "issue_comment")
    .env("GITHUB_EVENT_PATH", &file)
    .env("GITHUB_API_URL", github.uri())
    .env("GITHUB_TOKEN", "ghs-test");
    let out = support::run_async(c).await.ok().json();
    assert_eq!(out["action"], "deployed", "{out}");
    let docs = env.docs(&support::slug_of(BRANCH));
    assert_eq!(docs[0]["spec"]["url"], "https://github.com/org/web.git");
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/repository"],
        "org/web"
    );
}
