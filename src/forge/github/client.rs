//! How this process talks to GitHub: one runtime for every call, clients that wait out rate
//! limits (bounded, and said in the log), a bounded cache of answers for conditional requests
//! (`If-None-Match`: a 304 costs no rate limit), and what each credential has left.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderMap, Uri};
use octocrab::service::middleware::cache::{CacheKey, CacheStorage, CacheWriter, CachedResponse};
use octocrab::service::middleware::retry::{RateLimitMetrics, RetryConfig};
use octocrab::Octocrab;

use crate::error::{Error, Result};

/// The longest a call waits for GitHub (a rate limit's reset included): past it, the call fails
/// and the caller's own retry (the journal's, the next pass's) takes over.
pub const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// The runtime every GitHub call of this process runs on: clients (and the tokens octocrab caches
/// in them) outlive one event, so their connections must too.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("github")
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                // Without threads nothing can run at all; there is nothing to fall back to.
                eprintln!("error: cannot start the GitHub runtime: {e}");
                std::process::exit(70)
            })
    })
}

/// Run `f` on the GitHub runtime, waiting at most [`LONGEST_WAIT`].
pub fn block_on<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    runtime().block_on(async {
        match tokio::time::timeout(LONGEST_WAIT, f).await {
            Ok(r) => r,
            Err(_) => Err(Error::remote(format!(
                "GitHub: {what} took longer than {} s (a rate limit?); it is retried later",
                LONGEST_WAIT.as_secs()
            ))),
        }
    })
}

/// Who a client speaks as.
pub enum Credential<'a> {
    /// Nobody: public data only.
    Anonymous,
    /// A token someone handed us (`GITHUB_TOKEN`).
    Token(&'a crate::redact::Secret),
    /// A GitHub App, with its RS256 key: the App's own endpoints (JWT), and installations.
    App(u64, octocrab::auth::EncodingKey),
}

/// A client for `api` speaking as `who`, with the rate-limit handling and the answer cache every
/// client shares. Built on the GitHub runtime.
pub fn client(api: &str, who: Credential<'_>) -> Result<Octocrab> {
    let _entered = runtime().enter();
    let b = Octocrab::builder()
        .base_uri(api)
        .map_err(|e| Error::config(format!("GitHub API URL {api:?}: {e}")))?
        .add_retry_config(RetryConfig::HandleRateLimits {
            metrics: Arc::new(LogWaits),
            max_retries: 3,
            min_wait_seconds: 5,
            retry_on_forbidden: false,
        })
        .cache(Answers::default());
    let b = match who {
        Credential::Anonymous => b,
        Credential::Token(t) => b.personal_token(t.expose().to_string()),
        Credential::App(id, key) => b.app(octocrab::models::AppId(id), key),
    };
    b.build()
        .map_err(|e| Error::internal(format!("GitHub client: {}", describe(&e))))
}

/// Says in the log when GitHub asks us to wait.
struct LogWaits;

impl RateLimitMetrics for LogWaits {
    fn retry_after_error(
        &self,
        req: &http::Request<octocrab::OctoBody>,
        status: http::StatusCode,
        left: usize,
    ) {
        tracing::info!(
            "GitHub answered {status} to {} {}; retrying ({left} tries left)",
            req.method(),
            req.uri().path()
        );
    }

    fn rate_limited(
        &self,
        req: &http::Request<octocrab::OctoBody>,
        status: http::StatusCode,
        left: usize,
        seconds: u64,
    ) {
        tracing::warn!(
            "GitHub rate limit ({status}) on {} {}: waiting {seconds} s before retrying (at most {} s in all, {left} tries left)",
            req.method(),
            req.uri().path(),
            LONGEST_WAIT.as_secs()
        );
    }
}

/// At most this many answers are kept for conditional requests; the oldest goes first.
const CACHED_ANSWERS: usize = 2_000;

