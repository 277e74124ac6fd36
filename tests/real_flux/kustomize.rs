//! On a real Flux: a preview's Kustomization from its branch, end to end.
//! source-controller fetches the pinned commit over smart HTTP, kustomize-controller applies the
//! example overlay into the preview's namespace with the substituted names, kube-controller-manager,
//! kube-scheduler and kwok make the Deployment available, and `--wait` reads the real status.

use std::time::{Duration, Instant, SystemTime};

use crate::support::real_flux::{ready_message, Bootstrap, FluxWorld, RECEIVER_TOKEN};

const WAIT: Duration = Duration::from_secs(180);

/// `deploy --sha SHA --wait` (notifying the Receiver when `notify`); the run and how long it took.
fn deploy(w: &FluxWorld, branch: &str, sha: &str, notify: bool) -> (crate::support::Run, Duration) {
    let mut args = vec![
        "deploy",
        "--branch",
        branch,
        "--sha",
        sha,
        "--id",
        "7",
        "--wait",
        "--timeout",
        "4m",
    ];
    let flags = w.notify_flags();
    if notify {
        args.extend(flags.iter().map(String::as_str));
    }
    let start = Instant::now();
    let run = w.run(&args, &[("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)]);
    (run, start.elapsed())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Seconds since the epoch of an RFC 3339 time Kubernetes wrote (`2026-11-30T23:59:01Z`).
fn unix_of(time: &str) -> i64 {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", time, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn deploy_wait_returns_ready_at_the_pinned_sha_with_and_without_the_receiver() {
    let Some(w) = FluxWorld::new("ready", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let sha = w.app_commit("feature/login", &[("NOTES.md", Some("login\n"))], "login");

    // With the Receiver notified after the push.
    let (run, with_notify) = deploy(&w, "feature/login", &sha, true);
    let returned = unix_now();
    let out = run.ok().json();
    let name = w.name_of("feature/login");
    assert_eq!(out["wait"]["state"], "ready", "{out}");

    // What Flux really applied: the pinned commit, into the preview's own namespace, with the
    // names substituted.
    let ks = w.flux.get(Some(&w.ns), "kustomization", &name).unwrap();
    let applied = ks["status"]["lastAppliedRevision"].as_str().unwrap();
    assert!(applied.ends_with(&format!("sha1:{sha}")), "{applied}");
    let src = w.flux.get(Some(&w.ns), "gitrepository", &name).unwrap();
    assert_eq!(src["spec"]["ref"]["commit"], sha.as_str());
    let slug = crate::support::slug_of("feature/login");
    let ns = w
        .flux
        .get(None, "namespace", &name)
        .expect("the preview's namespace");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "flux-ephemeral"
    );
    let dep = w.flux.get(Some(&name), "deployment", "app").unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 1, "{dep}");
    let pod = &dep["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["flux-ephemeral.io/slug"],
        slug.as_str()
    );
    assert_eq!(
        pod["spec"]["containers"][0]["env"][0]["value"],
        format!("preview {slug}").as_str()
    );
    let ingress = w.flux.get(Some(&name), "ingress", "app").unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        format!("{slug}.preview.example.com").as_str()
    );
    assert!(w.flux.get(Some(&name), "service", "app").is_some());
    let ready_at = ks["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()["lastTransitionTime"]
        .as_str()
        .unwrap()
        .to_string();
    let after_ready = returned - unix_of(&ready_at);

    // Without a Receiver, Flux sees the push at the GitOps GitRepository's interval (1m here).
    let quiet = w.app_commit("feature/quiet", &[("NOTES.md", Some("quiet\n"))], "quiet");
    let (run, without_notify) = deploy(&w, "feature/quiet", &quiet, false);
    assert_eq!(run.ok().json()["wait"]["state"], "ready");

    eprintln!(
        "MEASURED real Flux {}: push -> Ready with the Receiver {:.1} s, without it {:.1} s \
         (GitRepository interval 1m); --wait returned {after_ready} s after Ready",
        w.flux.vars["FLUX_VERSION"],
        with_notify.as_secs_f64(),
        without_notify.as_secs_f64(),
    );
    assert!(
        with_notify < without_notify,
        "the Receiver made it no faster: {with_notify:?} vs {without_notify:?}"
    );
    assert!(
        (0..=5).contains(&after_ready),
        "--wait returned {after_ready} s after Ready"
    );
}

#[test]
fn a_new_commit_is_waited_for_not_taken_for_the_ready_left_from_the_old_one() {
    let Some(w) = FluxWorld::new("sync", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/sync";
    let first = w.app_commit(branch, &[("NOTES.md", Some("one\n"))], "one");
    deploy(&w, branch, &first, true).0.ok();
    let name = w.name_of(branch);

    // The pull request gets a new commit that changes what runs.
    let overlay = std::fs::read_to_string(format!(
        "{}/overlays/ephemeral/deployment.yaml",
        crate::support::ROOT
    ))
    .unwrap()
    .replace(
        "value: \"preview ${slug}\"",
        "value: \"preview ${slug} v2\"",
    );
    let second = w.app_commit(
        branch,
        &[("overlays/ephemeral/deployment.yaml", Some(&overlay))],
        "two",
    );
    let (run, took) = deploy(&w, branch, &second, true);
    assert_eq!(run.ok().json()["wait"]["state"], "ready");
    // When --wait returned, Flux had applied the second commit, not merely kept the old Ready.
    let ks = w.flux.get(Some(&w.ns), "kustomization", &name).unwrap();
    let applied = ks["status"]["lastAppliedRevision"].as_str().unwrap();
    assert!(applied.ends_with(&format!("sha1:{second}")), "{applied}");
    let dep = w.flux.get(Some(&name), "deployment", "app").unwrap();
    let message = &dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
    assert!(message.as_str().unwrap().ends_with(" v2"), "{message}");
    eprintln!(
        "MEASURED synchronize -> Ready at the new sha: {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
fn a_broken_overlay_fails_the_wait_with_kustomize_controllers_own_message() {
    let Some(w) = FluxWorld::new("broken", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/broken";
    let kustomization = std::fs::read_to_string(format!(
        "{}/overlays/ephemeral/kustomization.yaml",
        crate::support::ROOT
    ))
    .unwrap()
    .replace(
        "  - ingress.yaml",
        "  - ingress.yaml\n  - missing-file.yaml",
    );
    let sha = w.app_commit(
        branch,
        &[(
            "overlays/ephemeral/kustomization.yaml",
            Some(&kustomization),
        )],
        "broken",
    );
    let (run, _) = deploy(&w, branch, &sha, true);
    let run = run.fails_with(6, "missing-file.yaml");
    // The message is kustomize-controller's, as the cluster has it.
    let ks = w
        .flux
        .get(Some(&w.ns), "kustomization", &w.name_of(branch))
        .unwrap();
    let message = ready_message(&ks);
    assert!(message.contains("missing-file.yaml"), "{message}");
    let head: String = message.chars().take(60).collect();
    assert!(run.stderr.contains(&head), "{head:?} not in {run:#?}");
}

#[test]
fn destroy_prunes_the_objects_and_the_namespace_is_finalized() {
    let Some(w) = FluxWorld::new("destroy", Bootstrap::default()) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/gone";
    let sha = w.app_commit(branch, &[("NOTES.md", Some("gone\n"))], "gone");
    deploy(&w, branch, &sha, true).0.ok();
    let name = w.name_of(branch);
    assert!(w.flux.get(Some(&name), "deployment", "app").is_some());

    let mut args = vec!["destroy", "--branch", branch];
    let flags = w.notify_flags();
    args.extend(flags.iter().map(String::as_str));
    let out = w
        .run(&args, &[("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)])
        .ok()
        .json();
    assert!(out["commit"].is_string(), "{out}");
    assert!(w.env.sync_file(&crate::support::slug_of(branch)).is_none());

    let start = Instant::now();
    w.flux
        .eventually("the Kustomization and GitRepository pruned", WAIT, || {
            (w.flux.get(Some(&w.ns), "kustomization", &name).is_none()
                && w.flux.get(Some(&w.ns), "gitrepository", &name).is_none())
            .then_some(())
        });
    w.flux
        .eventually("the namespace finalized and gone", WAIT, || {
            w.flux.get(None, "namespace", &name).is_none().then_some(())
        });
    assert!(w.flux.get(Some(&name), "deployment", "app").is_none());
    eprintln!(
        "MEASURED destroy -> namespace gone: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
