//! GitHub Apps, as GitHub treats them: the App's own endpoints take only an RS256 JWT signed with
//! the App's key (`iss` the App id, at most 10 minutes long, not expired); installation tokens
//! come from `POST /app/installations/{id}/access_tokens`; every other endpoint takes only a live
//! token of the installation that holds the repository (another installation's gets 404, an
//! expired one 401), and `GET /user` with an installation token is 403.

use std::time::{Duration, SystemTime};

use octocrab::jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::{shapes, Answer, Req, State};

/// The fake's App: its id, slug, public key, installations and the tokens it handed out.
pub(super) struct AppState {
    pub id: u64,
    pub slug: String,
    key: DecodingKey,
    pub installations: Vec<Installation>,
    pub tokens: Vec<Issued>,
    /// How long a new installation token lives.
    pub token_ttl: Duration,
}

pub(super) struct Installation {
    pub id: u64,
    pub account: String,
    /// `owner/name` of each repository it holds.
    pub repositories: Vec<String>,
    pub permissions: Value,
}

pub(super) struct Issued {
    pub token: String,
    pub installation: u64,
    /// The repositories (`owner/name`) the token is scoped to; `None`: all the installation's.
    pub scope: Option<Vec<String>>,
    pub expires: SystemTime,
}

/// Who a request speaks as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Caller {
    /// No App configured: any token works (a personal or Actions token).
    Token,
    App,
    Installation(u64),
}

impl Caller {
    pub fn name(&self) -> String {
        match self {
            Caller::Token => "token".into(),
            Caller::App => "app".into(),
            Caller::Installation(id) => format!("installation {id}"),
        }
    }
}

impl AppState {
    pub fn new(id: u64, slug: &str, public_pem: &[u8]) -> AppState {
        AppState {
            id,
            slug: slug.into(),
            key: DecodingKey::from_rsa_pem(public_pem).expect("the App's public key"),
            installations: Vec::new(),
            tokens: Vec::new(),
            token_ttl: Duration::from_secs(3600),
        }
    }

    fn holder(&self, repo: &str) -> Option<&Installation> {
        self.installations
            .iter()
            .find(|i| i.repositories.iter().any(|r| r.eq_ignore_ascii_case(repo)))
    }

    /// The JWT `jwt` is the App's, valid now and at most 10 minutes long.
    fn jwt_ok(&self, jwt: &str) -> bool {
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Value,
            iat: u64,
            exp: u64,
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = 0;
        // `iss` is the App id as a number (GitHub takes it so; the library's own check wants a
        // string): checked below.
        v.required_spec_claims = ["exp", "iat"].iter().map(|s| s.to_string()).collect();
        v.validate_aud = false;
        let data = match decode::<Claims>(jwt, &self.key, &v) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("fake GitHub: the App JWT is refused: {e}");
                return false;
            }
        };
        let c = data.claims;
        let iss_ok = c.iss == json!(self.id) || c.iss == json!(self.id.to_string());
        iss_ok && c.exp > c.iat && c.exp - c.iat <= 11 * 60
    }
}

/// Who `auth` (the `Authorization` header) speaks as for `path`, or GitHub's refusal.
pub(super) fn authorize(s: &State, auth: Option<&str>, path: &[&str]) -> Result<Caller, Answer> {
    let Some(app) = &s.app else {
        return Ok(Caller::Token);
    };
    let credential = auth
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("token "))
        })
        .unwrap_or("");
    let app_endpoint = matches!(path, ["app", ..] | ["repos", _, _, "installation"]);
    if app_endpoint {
        return if app.jwt_ok(credential) {
            Ok(Caller::App)
        } else {
            Err(Answer::error(401, "A JSON web token could not be decoded"))
        };
    }
    if path == ["rate_limit"] && app.jwt_ok(credential) {
        return Ok(Caller::App);
    }
    let Some(issued) = app.tokens.iter().find(|t| t.token == credential) else {
        return Err(Answer::error(401, "Bad credentials"));
    };
    if issued.expires <= SystemTime::now() {
        return Err(Answer::error(401, "Bad credentials"));
    }
    match path {
        ["user"] => Err(Answer::error(403, "Resource not accessible by integration")),
        ["repos", o, r, ..] => {
            let repo = format!("{o}/{r}");
            let holds = app
                .holder(&repo)
                .is_some_and(|i| i.id == issued.installation);
            let scoped = issued
                .scope
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n.eq_ignore_ascii_case(&repo)));
            if holds && scoped {
                Ok(Caller::Installation(issued.installation))
            } else {
                Err(Answer::not_found())
            }
        }
        _ => Ok(Caller::Installation(issued.installation)),
    }
}

/// `/app…` and `/repos/{owner}/{repo}/installation`.
pub(super) fn route(s: &mut State, req: &Req, p: &[&str]) -> Answer {
    let Some(app) = s.app.as_mut() else {
        return Answer::not_found();
    };
    match (req.method.as_str(), p) {
        ("GET", ["app"]) => Answer::ok(shapes::integration(app.id, &app.slug, "example-org")),
        ("GET", ["repos", o, r, "installation"]) => match app.holder(&format!("{o}/{r}")) {
            Some(i) => Answer::ok(shapes::installation(
                i.id,
                app.id,
                &app.slug,
                &i.account,
                &i.permissions,
            )),
            None => Answer::not_found(),
        },
        ("POST", ["app", "installations", id, "access_tokens"]) => mint(app, req, id),
        _ => Answer::not_found(),
    }
}

fn mint(app: &mut AppState, req: &Req, id: &str) -> Answer {
    let Some(inst) = app.installations.iter().find(|i| i.id.to_string() == id) else {
        return Answer::not_found();
    };
    // `repositories` names repositories of the installation's account, by name.
    let scope = match req.body.get("repositories").and_then(Value::as_array) {
        Some(names) => {
            let mut full = Vec::new();
            for n in names {
                let want = format!("{}/{}", inst.account, n.as_str().unwrap_or(""));
                match inst.repositories.iter().find(|r| r.eq_ignore_ascii_case(&want)) {
                    Some(r) => full.push(r.clone()),
                    None => {
                        return Answer::error(
                            422,
                            "There is at least one repository that does not exist or is not accessible to the parent installation.",
                        )
                    }
                }
            }
            Some(full)
        }
        None => None,
    };
    // GitHub's newer, longer installation tokens: `ghs_<app id>_…`, not 40 characters.
    let token = format!("ghs_{}_{}", app.id, random_text(72));
    let expires = SystemTime::now() + app.token_ttl;
    let expires_at = humantime::format_rfc3339_seconds(expires).to_string();
    let answer =
        shapes::installation_token(&token, &expires_at, &inst.permissions, scope.as_deref());
    app.tokens.push(Issued {
        token,
        installation: inst.id,
        scope,
        expires,
    });
    Answer::created(answer)
}

fn random_text(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).unwrap();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Whether `token` is a live token that may reach `repo` (for the fake Git server).
pub(super) fn token_reaches(s: &State, token: &str, repo: &str) -> bool {
    authorize(
        s,
        Some(&format!("token {token}")),
        &[
            "repos",
            repo.split('/').next().unwrap_or(""),
            repo.split('/').nth(1).unwrap_or(""),
            "git",
        ],
    )
    .is_ok_and(|c| matches!(c, Caller::Installation(_)))
}
