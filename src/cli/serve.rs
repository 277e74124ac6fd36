use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::{Error, Result};
use crate::output::Format;
use crate::reconcile::{application_names, first_snapshot};
use crate::server::http::{self, Queue, Secrets, Service};
use crate::server::journal::Journal;
use crate::server::metrics::Metrics;
use crate::server::worker::{Inbox, Worker};
use crate::service::environment::{self, Mode};
use crate::service::hook::Handler;

/// Events waiting for the worker; beyond this, deliveries get 503 and the forge retries.
const QUEUE: usize = 1024;
/// Memory for remembering delivery ids (16-byte hashes): about 65,000 ids.
const SEEN_BUDGET: usize = 4 << 20;

/// Receive GitHub and GitLab webhooks and handle them like `handle`, many in one transaction.
///
/// POST /hooks/github: GitHub deliveries, verified with X-Hub-Signature-256 against the secret in
/// GITHUB_WEBHOOK_SECRET (or --github-secret-file); event from X-GitHub-Event
///
/// POST /hooks/gitlab: GitLab deliveries, verified with X-Gitlab-Token against GITLAB_WEBHOOK_TOKEN
/// (or --gitlab-token-file); event from X-Gitlab-Event
///
/// POST /hooks/gitea: Gitea and Forgejo deliveries (webhook type gitea), verified with
/// X-Gitea-Signature against GITEA_WEBHOOK_SECRET (or --gitea-secret-file); event from
/// X-Gitea-Event
///
/// GET /healthz: 200 while the process serves
///
/// GET /readyz: 200 while the GitOps repository can be read and the configured forges answer
/// (checked every 30 s while idle)
///
/// GET /metrics: Prometheus metrics
///
/// The route decides the forge: a delivery to /hooks/gitlab is only ever a GitLab hook. A verified,
/// well-formed delivery is journaled under --state-dir, then answered 202; deliveries that wait
/// while a Git transaction runs are applied together in the next one (one fetch, one commit, one
/// push; replies per event). A redelivery (same X-GitHub-Delivery or X-Gitlab-Event-UUID) is
/// answered 200 and not handled twice. Other events of the forge (push, check_run, Pipeline Hook,
/// ...) are answered 202 "ignored", GitHub's ping 200; a bad signature 401, a malformed payload
/// 400, a body that does not arrive within 10 s 408. SIGTERM stops accepting, finishes the batch in
/// flight and exits 0; with --state-dir what was accepted and not handled is handled on the next
/// start. Run it behind TLS (a reverse proxy).
#[derive(Debug, Args)]
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
    /// File holding the Gitea webhook secret [else GITEA_WEBHOOK_SECRET]
    #[arg(long, env = "GITEA_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    gitea_secret_file: Option<PathBuf>,
    /// GitLab's URL for API calls, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    /// File holding the previews page's read token [else FLUX_EPHEMERAL_UI_TOKEN]; with a read
    /// or write token set, `GET /` is the previews page and `GET /api/previews` its JSON
    #[arg(long, env = "FLUX_EPHEMERAL_UI_TOKEN_FILE", value_name = "FILE")]
    ui_token_file: Option<PathBuf>,
    /// File holding the previews page's write token [else FLUX_EPHEMERAL_UI_WRITE_TOKEN]
    #[arg(long, env = "FLUX_EPHEMERAL_UI_WRITE_TOKEN_FILE", value_name = "FILE")]
    ui_write_token_file: Option<PathBuf>,
    /// The address of the auth proxy (oauth2-proxy) in front of the previews page: its
    /// X-Forwarded-User / X-Forwarded-Email are believed on connections from it, and only then
    #[arg(long, env = "FLUX_EPHEMERAL_UI_TRUST_PROXY", value_name = "IP")]
    ui_trust_proxy: Option<std::net::IpAddr>,
    /// Proxy groups (X-Forwarded-Groups) whose members get the write role
    #[arg(
        long,
        env = "FLUX_EPHEMERAL_UI_WRITE_GROUPS",
        value_delimiter = ',',
        value_name = "GROUP"
    )]
    ui_write_groups: Vec<String>,
    /// Journal accepted deliveries here before answering, and handle what was left on start
    /// (without it, deliveries accepted but not handled when the process stops are lost)
    #[arg(long, env = "FLUX_EPHEMERAL_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The journal holds at most this many bytes of deliveries waiting; beyond it, deliveries
    /// are answered 503 (saying the journal is full)
    #[arg(long, env = "FLUX_EPHEMERAL_JOURNAL_MAX_BYTES", default_value_t = 1 << 30, value_name = "BYTES")]
    journal_max_bytes: u64,
    /// At most this many deliveries in one Git transaction
    #[arg(
        long,
        env = "FLUX_EPHEMERAL_MAX_BATCH",
        default_value_t = 50,
        value_name = "N"
    )]
    max_batch: usize,
    /// Repair the drift webhooks missed this often, and once at start (closed changes destroyed,
    /// moved heads updated; like `flux-ephemeral resync`) and run the lifecycle (warn, sleep,
    /// wake, expire); 0 turns it off
    #[arg(long, env = "FLUX_EPHEMERAL_RESYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    resync_interval: std::time::Duration,
    /// The previews page without cluster access reads Flux's commit statuses on the forge: count
    /// only those this account posts (the one Flux's notification Provider uses)
    #[arg(long, env = "FLUX_EPHEMERAL_FLUX_STATUS_AUTHOR", value_name = "LOGIN")]
    flux_status_author: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(flatten)]
    notify: super::flags::NotifyArgs,
}

