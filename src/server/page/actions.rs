//! The previews page's write role: `POST /actions/{extend|sleep|wake|destroy}`, the same commands
//! as the comments', through the same services, refused without the write role, from another
//! origin, or without this viewer's CSRF token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{peer, strict, unauthorized, Auth, Role, Ui};
use crate::server::guard::for_role;

#[derive(serde::Deserialize)]
pub struct ActionForm {
    file: String,
    #[serde(default)]
    csrf: String,
}

/// A small page with the result of an action.
fn result_page(ui: &Ui, status: StatusCode, text: &str) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("text", text);
    let html = ui.render("result.html", &ctx);
    strict(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
    )
}

/// `POST /actions/{extend|sleep|wake|destroy}`: the write role's buttons. The same service calls
/// as the commands; the commit message names who asked. Refused without the write role, from
/// another origin, or without this viewer's CSRF token.
pub async fn action(
    State(ui): State<Arc<Ui>>,
    axum::extract::Path(verb): axum::extract::Path<String>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    form: Result<axum::Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // Who asks comes first: without credentials nothing else is looked at (a probe of the
    // write endpoint gets 401, whatever its body).
    let Some(viewer) = ui.viewer(&headers, peer(&ext)) else {
        return unauthorized();
    };
    let role = viewer.role;
    let answer = |status: StatusCode, text: &str| for_role(result_page(&ui, status, text), role);
    let forbidden = |why: &str| answer(StatusCode::FORBIDDEN, why);
    let form = match form {
        Ok(axum::Form(f)) => f,
        Err(e) => return answer(e.status(), "not an action form"),
    };
    if viewer.role != Role::Write {
        return forbidden("the write role is needed for this");
    }
    if !ui.same_origin(&headers, &ext) {
        return forbidden("refused: the request came from another site");
    }
    // A bearer token that authenticated this request is sent on purpose by its holder; a cookie
    // or a proxy's headers ride along with any request a browser makes (an Authorization header
    // a proxy passes on too), so those need this viewer's CSRF token.
    let want = ui.csrf(&viewer);
    if viewer.by != Auth::Bearer && !bool::from(want.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return forbidden("refused: the form is stale or not this page's; reload and try again");
    }
    // The buttons are the comments' commands: the same type, the same life commands.
    use crate::command::Command;
    let command = match Command::of_button(&verb) {
        Some(Command::Destroy) => None,
        Some(c) => match crate::chatops::life_command(c) {
            Some(life) => Some(life),
            None => return forbidden("unknown action"),
        },
        None => return forbidden("unknown action"),
    };
    let record = ui.cache.record(&form.file);
    let (Some(record), Some(repo)) = (record, ui.repo.clone()) else {
        return answer(
            StatusCode::NOT_FOUND,
            "no such preview (it may be gone already)",
        );
    };
    let who = viewer.name.clone();
    let gitlab_url = ui.gitlab_url.clone();
    let done = tokio::task::spawn_blocking(move || {
        crate::service::page_action::act(&repo, gitlab_url.as_deref(), &record, command, &who)
    })
    .await;
    match done {
        Ok(Ok(acted)) => {
            if let Some(read) = &acted.read {
                ui.cache.update(read, acted.read_at);
            }
            answer(StatusCode::OK, &acted.text)
        }
        Ok(Err(e)) => answer(StatusCode::CONFLICT, &format!("not done: {}", e.message)),
        Err(_) => answer(StatusCode::INTERNAL_SERVER_ERROR, "the action failed"),
    }
}
