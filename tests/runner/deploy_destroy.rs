//! deploy / destroy / list / render over a real bare repository, through the real binary.

use crate::support;

use support::{TestEnv, SHA};

#[test]
fn deploy_commits_one_sync_file_and_redeploy_commits_nothing() {
    let env = TestEnv::new();
    let before = env.commit_count();
    let out = env
        .deploy(&["--branch", "feature/login", "--output", "json"])
        .ok()
        .json();
    let slug = out["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("feature-login-"), "{slug}");
    assert_eq!(out["action"], "created");
    assert_eq!(out["changed"], true);
    assert_eq!(
        out["file"],
        format!("overlays/ephemeral-instances/sync-{slug}.yaml")
    );
    assert_eq!(out["commit"].as_str().unwrap(), env.head());
    assert_eq!(env.commit_count(), before + 1);
    assert_eq!(
        env.instances(),
        vec![format!("sync-{slug}.yaml"), "sync.yaml".to_string()]
    );

    let docs = env.docs(&slug);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "GitRepository");
    assert_eq!(docs[0]["spec"]["ref"]["branch"], "feature/login");
    assert_eq!(
        docs[0]["spec"]["url"],
        "https://git.example.com/org/app.git"
    );
    assert_eq!(docs[1]["kind"], "Kustomization");
    // The Kustomization deploys the per-branch source, not the cluster's main source.
    assert_eq!(
        docs[1]["spec"]["sourceRef"]["name"],
        docs[0]["metadata"]["name"]
    );
    assert_eq!(docs[1]["spec"]["prune"], true);
    assert_eq!(docs[1]["spec"]["targetNamespace"], format!("app-{slug}"));
    assert_eq!(
        docs[1]["spec"]["postBuild"]["substitute"]["branch"],
        "feature/login"
    );

    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains(&slug) && message.contains("feature/login"),
        "{message}"
    );

    let again = env
        .deploy(&["--branch", "feature/login", "--output", "json"])
        .ok()
        .json();
    assert_eq!(again["action"], "unchanged");
    assert_eq!(again["changed"], false);
    assert!(again["commit"].is_null());
    assert_eq!(env.commit_count(), before + 1, "no empty commit");
}

