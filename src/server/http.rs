//! The webhook server's HTTP side: routes, verification, limits. The route a delivery comes in on
//! decides the forge and the check: `/hooks/github` is verified with GitHub's HMAC and parsed as a
//! GitHub event, `/hooks/gitlab` with GitLab's token and parsed as a GitLab hook. Connections are
//! served concurrently and every body is read with a size limit and a deadline, so a slow or
//! silent client holds only its own connection.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;

use crate::events::Forge;
use crate::webhook::{verify_github, verify_gitlab};

/// The largest payload accepted (GitHub caps deliveries at 25 MB).
pub const MAX_BODY: usize = 25 * 1024 * 1024;
/// How long a client may take to send its body (GitHub and GitLab send at once).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// One verified, well-formed delivery waiting to be handled.
#[derive(Debug, Clone)]
pub struct Job {
    pub forge: Forge,
    pub event: Option<String>,
    /// `X-GitHub-Delivery` / `X-Gitlab-Event-UUID`.
    pub delivery: Option<String>,
    pub body: String,
    pub accepted: std::time::Instant,
    /// Its journal entry, removed once handled.
    pub journal_id: Option<String>,
}

/// The webhook secrets; a forge without one is not served (404).
#[derive(Clone, Default)]
pub struct Secrets {
    pub github: Option<Vec<u8>>,
    pub gitlab: Option<Vec<u8>>,
}

/// What the routes share with the rest of the service.
pub struct Service {
    pub secrets: Secrets,
    pub queue: SyncSender<Job>,
    pub journal: Option<Arc<super::journal::Journal>>,
    pub seen: super::dedupe::Seen,
    pub metrics: Arc<super::metrics::Metrics>,
    /// Set once the GitOps repository was read, cleared while it cannot be reached.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

type Shared = Service;

type Answer = (StatusCode, String);

/// The routes, queuing accepted deliveries.
pub fn router(service: Service) -> Router {
    let shared = Arc::new(service);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: POST /hooks/github or /hooks/gitlab, GET /healthz",
            )
        })
        .with_state(shared)
}

async fn readyz(State(s): State<Arc<Shared>>) -> Answer {
    if s.ready.load(std::sync::atomic::Ordering::SeqCst) {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the GitOps repository has not been read yet, or cannot be reached".into(),
        )
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Answer {
    (StatusCode::OK, s.metrics.render())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn github(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Answer {
    let Some(secret) = s.secrets.github.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "GitHub webhooks are not configured here".into(),
        );
    };
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    if !verify_github(secret, &body, header(&headers, "X-Hub-Signature-256")) {
        return (
            StatusCode::UNAUTHORIZED,
            "the X-Hub-Signature-256 signature is missing or wrong".into(),
        );
    }
    let Some(event) = header(&headers, "X-GitHub-Event") else {
        return (StatusCode::BAD_REQUEST, "missing X-GitHub-Event".into());
    };
    if event == "ping" {
        return (StatusCode::OK, "pong".into());
    }
    if !crate::events::github::handles(event) {
        s.metrics.event("github", event, "ignored");
        return (
            StatusCode::ACCEPTED,
            format!("ignored: GitHub event {event:?} is not handled"),
        );
    }
    let delivery = header(&headers, "X-GitHub-Delivery").map(str::to_string);
    enqueue(
        s.clone(),
        Forge::GitHub,
        Some(event.to_string()),
        delivery,
        body,
    )
    .await
}

async fn gitlab(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Answer {
    let Some(token) = s.secrets.gitlab.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "GitLab webhooks are not configured here".into(),
        );
    };
    if !verify_gitlab(token, header(&headers, "X-Gitlab-Token")) {
        return (
            StatusCode::UNAUTHORIZED,
            "the X-Gitlab-Token is missing or wrong".into(),
        );
    }
    let event = header(&headers, "X-Gitlab-Event").map(str::to_string);
    match event.as_deref() {
        Some(e) if crate::events::gitlab::handles(e) => {}
        // GitLab names every hook "... Hook"; those we do not act on are acknowledged.
        Some(e) if e.ends_with(" Hook") => {
            s.metrics.event("gitlab", e, "ignored");
            return (
                StatusCode::ACCEPTED,
                format!("ignored: GitLab {e} is not handled"),
            );
        }
        Some(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("X-Gitlab-Event {e:?} is not a GitLab hook"),
            )
        }
        None => return (StatusCode::BAD_REQUEST, "missing X-Gitlab-Event".into()),
    }
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let delivery = header(&headers, "X-Gitlab-Event-UUID").map(str::to_string);
    enqueue(s.clone(), Forge::GitLab, event, delivery, body).await
}

