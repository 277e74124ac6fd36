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
use crate::signatures::{verify_github, verify_gitlab};

/// The largest payload accepted (GitHub caps deliveries at 25 MB).
pub const MAX_BODY: usize = 25 * 1024 * 1024;
/// How long a client may take to send its body (GitHub and GitLab send at once).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

pub use super::job::Job;

/// The webhook secrets; a forge without one is not served (404).
#[derive(Clone, Default)]
pub struct Secrets {
    pub github: Option<Vec<u8>>,
    pub gitlab: Option<Vec<u8>>,
    pub gitea: Option<Vec<u8>>,
}

/// Where accepted deliveries wait for the worker.
pub enum Queue {
    /// In memory, bounded (without --state-dir): beyond it, 503.
    Memory(SyncSender<Job>),
    /// In the journal, bounded by its size; the worker is woken to drain it.
    Journal(Arc<super::journal::Journal>, SyncSender<()>),
}

/// What the routes share with the rest of the service.
pub struct Service {
    pub secrets: Secrets,
    pub queue: Queue,
    pub seen: super::dedupe::Seen,
    /// Bytes of request bodies being read at once, in KiB permits: unsigned bodies cannot
    /// take the memory before they are rejected.
    pub bodies: Arc<tokio::sync::Semaphore>,
    pub metrics: Arc<super::metrics::Metrics>,
    /// Set once the GitOps repository was read, cleared while it cannot be reached.
    pub ready: Arc<super::readiness::Readiness>,
    /// The previews page, when a token turns it on.
    pub ui: Option<Arc<super::page::Ui>>,
}

type Shared = Service;

type Answer = (StatusCode, String);

/// The routes, queuing accepted deliveries.
pub fn router(service: Service) -> Router {
    let ui = service.ui.clone();
    let shared = Arc::new(service);
    let hooks = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .route("/hooks/gitea", post(gitea))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: POST /hooks/github or /hooks/gitlab, GET /healthz",
            )
        })
        .with_state(shared);
    let all = match ui {
        Some(ui) => hooks.merge(super::page::routes(ui)),
        None => hooks,
    };
    all.layer(axum::middleware::from_fn(super::guard::guard))
}

/// How long the backlog may go without progress before the service says it is not ready.
const STALL: Duration = Duration::from_secs(120);

async fn readyz(State(s): State<Arc<Shared>>) -> Answer {
    if let Queue::Journal(j, _) = &s.queue {
        let probe = j.clone();
        if let Ok(Err(why)) = tokio::task::spawn_blocking(move || probe.writable()).await {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"));
        }
        if !j.progressing(STALL) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: {} journaled deliveries and none handled for {STALL:?}",
                    j.backlog()
                ),
            );
        }
    }
    match s.ready.status() {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
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
    let (body, _permit) = match read_body(&s, &headers, body).await {
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

/// Gitea and Forgejo deliveries (webhook type `gitea`), signed with `X-Gitea-Signature`.
async fn gitea(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Answer {
    let Some(secret) = s.secrets.gitea.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "Gitea webhooks are not configured here".into(),
        );
    };
    let (body, _permit) = match read_body(&s, &headers, body).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    if !crate::signatures::verify_gitea(secret, &body, header(&headers, "X-Gitea-Signature")) {
        return (
            StatusCode::UNAUTHORIZED,
            "the X-Gitea-Signature signature is missing or wrong".into(),
        );
    }
    let Some(event) = header(&headers, "X-Gitea-Event") else {
        return (StatusCode::BAD_REQUEST, "missing X-Gitea-Event".into());
    };
    if !crate::events::gitea::handles(event) {
        s.metrics.event("gitea", event, "ignored");
        return (
            StatusCode::ACCEPTED,
            format!("ignored: Gitea event {event:?} is not handled"),
        );
    }
    let delivery = header(&headers, "X-Gitea-Delivery").map(str::to_string);
    enqueue(
        s.clone(),
        Forge::Gitea,
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
    let (body, _permit) = match read_body(&s, &headers, body).await {
        Ok(b) => b,
        Err(answer) => return answer,
    };
    let delivery = header(&headers, "X-Gitlab-Event-UUID").map(str::to_string);
    enqueue(s.clone(), Forge::GitLab, event, delivery, body).await
}

/// All request bodies being read at once, at most (KiB).
pub const BODIES_IN_FLIGHT_KIB: usize = 32 * 1024;

/// The body, at most `MAX_BODY` bytes (one announced larger is refused before it is read),
/// within `BODY_DEADLINE`, and only while the bodies in flight stay within their budget (the
/// permit is held until the delivery is queued).
async fn read_body(
    s: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(axum::body::Bytes, tokio::sync::OwnedSemaphorePermit), Answer> {
    let announced = header(headers, "Content-Length").and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY) {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload over {MAX_BODY} bytes"),
        ));
    }
    let limit = announced.unwrap_or(MAX_BODY);
    let kib = (limit / 1024 + 1).min(BODIES_IN_FLIGHT_KIB) as u32;
    let permit =
        match tokio::time::timeout(BODY_DEADLINE, s.bodies.clone().acquire_many_owned(kib)).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy: too many large payloads at once; the forge will retry".into(),
                ))
            }
        };
    match tokio::time::timeout(BODY_DEADLINE, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!("the payload did not arrive within {BODY_DEADLINE:?}"),
        )),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload over {limit} bytes, or cut short"),
        )),
        // Not copied here: a body is copied once, after its signature was checked.
        Ok(Ok(bytes)) => Ok((bytes, permit)),
    }
}