impl ServeCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let secrets = Secrets {
            github: secret(self.github_secret_file.as_ref(), "GITHUB_WEBHOOK_SECRET")?,
            gitlab: secret(self.gitlab_token_file.as_ref(), "GITLAB_WEBHOOK_TOKEN")?,
            gitea: secret(self.gitea_secret_file.as_ref(), "GITEA_WEBHOOK_SECRET")?,
        };
        if secrets.github.is_none() && secrets.gitlab.is_none() && secrets.gitea.is_none() {
            return Err(Error::config(
                "serve needs GITHUB_WEBHOOK_SECRET (or --github-secret-file), GITLAB_WEBHOOK_TOKEN (or --gitlab-token-file) or GITEA_WEBHOOK_SECRET (or --gitea-secret-file)",
            ));
        }
        if self.ui_write_groups.iter().any(|g| g.trim().is_empty()) {
            return Err(Error::config(
                "--ui-write-groups (FLUX_EPHEMERAL_UI_WRITE_GROUPS) holds an empty group name (an empty value, `a,,b` or a trailing comma): it would grant write to a proxy user with an empty group; list only non-empty names",
            ));
        }
        let repo = super::args::repo(&self.repo, &self.settings)?;
        // One store for the life of the server: later batches fetch only what is new.
        let (store, config) = environment::open(&repo, false)?;
        let unconfigured = check_configured(&store, &config)?;
        if let Some(e) = &unconfigured {
            tracing::error!("{e}: serving anyway; deliveries are kept until a commit fixes it");
        }
        let journal = self.journal()?;
        let listener = std::net::TcpListener::bind(&self.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::input(format!("cannot listen on {}: {e}", self.listen)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        eprintln!("flux-ephemeral serving webhooks on http://{}", self.listen);
        let metrics = Arc::new(Metrics::new());
        let ready = Arc::new(crate::server::readiness::Readiness::default());
        // A broken configuration in the GitOps repository is fixed by a commit, not by a restart:
        // serve comes up, says why it is not ready, and keeps what arrives until it is fixed.
        if let Some(e) = unconfigured {
            ready.unready(crate::server::worker::config_problem(&e));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (queue, inbox) = queue(&journal, &metrics);
        let journal = journal.map(|(j, _)| j);
        let previews = Arc::new(crate::server::page::PreviewsCache::default());
        let ui_repo = repo.clone();
        let mut worker = self.worker(repo, format, journal, &metrics, &ready, &previews);
        let ui = self.page(previews.clone(), ui_repo)?;
        // With the page on: Flux's verdict on each preview, from the cluster when `serve` has
        // credentials for it, else from Flux's commit statuses. With it off, nothing is kept.
        if ui.is_none() {
            worker.previews = None;
        } else {
            worker.kube = crate::flux::kube_wait::KubeWaiter::connect(None, None)
                .unwrap_or_else(|e| {
                    tracing::warn!("previews page: no cluster access ({e}); Flux's state comes from its commit statuses");
                    None
                })
                .map(crate::flux::kube_wait::KubeClients::with_default);
            if worker.kube.is_none() {
                worker.status_reads = Some(Default::default());
            }
        }
        let service = Service {
            ui,
            secrets,
            queue,
            seen: crate::server::dedupe::Seen::with_budget(SEEN_BUDGET),
            bodies: Arc::new(tokio::sync::Semaphore::new(http::BODIES_IN_FLIGHT_KIB)),
            metrics,
            ready,
        };
        std::thread::scope(|scope| {
            let (worker, worker_stop) = (&worker, stop.clone());
            scope.spawn(move || worker.run(&store, &config, inbox, &worker_stop));
            let served = runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let stop = stop.clone();
                http::serve(listener, http::router(service), async move {
                    http::terminated().await;
                    stop.store(true, Ordering::SeqCst);
                })
                .await
            });
            served.map_err(|e| Error::internal(format!("serving webhooks: {e}")))
        })
    }
}