/// The body, at most `MAX_BODY` bytes (one announced larger is refused before it is read),
/// within `BODY_DEADLINE`.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Answer> {
    let announced = header(headers, "Content-Length").and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY) {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload over {MAX_BODY} bytes"),
        ));
    }
    match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!("the payload did not arrive within {BODY_DEADLINE:?}"),
        )),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload over {MAX_BODY} bytes, or cut short"),
        )),
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
    }
}

/// Check the payload as `forge`'s event, journal it, and queue it: answered 2xx only once it is
/// durable (with a journal).
async fn enqueue(
    s: Arc<Shared>,
    forge: Forge,
    event: Option<String>,
    delivery: Option<String>,
    body: Vec<u8>,
) -> Answer {
    let name = match forge {
        Forge::GitHub => "github",
        Forge::GitLab => "gitlab",
    };
    let kind = event.clone().unwrap_or_default();
    let Ok(body) = String::from_utf8(body) else {
        return (StatusCode::BAD_REQUEST, "the payload is not UTF-8".into());
    };
    if let Err(e) = crate::events::check(forge, event.as_deref(), &body) {
        s.metrics.event(name, &kind, "malformed");
        return (StatusCode::BAD_REQUEST, e.message);
    }
    if let Some(id) = &delivery {
        if !s.seen.first_time(id) {
            s.metrics.event(name, &kind, "duplicate");
            return (
                StatusCode::OK,
                format!("duplicate delivery {id}: already accepted"),
            );
        }
    }
    let forget = |s: &Shared, delivery: &Option<String>| {
        if let Some(id) = delivery {
            s.seen.forget(id);
        }
    };
    let mut job = Job {
        forge,
        event,
        delivery: delivery.clone(),
        body,
        accepted: std::time::Instant::now(),
        journal_id: None,
    };
    if let Some(j) = s.journal.clone() {
        // A synced write: off the async threads.
        let copy = job.clone();
        let written = tokio::task::spawn_blocking(move || j.accept(&copy)).await;
        match written {
            Ok(Ok(id)) => job.journal_id = Some(id),
            Ok(Err(e)) => {
                tracing::error!("{e}");
                forget(&s, &delivery);
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot journal the delivery; the forge will retry".into(),
                );
            }
            Err(e) => {
                tracing::error!("journal: {e}");
                forget(&s, &delivery);
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot journal the delivery; the forge will retry".into(),
                );
            }
        }
    }
    let journal_id = job.journal_id.clone();
    match s.queue.try_send(job) {
        Ok(()) => {
            s.metrics.event(name, &kind, "accepted");
            s.metrics.queue_depth.inc();
            (StatusCode::ACCEPTED, "accepted".into())
        }
        Err(e) => {
            if let (Some(j), Some(id)) = (&s.journal, journal_id) {
                j.done(&id);
            }
            forget(&s, &delivery);
            let why = match e {
                TrySendError::Full(_) => "busy: too many events waiting; the forge will retry",
                TrySendError::Disconnected(_) => "shutting down; the forge will retry",
            };
            (StatusCode::SERVICE_UNAVAILABLE, why.into())
        }
    }
}

/// Serve until `shutdown` resolves: then stop accepting and finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// SIGTERM or Ctrl-C.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