#[test]
fn sha_pins_the_commit_and_a_new_sha_updates() {
    let env = TestEnv::new();
    env.deploy(&[
        "--branch", "fix", "--sha", SHA, "--id", "42", "--author", "alice", "--title", "Fix: it",
    ])
    .ok();
    let docs = env.docs("fix");
    assert_eq!(docs[0]["spec"]["ref"]["commit"], SHA);
    assert!(docs[0]["spec"]["ref"].get("branch").is_none());
    let ann = &docs[0]["metadata"]["annotations"];
    assert_eq!(ann["flux-ephemeral.io/id"], "42");
    assert_eq!(ann["flux-ephemeral.io/author"], "alice");

    let other = "89abcdef0123456789abcdef0123456789abcdef";
    let out = env
        .deploy(&["--branch", "fix", "--sha", other, "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["action"], "updated");
    assert_eq!(env.docs("fix")[0]["spec"]["ref"]["commit"], other);
}

#[test]
fn destroy_deletes_and_destroying_a_missing_environment_commits_nothing() {
    let env = TestEnv::new();
    env.deploy(&["--branch", "feature/a"]).ok();
    let count = env.commit_count();
    let out = env
        .destroy(&["--branch", "feature/a", "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
    assert_eq!(env.commit_count(), count + 1);
    assert_eq!(env.instances(), vec!["sync.yaml"]);
    assert!(env
        .git(&["log", "-1", "--format=%s", "main"])
        .contains("destroy"));

    let out = env
        .destroy(&["--branch", "feature/a", "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["action"], "absent");
    assert_eq!(out["changed"], false);
    assert_eq!(env.commit_count(), count + 1);
}

#[test]
fn hostile_branch_names_round_trip_and_never_collide() {
    let env = TestEnv::new();
    let names = [
        "feature/login",
        "Feature/Login",
        "feature_login",
        "feature.login",
        "on",
        "yes",
        "null",
        "1e3",
        "it's-\"quoted\"",
        "a#b",
        "x:y",
        "`tick`",
        "ünïcødé/ブランチ",
        &"very-long/".repeat(20),
    ];
    let mut slugs = std::collections::BTreeSet::new();
    for name in names {
        let out = env
            .deploy(&["--branch", name, "--output", "json"])
            .ok()
            .json();
        let slug = out["slug"].as_str().unwrap().to_string();
        assert!(
            slug.len() <= 49
                && slug
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{slug}"
        );
        assert!(slugs.insert(slug.clone()), "{name:?} collided on {slug}");
        let docs = env.docs(&slug);
        assert_eq!(
            docs[0]["metadata"]["annotations"]["flux-ephemeral.io/branch"].as_str(),
            Some(name)
        );
        assert_eq!(docs[0]["spec"]["ref"]["branch"].as_str(), Some(name));
        assert!(docs[1]["spec"]["targetNamespace"].as_str().unwrap().len() <= 63);
    }
    assert_eq!(env.instances().len(), names.len() + 1);
}

#[test]
fn list_shows_managed_environments_only() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            "overlays/ephemeral-instances/sync-handmade.yaml",
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
        )],
        "hand-made",
    );
    env.deploy(&["--branch", "b1"]).ok();
    env.deploy(&["--branch", "b2", "--sha", SHA]).ok();
    let remote = env.remote.to_str().unwrap();
    let out = env
        .run(&["list", "--repo", remote, "--output", "json"])
        .ok()
        .json();
    let envs = out["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    assert_eq!(envs[0]["slug"], "b1");
    assert_eq!(envs[0]["ref"], "branch b1");
    assert_eq!(envs[1]["ref"], format!("commit {SHA}"));
    let text = env.run(&["list", "--repo", remote]).ok().stdout;
    assert!(
        text.contains("SLUG") && text.contains("b2") && !text.contains("handmade"),
        "{text}"
    );
}

#[test]
fn foreign_files_are_never_overwritten_or_deleted() {
    let env = TestEnv::new();
    let foreign = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n";
    env.commit_as_other(
        &[("overlays/ephemeral-instances/sync-mine.yaml", Some(foreign))],
        "hand-made",
    );
    let head = env.head();
    env.deploy(&["--branch", "mine"])
        .fails_with(1, "not created by flux-ephemeral");
    env.destroy(&["--branch", "mine"])
        .fails_with(1, "not created by flux-ephemeral");
    assert_eq!(env.head(), head);
    assert_eq!(env.sync_file("mine").as_deref(), Some(foreign));
}

#[test]
fn dry_run_shows_a_diff_and_pushes_nothing() {
    let env = TestEnv::new();
    let head = env.head();
    let out = env.deploy(&["--branch", "feature/x", "--dry-run"]).ok();
    assert!(
        out.stdout
            .contains("+++ b/overlays/ephemeral-instances/sync-feature-x-"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+kind: GitRepository"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert_eq!(env.head(), head);
    let json = env
        .deploy(&["--branch", "feature/x", "--dry-run", "--output", "json"])
        .ok()
        .json();
    assert_eq!(json["dry_run"], true);
    assert!(json["diff"]
        .as_str()
        .unwrap()
        .contains("kind: Kustomization"));
    assert_eq!(env.head(), head);
}

#[test]
fn configuration_from_the_repository_and_flags() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://git.example.com/org/web.git\napp: web\ntemplate: helm\npreview_url: \"https://{{ slug }}.preview.example.com\"\n"),
        )],
        "configure",
    );
    let out = env
        .deploy(&["--branch", "feat", "--sha", SHA, "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["name"], "web-feat");
    assert_eq!(out["preview_url"], "https://feat.preview.example.com");
    let docs = env.docs("feat");
    assert_eq!(docs[1]["kind"], "HelmRelease");
    assert_eq!(docs[1]["spec"]["values"]["image"]["tag"], SHA);
    assert_eq!(
        docs[1]["metadata"]["annotations"]["event.toolkit.fluxcd.io/preview-url"],
        "https://feat.preview.example.com"
    );
    // Flags win over the file.
    let out = env
        .deploy(&[
            "--branch",
            "feat2",
            "--app",
            "api",
            "--template",
            "kustomization",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["name"], "api-feat2");
}

#[test]
fn custom_template_from_the_repository() {
    let env = TestEnv::new();
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: {{ flux_namespace }}\n  annotations:\n{%- for key, value in annotations %}\n    {{ key }}: {{ value | yaml }}\n{%- endfor %}\ndata:\n  title: {{ title | yaml }}\n";
    env.commit_as_other(
        &[
            ("templates/mine.yaml.tera", Some(template)),
            (
                ".flux-ephemeral.yaml",
                Some("source_url: https://x/app.git\ntemplate: templates/mine.yaml.tera\n"),
            ),
        ],
        "custom template",
    );
    env.deploy(&["--branch", "t", "--title", "yes: \"no\" # maybe"])
        .ok();
    assert_eq!(env.docs("t")[0]["data"]["title"], "yes: \"no\" # maybe");
}

#[test]
fn bad_templates_and_configs_fail_clearly_and_change_nothing() {
    let env = TestEnv::new();
    let head = env.head();
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("source_url: x\nprefix: web\n"))],
        "typo",
    );
    let head2 = env.head();
    assert_ne!(head, head2);
    env.deploy(&["--branch", "a"])
        .fails_with(3, "unknown field `prefix`");
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("source_url: x\n"))],
        "fix typo",
    );
    let head2 = env.head();

    // A template that renders broken YAML names the template.
    let bad = env.path("bad.tera");
    std::fs::write(&bad, "kind: [unclosed\n").unwrap();
    env.deploy(&[
        "--branch",
        "a",
        "--source-url",
        "x",
        "--template",
        bad.to_str().unwrap(),
    ])
    .fails_with(3, "bad.tera");
    // A template without the flux-ephemeral annotations is refused.
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n",
    )
    .unwrap();
    env.deploy(&[
        "--branch",
        "a",
        "--source-url",
        "x",
        "--template",
        bad.to_str().unwrap(),
    ])
    .fails_with(3, "annotations");
    // A template syntax error.
    std::fs::write(&bad, "{% if %}").unwrap();
    env.deploy(&[
        "--branch",
        "a",
        "--source-url",
        "x",
        "--template",
        bad.to_str().unwrap(),
    ])
    .fails_with(3, "bad.tera");
    assert_eq!(env.head(), head2);
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let env = TestEnv::new();
    env.deploy(&["--branch", "a", "--sha", "abc"])
        .fails_with(1, "full commit id");
    env.deploy(&["--branch", "a", "--id", "x1"])
        .fails_with(1, "pull/merge request number");
    env.deploy(&["--branch", "a", "--slug", "Not_Valid"])
        .fails_with(1, "DNS-1123");
    env.deploy(&["--branch", "a", "--target-branch", "nope"])
        .fails_with(1, "does not exist");
    env.deploy(&["--branch", "a", "--instances-dir", "../outside"])
        .fails_with(3, "inside the repository");
    env.deploy(&["--branch", "a", "--ttl", "soon"])
        .fails_with(3, "ttl");
    env.run(&[
        "deploy",
        "--repo",
        env.path("missing").to_str().unwrap(),
        "--branch",
        "a",
    ])
    .fails_with(1, "not a Git repository");
    env.run(&["deploy"]).fails_with(1, "pass --branch");
    let r = env.run(&["deploy-everything"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn errors_are_json_with_output_json() {
    let env = TestEnv::new();
    let out = env.deploy(&["--branch", "a", "--sha", "abc", "--output", "json"]);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(v["error"]["kind"], "input");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("full commit id"));
}

#[test]
fn a_checked_out_branch_is_not_moved_under_a_working_tree() {
    let env = TestEnv::new();
    let work = env.path("work");
    support::git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            env.remote.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    env.run(&["deploy", "--repo", work.to_str().unwrap(), "--branch", "a"])
        .fails_with(1, "checked out");
}

#[test]
fn render_prints_without_touching_any_repository() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "render",
            "--branch",
            "feature/login",
            "--source-url",
            "https://x/app.git",
        ])
        .ok();
    assert!(
        out.stdout.contains("kind: GitRepository") && out.stdout.contains("kind: Kustomization")
    );
    assert!(
        !env.home.join("demo").exists(),
        "render created the demo repository"
    );
    let json = env
        .run(&[
            "render",
            "--branch",
            "b",
            "--source-url",
            "u",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(json["slug"], "b");
    assert!(json["content"]
        .as_str()
        .unwrap()
        .contains("kind: Kustomization"));
    env.run(&["render", "--branch", "b"])
        .fails_with(3, "--source-url");
}

#[test]
fn the_demo_repository_is_created_on_first_use() {
    let env = TestEnv::new();
    let out = env.run(&["deploy", "--branch", "feature/login"]).ok();
    assert!(
        out.stderr.contains("created the demo GitOps repository"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("created environment feature-login-"),
        "{out:?}"
    );
    let demo = env.home.join("demo/gitops.git");
    let files = support::git(
        env.dir.path(),
        &[
            "--git-dir",
            demo.to_str().unwrap(),
            "ls-tree",
            "-r",
            "--name-only",
            "main",
        ],
    );
    assert!(files.contains("overlays/ephemeral/kustomization.yaml"));
    assert!(files.contains("overlays/ephemeral-instances/sync-feature-login-"));
    let out = env.run(&["list"]).ok();
    assert!(out.stdout.contains("feature/login"));
    let out = env.run(&["destroy", "--branch", "feature/login"]).ok();
    assert!(out.stdout.contains("destroyed"));
}

#[test]
fn max_environments_refuses_a_new_one() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: x\nmax_environments: 2\n"),
        )],
        "cap",
    );
    env.deploy(&["--branch", "a"]).ok();
    env.deploy(&["--branch", "b"]).ok();
    env.deploy(&["--branch", "c"]).fails_with(1, "maximum (2)");
    env.deploy(&["--branch", "a", "--sha", SHA]).ok();
}

