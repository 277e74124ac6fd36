//! The previews page over HTTP (`serve` as a child process): off without a token, 401 without
//! credentials and nothing in the body, the bearer token and the cookie handshake, a hostile
//! title escaped, a strict Content-Security-Policy and no inline script.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::serving::{request, Serving};
use support::TestEnv;

const READ: &str = "read-token-0123456789";
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// A GitOps repository with previews of two applications, one with a hostile title.
fn repository() -> TestEnv {
    let env = TestEnv::new();
    env.deploy(&[
        "--branch",
        "feature/web",
        "--app",
        "web",
        "--id",
        "7",
        "--title",
        HOSTILE,
    ])
    .ok();
    env.deploy(&["--branch", "feature/api", "--app", "api", "--id", "8"])
        .ok();
    env
}

fn get(s: &Serving, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    request(s.port, "GET", path, headers, "")
}

/// The raw answer, headers included.
fn raw(s: &Serving, path: &str, headers: &[(&str, String)]) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

fn bearer() -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {READ}"))]
}

/// The API once serve has read the repository.
fn previews(s: &Serving) -> Value {
    let start = Instant::now();
    loop {
        let (code, body) = get(s, "/api/previews", &bearer());
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["rows"].as_array().is_some_and(|r| r.len() == 2) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no rows: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_is_off_without_a_token() {
    let env = repository();
    let s = Serving::start(&env, env.remote.to_str().unwrap(), &[]);
    assert_eq!(get(&s, "/", &[]).0, 404);
    assert_eq!(get(&s, "/api/previews", &bearer()).0, 404);
}

#[test]
fn read_access_by_bearer_token_and_by_the_cookie_handshake() {
    let env = repository();
    let log = env.path("serve.log");
    let s = Serving::start_logging(
        &env,
        env.remote.to_str().unwrap(),
        &[("FLUX_EPHEMERAL_UI_TOKEN", READ.into())],
        &log,
    );
    // Without credentials, or with wrong ones: 401 and no data.
    for (path, headers) in [
        ("/", vec![]),
        ("/api/previews", vec![]),
        (
            "/api/previews",
            vec![("Authorization", "Bearer wrong".to_string())],
        ),
        ("/", vec![("Cookie", format!("fe_ui={}", "00".repeat(32)))]),
    ] {
        let (code, body) = get(&s, path, &headers);
        assert_eq!(code, 401, "{path}");
        assert!(!body.contains("feature"), "data in a 401: {body}");
    }
    let v = previews(&s);
    assert_eq!(v["totals"]["previews"], 2);
    assert_eq!(v["applications"], serde_json::json!(["api", "web"]));
    let web = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["application"] == "web")
        .unwrap()
        .clone();
    assert_eq!(web["title"], HOSTILE, "the API gives the data as it is");
    assert_eq!(web["branch"], "feature/web");
    assert_eq!(web["change"], "7");

    // The browser's way in: the token once, then a cookie without it.
    let answer = raw(&s, &format!("/?token={READ}"), &[]);
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie_line = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"));
    assert!(
        !cookie_line.contains(READ),
        "the cookie holds the token itself"
    );
    assert!(answer.to_ascii_lowercase().contains("location: /\r\n"));
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap();
    let page = raw(&s, "/", &[("Cookie", cookie.to_string())]);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let lower = page.to_ascii_lowercase();
    assert!(lower.contains("content-security-policy: default-src 'none'; script-src 'self'"));
    // The hostile title is text, not markup.
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(!page.contains(HOSTILE));
    // No inline script: only the page's own asset.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"<script src="/assets/previews.js" defer></script>"#));
    let wrong = raw(&s, "/?token=not-the-token-4711", &[]);
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert!(!wrong.to_ascii_lowercase().contains("set-cookie"));
    // The assets carry no data and need no token.
    assert_eq!(get(&s, "/assets/previews.js", &[]).0, 200);
    assert_eq!(get(&s, "/assets/previews.css", &[]).0, 200);
    assert_eq!(get(&s, "/assets/favicon.svg", &[]).0, 200);

    // Every request to the page and the API has an access line; no token is ever logged.
    drop(s);
    let log = std::fs::read_to_string(&log).unwrap();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("previews page"))
        .collect();
    assert!(
        access
            .iter()
            .any(|l| l.contains("status=401") && l.contains("path=\"/api/previews\"")),
        "{log}"
    );
    assert!(
        access
            .iter()
            .any(|l| l.contains("status=200") && l.contains("role=Some(Read)")),
        "{log}"
    );
    assert!(access.len() >= 8, "{log}");
    for secret in [READ, "not-the-token-4711"] {
        assert!(!log.contains(secret), "a token in the log: {log}");
    }
}

