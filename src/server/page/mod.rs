//! The previews page and its API (`GET /`, `GET /api/previews`), off unless a token is
//! configured. Read access with `FLUX_EPHEMERAL_UI_TOKEN` (or the write token): as
//! `Authorization: Bearer`, or for browsers `GET /?token=…` once, which sets an HttpOnly,
//! SameSite=Strict cookie holding the token's SHA-256 (never the token) and redirects to `/`.
//! Or through an auth proxy (`--ui-trust-proxy ADDR`): its `X-Forwarded-User`/`-Email` count only
//! on connections from that address. The page reads the snapshot the service keeps (refreshed
//! every 30 s), never the remote per request; its assets are served here, under a strict
//! Content-Security-Policy.

pub mod actions;
pub mod signin;

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::EnvRecord;
use crate::previews::{view, WebHosts};

const PAGE: &str = include_str!("../../../assets/previews.html.tera");
const SCRIPT: &str = include_str!("../../../assets/previews.js");
const STYLE: &str = include_str!("../../../assets/previews.css");
const ICON: &str = include_str!("../../../assets/favicon.svg");
const COOKIE: &str = "fe_ui";
use super::guard::{for_role, CSP};

/// Every environment with the preview URL its file holds.
type Records = Vec<(EnvRecord, Option<String>)>;

/// Flux's verdicts by file name, where the cluster could be asked.
type Verdicts = std::collections::BTreeMap<String, crate::previews::Verdict>;

/// What the page shows, as the service last read it, and when.
#[derive(Default)]
pub struct PreviewsCache {
    inner: RwLock<Option<(Records, SystemTime)>>,
    /// The requests waiting for room, and whether clusters are configured.
    queue: RwLock<(Vec<crate::clusters::Waiting>, bool)>,
    verdicts: RwLock<Verdicts>,
}

impl PreviewsCache {
    /// The record of the environment in `file`, if the last read had it.
    pub fn record(&self, file: &str) -> Option<EnvRecord> {
        self.inner.read().ok().and_then(|g| {
            g.as_ref().and_then(|(rs, _)| {
                rs.iter()
                    .find(|(r, _)| r.file == file)
                    .map(|(r, _)| r.clone())
            })
        })
    }

    /// Take the environments of the instances directory's files, read from `read_at` on. A read
    /// that began before the one the page shows (a slow readiness check racing an action) is
    /// older news and is dropped.
    pub fn update(&self, read: &crate::previews::Read, read_at: SystemTime) {
        let files = &read.files;
        let records = read
            .records
            .iter()
            .map(|r| {
                let url = files
                    .get(&r.file)
                    .and_then(|c| crate::service::lifecycle::respec::preview_url_of(c));
                (r.clone(), url)
            })
            .collect();
        if let Ok(mut g) = self.inner.write() {
            if g.as_ref().is_none_or(|(_, shown)| *shown <= read_at) {
                *g = Some((records, read_at));
                if let Ok(mut q) = self.queue.write() {
                    *q = (read.queue.entries.clone(), read.clustered);
                }
            }
        }
    }

    /// Take Flux's verdicts, as the cluster just said them.
    pub fn set_verdicts(&self, verdicts: Verdicts) {
        if let Ok(mut g) = self.verdicts.write() {
            *g = verdicts;
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
    /// The GitOps repository the write role's actions commit to.
    pub(super) repo: Option<crate::service::environment::Repo>,
    /// Where GitLab's API is (`--gitlab-url`), for an action's follow-up on the change.
    pub(super) gitlab_url: Option<String>,
    /// Signs each viewer's CSRF token; new for every start of `serve`.
    csrf_key: [u8; 32],
    /// The page and the result page, parsed once (autoescaped: `.html`).
    templates: tera::Tera,
}

/// The result of an action, escaped, and the way back.
const RESULT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Previews</title>\
     <link rel=\"stylesheet\" href=\"/assets/previews.css\"><link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\"></head>\
     <body><main><p role=\"status\">{{ text }}</p><p><a href=\"/\">Back to the previews</a></p></main></body></html>";

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The trusted proxy's headers.
    Proxy,
    /// `Authorization: Bearer` with a valid token: sent on purpose by its holder.
    Bearer,
    /// The page's cookie: rides along with any request the browser makes.
    Cookie,
}

/// Who is looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The proxy's user, or `read token` / `write token`.
    pub name: String,
    pub role: Role,
    pub by: Auth,
}

