//! Git over HTTPS as GitHub serves it to an App: `https://<server>/<owner>/<repo>.git`, taking
//! only `x-access-token:<token>` with a live installation token that reaches the repository
//! (GitHub's rule), in front of a real `git http-backend` (lighttpd, `super::super::servers`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use base64::Engine;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::FakeGitHub;
use crate::support::servers::{http_backend, Server};

/// What the proxy needs: the fake GitHub (its tokens) and the Git server behind.
struct Gate {
    github: FakeGitHub,
    backend_port: u16,
    backend_auth: String,
    /// Every credential the proxy saw: (user, token).
    seen: std::sync::Mutex<Vec<(String, String)>>,
}

/// The Git server of the fake GitHub: serves the bare repositories of `base` as
/// `<url>/<owner>/<name>.git`.
pub struct GitHubGit {
    pub url: String,
    gate: Arc<Gate>,
    _backend: Server,
    _task: tokio::task::JoinHandle<()>,
}

impl GitHubGit {
    /// Serve the bare repositories under `base` (e.g. `gitops.git`), `work` for the server's files.
    pub async fn start(
        github: &FakeGitHub,
        base: &std::path::Path,
        work: &std::path::Path,
    ) -> Option<GitHubGit> {
        let password = "behind-the-gate";
        let backend = http_backend(base, work, "gate", password)?;
        let gate = Arc::new(Gate {
            github: github.clone(),
            backend_port: backend.port,
            backend_auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("gate:{password}"))
            ),
            seen: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(gate.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Some(GitHubGit {
            url,
            gate,
            _backend: backend,
            _task: task,
        })
    }

    /// The credentials Git sent so far: (user, token).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.gate.seen.lock().unwrap().clone()
    }
}

fn refuse() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\"")
        .body(Body::from("Invalid username or token."))
        .unwrap()
}

async fn forward(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    // /<owner>/<name>.git/… → the repository `owner/name`, served as /git/<name>.git/….
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let (Some(owner), Some(repo_git), rest) = (parts.next(), parts.next(), parts.next()) else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    let name = repo_git.trim_end_matches(".git");
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    let Some((user, token)) = credential else {
        return refuse();
    };
    gate.seen
        .lock()
        .unwrap()
        .push((user.clone(), token.clone()));
    if user != "x-access-token"
        || !gate
            .github
            .token_reaches(&token, &format!("{owner}/{name}"))
    {
        return refuse();
    }
    let target = format!(
        "http://127.0.0.1:{}/git/{name}.git/{}{query}",
        gate.backend_port,
        rest.unwrap_or("")
    );
    let (parts, body) = req.into_parts();
    let mut out = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(target);
    for (k, v) in parts.headers.iter() {
        if k != header::AUTHORIZATION && k != header::HOST {
            out = out.header(k, v);
        }
    }
    let out = out
        .header(header::AUTHORIZATION, gate.backend_auth.as_str())
        .body(body)
        .unwrap();
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    match client.request(out).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => Response::builder()
            .status(502)
            .body(Body::from(e.to_string()))
            .unwrap(),
    }
}