#[test]
fn the_instances_directory_survives_its_last_environment() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[("overlays/ephemeral-instances/sync.yaml", None)],
        "watch from elsewhere",
    );
    env.deploy(&["--branch", "only"]).ok();
    assert_eq!(env.instances(), vec!["sync-only.yaml"]);
    env.destroy(&["--branch", "only"]).ok();
    // Flux fails on a missing path and would prune nothing: the directory stays.
    assert_eq!(env.instances(), vec![".keep"]);
    env.deploy(&["--branch", "again"]).ok();
    assert!(env.instances().contains(&"sync-again.yaml".to_string()));
}

#[test]
fn a_time_to_live_is_recorded_and_refresh_extends_it() {
    let env = TestEnv::new();
    env.deploy(&["--branch", "t", "--ttl", "24h"]).ok();
    let ann = env.docs("t")[0]["metadata"]["annotations"].clone();
    assert_eq!(ann["flux-ephemeral.io/ttl"], "1day");
    // Deployed long ago: a plain redeploy keeps that time, --refresh records a new one.
    // (The deploy, the last activity and the expiry a day later: a file written then.)
    let aged = regex::Regex::new(r#"(deployed-at|active-at): "[^"]+""#)
        .unwrap()
        .replace_all(
            &env.sync_file("t").unwrap(),
            r#"$1: "2020-01-01T00:00:00Z""#,
        )
        .into_owned();
    let aged = regex::Regex::new(r#"expires-at: "[^"]+""#)
        .unwrap()
        .replace_all(&aged, r#"expires-at: "2020-01-02T00:00:00Z""#)
        .into_owned();
    env.commit_as_other(
        &[(
            "overlays/ephemeral-instances/sync-t.yaml",
            Some(aged.as_str()),
        )],
        "age",
    );
    let out = env
        .deploy(&["--branch", "t", "--ttl", "24h", "--output", "json"])
        .ok()
        .json();
    assert_eq!(out["action"], "unchanged");
    let out = env
        .deploy(&[
            "--branch",
            "t",
            "--ttl",
            "24h",
            "--refresh",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["action"], "updated");
    let at = env.docs("t")[0]["metadata"]["annotations"]["flux-ephemeral.io/deployed-at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(at.starts_with("20") && !at.starts_with("2020"), "{at}");
}

#[test]
fn a_file_url_works_like_a_path() {
    let env = TestEnv::new();
    let url = format!("file://{}", env.remote.display());
    let out = env
        .run(&[
            "deploy",
            "--repo",
            &url,
            "--branch",
            "feature/file",
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(out["commit"].as_str().unwrap(), env.head());
    env.run(&["destroy", "--repo", &url, "--branch", "feature/file"])
        .ok();
    assert_eq!(env.instances(), vec!["sync.yaml"]);
}
