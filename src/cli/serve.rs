use std::path::PathBuf;
use std::sync::mpsc;

use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use super::handle::Handler;
use super::ops::Mode;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::reconcile::{application_names, first_snapshot};
use crate::server::http::{self, Job, Secrets};
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
/// The route decides the forge: a delivery to /hooks/gitlab is only ever a GitLab hook.
/// A verified, well-formed delivery is answered 202 at once and handled in order; other events
/// of the forge (push, check_run, Pipeline Hook, ...) are answered 202 "ignored", GitHub's ping
/// 200; a bad signature gets 401, a malformed payload 400 with the reason, a body that does not
/// arrive within 10 s 408. SIGTERM stops accepting, finishes the queue and exits 0.
/// Run it behind TLS (a reverse proxy).
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
    #[command(flatten)]
    notify: super::flux::NotifyArgs,
}

impl ServeCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let secrets = Secrets {
            github: secret(self.github_secret_file.as_ref(), "GITHUB_WEBHOOK_SECRET")?,
            gitlab: secret(self.gitlab_token_file.as_ref(), "GITLAB_WEBHOOK_TOKEN")?,
        };
        if secrets.github.is_none() && secrets.gitlab.is_none() {
            return Err(Error::config(
                "serve needs GITHUB_WEBHOOK_SECRET (or --github-secret-file) or GITLAB_WEBHOOK_TOKEN (or --gitlab-token-file)",
            ));
        }
        self.check_configured()?;
        let listener = std::net::TcpListener::bind(&self.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::input(format!("cannot listen on {}: {e}", self.listen)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        eprintln!("flux-ephemeral serving webhooks on http://{}", self.listen);
        let handler = Handler {
            repo: &self.repo,
            settings: &self.settings,
            gitlab_url: self.gitlab_url.clone(),
            artifact: Default::default(),
            notify: self.notify.clone(),
            wait: None,
        };
        let mode = Mode {
            format,
            ..Mode::default()
        };
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::scope(|scope| {
            // One worker handles the accepted deliveries in order; on shutdown it finishes them.
            scope.spawn(|| {
                for job in rx {
                    let name = job.event.as_deref();
                    if let Err(e) = handler.handle(job.forge, name, &job.body, &mode) {
                        tracing::error!(forge = ?job.forge, event = name.unwrap_or(""), "{e}");
                    }
                }
            });
            let served = runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                http::serve(listener, http::router(secrets, tx), http::terminated()).await
            });
            served.map_err(|e| Error::internal(format!("serving webhooks: {e}")))
        })
    }
}

impl ServeCmd {
    /// An always-on bot must know whose events to act on: an applications list, or the one
    /// repository of github_repository, gitlab_project or source_url.
    fn check_configured(&self) -> Result<()> {
        let (store, mut config) = super::ops::open(&self.repo, &self.settings, false)?;
        if !application_names(&store, &config)?.is_empty() {
            return Ok(());
        }
        let snap = first_snapshot(&store, &mut config)?;
        if snap.settings.application.repositories.is_empty() {
            return Err(Error::config(
                "serve needs to know which repositories' events to act on: set github_repository, gitlab_project or source_url in .flux-ephemeral.yaml, or list applications",
            ));
        }
        Ok(())
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