/// GitHub's answers by address, with their `ETag`/`Last-Modified`, bounded.
#[derive(Default)]
struct Answers(Arc<Mutex<AnswerData>>);

#[derive(Default)]
struct AnswerData {
    keys: HashMap<Uri, CacheKey>,
    bodies: HashMap<Uri, CachedResponse>,
    order: VecDeque<Uri>,
}

impl CacheStorage for Answers {
    fn try_hit(&self, uri: &Uri) -> Option<CacheKey> {
        let d = self.0.lock().ok()?;
        d.keys
            .get(uri)
            .filter(|_| d.bodies.contains_key(uri))
            .cloned()
    }

    fn load(&self, uri: &Uri) -> Option<CachedResponse> {
        self.0.lock().ok()?.bodies.get(uri).cloned()
    }

    fn writer(&self, uri: &Uri, key: CacheKey, headers: HeaderMap) -> Box<dyn CacheWriter> {
        Box::new(AnswerWriter {
            data: self.0.clone(),
            uri: uri.clone(),
            key: Some(key),
            answer: CachedResponse {
                body: Vec::new(),
                headers,
            },
        })
    }
}

struct AnswerWriter {
    data: Arc<Mutex<AnswerData>>,
    uri: Uri,
    key: Option<CacheKey>,
    answer: CachedResponse,
}

impl CacheWriter for AnswerWriter {
    fn write_body(&mut self, data: &[u8]) {
        self.answer.body.extend_from_slice(data);
    }
}

impl Drop for AnswerWriter {
    fn drop(&mut self) {
        let (Some(key), Ok(mut d)) = (self.key.take(), self.data.lock()) else {
            return;
        };
        if d.keys.insert(self.uri.clone(), key).is_none() {
            d.order.push_back(self.uri.clone());
        }
        d.bodies
            .insert(self.uri.clone(), std::mem::take(&mut self.answer));
        while d.order.len() > CACHED_ANSWERS {
            if let Some(old) = d.order.pop_front() {
                d.keys.remove(&old);
                d.bodies.remove(&old);
            }
        }
    }
}

/// What each credential had left of its rate limit when last read (`x-ratelimit-remaining`,
/// `GET /rate_limit`), by a name that is never the credential: `token` or `installation <id>`.
pub fn budgets() -> &'static Mutex<BTreeMap<String, Budget>> {
    static BUDGETS: OnceLock<Mutex<BTreeMap<String, Budget>>> = OnceLock::new();
    BUDGETS.get_or_init(Default::default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub remaining: u64,
    pub limit: u64,
    /// When the budget is whole again (seconds since the epoch).
    pub reset: u64,
}

/// Read what `client` has left (`GET /rate_limit` costs nothing) and remember it as `name`.
pub async fn read_budget(client: &Octocrab, name: &str) -> Result<Budget> {
    #[derive(serde::Deserialize)]
    struct Limits {
        resources: Resources,
    }
    #[derive(serde::Deserialize)]
    struct Resources {
        core: Core,
    }
    #[derive(serde::Deserialize)]
    struct Core {
        limit: u64,
        remaining: u64,
        reset: u64,
    }
    let l: Limits = client
        .get("/rate_limit", None::<&()>)
        .await
        .map_err(|e| Error::remote(format!("GitHub: read the rate limit: {}", describe(&e))))?;
    let b = Budget {
        remaining: l.resources.core.remaining,
        limit: l.resources.core.limit,
        reset: l.resources.core.reset,
    };
    if let Ok(mut all) = budgets().lock() {
        all.insert(name.to_string(), b);
    }
    Ok(b)
}

/// An octocrab error as a short line: GitHub's message and status, never a header or a token.
pub fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!(
                "{} ({})",
                crate::redact::remote_text(&source.message, 300),
                source.status_code
            )
        }
        other => crate::redact::remote_text(&other.to_string(), 300),
    }
}

/// The HTTP status of a GitHub error answer.
pub fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}
