//! Sign-in to the previews page without a token in any URL: `GET /signin` is a small form, and
//! `POST /signin` takes the token from its body and sets the session cookie. The form is guarded
//! like the page's actions: same origin only, and a one-time value the form and a cookie of its
//! own (`SameSite=Strict`, for `/signin` only) must agree on, so another site cannot sign a
//! browser in with a token of its choosing. (`/?token=` still works for links; it lands in the
//! browser's history.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{strict, Ui};

const NONCE_COOKIE: &str = "fe_signin";

/// The form (autoescaped).
pub const SIGNIN: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sign in · Previews</title>\
     <link rel=\"stylesheet\" href=\"/assets/previews.css\"><link rel=\"icon\" href=\"/assets/favicon.svg\" type=\"image/svg+xml\"></head>\
     <body><main><h1>Previews</h1>{% if message %}<p role=\"alert\">{{ message }}</p>{% endif %}\
     <form method=\"post\" action=\"/signin\" class=\"signin\"><label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\
     <input type=\"hidden\" name=\"csrf\" value=\"{{ nonce }}\"><button type=\"submit\">Sign in</button></form></main></body></html>";

#[derive(serde::Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// The form with a fresh one-time value, and its cookie.
fn render(ui: &Ui, status: StatusCode, message: &str) -> Response {
    let mut nonce = [0u8; 16];
    if getrandom::fill(&mut nonce).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n").into_response();
    }
    let nonce = hex::encode(nonce);
    let mut ctx = tera::Context::new();
    ctx.insert("nonce", &nonce);
    ctx.insert("message", message);
    let html = ui.render("signin.html", &ctx);
    let cookie = format!("{NONCE_COOKIE}={nonce}; HttpOnly; SameSite=Strict; Path=/signin");
    strict(
        (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                (header::SET_COOKIE, cookie),
            ],
            html,
        )
            .into_response(),
    )
}

/// `GET /signin`.
pub async fn form(State(ui): State<Arc<Ui>>) -> Response {
    render(&ui, StatusCode::OK, "")
}

/// `POST /signin`: the token from the form; on success the session cookie and the page.
pub async fn sign_in(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return render(
            &ui,
            StatusCode::BAD_REQUEST,
            "That was not the sign-in form.",
        );
    };
    let agreed = super::cookie(&headers, NONCE_COOKIE).is_some_and(|n| {
        !n.is_empty()
            && n.len() == form.csrf.len()
            && bool::from(n.as_bytes().ct_eq(form.csrf.as_bytes()))
    });
    if !ui.same_origin(&headers, &ext) || !agreed {
        return render(
            &ui,
            StatusCode::FORBIDDEN,
            "The form was not this page's, or it is stale: sign in again.",
        );
    }
    ui.session(&form.token, &headers).unwrap_or_else(|| {
        render(
            &ui,
            StatusCode::UNAUTHORIZED,
            "That is not a token of this page.",
        )
    })
}
