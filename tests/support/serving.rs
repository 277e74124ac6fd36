//! `flux-ephemeral serve` as a child process on 127.0.0.1, and plain HTTP/1.1 requests to it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::servers::free_port;
use super::TestEnv;

pub const SECRET: &str = "webhook-s3cret";
pub const GL_TOKEN: &str = "gitlab-hook-token";

pub struct Serving {
    pub child: Child,
    pub port: u16,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// `serve` on a free port for the GitOps repository `repo`, both webhook secrets set, `vars`
    /// added to its environment.
    pub fn start(env: &TestEnv, repo: &str, vars: &[(&str, String)]) -> Serving {
        let log = std::env::var_os("FE_SERVE_LOG")
            .map(|p| Stdio::from(std::fs::File::create(p).unwrap()))
            .unwrap_or_else(Stdio::null);
        Self::spawn(env, repo, vars, log)
    }

    /// [`Serving::start`], its logs (stderr) written to `log`.
    pub fn start_logging(
        env: &TestEnv,
        repo: &str,
        vars: &[(&str, String)],
        log: &std::path::Path,
    ) -> Serving {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(env, repo, vars, Stdio::from(file))
    }

    fn spawn(env: &TestEnv, repo: &str, vars: &[(&str, String)], log: Stdio) -> Serving {
        let port = free_port();
        let mut c = env.command();
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--repo",
            repo,
            "--output",
            "json",
        ])
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("GITLAB_WEBHOOK_TOKEN", GL_TOKEN)
        .stdout(Stdio::null())
        .stderr(log);
        for (k, v) in vars {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serving { child, port }
    }

    pub fn post(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
        request(self.port, "POST", path, headers, body)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(self.port, "GET", path, &[], "")
    }
}

/// One HTTP request; the status code and body of the answer.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let text = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, text)
}

/// GitHub's headers for a signed delivery of `event`; the payload must be one GitHub would send
/// (its webhook schema), else the test fails. [`github_headers_unchecked`] for a hostile one.
pub fn github_headers(event: &str, body: &str) -> Vec<(&'static str, String)> {
    let payload: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("a signed GitHub delivery that is not JSON ({e}): use github_headers_unchecked")
    });
    super::contract::assert_github_webhook(event, &payload);
    github_headers_unchecked(event, body)
}

/// GitHub's headers for a signed delivery of `event`, whatever the body.
pub fn github_headers_unchecked(event: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-GitHub-Event", event.to_string()),
        (
            "X-Hub-Signature-256",
            flux_ephemeral::signatures::sign_github(SECRET.as_bytes(), body.as_bytes()),
        ),
    ]
}
