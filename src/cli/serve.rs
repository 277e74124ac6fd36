use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;
use tiny_http::{Header, Method, Request, Response, Server};

use super::args::{RepoArgs, SettingsArgs};
use super::handle::Handler;
use super::ops::Mode;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::webhook::{verify_github, verify_gitlab};

/// The largest payload accepted (GitHub caps deliveries at 25 MB).
const MAX_BODY: usize = 25 * 1024 * 1024;
/// Events waiting for the worker; beyond this, deliveries get 503 and the forge retries.
const QUEUE: usize = 256;

/// Receive GitHub and GitLab webhooks and handle them like `handle`, one at a time.
///
/// POST /hooks/github   GitHub deliveries, verified with X-Hub-Signature-256 against the secret in
///                      GITHUB_WEBHOOK_SECRET (or --github-secret-file); event from X-GitHub-Event
/// POST /hooks/gitlab   GitLab deliveries, verified with X-Gitlab-Token against GITLAB_WEBHOOK_TOKEN
///                      (or --gitlab-token-file); event from X-Gitlab-Event
/// GET  /healthz        200 when serving
///
/// A verified, well-formed delivery is answered 202 at once and handled in order; a bad signature
/// gets 401, a malformed payload 400 with the reason. Run it behind TLS (a reverse proxy).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServeCmd {
    /// Address to listen on
    #[arg(
        long,
        env = "FLUX_EPHEMERAL_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    listen: String,
    /// File holding the GitHub webhook secret [else GITHUB_WEBHOOK_SECRET]
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    github_secret_file: Option<PathBuf>,
    /// File holding the GitLab webhook secret token [else GITLAB_WEBHOOK_TOKEN]
    #[arg(long, env = "GITLAB_WEBHOOK_TOKEN_FILE", value_name = "FILE")]
    gitlab_token_file: Option<PathBuf>,
    /// GitLab's URL for API calls, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

struct Job {
    event: Option<String>,
    body: String,
}

impl ServeCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let github = secret(self.github_secret_file.as_ref(), "GITHUB_WEBHOOK_SECRET")?;
        let gitlab = secret(self.gitlab_token_file.as_ref(), "GITLAB_WEBHOOK_TOKEN")?;
        if github.is_none() && gitlab.is_none() {
            return Err(Error::config(
                "serve needs GITHUB_WEBHOOK_SECRET (or --github-secret-file) or GITLAB_WEBHOOK_TOKEN (or --gitlab-token-file)",
            ));
        }
        let server = Server::http(&self.listen)
            .map_err(|e| Error::input(format!("cannot listen on {}: {e}", self.listen)))?;
        eprintln!("flux-ephemeral serving webhooks on http://{}", self.listen);
        let handler = Handler {
            repo: &self.repo,
            settings: &self.settings,
            gitlab_url: self.gitlab_url.clone(),
        };
        let mode = Mode {
            format,
            ..Mode::default()
        };
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for job in rx {
                    let name = job.event.as_deref();
                    if let Err(e) = handler.handle(name, &job.body, &mode) {
                        tracing::error!(event = name.unwrap_or("GitLab"), "{e}");
                    }
                }
            });
            for mut request in server.incoming_requests() {
                let (status, text) =
                    answer(&mut request, github.as_deref(), gitlab.as_deref(), &tx);
                let _ = request.respond(Response::from_string(text).with_status_code(status));
            }
            drop(tx);
        });
        Ok(())
    }
}

/// Authenticate, check and queue one delivery; the status and text to answer with.
fn answer(
    request: &mut Request,
    github: Option<&[u8]>,
    gitlab: Option<&[u8]>,
    tx: &mpsc::SyncSender<Job>,
) -> (u16, String) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h: &&Header| h.field.to_string().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let (signature, github_event, gitlab_token, gitlab_event) = (
        header("X-Hub-Signature-256"),
        header("X-GitHub-Event"),
        header("X-Gitlab-Token"),
        header("X-Gitlab-Event"),
    );
    match (request.method(), path.as_str()) {
        (Method::Get, "/healthz") => (200, "ok".into()),
        (Method::Post, "/hooks/github") => {
            let Some(secret) = github else {
                return (404, "GitHub webhooks are not configured here".into());
            };
            let body = match read_body(request) {
                Ok(b) => b,
                Err(e) => return (413, e),
            };
            if !verify_github(secret, &body, signature.as_deref()) {
                return (
                    401,
                    "the X-Hub-Signature-256 signature is missing or wrong".into(),
                );
            }
            match github_event.as_deref() {
                None => (400, "missing X-GitHub-Event".into()),
                Some("ping") => (200, "pong".into()),
                Some(_) => enqueue(github_event, body, tx),
            }
        }
        (Method::Post, "/hooks/gitlab") => {
            let Some(token) = gitlab else {
                return (404, "GitLab webhooks are not configured here".into());
            };
            if !verify_gitlab(token, gitlab_token.as_deref()) {
                return (401, "the X-Gitlab-Token is missing or wrong".into());
            }
            match read_body(request) {
                Ok(body) => enqueue(gitlab_event, body, tx),
                Err(e) => (413, e),
            }
        }
        _ => (404, "not found: POST /hooks/github or /hooks/gitlab".into()),
    }
}

fn enqueue(event: Option<String>, body: Vec<u8>, tx: &mpsc::SyncSender<Job>) -> (u16, String) {
    let Ok(body) = String::from_utf8(body) else {
        return (400, "the payload is not UTF-8".into());
    };
    if let Err(e) = Handler::check(event.as_deref(), &body) {
        return (400, e.message);
    }
    match tx.try_send(Job { event, body }) {
        Ok(()) => (202, "accepted".into()),
        Err(_) => (
            503,
            "busy: too many events waiting; the forge will retry".into(),
        ),
    }
}

fn secret(file: Option<&PathBuf>, var: &str) -> Result<Option<Vec<u8>>> {
    let value = match file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| Error::config(format!("cannot read {}: {e}", f.display())))?,
        ),
        None => std::env::var(var).ok(),
    };
    Ok(value
        .map(|v| v.trim().as_bytes().to_vec())
        .filter(|v| !v.is_empty()))
}

/// Read at most `MAX_BODY` bytes of the request's body.
fn read_body(request: &mut Request) -> std::result::Result<Vec<u8>, String> {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(format!("payload over {MAX_BODY} bytes"));
    }
    let mut buf = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the payload: {e}"))?;
    if buf.len() > MAX_BODY {
        return Err(format!("payload over {MAX_BODY} bytes"));
    }
    Ok(buf)
}
