//! On two real Flux installations (`scripts/real-flux.sh start DIR --clusters 2`): previews placed
//! in order, spilling over to the second cluster, a queued one admitted by the commit that frees
//! room and Ready in its cluster, a move with the old cluster pruned, `wait` and the page reading
//! each preview's own cluster, and the quota objects accepted by the API server.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::real_flux::{Bootstrap, FluxWorld};
use crate::support::serving::request;

const WAIT: Duration = Duration::from_secs(180);

const QUOTA: &str = "quota:\n  requests_cpu: \"2\"\n  limits_memory: 2Gi\n  pods: 10\n";

/// Deploy `branch` at a new commit, notified and waited for; the JSON.
fn deploy(w: &FluxWorld, branch: &str, extra: &[&str]) -> Value {
    let sha = w.app_commit(branch, &[("NOTES.md", Some(branch))], branch);
    let mut args = vec!["deploy", "--branch", branch, "--sha", &sha];
    args.extend_from_slice(extra);
    w.notified(&args)
}

/// Whether the preview of `branch` has its Kustomization in the cluster of `context`.
fn present(w: &FluxWorld, context: &str, branch: &str) -> bool {
    w.flux
        .get_in(
            Some(context),
            Some(&w.ns),
            "kustomization",
            &w.name_of(branch),
        )
        .is_some()
}

#[test]
fn placement_spill_over_the_queue_and_admission_on_two_clusters() {
    let boot = Bootstrap {
        clusters: &[("eu", Some(1)), ("us", Some(1))],
        config: QUOTA,
        ..Bootstrap::default()
    };
    let Some(w) = FluxWorld::new("clusters", boot) else {
        return;
    };
    let (eu, us) = (w.contexts[0].clone(), w.contexts[1].clone());
    for c in [&eu, &us] {
        w.ready_in(Some(c), "receiver", "flux-ephemeral", WAIT);
    }
    // In order: the first into eu, waited for in eu.
    let a = deploy(&w, "feature/a", &["--wait", "--timeout", "4m"]);
    assert_eq!(
        (a["action"].as_str(), a["cluster"].as_str()),
        (Some("created"), Some("eu")),
        "{a}"
    );
    assert_eq!(a["wait"]["state"], "ready", "{a}");
    // Its quota objects, accepted by eu's API server in the preview's namespace.
    let ns = w.name_of("feature/a");
    let quota = w
        .flux
        .get_in(Some(&eu), Some(&ns), "resourcequota", &ns)
        .expect("the ResourceQuota in eu");
    assert_eq!(quota["spec"]["hard"]["requests.cpu"], "2", "{quota}");
    assert_eq!(quota["spec"]["hard"]["pods"], "10", "{quota}");
    let limits = w
        .flux
        .get_in(Some(&eu), Some(&ns), "limitrange", &ns)
        .expect("the LimitRange in eu");
    assert_eq!(
        limits["spec"]["limits"][0]["default"]["memory"], "512Mi",
        "{limits}"
    );
    // Both templates' quota objects pass the API server's strict validation.
    let config = w.env.path("quota.yaml");
    std::fs::write(&config, QUOTA).unwrap();
    for template in ["kustomization", "helm"] {
        let out = w
            .env
            .command()
            // Into feature/a's namespace: a server-side dry run creates none.
            .args([
                "render",
                "--template",
                template,
                "--branch",
                "feature/a",
                "--app",
                &w.app,
            ])
            .args(["--source-url", &w.app_url])
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let core: Vec<&str> = text
            .split("\n---\n")
            .filter(|d| {
                ["kind: ResourceQuota", "kind: LimitRange", "kind: Namespace"]
                    .iter()
                    .any(|k| d.contains(k))
            })
            .collect();
        assert_eq!(core.len(), 3, "{text}");
        let r = w.flux.kubectl_in(
            Some(&eu),
            &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
            Some(&core.join("\n---\n")),
        );
        assert_eq!(r.code, 0, "{template}: {r:#?}");
    }

    // eu is full: the next spills over to us, and `wait` reads us.
    let b = deploy(&w, "feature/b", &["--wait", "--timeout", "4m"]);
    assert_eq!(b["cluster"], "us", "{b}");
    assert_eq!(b["wait"]["state"], "ready", "{b}");
    assert!(present(&w, &us, "feature/b") && !present(&w, &eu, "feature/b"));
    let waited = w
        .run(&["wait", "--branch", "feature/b", "--timeout", "2m"], &[])
        .ok()
        .json();
    assert_eq!(waited["wait"]["state"], "ready", "{waited}");

    // Both are full: the third waits in the queue.
    let c = deploy(&w, "feature/c", &[]);
    assert_eq!(c["action"], "queued", "{c}");
    assert_eq!(
        c["queued"],
        serde_json::json!({"position": 1, "of": 1}),
        "{c}"
    );
    let listed = w.run(&["list"], &[]).ok().json();
    assert_eq!(listed["queue"][0]["branch"], "feature/c", "{listed}");

    // a goes: the same commit admits c into eu, where Flux makes it Ready; a is pruned.
    let gone = w.notified(&["destroy", "--branch", "feature/a"]);
    assert_eq!(gone["action"], "destroyed", "{gone}");
    let log = w.env.log();
    assert!(log.contains("admit"), "{log}");
    w.ready_in(Some(&eu), "kustomization", &w.name_of("feature/c"), WAIT);
    w.flux.eventually("feature/a pruned from eu", WAIT, || {
        (!present(&w, &eu, "feature/a")).then_some(())
    });
    let listed = w.run(&["list"], &[]).ok().json();
    assert_eq!(listed["queue"], serde_json::json!([]), "{listed}");
}