impl Viewer {
    /// "Signed in as alice (read only)", "Signed in with the write token (read and write)".
    pub fn signed_in(&self, can_act: bool) -> String {
        let who = match self.by {
            Auth::Proxy => format!("as {}", self.name),
            Auth::Bearer | Auth::Cookie => format!("with the {}", self.name),
        };
        let what = if can_act {
            "read and write"
        } else {
            "read only"
        };
        format!("Signed in {who} ({what})")
    }
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
        let mut csrf_key = [0u8; 32];
        getrandom::fill(&mut csrf_key).ok()?;
        let mut templates = tera::Tera::default();
        if let Err(e) = templates.add_raw_templates([
            ("page.html", PAGE),
            ("result.html", RESULT),
            ("signin.html", signin::SIGNIN),
        ]) {
            tracing::error!("previews page: its templates do not parse: {e}");
            return None;
        }
        (read.is_some() || write.is_some() || proxy.address.is_some()).then_some(Ui {
            read,
            write,
            proxy,
            cache,
            hosts,
            repo: None,
            gitlab_url: None,
            csrf_key,
            templates,
        })
    }

    /// Let the write role act on the environments of `repo` (GitLab's API at `gitlab_url`, for
    /// the follow-up on the change).
    pub fn with_repo(
        self,
        repo: crate::service::environment::Repo,
        gitlab_url: Option<String>,
    ) -> Ui {
        Ui {
            repo: Some(repo),
            gitlab_url,
            ..self
        }
    }

    /// The CSRF token of `viewer`: an HMAC of its role and name under this process's key (so a
    /// read token's page never carries the write role's form token).
    pub(super) fn csrf(&self, viewer: &Viewer) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.csrf_key)
            .expect("HMAC takes any key length");
        mac.update(match viewer.role {
            Role::Read => b"read\0",
            Role::Write => b"write\0",
        });
        mac.update(viewer.name.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The role a token's digest grants, compared in constant time.
    /// Render one of the page's templates (an empty page if that fails, which the tests rule out).
    pub(super) fn render(&self, name: &str, ctx: &tera::Context) -> String {
        self.templates.render(name, ctx).unwrap_or_else(|e| {
            tracing::error!("previews page: {e}");
            String::new()
        })
    }

    /// Whether a form was posted from this page's own origin: a browser always says where
    /// (`Origin`, `Sec-Fetch-Site`). Behind the trusted proxy, the host the browser saw is the
    /// proxy's X-Forwarded-Host.
    pub(super) fn same_origin(&self, headers: &HeaderMap, ext: &axum::http::Extensions) -> bool {
        let header_of = |k: header::HeaderName| headers.get(k).and_then(|h| h.to_str().ok());
        let from_proxy = self.proxy.address.is_some() && self.proxy.address == peer(ext);
        let hosts = [
            header_of(header::HOST),
            if from_proxy {
                headers
                    .get("x-forwarded-host")
                    .and_then(|h| h.to_str().ok())
            } else {
                None
            },
        ];
        let origin_host = header_of(header::ORIGIN).map(|o| o.split_once("://").map_or(o, |x| x.1));
        let fetch_site = header_of(header::HeaderName::from_static("sec-fetch-site"));
        !(origin_host.is_some_and(|o| !hosts.contains(&Some(o)))
            || fetch_site.is_some_and(|s| s != "same-origin"))
    }

    /// The cookie handshake for `token`: a redirect to the page that sets the session cookie
    /// (HttpOnly, SameSite=Strict, Secure behind HTTPS) holding the token's digest; `None` when
    /// it is no token of this page.
    pub(super) fn session(&self, token: &str, headers: &HeaderMap) -> Option<Response> {
        let d = digest(token);
        let role = self.role_of(&d)?;
        let secure = headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{}",
            hex::encode(d),
            if secure { "; Secure" } else { "" }
        );
        let r = (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response();
        Some(for_role(strict(r), role))
    }

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
                    // An empty element (`viewers,`) names no group.
                    let write = header("x-forwarded-groups").is_some_and(|g| {
                        g.split(',')
                            .map(str::trim)
                            .filter(|g| !g.is_empty())
                            .any(|g| {
                                self.proxy
                                    .write_groups
                                    .iter()
                                    .any(|w| !w.trim().is_empty() && w.eq_ignore_ascii_case(g))
                            })
                    });
                    return Some(Viewer {
                        name: name.chars().take(200).collect(),
                        role: if write { Role::Write } else { Role::Read },
                        by: Auth::Proxy,
                    });
                }
            }
        }
        self.credential(headers).map(|(role, by)| Viewer {
            name: match role {
                Role::Read => "read token",
                Role::Write => "write token",
            }
            .into(),
            role,
            by,
        })
    }

    /// The role of a request by its own credential: its bearer token, else its cookie.
    pub fn role(&self, headers: &HeaderMap) -> Option<Role> {
        self.credential(headers).map(|(role, _)| role)
    }

    fn credential(&self, headers: &HeaderMap) -> Option<(Role, Auth)> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(digest);
        if let Some(d) = bearer {
            return self.role_of(&d).map(|r| (r, Auth::Bearer));
        }
        let d = hex::decode(cookie(headers, COOKIE)?).ok()?;
        self.role_of(&d).map(|r| (r, Auth::Cookie))
    }

    fn view(&self) -> (crate::previews::View, String) {
        let guard = self.cache.inner.read().ok();
        let (records, at) = match guard.as_ref().and_then(|g| g.as_ref()) {
            Some((r, at)) => (r.clone(), crate::model::format_time(*at)),
            None => (Vec::new(), "never (the repository was not read yet)".into()),
        };
        let verdicts = self
            .cache
            .verdicts
            .read()
            .map(|v| v.clone())
            .unwrap_or_default();
        let verdict = |r: &EnvRecord| verdicts.get(&r.file).cloned();
        let (queue, clustered) = self
            .cache
            .queue
            .read()
            .map(|q| q.clone())
            .unwrap_or_default();
        let mut v = view(&records, verdict, &self.hosts, SystemTime::now());
        v.queue = crate::previews::queued(&queue, &self.hosts);
        v.clustered = clustered;
        (v, at)
    }
}

