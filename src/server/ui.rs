//! The previews page and its API (`GET /`, `GET /api/previews`), off unless a token is
//! configured. Read access with `FLUX_EPHEMERAL_UI_TOKEN` (or the write token): as
//! `Authorization: Bearer`, or for browsers `GET /?token=…` once, which sets an HttpOnly,
//! SameSite=Strict cookie holding the token's SHA-256 (never the token) and redirects to `/`.
//! Or through an auth proxy (`--ui-trust-proxy ADDR`): its `X-Forwarded-User`/`-Email` count only
//! on connections from that address. The page reads the snapshot the service keeps (refreshed
//! every 30 s), never the remote per request; its assets are served here, under a strict
//! Content-Security-Policy.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::EnvRecord;
use crate::overlay::Files;
use crate::previews::{view, WebHosts};

const PAGE: &str = include_str!("../../assets/previews.html.tera");
const SCRIPT: &str = include_str!("../../assets/previews.js");
const STYLE: &str = include_str!("../../assets/previews.css");
const COOKIE: &str = "fe_ui";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every environment with the preview URL its file holds.
type Records = Vec<(EnvRecord, Option<String>)>;

/// What the page shows, as the service last read it, and when.
#[derive(Default)]
pub struct PreviewsCache {
    inner: RwLock<Option<(Records, SystemTime)>>,
}

impl PreviewsCache {
    /// Take the environments of the instances directory's files, as just read.
    pub fn update(&self, files: &Files) {
        let records = crate::overlay::records(files)
            .into_iter()
            .map(|r| {
                let url = files
                    .get(&r.file)
                    .and_then(|c| crate::service::respec::preview_url_of(c));
                (r, url)
            })
            .collect();
        if let Ok(mut g) = self.inner.write() {
            *g = Some((records, SystemTime::now()));
        }
    }
}

/// Who may look, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

/// Sign-in through an auth proxy (oauth2-proxy): its `X-Forwarded-User` / `X-Forwarded-Email`
/// are believed only on connections from its address; `X-Forwarded-Groups` naming one of
/// `write_groups` grants write.
#[derive(Debug, Clone, Default)]
pub struct Proxy {
    pub address: Option<std::net::IpAddr>,
    pub write_groups: Vec<String>,
}

/// The page's settings: the digests of its tokens, the proxy it trusts, and where the forges'
/// web pages are.
pub struct Ui {
    read: Option<[u8; 32]>,
    write: Option<[u8; 32]>,
    proxy: Proxy,
    pub cache: Arc<PreviewsCache>,
    hosts: WebHosts,
}

/// Who is looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The proxy's user, or `token`.
    pub name: String,
    pub role: Role,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

impl Ui {
    /// The page, when a read or write token or a trusted proxy is set (`None`: off).
    pub fn new(
        read: Option<&str>,
        write: Option<&str>,
        proxy: Proxy,
        cache: Arc<PreviewsCache>,
        hosts: WebHosts,
    ) -> Option<Ui> {
        let read = read.filter(|t| !t.trim().is_empty()).map(digest);
        let write = write.filter(|t| !t.trim().is_empty()).map(digest);
        (read.is_some() || write.is_some() || proxy.address.is_some()).then_some(Ui {
            read,
            write,
            proxy,
            cache,
            hosts,
        })
    }

    /// The role a token's digest grants, compared in constant time.
    fn role_of(&self, d: &[u8]) -> Option<Role> {
        let is = |want: &Option<[u8; 32]>| {
            want.is_some_and(|w| d.len() == 32 && bool::from(w.as_slice().ct_eq(d)))
        };
        if is(&self.write) {
            Some(Role::Write)
        } else if is(&self.read) {
            Some(Role::Read)
        } else {
            None
        }
    }