/// Check the payload as `forge`'s event, journal it, and queue it: answered 2xx only once it is
/// durable (with a journal).
async fn enqueue(
    s: Arc<Shared>,
    forge: Forge,
    event: Option<String>,
    delivery: Option<String>,
    body: axum::body::Bytes,
) -> Answer {
    let name = forge.name();
    let kind = event.clone().unwrap_or_default();
    let Ok(body) = String::from_utf8(body.into()) else {
        return (StatusCode::BAD_REQUEST, "the payload is not UTF-8".into());
    };
    if let Err(e) = crate::events::check(forge, event.as_deref(), &body) {
        s.metrics.event(name, &kind, "malformed");
        return (StatusCode::BAD_REQUEST, e.message);
    }
    if let Some(id) = &delivery {
        if !s.seen.first_time(id) {
            // A redelivery of one still journaled (kept after a failure): try it now.
            if let Queue::Journal(j, wake) = &s.queue {
                if j.retry_now(id) {
                    let _ = wake.try_send(());
                    s.metrics.event(name, &kind, "retried");
                    return (
                        StatusCode::ACCEPTED,
                        format!("delivery {id} is still waiting: retrying it now"),
                    );
                }
            }
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
    let job = Job {
        forge,
        event,
        delivery: delivery.clone(),
        body,
        accepted: std::time::Instant::now(),
        journal_id: None,
    };
    let refused = match &s.queue {
        Queue::Journal(j, wake) => {
            // A synced write: off the async threads.
            let journal = j.clone();
            match tokio::task::spawn_blocking(move || journal.accept(&job)).await {
                Ok(Ok(_)) => {
                    let _ = wake.try_send(());
                    None
                }
                Ok(Err(super::journal::Refusal::Full { bytes, max })) => Some(format!(
                    "busy: the journal holds {bytes} of its {max} bytes; the forge may retry later"
                )),
                Ok(Err(super::journal::Refusal::Failed(e))) => {
                    tracing::error!("{e}");
                    Some("cannot journal the delivery; the forge may retry".into())
                }
                Err(e) => {
                    tracing::error!("journal: {e}");
                    Some("cannot journal the delivery; the forge may retry".into())
                }
            }
        }
        Queue::Memory(tx) => match tx.try_send(job) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => {
                Some("busy: too many events waiting; the forge may retry".into())
            }
            Err(TrySendError::Disconnected(_)) => Some("shutting down; the forge may retry".into()),
        },
    };
    match refused {
        None => {
            s.metrics.event(name, &kind, "accepted");
            s.metrics.queue_depth.inc();
            (StatusCode::ACCEPTED, "accepted".into())
        }
        Some(why) => {
            forget(&s, &delivery);
            s.metrics.event(name, &kind, "shed");
            (StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }
}

/// Serve until `shutdown` resolves: then stop accepting and finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address: the previews page trusts an auth proxy's headers only from it.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
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
