//! OCI artifacts as the preview's source, against a real registry (Debian's docker-registry on
//! 127.0.0.1 with htpasswd auth): pack, push, pin by digest, read back, re-deploy, prune.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use base64::Engine;
use flate2::read::GzDecoder;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::servers::{docker_registry, Server};
use support::{Run, TestEnv, SHA};

const USER: &str = "pusher";
const PASSWORD: &str = "registry-s3cret";
const BRANCH: &str = "feature/oci";

fn manifests(dir: &Path) {
    support::write(
        &dir.join("kustomization.yaml"),
        "resources:\n  - deployment.yaml\n",
    );
    support::write(
        &dir.join("deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n",
    );
    support::write(&dir.join("config/app.env"), "MODE=preview\n");
}

/// GET from the registry's HTTP API with basic auth: status, headers, body.
fn get(registry: &Server, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[line + 2..line + 2 + n]);
        b = &b[line + 2 + n + 2..];
    }
}

fn deploy(env: &TestEnv, registry: &Server, dir: &Path, extra: &[&str], password: &str) -> Run {
    let url = format!("{}/org/app/manifests", registry.url);
    let mut args = vec![
        "deploy",
        "--repo",
        env.remote.to_str().unwrap(),
        "--branch",
        BRANCH,
        "--sha",
        SHA,
        "--artifact",
        dir.to_str().unwrap(),
        "--artifact-url",
        &url,
        "--insecure-registry",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    env.run_with(
        &args,
        &[("REGISTRY_USERNAME", USER), ("REGISTRY_PASSWORD", password)],
    )
}

fn setup() -> Option<(TestEnv, Server, std::path::PathBuf)> {
    let env = TestEnv::new();
    let registry = docker_registry(&env.path("registry"), USER, PASSWORD)?;
    let dir = env.path("rendered");
    manifests(&dir);
    Some((env, registry, dir))
}

#[test]
fn an_artifact_is_pushed_pinned_by_digest_and_reads_back_exactly() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    let out = deploy(&env, &registry, &dir, &[], PASSWORD).ok().json();
    assert_eq!(out["action"], "created", "{out}");
    let digest = out["digest"].as_str().unwrap().to_string();
    let slug = out["slug"].as_str().unwrap().to_string();
    assert_eq!(
        out["artifact"],
        format!("{}/org/app/manifests:{slug}", registry.url)
    );
    assert_eq!(out["artifact_uploaded"], true);

    // The sync file: an OCIRepository pinned to that digest, and a Kustomization on it.
    let docs = env.docs(&slug);
    assert_eq!(docs[0]["kind"], "OCIRepository");
    assert_eq!(
        docs[0]["spec"]["url"],
        format!("{}/org/app/manifests", registry.url)
    );
    assert_eq!(docs[0]["spec"]["ref"]["digest"], digest.as_str());
    assert_eq!(docs[0]["spec"]["insecure"], true);
    assert_eq!(docs[1]["kind"], "Kustomization");
    assert_eq!(docs[1]["spec"]["sourceRef"]["kind"], "OCIRepository");
    assert_eq!(docs[1]["spec"]["path"], "./");

    // The registry holds exactly those bytes under the slug's tag.
    let (status, head, manifest) = get(
        &registry,
        &format!("/v2/org/app/manifests/manifests/{slug}"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 200, "{head}");
    let sha = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    assert_eq!(sha, digest, "the committed digest is the stored manifest's");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("docker-content-digest: {digest}")),
        "{head}"
    );
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.cncf.flux.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.cncf.flux.content.v1.tar+gzip"
    );
    let ann = &m["annotations"];
    assert_eq!(
        ann["org.opencontainers.image.revision"],
        format!("{BRANCH}@sha1:{SHA}")
    );
    assert_eq!(
        ann["org.opencontainers.image.source"],
        "https://git.example.com/org/app.git"
    );
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );

    // The layer unpacks to the directory, file for file.
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let (status, _, blob) = get(
        &registry,
        &format!("/v2/org/app/manifests/blobs/{layer}"),
        "*/*",
    );
    assert_eq!(status, 200);
    let mut ar = tar::Archive::new(GzDecoder::new(blob.as_slice()));
    let mut files = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name.ends_with('/') {
            continue;
        }
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string(dir.join(&name)).unwrap(),
            "{name}"
        );
        files.push(name);
    }
    assert_eq!(
        files,
        ["config/app.env", "deployment.yaml", "kustomization.yaml"]
    );
}

