//! On a real Flux, the two other ways a preview is built: the `helm`
//! template (a chart in the application repository, installed by helm-controller) and an OCI
//! artifact pushed to a real registry (Debian's docker-registry), pulled by source-controller
//! pinned by digest.

use std::time::Duration;

use crate::support::real_flux::{Bootstrap, FluxWorld, RECEIVER_TOKEN};
use crate::support::servers::docker_registry;
use base64::Engine;

const WAIT: Duration = Duration::from_secs(180);

pub(crate) const CHART: &str = "apiVersion: v2\nname: app\nversion: 0.1.0\n";
pub(crate) const VALUES: &str = "image:\n  tag: latest\ningress:\n  enabled: false\n  hosts: []\n";
pub(crate) const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: "ghcr.io/stefanprodan/podinfo:{{ .Values.image.tag }}"
"#;
pub(crate) const INGRESS: &str = r#"{{- if .Values.ingress.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .Release.Name }}
spec:
  rules:
{{- range .Values.ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service: {name: {{ $.Release.Name }}, port: {number: 80}}
{{- end }}
{{- end }}
"#;

#[test]
fn the_helm_template_installs_the_chart_from_the_branch_with_helm_controller() {
    let Some(w) = FluxWorld::new(
        "helm",
        Bootstrap {
            config: "template: helm\nchart: ./charts/app\n",
            ..Bootstrap::default()
        },
    ) else {
        return;
    };
    w.ready("receiver", "flux-ephemeral", WAIT);
    let branch = "feature/chart";
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
    let mut args = vec![
        "deploy",
        "--branch",
        branch,
        "--sha",
        &sha,
        "--wait",
        "--timeout",
        "4m",
    ];
    let flags = w.notify_flags();
    args.extend(flags.iter().map(String::as_str));
    let out = w
        .run(&args, &[("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)])
        .ok()
        .json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");

    let name = w.name_of(branch);
    let hr = w.flux.get(Some(&w.ns), "helmrelease", &name).unwrap();
    assert!(crate::support::real_flux::is_ready(&hr), "{hr}");
    // helm-controller installed release `name` into the preview's namespace, with the values
    // the template set: the image tag is the commit, the ingress host the preview's.
    let dep = w.flux.get(Some(&name), "deployment", &name).unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 1, "{dep}");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/stefanprodan/podinfo:{sha}").as_str()
    );
    let ingress = w.flux.get(Some(&name), "ingress", &name).unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        format!("{}.preview.example.com", crate::support::slug_of(branch)).as_str()
    );
    // Helm keeps the release beside the HelmRelease.
    let secret = format!("sh.helm.release.v1.{name}.v1");
    assert!(w.flux.get(Some(&w.ns), "secret", &secret).is_some());

    // A new commit: --wait returns when helm-controller has upgraded to the chart built from it,
    // not at the Ready the first install left.
    let second = w.app_commit(
        branch,
        &[(
            "charts/app/templates/configmap.yaml",
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\ndata: {n: \"2\"}\n"),
        )],
        "second",
    );
    args[4] = &second;
    let out = w
        .run(&args, &[("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN)])
        .ok()
        .json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let hr = w.flux.get(Some(&w.ns), "helmrelease", &name).unwrap();
    assert_eq!(
        hr["status"]["history"][0]["chartVersion"],
        format!("0.1.0+{}", &second[..12]).as_str(),
        "{hr}"
    );
    assert!(w.flux.get(Some(&name), "configmap", "second").is_some());
}

#[test]
fn an_oci_artifact_is_pulled_by_source_controller_at_its_digest() {
    let Some(w) = FluxWorld::new(
        "oci",
        Bootstrap {
            config: "",
            secret_ref: "registry-credentials",
            ..Bootstrap::default()
        },
    ) else {
        return;
    };
    let (user, password) = ("pusher", "registry-s3cret");
    let Some(registry) = docker_registry(&w.env.path("registry"), user, password) else {
        return;
    };
    let host = format!("127.0.0.1:{}", registry.port);
    // The registry's credentials, as Flux takes them for an OCIRepository.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let docker_config = format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#);
    w.flux.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-credentials\n  namespace: {}\n\
         type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{docker_config}'\n",
        w.ns
    ));
    w.ready("receiver", "flux-ephemeral", WAIT);

    // The pipeline's rendered manifests: the example overlay, variables left for Flux.
    let rendered = w.env.path("rendered");
    for f in [
        "kustomization.yaml",
        "namespace.yaml",
        "deployment.yaml",
        "service.yaml",
        "ingress.yaml",
    ] {
        let text =
            std::fs::read_to_string(format!("{}/overlays/ephemeral/{f}", crate::support::ROOT))
                .unwrap();
        crate::support::write(&rendered.join(f), &text);
    }
    let branch = "feature/artifact";
    let url = format!("oci://{host}/org/app/manifests");
    let mut args = vec![
        "deploy",
        "--branch",
        branch,
        "--sha",
        crate::support::SHA,
        "--artifact",
        rendered.to_str().unwrap(),
        "--artifact-url",
        &url,
        "--insecure-registry",
        &host,
        "--wait",
        "--timeout",
        "4m",
    ];
    let flags = w.notify_flags();
    args.extend(flags.iter().map(String::as_str));
    let out = w
        .run(
            &args,
            &[
                ("FLUX_RECEIVER_TOKEN", RECEIVER_TOKEN),
                ("REGISTRY_USERNAME", user),
                ("REGISTRY_PASSWORD", password),
                ("REGISTRY_HOST", &host),
            ],
        )
        .ok()
        .json();
    assert_eq!(out["wait"]["state"], "ready", "{out}");
    let digest = out["digest"].as_str().unwrap();

    let name = w.name_of(branch);
    let repo = w.flux.get(Some(&w.ns), "ocirepository", &name).unwrap();
    assert_eq!(repo["spec"]["ref"]["digest"], digest);
    let revision = repo["status"]["artifact"]["revision"].as_str().unwrap();
    assert!(revision.ends_with(digest), "{revision} is not at {digest}");
    let ks = w.flux.get(Some(&w.ns), "kustomization", &name).unwrap();
    assert!(
        ks["status"]["lastAppliedRevision"]
            .as_str()
            .unwrap()
            .ends_with(digest),
        "{ks}"
    );
    let dep = w.flux.get(Some(&name), "deployment", "app").unwrap();
    assert_eq!(dep["status"]["readyReplicas"], 1, "{dep}");
}