#[test]
fn an_auth_proxy_is_believed_only_from_its_own_address() {
    let env = repository();
    let user = |groups: &str| {
        vec![
            ("X-Forwarded-User", "alice".to_string()),
            ("X-Forwarded-Groups", groups.to_string()),
        ]
    };
    // The proxy is 127.0.0.1, where the test connects from.
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("FLUX_EPHEMERAL_UI_TRUST_PROXY", "127.0.0.1".into()),
            ("FLUX_EPHEMERAL_UI_WRITE_GROUPS", "platform,sre".into()),
        ],
    );
    let (code, body) = get(&s, "/api/previews", &user("devs"));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["viewer"],
        serde_json::json!({"name": "alice", "role": "read"})
    );
    let (_, body) = get(&s, "/api/previews", &user("devs, sre"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["viewer"]["role"], "write");
    assert_eq!(get(&s, "/api/previews", &[]).0, 401, "no user header");
    drop(s);
    // Another address is trusted: the same headers from here are nobody's.
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[("FLUX_EPHEMERAL_UI_TRUST_PROXY", "10.9.9.9".into())],
    );
    let (code, body) = get(&s, "/api/previews", &user("sre"));
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains("feature"));
}

const WRITE: &str = "write-token-9876543210";

fn form(file: &str, csrf: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("file", file)
        .append_pair("csrf", csrf)
        .finish()
}

/// A form POST as a browser sends it.
fn post(s: &Serving, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        s.port,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[test]
fn the_write_role_extends_and_destroys_through_the_buttons() {
    let env = repository();
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("FLUX_EPHEMERAL_UI_TOKEN", READ.into()),
            ("FLUX_EPHEMERAL_UI_WRITE_TOKEN", WRITE.into()),
        ],
    );
    let v = previews(&s);
    let web = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["application"] == "web")
        .unwrap()
        .clone();
    let file = web["file"].as_str().unwrap().to_string();
    // The browser's way: the cookie, and the CSRF token the page carries.
    let answer = raw(&s, &format!("/?token={WRITE}"), &[]);
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (code, page) = get(&s, "/", &[("Cookie", cookie.clone())]);
    assert_eq!(code, 200);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token on the page")
        .to_string();
    let commits = env.commit_count();
    let with_cookie = vec![("Cookie", cookie.clone())];

    // Refused: a read token, a wrong CSRF token, another origin.
    let (code, _) = post(
        &s,
        "/actions/extend",
        &[("Authorization", format!("Bearer {READ}"))],
        &form(&file, ""),
    );
    assert_eq!(code, 403);
    let (code, _) = post(&s, "/actions/extend", &with_cookie, &form(&file, "0000"));
    assert_eq!(code, 403);
    let mut other = with_cookie.clone();
    other.push(("Origin", "https://evil.example.com".into()));
    let (code, _) = post(&s, "/actions/extend", &other, &form(&file, &csrf));
    assert_eq!(code, 403);
    // A browser that hides where the form came from, or says it was another site.
    for (k, v) in [("Origin", "null"), ("Sec-Fetch-Site", "cross-site")] {
        let mut other = with_cookie.clone();
        other.push((k, v.into()));
        let (code, _) = post(&s, "/actions/extend", &other, &form(&file, &csrf));
        assert_eq!(code, 403, "{k}: {v}");
    }
    assert_eq!(env.commit_count(), commits, "refused actions committed");

    // Extend: a commit that says who asked.
    let (code, body) = post(&s, "/actions/extend", &with_cookie, &form(&file, &csrf));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("extended"), "{body}");
    assert_eq!(env.commit_count(), commits + 1);
    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Requested-by: write token (previews page)"),
        "{message}"
    );
    // Destroy through the API with the bearer token (no CSRF needed there).
    let (code, body) = post(
        &s,
        "/actions/destroy",
        &[("Authorization", format!("Bearer {WRITE}"))],
        &form(&file, ""),
    );
    assert_eq!(code, 200, "{body}");
    assert!(env
        .file(&format!("overlays/ephemeral-instances/{file}"))
        .is_none());
    // The page shows it at once.
    assert_eq!(previews_now(&s)["totals"]["previews"], 1);
}

