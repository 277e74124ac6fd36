//! Which changes get a preview: drafts, bots' pull requests, excluded labels and paths, end to end
//! through `handle` with the shared fake GitHub and a real bare GitOps repository.

use crate::support;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::payloads::github_comment;
use support::{Run, TestEnv};

/// A label of org/app as GitHub shows it.
fn label_of(name: &str) -> Value {
    support::github::shapes::label("org/app", name)
}

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const BRANCH: &str = "feature/filtered";

struct World {
    env: TestEnv,
    gh: FakeGitHub,
}

impl World {
    async fn start(config: &str) -> World {
        let env = TestEnv::new();
        env.commit_as_other(
            &[(
                ".flux-ephemeral.yaml",
                Some(&format!(
                    "source_url: https://github.com/org/app.git\ngithub_repository: org/app\ndeploy_label: preview\n{config}"
                )),
            )],
            "filters",
        );
        let gh = FakeGitHub::start("bot").await;
        gh.permission("org/app", "writer", "write");
        gh.pull("org/app", github_pull("org/app", 7, BRANCH, SHA, "org/app"));
        World { env, gh }
    }

    /// Pull request #7 as the API answers it from now on.
    fn edit(&self, f: impl FnOnce(&mut Value)) {
        self.gh.edit_pull("org/app", 7, f);
    }

    async fn handle(&self, name: &str, event: &Value) -> Run {
        support::handle_on_github(&self.env, &self.gh, name, event).await
    }

    async fn comment(&self, body: &str) -> Value {
        self.handle(
            "issue_comment",
            &github_comment("org/app", 7, "writer", body),
        )
        .await
        .ok()
        .json()
    }

    /// A `pull_request` event: `action` on #7 as the API has it now, sent by the writer.
    async fn pr_event(&self, action: &str, label: Option<&str>) -> Value {
        let mut e = support::payloads::github_pr_event(
            "pull_request.labeled.payload.json",
            action,
            &self.gh_pull(),
            "writer",
        );
        match label {
            Some(l) => e["label"] = label_of(l),
            None => {
                e.as_object_mut().unwrap().remove("label");
            }
        }
        self.handle("pull_request", &e).await.ok().json()
    }

    fn gh_pull(&self) -> Value {
        let mut pr = github_pull("org/app", 7, BRANCH, SHA, "org/app");
        // The payload mirrors what the API answers.
        let api = self.api_pull();
        for k in ["draft", "labels", "user"] {
            if !api[k].is_null() {
                pr[k] = api[k].clone();
            }
        }
        pr
    }

    fn api_pull(&self) -> Value {
        let mut out = Value::Null;
        self.gh.edit_pull("org/app", 7, |p| out = p.clone());
        out
    }

    fn deployed(&self) -> bool {
        self.env.sync_file(&support::slug_of(BRANCH)).is_some()
    }

    fn last_said(&self) -> String {
        self.gh
            .comments("org/app", 7)
            .last()
            .and_then(|c| c["body"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_waits_until_it_is_ready_for_review() {
    let w = World::start("").await;
    w.edit(|p| {
        p["draft"] = json!(true);
        p["labels"] = json!([label_of("preview")]);
    });
    let out = w.comment("/deploy-ephemeral").await;
    assert_eq!(out["action"], "refused", "{out}");
    assert!(w.last_said().contains("draft"), "{}", w.last_said());
    assert!(!w.deployed());
    // The label was asked for while it was a draft: ready for review deploys it.
    w.edit(|p| p["draft"] = json!(false));
    let out = w.pr_event("ready_for_review", None).await;
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(w.deployed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bots_pull_request_gets_no_automatic_preview_but_a_command_deploys_it() {
    let w = World::start("").await;
    w.edit(|p| p["user"]["login"] = json!("dependabot[bot]"));
    let out = w.pr_event("labeled", Some("preview")).await;
    assert_eq!(out["action"], "ignored", "{out}");
    assert!(!w.deployed());
    let out = w.comment("/deploy-ephemeral").await;
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(w.deployed());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_excluded_label_blocks_and_removes_previews() {
    let w = World::start("exclude_labels: [no-preview]\n").await;
    assert_eq!(w.comment("/deploy-ephemeral").await["action"], "deployed");
    // Adding the label removes the preview.
    w.edit(|p| p["labels"] = json!([label_of("no-preview")]));
    let out = w.pr_event("labeled", Some("no-preview")).await;
    assert_eq!(out["action"], "destroyed", "{out}");
    assert!(!w.deployed());
    // And a command is answered with why.
    let out = w.comment("/deploy-ephemeral").await;
    assert_eq!(out["action"], "refused", "{out}");
    assert!(w.last_said().contains("no-preview"), "{}", w.last_said());
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_decide_from_every_page_of_the_changed_files() {
    let w = World::start("paths: [\"src/**\", \"charts/**\"]\n").await;
    w.gh.page_size(100);
    // A docs-only change: no automatic preview, and a command says why.
    w.gh.files("org/app", 7, &["docs/a.md", "README.md"]);
    assert_eq!(
        w.pr_event("labeled", Some("preview")).await["action"],
        "ignored"
    );
    let out = w.comment("/deploy-ephemeral").await;
    assert_eq!(out["action"], "refused", "{out}");
    assert!(w.last_said().contains("src/**"), "{}", w.last_said());
    assert!(!w.deployed());
    // 3,000 files (GitHub's most), the one that matters on the thirtieth page.
    let mut many: Vec<String> = (0..2999).map(|i| format!("docs/{i}.md")).collect();
    many.push("src/main.rs".into());
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    w.gh.files("org/app", 7, &refs);
    // A failed page: nothing deployed.
    w.gh.fail_files_page(2);
    let run = w
        .handle(
            "issue_comment",
            &github_comment("org/app", 7, "writer", "/deploy-ephemeral"),
        )
        .await;
    assert_ne!(run.code, 0, "{run:#?}");
    assert!(!w.deployed());
    w.gh.fail_files_page(0);
    let out = w.pr_event("labeled", Some("preview")).await;
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(w.deployed());
}

#[test]
fn a_glob_that_does_not_compile_is_a_configuration_error_naming_the_key() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\npaths: [\"src/[\"]\n"),
        )],
        "bad glob",
    );
    env.deploy(&["--branch", BRANCH]).fails_with(3, "paths");
}