#[test]
fn the_same_content_redeploys_without_a_push_or_a_commit() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    let first = deploy(&env, &registry, &dir, &[], PASSWORD).ok().json();
    let commits = env.commit_count();
    // Another checkout of the same content: other times, the same digest.
    let copy = env.path("elsewhere");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    manifests(&copy);
    let again = deploy(&env, &registry, &copy, &[], PASSWORD).ok().json();
    assert_eq!(again["digest"], first["digest"]);
    assert_eq!(again["action"], "unchanged", "{again}");
    assert_eq!(again["artifact_uploaded"], false);
    assert_eq!(env.commit_count(), commits);
    // New content: a new digest, pushed and committed.
    support::write(&copy.join("config/app.env"), "MODE=changed\n");
    let changed = deploy(&env, &registry, &copy, &[], PASSWORD).ok().json();
    assert_ne!(changed["digest"], first["digest"]);
    assert_eq!(changed["action"], "updated");
    assert_eq!(env.commit_count(), commits + 1);
    // A dry run knows the digest without a registry and changes nothing.
    support::write(&copy.join("config/app.env"), "MODE=dry\n");
    let dry = deploy(&env, &registry, &copy, &["--dry-run"], "wrong").ok();
    assert!(dry.stderr.contains("dry run: would push"), "{dry:?}");
    assert_eq!(env.commit_count(), commits + 1);
}

#[test]
fn wrong_credentials_commit_nothing_and_show_no_password() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    let head = env.head();
    let out = deploy(&env, &registry, &dir, &[], "not-the-password");
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stdout.contains("registry"), "{out:?}");
    assert!(!out.stdout.contains("not-the-password") && !out.stderr.contains("not-the-password"));
    assert_eq!(env.head(), head);
    // A symlink out of the directory is refused before anything is pushed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
        let out = deploy(&env, &registry, &dir, &[], PASSWORD);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stdout.contains("outside the artifact directory"),
            "{out:?}"
        );
        assert_eq!(env.head(), head);
    }
}

#[test]
fn cleanup_prunes_the_artifacts_of_what_it_removes() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    let out = deploy(&env, &registry, &dir, &["--ttl", "1s"], PASSWORD)
        .ok()
        .json();
    let slug = out["slug"].as_str().unwrap().to_string();
    let digest = out["digest"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = env
        .run_with(
            &[
                "cleanup",
                "--repo",
                env.remote.to_str().unwrap(),
                "--prune-artifacts",
                "--insecure-registry",
                "--output",
                "json",
            ],
            &[("REGISTRY_USERNAME", USER), ("REGISTRY_PASSWORD", PASSWORD)],
        )
        .ok()
        .json();
    assert_eq!(out["removed"][0]["slug"], slug.as_str(), "{out}");
    assert_eq!(out["pruned_artifacts"], 1, "{out}");
    let (status, head, _) = get(
        &registry,
        &format!("/v2/org/app/manifests/manifests/{digest}"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 404, "{head}");
}

#[test]
fn source_oci_in_the_configuration() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some(&format!(
                "source_url: https://git.example.com/org/app.git\nsource: oci\nartifact_url: {}/org/app/manifests\n",
                registry.url
            )),
        )],
        "previews from artifacts",
    );
    let repo = env.remote.to_str().unwrap();
    let creds = [("REGISTRY_USERNAME", USER), ("REGISTRY_PASSWORD", PASSWORD)];
    // Without a directory there is nothing to deploy: said clearly, nothing committed.
    let head = env.head();
    env.run_with(&["deploy", "--repo", repo, "--branch", BRANCH], &creds)
        .fails_with(1, "--artifact DIR");
    assert_eq!(env.head(), head);
    let out = env
        .run_with(
            &[
                "deploy",
                "--repo",
                repo,
                "--branch",
                BRANCH,
                "--artifact",
                dir.to_str().unwrap(),
                "--insecure-registry",
                "--output",
                "json",
            ],
            &creds,
        )
        .ok()
        .json();
    assert!(
        out["digest"].as_str().unwrap().starts_with("sha256:"),
        "{out}"
    );
    assert_eq!(
        env.docs(out["slug"].as_str().unwrap())[0]["kind"],
        "OCIRepository"
    );
}
