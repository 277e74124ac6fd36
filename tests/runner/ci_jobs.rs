//! The binary run with the variables of real CI jobs (a GitLab start job, stop job and merge
//! request pipeline; a GitHub Actions pull_request run) against a real bare repository.

use crate::support;

use support::{write, TestEnv, SHA};

const SLUG: &str = "review-feature-lo-3kd8a2";

/// The variables GitLab sets for a job with `environment: review/$CI_COMMIT_REF_SLUG`.
fn gitlab_job(action: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CI", "true".into()),
        ("GITLAB_CI", "true".into()),
        ("CI_COMMIT_REF_NAME", "feature/login".into()),
        ("CI_COMMIT_REF_SLUG", "feature-login".into()),
        ("CI_COMMIT_SHA", SHA.into()),
        ("CI_ENVIRONMENT_NAME", "review/feature-login".into()),
        ("CI_ENVIRONMENT_SLUG", SLUG.into()),
        ("CI_ENVIRONMENT_ACTION", action.into()),
        (
            "CI_ENVIRONMENT_URL",
            format!("https://app-{SLUG}.example.com"),
        ),
        (
            "CI_PROJECT_URL",
            "https://gitlab.example.com/group/app".into(),
        ),
        ("GITLAB_USER_LOGIN", "alice".into()),
    ]
}

fn run_ci(env: &TestEnv, args: &[&str], vars: &[(&'static str, String)]) -> support::Run {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec![args[0], "--repo", env.remote.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    env.run_with(&all, &vars)
}

fn bare_env() -> TestEnv {
    // No source_url in the repository: the job's CI_PROJECT_URL is used.
    let env = TestEnv::new();
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("app: app\n"))],
        "no source_url",
    );
    env
}

#[test]
fn gitlab_start_and_stop_jobs_use_gitlabs_slug() {
    let env = bare_env();
    let dotenv = env.path("deploy.env");
    let out = run_ci(
        &env,
        &[
            "env",
            "--dotenv",
            dotenv.to_str().unwrap(),
            "--output",
            "json",
        ],
        &gitlab_job("start"),
    )
    .ok()
    .json();
    assert_eq!(
        out["slug"], SLUG,
        "the cluster and GitLab agree on the slug"
    );
    assert_eq!(out["action"], "created");
    assert_eq!(
        out["preview_url"],
        format!("https://app-{SLUG}.example.com")
    );
    let docs = env.docs(SLUG);
    assert_eq!(docs[0]["spec"]["ref"]["commit"], SHA);
    assert_eq!(
        docs[0]["spec"]["url"], "https://gitlab.example.com/group/app.git",
        "CI_PROJECT_URL + .git, never CI_REPOSITORY_URL (it holds the job token)"
    );
    let ann = &docs[0]["metadata"]["annotations"];
    assert_eq!(ann["flux-ephemeral.io/environment"], "review/feature-login");
    assert_eq!(ann["flux-ephemeral.io/branch"], "feature/login");
    assert_eq!(ann["flux-ephemeral.io/author"], "alice");
    let dotenv = std::fs::read_to_string(&dotenv).unwrap();
    assert!(
        dotenv.contains(&format!(
            "DYNAMIC_ENVIRONMENT_URL=https://app-{SLUG}.example.com\n"
        )),
        "{dotenv}"
    );
    assert!(
        dotenv.contains(&format!("FLUX_EPHEMERAL_SLUG={SLUG}\n")),
        "{dotenv}"
    );
    assert!(
        dotenv.contains(&format!("FLUX_EPHEMERAL_NAMESPACE=app-{SLUG}\n")),
        "{dotenv}"
    );

    // A retried start job changes nothing.
    let again = run_ci(&env, &["env", "--output", "json"], &gitlab_job("start"))
        .ok()
        .json();
    assert_eq!(again["action"], "unchanged");

    let out = run_ci(&env, &["env", "--output", "json"], &gitlab_job("stop"))
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
    assert!(env.sync_file(SLUG).is_none());
    let out = run_ci(&env, &["env", "--output", "json"], &gitlab_job("prepare"))
        .ok()
        .json();
    assert_eq!(out["action"], "ignored");
}

#[test]
fn plain_deploy_and_destroy_read_the_gitlab_job() {
    let env = bare_env();
    let out = run_ci(&env, &["deploy", "--output", "json"], &gitlab_job("start"))
        .ok()
        .json();
    assert_eq!(out["slug"], SLUG);
    let out = run_ci(&env, &["destroy", "--output", "json"], &gitlab_job("stop"))
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
}

#[test]
fn an_explicit_branch_does_not_take_the_jobs_commit() {
    let env = bare_env();
    let out = run_ci(
        &env,
        &[
            "deploy",
            "--branch",
            "other",
            "--source-url",
            "https://x/app.git",
            "--output",
            "json",
        ],
        &gitlab_job("start"),
    )
    .ok()
    .json();
    assert_eq!(out["slug"], "other");
    assert!(
        out["sha"].is_null(),
        "another branch must not be pinned to this job's commit"
    );
}

