//! `kubectl kustomize` on the example overlay (with the variables substituted as Flux's postBuild
//! would) and on the instances directory the tool writes. Skipped, with a message, without kubectl.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{skip, write, TestEnv, ROOT, SHA};

fn kubectl() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        skip("kubectl is not installed (it ships with the Kubernetes apt repository or as a static binary)");
    }
    ok
}

fn kustomize(dir: &Path) -> Vec<serde_yaml_ng::Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| <serde_yaml_ng::Value as serde::Deserialize>::deserialize(d).unwrap())
        .collect()
}

/// Flux's variable substitution: `${var}` and `${var:=default}`.
fn substitute(text: &str, vars: &[(&str, String)]) -> String {
    let re = regex::Regex::new(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)(?::=([^}]*))?\}").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let value = vars
            .iter()
            .find(|(k, _)| *k == &c[1])
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if value.is_empty() {
            c.get(2).map(|m| m.as_str().to_string()).unwrap_or_default()
        } else {
            value
        }
    })
    .into_owned()
}

#[test]
fn the_example_overlay_builds_with_the_substituted_variables() {
    if !kubectl() {
        return;
    }
    let env = TestEnv::new();
    let out = env
        .deploy(&[
            "--branch",
            "feature/login",
            "--sha",
            SHA,
            "--preview-url",
            "https://{{ slug }}.preview.example.com",
            "--output",
            "json",
        ])
        .ok()
        .json();
    let slug = out["slug"].as_str().unwrap();
    let docs = env.docs(slug);
    let kustomization = &docs[1];
    let target_ns = kustomization["spec"]["targetNamespace"].as_str().unwrap();
    let subst = kustomization["spec"]["postBuild"]["substitute"]
        .as_mapping()
        .unwrap();
    let vars: Vec<(&str, String)> = subst
        .iter()
        .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap().to_string()))
        .collect();

    let dir = env.path("overlay");
    for entry in std::fs::read_dir(Path::new(ROOT).join("overlays/ephemeral")).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        write(&dir.join(entry.file_name()), &substitute(&text, &vars));
    }
    // Flux applies targetNamespace like a kustomize namespace transformer.
    let k = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap();
    std::fs::write(&k, format!("{text}namespace: {target_ns}\n")).unwrap();

    let objects = kustomize(&dir);
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    assert_eq!(find("Namespace")["metadata"]["name"], target_ns);
    assert_eq!(find("Deployment")["metadata"]["namespace"], target_ns);
    assert_eq!(
        find("Ingress")["spec"]["rules"][0]["host"],
        format!("{slug}.preview.example.com")
    );
    assert_eq!(
        find("Deployment")["metadata"]["labels"]["app.kubernetes.io/instance"],
        format!("app-{slug}")
    );
}

#[test]
fn the_instances_directory_builds() {
    if !kubectl() {
        return;
    }
    let env = TestEnv::new();
    env.deploy(&["--branch", "feature/a"]).ok();
    env.deploy(&["--branch", "on", "--sha", SHA, "--template", "helm"])
        .ok();
    let dir = env.path("instances");
    // Every file Flux applies from the directory: the sync files and the manifests beside them.
    let files: Vec<String> = env
        .git(&[
            "ls-tree",
            "--name-only",
            "main",
            "overlays/ephemeral-instances/",
        ])
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect();
    for f in &files {
        write(
            &dir.join(f),
            &env.file(&format!("overlays/ephemeral-instances/{f}"))
                .unwrap(),
        );
    }
    // The notification Provider and Alert and the Receiver, as a user commits them there once
    // adapted (examples/flux/).
    let mut files = files;
    for f in ["notifications.yaml", "receiver.yaml"] {
        let example = std::path::Path::new(support::ROOT)
            .join("examples/flux")
            .join(f);
        write(&dir.join(f), &std::fs::read_to_string(example).unwrap());
        files.push(f.to_string());
    }
    let list: String = files.iter().map(|f| format!("  - {f}\n")).collect();
    write(
        &dir.join("kustomization.yaml"),
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{list}"
        ),
    );
    let objects = kustomize(&dir);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "GitRepository").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "HelmRelease").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "Kustomization").count(),
        2,
        "{kinds:?}"
    );
    // Beside the watcher, once adapted: Flux's Provider and Alert for the previews' commit
    // statuses, and the Receiver flux-ephemeral notifies.
    for kind in ["Provider", "Alert", "Receiver"] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind}: {kinds:?}"
        );
    }
    let alert = objects.iter().find(|o| o["kind"] == "Alert").unwrap();
    assert_eq!(
        alert["spec"]["eventSources"][0]["matchLabels"]["app.kubernetes.io/managed-by"],
        "flux-ephemeral"
    );
}

#[test]
fn the_service_manifests_build() {
    if !kubectl() {
        return;
    }
    let objects = kustomize(&std::path::Path::new(support::ROOT).join("examples/kubernetes"));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for k in ["Namespace", "Deployment", "Service", "Ingress"] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    let d = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(d["metadata"]["namespace"], "flux-ephemeral");
}
