//! On a real Flux: one GitOps repository serving two applications whose
//! changes have the same branch name. Their previews stay apart in the cluster, and the scheduled
//! cleanup of one repository's closed pull request prunes only that preview's objects.

use std::time::Duration;

use crate::support::fake_forges::{github_pull, FakeGitHub};
use crate::support::real_flux::{is_ready, Bootstrap, FluxWorld, RECEIVER_TOKEN};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(180);
const BRANCH: &str = "feature/shared";

/// The ids of the objects a Kustomization applied (its inventory).
fn inventory(ks: &Value) -> Vec<String> {
    ks["status"]["inventory"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applications_on_one_branch_stay_apart_and_cleanup_prunes_only_the_closed_one() {
    let github = FakeGitHub::start("flux-bot").await;
    let Some(w) = tokio::task::block_in_place(|| {
        FluxWorld::new(
            "fleet",
            Bootstrap {
                applications: &["web", "api"],
                ..Bootstrap::default()
            },
        )
    }) else {
        return;
    };
    let (web, api) = (w.application("web"), w.application("api"));
    let sha = w.app_commit(BRANCH, &[("NOTES.md", Some("shared\n"))], "shared");
    github.pull(
        "org/web",
        github_pull("org/web", 1, BRANCH, &sha, "org/web"),
    );
    github.pull(
        "org/api",
        github_pull("org/api", 1, BRANCH, &sha, "org/api"),
    );

    let flags = w.notify_flags();
    let token = [("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)];
    let deploy = |app: &str| {
        let mut args = vec![
            "deploy",
            "--app",
            app,
            "--branch",
            BRANCH,
            "--sha",
            &sha,
            "--id",
            "1",
            "--wait",
            "--timeout",
            "4m",
        ];
        args.extend(flags.iter().map(String::as_str));
        let out = w.run(&args, &token).ok().json();
        assert_eq!(out["wait"]["state"], "ready", "{out}");
        out["name"].as_str().unwrap().to_string()
    };
    let (web_name, api_name) = tokio::task::block_in_place(|| {
        w.ready("receiver", "flux-ephemeral", WAIT);
        (deploy(&web), deploy(&api))
    });
    assert_ne!(web_name, api_name);

    // Apart: each preview's Kustomization applied only into its own namespace.
    let web_ks = w.flux.get(Some(&w.ns), "kustomization", &web_name).unwrap();
    let api_ks = w.flux.get(Some(&w.ns), "kustomization", &api_name).unwrap();
    for (ks, name) in [(&web_ks, &web_name), (&api_ks, &api_name)] {
        let ids = inventory(ks);
        assert!(!ids.is_empty());
        assert!(
            ids.iter()
                .all(|id| id.starts_with(&format!("{name}_"))
                    || id == &format!("_{name}__Namespace")),
            "{name} applied outside its namespace: {ids:?}"
        );
    }
    let web_uid =
        w.flux.get(Some(&web_name), "deployment", "app").unwrap()["metadata"]["uid"].clone();

    // The api pull request is closed; its repository's scheduled cleanup runs.
    github.edit_pull("org/api", 1, |p| p["state"] = json!("closed"));
    let uri = github.uri();
    let ci = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "org/api"),
        ("GITHUB_API_URL", uri.as_str()),
        ("GITHUB_TOKEN", "ghs-test"),
        ("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN),
    ];
    let mut args = vec!["cleanup"];
    args.extend(flags.iter().map(String::as_str));
    let out = tokio::task::block_in_place(|| w.run(&args, &ci))
        .ok()
        .json();
    let removed: Vec<&str> = out["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 1, "{out}");
    assert!(removed[0].contains(&api), "{out}");

    tokio::task::block_in_place(|| {
        w.flux
            .eventually("api's preview pruned and its namespace gone", WAIT, || {
                (w.flux
                    .get(Some(&w.ns), "kustomization", &api_name)
                    .is_none()
                    && w.flux
                        .get(Some(&w.ns), "gitrepository", &api_name)
                        .is_none()
                    && w.flux.get(None, "namespace", &api_name).is_none())
                .then_some(())
            });
        // web's preview is untouched: the same Deployment, still Ready.
        let dep = w.flux.get(Some(&web_name), "deployment", "app").unwrap();
        assert_eq!(dep["metadata"]["uid"], web_uid);
        assert_eq!(dep["status"]["readyReplicas"], 1);
        let ks = w.flux.get(Some(&w.ns), "kustomization", &web_name).unwrap();
        assert!(is_ready(&ks), "{ks}");
    });
}