#[test]
fn environment_filters_keep_production_out() {
    let env = bare_env();
    let mut vars = gitlab_job("start");
    vars.retain(|(k, _)| *k != "CI_ENVIRONMENT_NAME" && *k != "CI_ENVIRONMENT_SLUG");
    vars.push(("CI_ENVIRONMENT_NAME", "production".into()));
    vars.push(("CI_ENVIRONMENT_SLUG", "production".into()));
    let head = env.head();
    let out = run_ci(&env, &["env", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(out["action"], "ignored");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("include_environment"),
        "{out}"
    );
    assert_eq!(env.head(), head);

    env.commit_as_other(&[(".flux-ephemeral.yaml", Some("include_environment: \"review/.*|preview/.*\"\nexclude_environment: review/keep-.*\n"))], "filters");
    let head = env.head();
    let mut vars = gitlab_job("start");
    vars.push(("CI_ENVIRONMENT_NAME", "review/keep-out".into()));
    let out = run_ci(&env, &["env", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(out["action"], "ignored");
    assert!(out["reason"]
        .as_str()
        .unwrap()
        .contains("exclude_environment"));
    assert_eq!(env.head(), head);
}

#[test]
fn gitlab_merge_request_pipeline() {
    let env = bare_env();
    let vars = vec![
        ("GITLAB_CI", "true".to_string()),
        ("CI_PIPELINE_SOURCE", "merge_request_event".into()),
        ("CI_COMMIT_REF_NAME", "refs/merge-requests/7/head".into()),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/mr".into()),
        ("CI_COMMIT_SHA", SHA.into()),
        ("CI_MERGE_REQUEST_IID", "7".into()),
        ("CI_MERGE_REQUEST_TITLE", "Add: the \"MR\" # feature".into()),
        (
            "CI_PROJECT_URL",
            "https://gitlab.example.com/group/app".into(),
        ),
        ("GITLAB_USER_LOGIN", "bob".into()),
    ];
    let out = run_ci(&env, &["deploy", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(out["branch"], "feature/mr");
    let slug = out["slug"].as_str().unwrap();
    let ann = env.docs(slug)[0]["metadata"]["annotations"].clone();
    assert_eq!(ann["flux-ephemeral.io/id"], "7");
    assert_eq!(ann["flux-ephemeral.io/author"], "bob");
}

#[test]
fn github_actions_pull_request_run() {
    let env = bare_env();
    let event = env.path("event.json");
    write(
        &event,
        r#"{"action":"synchronize","number":12,"pull_request":{"number":12,"title":"Login page","state":"open",
        "user":{"login":"octocat"},"head":{"ref":"feature/gh","sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "repo":{"full_name":"org/app","clone_url":"https://github.com/org/app.git"}},"base":{"ref":"main","repo":{"full_name":"org/app"}}},
        "repository":{"full_name":"org/app"}}"#,
    );
    let vars = vec![
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap().into()),
        ("GITHUB_HEAD_REF", "feature/gh".into()),
        ("GITHUB_REF_NAME", "12/merge".into()),
        (
            "GITHUB_SHA",
            "1111111111111111111111111111111111111111".into(),
        ),
        ("GITHUB_REPOSITORY", "org/app".into()),
        ("GITHUB_SERVER_URL", "https://github.com".into()),
        ("GITHUB_ACTOR", "someone".into()),
    ];
    let out = run_ci(&env, &["deploy", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(out["branch"], "feature/gh");
    assert_eq!(
        out["sha"], "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "the head commit, not the merge commit"
    );
    let slug = out["slug"].as_str().unwrap().to_string();
    let docs = env.docs(&slug);
    assert_eq!(docs[0]["spec"]["url"], "https://github.com/org/app.git");
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/id"],
        "12"
    );
    assert_eq!(
        docs[0]["metadata"]["annotations"]["flux-ephemeral.io/author"],
        "octocat"
    );

    // The same pull request from a fork is refused unless allow_forks is set.
    let text = std::fs::read_to_string(&event).unwrap().replacen(
        r#""full_name":"org/app","clone_url":"https://github.com/org/app.git""#,
        r#""full_name":"fork/app","clone_url":"https://github.com/fork/app.git""#,
        1,
    );
    write(&event, &text);
    let head = env.head();
    run_ci(&env, &["deploy"], &vars).fails_with(1, "fork");
    assert_eq!(env.head(), head);
    env.commit_as_other(
        &[(".flux-ephemeral.yaml", Some("allow_forks: true\n"))],
        "allow forks",
    );
    let out = run_ci(&env, &["deploy", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(
        env.docs(out["slug"].as_str().unwrap())[0]["spec"]["url"],
        "https://github.com/fork/app.git"
    );

    let out = run_ci(&env, &["destroy", "--output", "json"], &vars)
        .ok()
        .json();
    assert_eq!(out["action"], "destroyed");
}

#[test]
fn from_ci_outside_ci_is_an_error() {
    let env = TestEnv::new();
    env.deploy(&["--from-ci"]).fails_with(1, "GITLAB_CI");
    env.deploy(&[]).fails_with(1, "no branch");
    env.run(&["env", "--repo", env.remote.to_str().unwrap()])
        .fails_with(1, "GitLab CI job");
}