impl ServeCmd {
    /// The worker that handles what the HTTP side accepted, in batches.
    fn worker(
        &self,
        repo: environment::Repo,
        format: Format,
        journal: Option<Arc<Journal>>,
        metrics: &Arc<Metrics>,
        ready: &Arc<crate::server::readiness::Readiness>,
        previews: &Arc<crate::server::page::PreviewsCache>,
    ) -> Worker {
        Worker {
            previews: Some(previews.clone()),
            kube: None,
            status_reads: None,
            status_author: self.flux_status_author.clone(),
            handler: Handler {
                repo,
                gitlab_url: self.gitlab_url.clone(),
                artifact: Default::default(),
                notify: self.notify.options(),
                wait: None,
                wait_checks: None,
            },
            mode: Mode {
                format,
                ..Mode::default()
            },
            journal,
            metrics: metrics.clone(),
            ready: ready.clone(),
            max_batch: self.max_batch.max(1),
            resync_every: (!self.resync_interval.is_zero()).then_some(self.resync_interval),
            kept: Default::default(),
            held: Default::default(),
            told: Default::default(),
        }
    }

    /// The journal under `--state-dir`, and how many of its entries were set aside at opening.
    fn journal(&self) -> Result<Option<(Arc<Journal>, usize)>> {
        let Some(dir) = self.state_dir.as_deref() else {
            return Ok(None);
        };
        let (j, quarantined) = Journal::open(dir, self.journal_max_bytes)?;
        if quarantined > 0 {
            eprintln!(
                "{quarantined} journaled deliveries did not finish twice: moved to {}",
                dir.join("failed").display()
            );
        }
        Ok(Some((Arc::new(j), quarantined)))
    }

    /// The previews page, when a token or the proxy is configured.
    fn page(
        &self,
        previews: Arc<crate::server::page::PreviewsCache>,
        repo: environment::Repo,
    ) -> Result<Option<Arc<crate::server::page::Ui>>> {
        let text = |v: Option<Vec<u8>>| v.map(|b| String::from_utf8_lossy(&b).into_owned());
        let read = text(secret(
            self.ui_token_file.as_ref(),
            "FLUX_EPHEMERAL_UI_TOKEN",
        )?);
        let write = text(secret(
            self.ui_write_token_file.as_ref(),
            "FLUX_EPHEMERAL_UI_WRITE_TOKEN",
        )?);
        let hosts = crate::previews::WebHosts {
            github: Some(
                std::env::var("GITHUB_SERVER_URL").unwrap_or_else(|_| "https://github.com".into()),
            ),
            gitlab: self
                .gitlab_url
                .clone()
                .or_else(|| std::env::var("CI_SERVER_URL").ok())
                .or_else(|| std::env::var("GITLAB_URL").ok()),
            gitea: std::env::var("GITEA_URL").ok().filter(|u| !u.is_empty()),
        };
        let proxy = crate::server::page::Proxy {
            address: self.ui_trust_proxy,
            write_groups: self.ui_write_groups.clone(),
        };
        Ok(
            crate::server::page::Ui::new(read.as_deref(), write.as_deref(), proxy, previews, hosts)
                .map(|ui| Arc::new(ui.with_repo(repo, self.gitlab_url.clone()))),
        )
    }
}

/// Where deliveries wait: the journal (what an earlier run left counted in the metrics), or a
/// bounded channel in memory.
fn queue(journal: &Option<(Arc<Journal>, usize)>, metrics: &Metrics) -> (Queue, Inbox) {
    match journal {
        Some((j, quarantined)) => {
            metrics.quarantined.inc_by(*quarantined as u64);
            metrics.queue_depth.set(j.backlog() as i64);
            if j.backlog() > 0 {
                eprintln!(
                    "handling {} deliveries journaled by an earlier run",
                    j.backlog()
                );
            }
            let (wake, woken) = mpsc::sync_channel::<()>(1);
            (
                Queue::Journal(j.clone(), wake),
                Inbox::Journal(j.clone(), woken),
            )
        }
        None => {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            (Queue::Memory(tx), Inbox::Memory(rx))
        }
    }
}

/// An always-on bot must know whose events to act on: an applications list, or the one
/// repository of github_repository, gitlab_project or source_url.
/// `Err`: serve cannot start (no repository to take events from). `Ok(Some(e))`: the GitOps
/// repository's configuration does not read now; a commit will fix it, so serve starts and says
/// so on `/readyz`.
fn check_configured(
    store: &crate::git::Store,
    config: &crate::reconcile::ConfigSource,
) -> Result<Option<Error>> {
    let in_repository = |e: Error| {
        if e.kind == crate::error::ErrorKind::Config && config.local.is_none() {
            Ok(Some(e))
        } else {
            Err(e)
        }
    };
    match application_names(store, config) {
        Ok(names) if !names.is_empty() => return Ok(None),
        Ok(_) => {}
        Err(e) => return in_repository(e),
    }
    let mut config = config.clone();
    let snap = match first_snapshot(store, &mut config) {
        Ok(s) => s,
        Err(e) => return in_repository(e),
    };
    if snap.settings.application.repositories.is_empty() {
        return Err(Error::config(
            "serve needs to know which repositories' events to act on: set github_repository, gitlab_project or source_url in .flux-ephemeral.yaml, or list applications",
        ));
    }
    Ok(None)
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