fn previews_now(s: &Serving) -> Value {
    let (_, body) = get(s, "/api/previews", &bearer());
    serde_json::from_str(&body).unwrap()
}

#[test]
fn behind_the_trusted_proxy_its_write_group_acts_from_the_proxied_origin() {
    let env = repository();
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("FLUX_EPHEMERAL_UI_TRUST_PROXY", "127.0.0.1".into()),
            ("FLUX_EPHEMERAL_UI_WRITE_GROUPS", "sre".into()),
            // Read access for the test's own look at the rows.
            ("FLUX_EPHEMERAL_UI_TOKEN", READ.into()),
        ],
    );
    let v = previews(&s);
    let file = v["rows"][0]["file"].as_str().unwrap().to_string();
    let user = vec![
        ("X-Forwarded-User", "alice".to_string()),
        ("X-Forwarded-Groups", "sre".to_string()),
        ("X-Forwarded-Host", "previews.example.com".to_string()),
    ];
    let (code, page) = get(&s, "/", &user);
    assert_eq!(code, 200);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token for alice")
        .to_string();
    let mut from_browser = user.clone();
    from_browser.push(("Origin", "https://previews.example.com".into()));
    let (code, body) = post(&s, "/actions/sleep", &from_browser, &form(&file, &csrf));
    assert_eq!(code, 200, "{body}");
    let message = env.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Requested-by: alice (previews page)"),
        "{message}"
    );
    // Another site is still another site.
    let mut elsewhere = user.clone();
    elsewhere.push(("Origin", "https://evil.example.com".into()));
    let (code, _) = post(&s, "/actions/wake", &elsewhere, &form(&file, &csrf));
    assert_eq!(code, 403);
}

