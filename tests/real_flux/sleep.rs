//! On a real Flux: a sleeping preview's Deployment is scaled to zero by kustomize-controller
//! through the rendered patches, and a woken one gets its own replica count back.

use std::time::Duration;

use crate::support::real_flux::{Bootstrap, FluxWorld};

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn sleep_scales_the_preview_to_zero_and_wake_brings_it_back() {
    let Some(w) = FluxWorld::new("sleep", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/sleepy";
    let sha = w.app_commit(branch, &[("NOTES.md", Some("zzz\n"))], "zzz");
    let with_flags = |verb: &str, extra: &[&str]| {
        let mut args = vec![verb, "--branch", branch];
        args.extend_from_slice(extra);
        w.notified(&args)
    };
    let out = with_flags("deploy", &["--sha", &sha, "--wait", "--timeout", "4m"]);
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let name = w.name_of(branch);
    let replicas = || {
        w.flux.get(Some(&name), "deployment", "app").map(|d| {
            (
                d["spec"]["replicas"].as_i64().unwrap_or(-1),
                d["status"]["readyReplicas"].as_i64().unwrap_or(0),
            )
        })
    };
    assert_eq!(replicas(), Some((1, 1)));

    let out = with_flags("sleep", &[]);
    assert!(out["commit"].is_string(), "{out}");
    w.flux
        .eventually("the Deployment scaled to zero", WAIT, || {
            (replicas() == Some((0, 0))).then_some(())
        });
    // Asleep is still Ready for Flux: nothing is failing.
    let out = w
        .run(&["wait", "--branch", branch, "--timeout", "2m"], &[])
        .ok()
        .json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");

    let out = with_flags("wake", &[]);
    assert!(out["commit"].is_string(), "{out}");
    w.flux
        .eventually("the Deployment back at its own count", WAIT, || {
            (replicas() == Some((1, 1))).then_some(())
        });
}

#[test]
fn a_sleeping_helm_release_is_scaled_to_zero_by_its_post_renderer() {
    use crate::sources::{CHART, DEPLOYMENT, INGRESS, VALUES};
    let Some(w) = FluxWorld::new(
        "hsleep",
        Bootstrap {
            config: "template: helm\nchart: ./charts/app\n",
            ..Bootstrap::default()
        },
    ) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/helm-sleepy";
    let sha = w.app_commit(
        branch,
        &[
            ("charts/app/Chart.yaml", Some(CHART)),
            ("charts/app/values.yaml", Some(VALUES)),
            ("charts/app/templates/deployment.yaml", Some(DEPLOYMENT)),
            ("charts/app/templates/ingress.yaml", Some(INGRESS)),
        ],
        "chart",
    );
    let with_flags = |verb: &str, extra: &[&str]| {
        let mut args = vec![verb, "--branch", branch];
        args.extend_from_slice(extra);
        w.notified(&args)
    };
    let out = with_flags("deploy", &["--sha", &sha, "--wait", "--timeout", "4m"]);
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let name = w.name_of(branch);
    let replicas = || {
        w.flux
            .get(Some(&name), "deployment", &name)
            .map(|d| d["spec"]["replicas"].as_i64().unwrap_or(-1))
    };
    assert_eq!(replicas(), Some(1));
    with_flags("sleep", &[]);
    w.flux
        .eventually("helm-controller scaled the release to zero", WAIT, || {
            (replicas() == Some(0)).then_some(())
        });
    with_flags("wake", &[]);
    w.flux
        .eventually("the release back at one replica", WAIT, || {
            (replicas() == Some(1)).then_some(())
        });
}
