//! OCI artifacts as the preview's source, against a real registry (Debian's docker-registry on
//! 127.0.0.1 with htpasswd auth): pack, push, pin by digest, read back, re-deploy, prune.

use crate::support;

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

/// `HOST:PORT` of the test registry: what --insecure-registry and REGISTRY_HOST name.
fn host(registry: &Server) -> String {
    format!("127.0.0.1:{}", registry.port)
}

/// `deploy --artifact DIR` to `oci://HOST/org/app/manifests`, plain HTTP to HOST.
fn deploy_at(env: &TestEnv, dir: &Path, host: &str, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let url = format!("oci://{host}/org/app/manifests");
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
        host,
    ];
    args.extend_from_slice(extra);
    env.run_with(&args, vars)
}

fn deploy(env: &TestEnv, registry: &Server, dir: &Path, extra: &[&str], password: &str) -> Run {
    let host = host(registry);
    let mut args = vec!["--output", "json"];
    args.extend_from_slice(extra);
    deploy_at(
        env,
        dir,
        &host,
        &args,
        &[
            ("REGISTRY_USERNAME", USER),
            ("REGISTRY_PASSWORD", password),
            ("REGISTRY_HOST", &host),
        ],
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
    let out = deploy(&env, &registry, &dir, &["--ttl", "1m"], PASSWORD)
        .ok()
        .json();
    let slug = out["slug"].as_str().unwrap().to_string();
    let digest = out["digest"].as_str().unwrap().to_string();
    // Two minutes later (libfaketime), the one-minute time to live ran out.
    let Some(out) = env.run_later(
        "+2m",
        &[
            "cleanup",
            "--repo",
            env.remote.to_str().unwrap(),
            "--prune-artifacts",
            "--artifact-url",
            &format!("{}/org/app/manifests", registry.url),
            "--insecure-registry",
            &host(&registry),
            "--output",
            "json",
        ],
        &[
            ("REGISTRY_USERNAME", USER),
            ("REGISTRY_PASSWORD", PASSWORD),
            ("REGISTRY_HOST", &host(&registry)),
        ],
    ) else {
        return;
    };
    let out = out.ok().json();
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
    let host = host(&registry);
    let creds = [
        ("REGISTRY_USERNAME", USER),
        ("REGISTRY_PASSWORD", PASSWORD),
        ("REGISTRY_HOST", host.as_str()),
    ];
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
                &host,
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

/// A registry that answers every request with `answer` (or stays silent when it is empty) and
/// records each request's head: the `Authorization` headers it was sent are what it learned.
fn recording_registry(
    answer: &'static str,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            if answer.is_empty() {
                std::thread::sleep(std::time::Duration::from_secs(30));
                continue;
            }
            let _ = s.write_all(answer.as_bytes());
        }
    });
    (port, seen)
}

const BASIC_CHALLENGE: &str = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn deploy_to(env: &TestEnv, dir: &Path, host: &str, extra_env: &[(&str, &str)]) -> Run {
    let mut vars = vec![("REGISTRY_USERNAME", USER), ("REGISTRY_PASSWORD", PASSWORD)];
    vars.extend_from_slice(extra_env);
    deploy_at(env, dir, host, &[], &vars)
}

#[test]
fn registry_credentials_go_only_to_their_host_and_only_when_challenged() {
    let env = TestEnv::new();
    let dir = env.path("rendered");
    manifests(&dir);
    let (port, seen) = recording_registry(BASIC_CHALLENGE);
    let host = format!("127.0.0.1:{port}");
    // Bound to another host: this registry learns nothing, however it asks.
    let out = deploy_to(
        &env,
        &dir,
        &host,
        &[("REGISTRY_HOST", "registry.example.com")],
    );
    assert_eq!(out.code, 4, "{out:?}");
    let heads = seen.lock().unwrap().clone();
    assert!(!heads.is_empty());
    assert!(
        heads
            .iter()
            .all(|h| !h.to_ascii_lowercase().contains("authorization")),
        "{heads:?}"
    );
    // Bound to this host: the first request is anonymous; they follow only its challenge.
    seen.lock().unwrap().clear();
    let out = deploy_to(&env, &dir, &host, &[("REGISTRY_HOST", host.as_str())]);
    assert_eq!(out.code, 4, "{out:?}");
    let heads = seen.lock().unwrap().clone();
    assert!(
        !heads[0].to_ascii_lowercase().contains("authorization"),
        "{heads:?}"
    );
    assert!(
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: basic")),
        "{heads:?}"
    );
    // Without REGISTRY_HOST they go nowhere, and the error says what to set.
    let out = deploy_to(&env, &dir, &host, &[]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("REGISTRY_HOST"), "{out:?}");
}