#[test]
fn a_move_between_clusters_prunes_the_old_one_and_the_page_reads_both() {
    let boot = Bootstrap {
        clusters: &[("eu", None), ("us", None)],
        ..Bootstrap::default()
    };
    let Some(w) = FluxWorld::new("moves", boot) else {
        return;
    };
    let (eu, us) = (w.contexts[0].clone(), w.contexts[1].clone());
    for c in [&eu, &us] {
        w.ready_in(Some(c), "receiver", "flux-ephemeral", WAIT);
    }
    let a = deploy(&w, "feature/move", &["--wait", "--timeout", "4m"]);
    assert_eq!(a["cluster"], "eu", "{a}");
    let stay = deploy(
        &w,
        "feature/stay",
        &["--cluster", "us", "--wait", "--timeout", "4m"],
    );
    assert_eq!(stay["cluster"], "us", "{stay}");
    assert_eq!(stay["wait"]["state"], "ready", "{stay}");

    // Asked for us, the live preview moves: one commit, Ready in us, pruned from eu.
    let sha = w.app_commit("feature/move", &[("NOTES.md", Some("moved\n"))], "moved");
    let moved = w.notified(&[
        "deploy",
        "--branch",
        "feature/move",
        "--sha",
        &sha,
        "--cluster",
        "us",
        "--wait",
        "--timeout",
        "4m",
    ]);
    assert_eq!(
        (moved["cluster"].as_str(), moved["moved_from"].as_str()),
        (Some("us"), Some("eu")),
        "{moved}"
    );
    assert_eq!(moved["wait"]["state"], "ready", "{moved}");
    w.flux
        .eventually("the moved preview pruned from eu", WAIT, || {
            (!present(&w, &eu, "feature/move")).then_some(())
        });
    let ns = w.name_of("feature/move");
    w.flux.eventually("its namespace gone from eu", WAIT, || {
        w.flux
            .get_in(Some(&eu), None, "namespace", &ns)
            .is_none()
            .then_some(())
    });

    // The page reads each preview's state from its own cluster.
    let s = w.serve_page();
    let auth = [("Authorization", "Bearer page-token".to_string())];
    let start = Instant::now();
    loop {
        let (code, body) = request(s.port, "GET", "/api/previews", &auth, "");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let rows = v["rows"].as_array().unwrap();
        let ready: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r["state"] == "ready")
            .map(|r| {
                (
                    r["branch"].as_str().unwrap().to_string(),
                    r["cluster"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        if ready.len() == 2 {
            assert!(ready.contains(&("feature/move".into(), "us".into())), "{v}");
            assert!(ready.contains(&("feature/stay".into(), "us".into())), "{v}");
            assert_eq!(v["clustered"], true);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no Flux state from each cluster: {v}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
