//! What every response of `serve` carries, and what every request to the previews page leaves
//! behind: the security headers (a strict Content-Security-Policy and `nosniff`) on every answer
//! — 401, 404, 405, 413, 415, 422 and the assets included — and one access-log line for each
//! request to the page's routes, whatever answered it (a handler, a rejection, the fallback).

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use super::page::Role;

/// The page's policy: its own script, style and images, nothing else, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Who a page response was for, attached by its handler so the access log can name the role.
pub fn for_role(mut r: Response, role: Role) -> Response {
    r.extensions_mut().insert(role);
    r
}

/// Routes that are not the page's (webhooks, probes, metrics) keep their own logging.
fn is_page(path: &str) -> bool {
    !(path.starts_with("/hooks/") || matches!(path, "/healthz" | "/readyz" | "/metrics"))
}

pub async fn guard(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if is_page(&path) {
        let role = r.extensions().get::<Role>().copied();
        // The path only: a query (`?token=`) never reaches the log.
        let path = crate::redact::remote_text(&path, 200);
        tracing::info!(target: "access", method = %method, path = path.as_str(), status = r.status().as_u16(), role = ?role, "previews page");
    }
    r
}
