//! On a real Flux: the previews page shows Flux's own verdict on each preview, read from the
//! cluster by `serve` (ready, and failed with kustomize-controller's message).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::real_flux::{Bootstrap, FluxWorld, RECEIVER_TOKEN};
use crate::support::serving::request;

#[test]
fn the_page_shows_fluxs_verdict_on_each_preview() {
    let Some(w) = FluxWorld::new("page", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", Duration::from_secs(180));
    let flags = w.notify_flags();
    let token = [("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)];
    let deploy = |branch: &str, sha: &str| {
        let mut args = vec![
            "deploy",
            "--branch",
            branch,
            "--sha",
            sha,
            "--wait",
            "--timeout",
            "4m",
        ];
        args.extend(flags.iter().map(String::as_str));
        w.run(&args, &token)
    };
    let good = w.app_commit("feature/good", &[("NOTES.md", Some("good\n"))], "good");
    deploy("feature/good", &good).ok();
    let kustomization = std::fs::read_to_string(format!(
        "{}/overlays/ephemeral/kustomization.yaml",
        crate::support::ROOT
    ))
    .unwrap()
    .replace(
        "  - ingress.yaml",
        "  - ingress.yaml\n  - missing-file.yaml",
    );
    let bad = w.app_commit(
        "feature/bad",
        &[(
            "overlays/ephemeral/kustomization.yaml",
            Some(&kustomization),
        )],
        "bad",
    );
    assert_eq!(deploy("feature/bad", &bad).code, 6);

    let s = w.serve_page();
    let auth = [("Authorization", "Bearer page-token".to_string())];
    let start = Instant::now();
    let states = loop {
        let (code, body) = request(s.port, "GET", "/api/previews", &auth, "");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let state = |branch: &str| {
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["branch"] == branch)
                .map(|r| (r["state"].clone(), r["message"].clone()))
        };
        if let (Some(g), Some(b)) = (state("feature/good"), state("feature/bad")) {
            if g.0 != "committed" && b.0 != "committed" {
                break (g, b, v["totals"].clone());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no Flux state: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(states.0 .0, "ready", "{states:?}");
    assert_eq!(states.1 .0, "failed", "{states:?}");
    assert!(
        states.1 .1.as_str().unwrap().contains("missing-file.yaml"),
        "{states:?}"
    );
    assert_eq!(states.2["ready"], 1);
    assert_eq!(states.2["failed"], 1);
}