#[test]
fn a_silent_registry_times_out_and_hostile_error_text_is_escaped() {
    let env = TestEnv::new();
    let dir = env.path("rendered");
    manifests(&dir);
    let (port, _) = recording_registry("");
    let host = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let out = deploy_to(
        &env,
        &dir,
        &host,
        &[
            ("REGISTRY_HOST", host.as_str()),
            ("FLUX_EPHEMERAL_REGISTRY_TIMEOUT", "2s"),
        ],
    );
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // A registry whose error body carries a workflow command and a terminal escape.
    let (port, _) = recording_registry(
        "HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\nContent-Length: 44\r\nConnection: close\r\n\r\nboom\n::warning::pwned\n\x1b[31mred\x1b[0m and more",
    );
    let host = format!("127.0.0.1:{port}");
    let out = deploy_to(&env, &dir, &host, &[("REGISTRY_HOST", host.as_str())]);
    assert_eq!(out.code, 4, "{out:?}");
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains('\x1b'), "{out:?}");
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("::")),
            "{out:?}"
        );
    }
}

#[test]
fn pruning_deletes_only_what_the_tool_pushed_to_the_configured_repository() {
    let Some((env, registry, dir)) = setup() else {
        return;
    };
    let host = host(&registry);
    let creds = [
        ("REGISTRY_USERNAME", USER),
        ("REGISTRY_PASSWORD", PASSWORD),
        ("REGISTRY_HOST", host.as_str()),
    ];
    // "Production": an artifact in org/prod/web, recorded by an expiring environment (as a
    // hand-written sync file could record it).
    let prod = env
        .run_with(
            &[
                "deploy",
                "--repo",
                env.remote.to_str().unwrap(),
                "--branch",
                "release",
                "--sha",
                SHA,
                "--artifact",
                dir.to_str().unwrap(),
                "--artifact-url",
                &format!("{}/org/prod/web", registry.url),
                "--insecure-registry",
                &host,
                "--ttl",
                "1m",
                "--output",
                "json",
            ],
            &creds,
        )
        .ok()
        .json();
    let prod_digest = prod["digest"].as_str().unwrap().to_string();
    // Two previews of the same commit share one digest; one expires, one stays.
    let one = deploy(
        &env,
        &registry,
        &dir,
        &["--slug", "one", "--ttl", "1m"],
        PASSWORD,
    )
    .ok()
    .json();
    let two = deploy(&env, &registry, &dir, &["--slug", "two"], PASSWORD)
        .ok()
        .json();
    assert_eq!(
        one["digest"], two["digest"],
        "the same commit, the same digest"
    );
    // Two minutes later (libfaketime), the one-minute times to live ran out.
    let Some(out) = env.run_later(
        "+2m",
        &[
            "cleanup",
            "--repo",
            env.remote.to_str().unwrap(),
            "--force",
            "--prune-artifacts",
            "--artifact-url",
            &format!("{}/org/app/manifests", registry.url),
            "--insecure-registry",
            &host,
            "--output",
            "json",
        ],
        &creds,
    ) else {
        return;
    };
    let out = out.ok().json();
    assert_eq!(out["removed"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["pruned_artifacts"], 0, "{out}");
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let (status, head, _) = get(
        &registry,
        &format!("/v2/org/prod/web/manifests/{prod_digest}"),
        accept,
    );
    assert_eq!(status, 200, "production is never pruned: {head}");
    let (status, head, _) = get(&registry, "/v2/org/app/manifests/manifests/two", accept);
    assert_eq!(status, 200, "the kept preview's artifact stays: {head}");
}

#[test]
fn a_registry_answering_hundreds_of_megabytes_costs_a_bounded_read() {
    // HEAD says the tag exists without a digest; GET then answers 300 MB. The tool reads a
    // manifest's worth (4 MiB) and stops with an error, without holding the rest.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                if head.starts_with(b"HEAD") {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 314572800\r\nConnection: close\r\n\r\n",
                );
                let chunk = vec![b'A'; 1 << 20];
                for _ in 0..300 {
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let env = TestEnv::new();
    let dir = env.path("rendered");
    manifests(&dir);
    let host = format!("127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let out = deploy_to(&env, &dir, &host, &[("REGISTRY_HOST", host.as_str())]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("larger than"), "{out:?}");
    assert!(out.stderr.len() + out.stdout.len() < 10_000, "{out:?}");
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}
