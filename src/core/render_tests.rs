//! Snapshots of the shipped templates, and hostile values that must read back exactly.

use std::time::{Duration, SystemTime};

use crate::model::EnvSpec;
use crate::render::{RenderSettings, Renderer};

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn spec(branch: &str, sha: Option<&str>) -> EnvSpec {
    EnvSpec {
        slug: crate::slug::slugify(branch, 49).unwrap(),
        branch: branch.into(),
        sha: sha.map(Into::into),
        id: Some("42".into()),
        author: Some("alice".into()),
        title: Some("Add login".into()),
        source_url: "https://github.com/org/app.git".into(),
        ttl: Some(Duration::from_secs(72 * 3600)),
        ..EnvSpec::default()
    }
}

fn settings() -> RenderSettings {
    RenderSettings {
        preview_url: Some("https://{{ slug }}.preview.example.com".into()),
        ..RenderSettings::default()
    }
}

#[test]
fn kustomization_template() {
    let r = Renderer::builtin("kustomization", settings()).unwrap();
    insta::assert_snapshot!(
        r.render(&spec("feature/login", None), at())
            .unwrap()
            .content
    );
}

#[test]
fn helm_template() {
    let r = Renderer::builtin("helm", settings()).unwrap();
    insta::assert_snapshot!(
        r.render(
            &spec(
                "feature/login",
                Some("0123456789abcdef0123456789abcdef01234567")
            ),
            at()
        )
        .unwrap()
        .content
    );
}

#[test]
fn hostile_values_read_back_exactly() {
    for template in ["kustomization", "helm"] {
        let r = Renderer::builtin(template, settings()).unwrap();
        for branch in [
            "on",
            "null",
            "1e3",
            "a: b # c",
            "\"q\"",
            "'s'",
            "`b`",
            "ünï/コード",
            "x\u{2028}y",
        ] {
            let mut s = spec(branch, None);
            s.author = Some("Zoë \"the\" #1: yes".into());
            let out = r.render(&s, at()).unwrap();
            let docs: Vec<serde_yaml_ng::Value> =
                serde_yaml_ng::Deserializer::from_str(&out.content)
                    .map(|d| <serde_yaml_ng::Value as serde::Deserialize>::deserialize(d).unwrap())
                    .filter(|v| !v.is_null())
                    .collect();
            assert_eq!(
                docs[0]["metadata"]["annotations"]["flux-ephemeral.io/branch"].as_str(),
                Some(branch)
            );
            assert_eq!(
                docs[0]["metadata"]["annotations"]["flux-ephemeral.io/author"].as_str(),
                s.author.as_deref()
            );
            assert_eq!(
                docs[0]["spec"]["ref"]["branch"].as_str(),
                Some(branch),
                "{template}"
            );
        }
    }
}

#[test]
fn reserved_namespaces_are_refused() {
    let r = Renderer::builtin(
        "kustomization",
        RenderSettings {
            prefix: String::new(),
            ..RenderSettings::default()
        },
    )
    .unwrap();
    for branch in ["default", "kube-system", "flux-system"] {
        let e = r.render(&spec(branch, None), at()).unwrap_err();
        assert!(e.message.contains("reserved namespace"), "{e}");
    }
}

#[test]
fn preview_url_template_errors_are_config_errors() {
    let e = Renderer::builtin(
        "kustomization",
        RenderSettings {
            preview_url: Some("{{ slug".into()),
            ..RenderSettings::default()
        },
    )
    .err()
    .unwrap();
    assert!(e.message.contains("preview_url"), "{e}");
}

#[test]
fn templates_cannot_reach_the_environment() {
    std::env::set_var("FLUX_EPHEMERAL_RENDER_TEST_SECRET", "s3cret-value");
    for f in [
        "get_env(name='FLUX_EPHEMERAL_RENDER_TEST_SECRET')",
        "get_random(end=10)",
        "now()",
    ] {
        let url = Renderer::builtin(
            "kustomization",
            RenderSettings {
                preview_url: Some(format!("https://{{{{ {f} }}}}.example.com")),
                ..RenderSettings::default()
            },
        )
        .unwrap();
        let e = url.render(&spec("feature/x", None), at()).unwrap_err();
        assert!(e.message.contains("preview_url template"), "{e}");
        assert!(e.message.contains("not available"), "{e}");
        assert!(!e.message.contains("s3cret-value"), "{e}");
        let file = Renderer::new(
            "overlays/my-template.yaml.tera",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ {f} }}}}\n"),
            RenderSettings::default(),
        )
        .unwrap();
        let e = file.render(&spec("feature/x", None), at()).unwrap_err();
        assert!(
            e.message
                .contains("template overlays/my-template.yaml.tera"),
            "{e}"
        );
        assert!(!e.message.contains("s3cret-value"), "{e}");
    }
}

/// Asleep: both built-in templates scale every Deployment and StatefulSet to zero, and record
/// since when and why; awake again, the patches are gone.
#[test]
fn sleeping_environments_are_patched_to_zero_replicas() {
    use crate::model::SleepReason;
    let since = humantime::parse_rfc3339("2026-01-01T02:00:00Z").unwrap();
    for (template, patches) in [
        ("kustomization", "/spec/patches"),
        ("helm", "/spec/postRenderers/0/kustomize/patches"),
    ] {
        let r = Renderer::builtin(template, settings()).unwrap();
        let mut s = spec(
            "feature/sleepy",
            Some("0123456789abcdef0123456789abcdef01234567"),
        );
        s.lifecycle.sleeping = Some((since, SleepReason::Idle));
        let asleep = r.render(&s, at()).unwrap().content;
        let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&asleep)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &serde_json::Value| !v.is_null())
            .collect();
        let deployer = &docs[1];
        let list = deployer.pointer(patches).unwrap().as_array().unwrap();
        let kinds: Vec<&str> = list
            .iter()
            .map(|p| p["target"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Deployment", "StatefulSet"], "{template}");
        for p in list {
            let ops: serde_json::Value =
                serde_yaml_ng::from_str(p["patch"].as_str().unwrap()).unwrap();
            assert_eq!(
                ops,
                serde_json::json!([{"op": "add", "path": "/spec/replicas", "value": 0}])
            );
        }
        let ann = &deployer["metadata"]["annotations"];
        assert_eq!(
            ann["flux-ephemeral.io/sleeping-since"],
            "2026-01-01T02:00:00Z"
        );
        assert_eq!(ann["flux-ephemeral.io/sleep-reason"], "idle");
        s.lifecycle.sleeping = None;
        let awake = r.render(&s, at()).unwrap().content;
        assert!(
            !awake.contains("replicas") && !awake.contains("sleeping-since"),
            "{awake}"
        );
    }
}