/// Without cluster credentials, each row's state is what Flux's notification Provider posted as
/// a commit status on the application commit (only in Flux's exact context form).
#[tokio::test(flavor = "multi_thread")]
async fn without_the_cluster_the_state_comes_from_fluxs_commit_statuses() {
    use support::fake_forges::{github_pull, FakeGitHub};
    const OK: &str = "1111111111111111111111111111111111111111";
    const BAD: &str = "2222222222222222222222222222222222222222";
    const QUIET: &str = "3333333333333333333333333333333333333333";
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\ngithub_repository: org/app\n"),
        )],
        "config",
    );
    let gh = FakeGitHub::start("bot").await;
    gh.permission("org/app", "writer", "write");
    for (n, branch, sha) in [
        (7, "feature/ok", OK),
        (8, "feature/bad", BAD),
        (9, "feature/quiet", QUIET),
    ] {
        gh.pull("org/app", github_pull("org/app", n, branch, sha, "org/app"));
        support::fake_forges::github_comment_handled(
            &env,
            &gh,
            "org/app",
            n,
            "writer",
            "/deploy-ephemeral",
        )
        .await
        .ok();
    }
    let context = |branch: &str| env.flux_status_context(branch);
    gh.post_status(
        "org/app",
        OK,
        &context("feature/ok"),
        "success",
        "Reconciliation finished",
    );
    gh.post_status(
        "org/app",
        BAD,
        &context("feature/bad"),
        "failure",
        "health check failed after 30s: <script>x</script>",
    );
    // Someone else's status that merely looks like Flux's counts for nothing.
    gh.post_status(
        "org/app",
        QUIET,
        &format!("{}-x/1a2b3c4d", context("feature/quiet")),
        "success",
        "",
    );

    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("GITHUB_API_URL", gh.uri()),
            ("GITHUB_TOKEN", "ghs-test-token".into()),
            ("FLUX_EPHEMERAL_UI_TOKEN", READ.into()),
        ],
    );
    let state = |v: &Value, branch: &str| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["branch"] == branch)
            .map(|r| r["state"].as_str().unwrap().to_string())
    };
    let v = tokio::task::block_in_place(|| {
        let start = Instant::now();
        loop {
            let v = previews_now(&s);
            if state(&v, "feature/ok").as_deref() == Some("ready")
                && state(&v, "feature/bad").as_deref() == Some("failed")
            {
                return v;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let row = |branch: &str| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["branch"] == branch)
            .unwrap()
            .clone()
    };
    assert_eq!(row("feature/ok")["state"], "ready", "{v}");
    assert_eq!(row("feature/bad")["state"], "failed", "{v}");
    assert!(row("feature/bad")["message"]
        .as_str()
        .unwrap()
        .contains("health check failed after 30s"));
    assert_eq!(row("feature/quiet")["state"], "committed", "{v}");
    assert_eq!(v["totals"]["ready"], 1);
    assert_eq!(v["totals"]["failed"], 1);
}

/// The raw answer to a POST, headers included.
fn raw_post(s: &Serving, path: &str, headers: &[(&str, String)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        s.port,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

/// Behind the proxy, an `Authorization: Bearer` header the proxy passes on (junk, or the read
/// token) does not lift the CSRF check: only a bearer token that authenticated the request does.
/// An empty element of `X-Forwarded-Groups` names no group.
#[test]
fn a_proxy_users_form_needs_its_csrf_token_whatever_authorization_rides_along() {
    let env = repository();
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[
            ("FLUX_EPHEMERAL_UI_TRUST_PROXY", "127.0.0.1".into()),
            ("FLUX_EPHEMERAL_UI_WRITE_GROUPS", "sre".into()),
            ("FLUX_EPHEMERAL_UI_TOKEN", READ.into()),
        ],
    );
    let file = previews(&s)["rows"][0]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let commits = env.commit_count();
    for junk in ["Bearer junk".to_string(), format!("Bearer {READ}")] {
        let user = vec![
            ("X-Forwarded-User", "alice".to_string()),
            ("X-Forwarded-Groups", "sre".to_string()),
            ("Authorization", junk.clone()),
        ];
        let (code, _) = post(&s, "/actions/sleep", &user, &form(&file, "no-csrf"));
        assert_eq!(code, 403, "{junk}");
    }
    assert_eq!(
        env.commit_count(),
        commits,
        "no form without its CSRF token acted"
    );
    let (_, body) = get(
        &s,
        "/api/previews",
        &[
            ("X-Forwarded-User", "bob".to_string()),
            ("X-Forwarded-Groups", "viewers,".to_string()),
        ],
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["viewer"]["role"], "read", "{v}");
}

/// An empty write-group name is a configuration error, not a group everyone is in.
#[test]
fn an_empty_write_group_is_a_configuration_error() {
    let env = repository();
    for groups in ["platform,", "a,,b", " "] {
        let out = env.run_with(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--repo",
                env.remote.to_str().unwrap(),
            ],
            &[
                ("GITHUB_WEBHOOK_SECRET", "s"),
                ("FLUX_EPHEMERAL_UI_TRUST_PROXY", "127.0.0.1"),
                ("FLUX_EPHEMERAL_UI_WRITE_GROUPS", groups),
            ],
        );
        assert_eq!(out.code, 3, "{groups:?}: {out:?}");
        assert!(out.stderr.contains("empty group name"), "{out:?}");
    }
}

/// Every answer carries the security headers, and every request to the page's routes leaves an
/// access-log line, whatever answered it; a probe of the write endpoint without credentials is
/// answered 401 whatever its body.
#[test]
fn every_answer_has_the_security_headers_and_every_request_a_log_line() {
    let env = repository();
    let log = env.path("serve.log");
    let s = Serving::start_logging(
        &env,
        env.remote.to_str().unwrap(),
        &[("FLUX_EPHEMERAL_UI_WRITE_TOKEN", WRITE.into())],
        &log,
    );
    let answers = [
        raw(&s, "/", &[]),
        raw(&s, "/nowhere", &[]),
        raw(&s, "/assets/previews.css", &[]),
        raw(&s, "/assets/previews.js", &[]),
        raw(&s, "/signin", &[]),
        raw_post(
            &s,
            "/actions/sleep",
            &[("Content-Type", "application/json".into())],
            "{\"file\":1}",
        ),
        raw_post(
            &s,
            "/actions/sleep",
            &[
                ("Authorization", format!("Bearer {WRITE}")),
                ("Content-Type", "application/json".into()),
            ],
            "{}",
        ),
        raw_post(
            &s,
            "/actions/sleep",
            &[
                ("Authorization", format!("Bearer {WRITE}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            &"x".repeat(5000),
        ),
        raw_post(
            &s,
            "/actions/nothing",
            &[
                ("Authorization", format!("Bearer {WRITE}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            "file=x",
        ),
    ];
    let status = |a: &str| a.split_whitespace().nth(1).unwrap().to_string();
    let codes: Vec<String> = answers.iter().map(|a| status(a)).collect();
    assert_eq!(
        codes,
        ["401", "404", "200", "200", "200", "401", "415", "413", "403"]
    );
    for a in &answers {
        let head = a.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    }
    drop(s);
    let log = std::fs::read_to_string(&log).unwrap();
    for (path, code) in [
        ("/nowhere", "404"),
        ("/actions/sleep", "401"),
        ("/actions/sleep", "415"),
        ("/actions/sleep", "413"),
        ("/actions/nothing", "403"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("previews page")
                && l.contains(&format!("path=\"{path}\""))
                && l.contains(&format!("status={code}"))),
            "no access line for {path} {code}:\n{log}"
        );
    }
    assert!(!log.contains(WRITE), "a token reached the log");
}

/// Sign-in without a token in any URL: the form posts it, same origin and with the form's own
/// one-time value, and the cookie is set; another site's form, or a stale one, is refused.
#[test]
fn the_sign_in_form_sets_the_cookie_without_a_token_in_a_url() {
    let env = repository();
    let s = Serving::start(
        &env,
        env.remote.to_str().unwrap(),
        &[("FLUX_EPHEMERAL_UI_TOKEN", READ.into())],
    );
    let page = raw(&s, "/signin", &[]);
    let nonce = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let cookie = page
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let body = |token: &str, csrf: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("csrf", csrf)
            .finish()
    };
    let headers = |origin: &str| {
        vec![
            ("Cookie", cookie.clone()),
            ("Origin", origin.to_string()),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ]
    };
    let here = format!("http://127.0.0.1:{}", s.port);
    let status = |a: &str| a.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(
        status(&raw_post(
            &s,
            "/signin",
            &headers("https://evil.example.com"),
            &body(READ, &nonce)
        )),
        "403"
    );
    assert_eq!(
        status(&raw_post(
            &s,
            "/signin",
            &headers(&here),
            &body(READ, "stale")
        )),
        "403"
    );
    assert_eq!(
        status(&raw_post(
            &s,
            "/signin",
            &headers(&here),
            &body("guess", &nonce)
        )),
        "401"
    );
    let ok = raw_post(&s, "/signin", &headers(&here), &body(READ, &nonce));
    assert_eq!(status(&ok), "303", "{ok}");
    let session = ok
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: fe_ui=")
                .or_else(|| l.strip_prefix("Set-Cookie: fe_ui="))
        })
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    assert!(!session.contains(READ));
    let (code, page) = get(&s, "/", &[("Cookie", format!("fe_ui={session}"))]);
    assert_eq!(code, 200);
    assert!(
        page.contains("Signed in with the read token (read only)"),
        "{page}"
    );
}