/// The value of cookie `name` the request carries.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
        })
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "authentication required: sign in at /signin, or send Authorization: Bearer <token>\n",
    )
        .into_response()
}

pub(super) fn strict(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Links to the forge and the previews carry no address of this page; the page's own forms
    // keep their Origin (under `no-referrer` a browser posts `Origin: null`, refused below).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[derive(serde::Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The connection's peer, where the server records it.
pub(super) fn peer(ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// `GET /`: the page; `GET /?token=…`: the cookie handshake.
pub async fn page(
    State(ui): State<Arc<Ui>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Response {
    // For links that carry the token (it lands in the browser's history: /signin does not).
    if let Some(token) = q.token {
        return ui.session(&token, &headers).unwrap_or_else(unauthorized);
    }
    let Some(viewer) = ui.viewer(&headers, peer(&ext)) else {
        return unauthorized();
    };
    let role = viewer.role;
    let (view, read_at) = ui.view();
    let mut ctx = tera::Context::new();
    let can_act = role == Role::Write && ui.repo.is_some();
    ctx.insert("signed_in", &viewer.signed_in(can_act));
    ctx.insert("can_act", &can_act);
    ctx.insert(
        "csrf",
        &if can_act {
            ui.csrf(&viewer)
        } else {
            String::new()
        },
    );
    ctx.insert("view", &view);
    ctx.insert("read_at", &read_at);
    match ui.templates.render("page.html", &ctx) {
        Ok(html) => for_role(
            strict(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()),
            role,
        ),
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
        return unauthorized();
    };
    let (view, read_at) = ui.view();
    let role = match viewer.role {
        Role::Read => "read",
        Role::Write => "write",
    };
    let body = serde_json::json!({ "read_at": read_at, "rows": view.rows, "totals": view.totals,
                                   "applications": view.applications, "queue": view.queue,
                                   "clustered": view.clustered,
                                   "viewer": {"name": viewer.name, "role": role} });
    for_role(strict(axum::Json(body).into_response()), viewer.role)
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

pub async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

/// The page's routes, when it is on.
pub fn routes(ui: Arc<Ui>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(page))
        .route("/api/previews", get(api))
        // An action's form is two short fields: nobody's body may take more.
        .route(
            "/actions/{verb}",
            post(actions::action).layer(axum::extract::DefaultBodyLimit::max(4096)),
        )
        .route(
            "/signin",
            get(signin::form)
                .post(signin::sign_in)
                .layer(axum::extract::DefaultBodyLimit::max(4096)),
        )
        .route("/assets/previews.js", get(script))
        .route("/assets/previews.css", get(style))
        .route("/assets/favicon.svg", get(icon))
        .with_state(ui)
}
