//! On a real Flux, the two ways flux-ephemeral talks with
//! notification-controller: its Receiver (the tool's call makes Flux fetch now), and its
//! Provider + Alert from `examples/flux/notifications.yaml` (Flux posts its commit
//! status on the application commit, which `wait` reads without cluster credentials).

use std::time::Duration;

use crate::support::fake_forges::FakeGitHub;
use crate::support::real_flux::{Bootstrap, FluxWorld, RECEIVER_TOKEN};

const WAIT: Duration = Duration::from_secs(180);

const GITHUB_RECEIVER: &str = "apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: flux-ephemeral-github
  namespace: NS
spec:
  type: github
  events: [push]
  secretRef:
    name: flux-ephemeral-receiver
  resources:
    - apiVersion: source.toolkit.fluxcd.io/v1
      kind: GitRepository
      name: flux-system
";

fn requested_at(w: &FluxWorld) -> Option<String> {
    let repo = w.flux.get(Some(&w.ns), "gitrepository", "flux-system")?;
    repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn the_real_receiver_takes_generic_hmac_and_github_calls_and_refuses_a_bad_signature() {
    // Flux would see a push only after an hour: whatever is Ready sooner came through a Receiver.
    let Some(w) = FluxWorld::new(
        "receiver",
        Bootstrap {
            interval: "1h",
            ..Bootstrap::default()
        },
    ) else {
        return;
    };
    w.flux.apply(&GITHUB_RECEIVER.replace("NS", &w.ns));
    w.ready("receiver", "flux-ephemeral", WAIT);
    let github = w.ready("receiver", "flux-ephemeral-github", WAIT);
    let token = [("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)];

    // generic-hmac: X-Signature over the body.
    let before = requested_at(&w);
    let sha = w.app_commit("feature/hmac", &[("NOTES.md", Some("hmac\n"))], "hmac");
    let mut args = vec![
        "deploy",
        "--branch",
        "feature/hmac",
        "--sha",
        &sha,
        "--wait",
        "--timeout",
        "90s",
    ];
    let flags = w.notify_flags();
    args.extend(flags.iter().map(String::as_str));
    let out = w.run(&args, &token).ok().json();
    assert_eq!(out["notified"], true, "{out}");
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let after_hmac = requested_at(&w);
    assert!(
        after_hmac.is_some() && after_hmac != before,
        "no reconcile was requested"
    );

    // github: X-Hub-Signature-256 and X-GitHub-Event: push, to the path Flux computed.
    let sha = w.app_commit("feature/gh", &[("NOTES.md", Some("gh\n"))], "gh");
    let out = w
        .run(
            &[
                "deploy",
                "--branch",
                "feature/gh",
                "--sha",
                &sha,
                "--wait",
                "--timeout",
                "90s",
                "--receiver-url",
                &w.flux.receiver_base,
                "--receiver-name",
                "flux-ephemeral-github",
                "--receiver-namespace",
                &w.ns,
                "--receiver-type",
                "github",
            ],
            &token,
        )
        .ok()
        .json();
    assert_eq!(out["notified"], true, "{out}");
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let after_github = requested_at(&w);
    assert!(
        after_github != after_hmac,
        "the github Receiver requested no reconcile"
    );

    // The right webhook path (as Flux reports it) with a signature made with another token:
    // Flux refuses it, the deploy still lands, and the output says Flux was not notified.
    // Ready may be reported a moment before the path is: read it until it is there.
    let mut github = github;
    for _ in 0..50 {
        if github["status"]["webhookPath"].is_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        github = w
            .flux
            .get(Some(&w.ns), "receiver", "flux-ephemeral-github")
            .unwrap_or(github);
    }
    let path = github["status"]["webhookPath"].as_str().unwrap();
    let url = format!("{}{path}", w.flux.receiver_base);
    let sha = w.app_commit("feature/forged", &[("NOTES.md", Some("x\n"))], "x");
    let run = w.run(
        &[
            "deploy",
            "--branch",
            "feature/forged",
            "--sha",
            &sha,
            "--receiver-url",
            &url,
            "--receiver-type",
            "github",
        ],
        &[("FLUX_RECEIVER_TOKEN", "not-the-receivers-token")],
    );
    let out = run.ok().json();
    assert_eq!(out["notified"], false, "{out}");
    assert!(out["commit"].is_string());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(requested_at(&w), after_github, "a forged call moved Flux");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_posts_its_commit_status_through_the_provider_and_wait_reads_it_from_the_forge() {
    let github = FakeGitHub::start("flux-bot").await;
    let address = format!("{}/org/app", github.uri());
    let Some(w) = tokio::task::block_in_place(|| {
        FluxWorld::new(
            "status",
            Bootstrap {
                provider_address: Some(&address),
                ..Bootstrap::default()
            },
        )
    }) else {
        return;
    };
    tokio::task::block_in_place(|| {
        w.flux.apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: github-token\n  namespace: {}\n\
             stringData:\n  token: ghp-provider-token\n",
            w.ns
        ));
        w.ready("receiver", "flux-ephemeral", WAIT);
    });
    let branch = "feature/status";
    let sha = w.app_commit(branch, &[("NOTES.md", Some("status\n"))], "status");
    let flags = w.notify_flags();
    let mut args = vec!["deploy", "--branch", branch, "--sha", &sha];
    args.extend(flags.iter().map(String::as_str));
    let token = [("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)];
    tokio::task::block_in_place(|| w.run(&args, &token).ok());

    // A CI job with a forge token and no cluster credentials waits through the forge.
    let uri = github.uri();
    let forge = [
        ("GITHUB_TOKEN", "ghs-ci-token"),
        ("GITHUB_REPOSITORY", "org/app"),
        ("GITHUB_API_URL", uri.as_str()),
    ];
    let out = tokio::task::block_in_place(|| {
        w.run_without_cluster(
            &[
                "wait",
                "--branch",
                branch,
                "--sha",
                &sha,
                "--timeout",
                "3m",
                "--flux-status-author",
                "flux-bot",
            ],
            &forge,
        )
    })
    .ok()
    .json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    assert_eq!(out["wait"]["via"], "forge", "{out}");

    // The status is notification-controller's own: on the application commit, in its context.
    let statuses = github.statuses("org/app");
    let fluxs: Vec<_> = statuses
        .iter()
        .filter(|(s, state, _)| *s == sha && state == "success")
        .collect();
    assert!(
        !fluxs.is_empty(),
        "no success status from Flux: {statuses:?}"
    );
    let requests = github.requests().await;
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /api/v3/repos/org/app/statuses/")),
        "Flux's Provider did not post through the API: {requests:?}"
    );
}