    /// Who a request is: the trusted proxy's user (only on connections from the proxy's
    /// address), else the holder of its bearer token or cookie.
    pub fn viewer(&self, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> Option<Viewer> {
        if let (Some(proxy), Some(peer)) = (self.proxy.address, peer) {
            if proxy == peer {
                let header = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                };
                if let Some(name) = header("x-forwarded-user").or(header("x-forwarded-email")) {
                    let write = header("x-forwarded-groups").is_some_and(|g| {
                        g.split(',').any(|g| {
                            self.proxy
                                .write_groups
                                .iter()
                                .any(|w| w.eq_ignore_ascii_case(g.trim()))
                        })
                    });
                    return Some(Viewer {
                        name: name.chars().take(200).collect(),
                        role: if write { Role::Write } else { Role::Read },
                    });
                }
            }
        }
        self.role(headers).map(|role| Viewer {
            name: "token".into(),
            role,
        })
    }

    /// The role of a request: its bearer token, else its cookie.
    pub fn role(&self, headers: &HeaderMap) -> Option<Role> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(digest);
        if let Some(d) = bearer {
            return self.role_of(&d);
        }
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(str::to_string)
            })?;
        let d = hex::decode(cookie).ok()?;
        self.role_of(&d)
    }

    fn view(&self) -> (crate::previews::View, String) {
        let guard = self.cache.inner.read().ok();
        let (records, at) = match guard.as_ref().and_then(|g| g.as_ref()) {
            Some((r, at)) => (r.clone(), crate::model::format_time(*at)),
            None => (Vec::new(), "never (the repository was not read yet)".into()),
        };
        (view(&records, |_| None, &self.hosts, SystemTime::now()), at)
    }
}

fn log(path: &str, status: StatusCode, role: Option<Role>) {
    tracing::info!(target: "access", path, status = status.as_u16(), role = ?role, "previews page");
}

fn unauthorized(path: &str) -> Response {
    log(path, StatusCode::UNAUTHORIZED, None);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "authentication required: Authorization: Bearer <token>, or open /?token=<token> once\n",
    )
        .into_response()
}

fn strict(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /`: the page; `GET /?token=…`: the cookie handshake.
/// The connection's peer, where the server records it.
fn peer(ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

pub async fn page(
    State(ui): State<Arc<Ui>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Response {
    if let Some(token) = q.token {
        let d = digest(&token);
        let Some(role) = ui.role_of(&d) else {
            return unauthorized("/?token");
        };
        let secure = headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{}",
            hex::encode(d),
            if secure { "; Secure" } else { "" }
        );
        log("/?token", StatusCode::SEE_OTHER, Some(role));
        return strict(
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/".to_string()),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response(),
        );
    }
    let Some(viewer) = ui.viewer(&headers, peer(&ext)) else {
        return unauthorized("/");
    };
    let role = viewer.role;
    let (view, read_at) = ui.view();
    let mut ctx = tera::Context::new();
    ctx.insert("viewer", &viewer.name);
    ctx.insert("view", &view);
    ctx.insert("read_at", &read_at);
    match tera::Tera::one_off(PAGE, &ctx, true) {
        Ok(html) => {
            log("/", StatusCode::OK, Some(role));
            strict(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        Err(e) => {
            tracing::error!("previews page: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered\n",
            )
                .into_response()
        }
    }
}

/// `GET /api/previews`: the rows and totals as JSON (the README documents the fields).
pub async fn api(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Response {
    let Some(viewer) = ui.viewer(&headers, peer(&ext)) else {
        return unauthorized("/api/previews");
    };
    let (view, read_at) = ui.view();
    log("/api/previews", StatusCode::OK, Some(viewer.role));
    let role = match viewer.role {
        Role::Read => "read",
        Role::Write => "write",
    };
    let body = serde_json::json!({ "read_at": read_at, "rows": view.rows, "totals": view.totals,
                                   "applications": view.applications,
                                   "viewer": {"name": viewer.name, "role": role} });
    strict(axum::Json(body).into_response())
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The page's routes, when it is on.
pub fn routes(ui: Arc<Ui>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(page))
        .route("/api/previews", get(api))
        .route("/assets/previews.js", get(script))
        .route("/assets/previews.css", get(style))
        .with_state(ui)
}
