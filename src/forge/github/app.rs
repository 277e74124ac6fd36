//! GitHub as a GitHub App. octocrab mints each installation's token with the App's JWT, caches it,
//! renews it before it expires and clears it on a 401 (`Octocrab::installation`); this keeps one
//! such client per installation for the whole process, finds which installation holds a
//! repository (the webhook's `installation.id`, else `GET /repos/{owner}/{repo}/installation`),
//! knows the App's own login (`<slug>[bot]`, from `GET /app`) and hands Git a token scoped to the
//! GitOps repository with at least five minutes left.

use std::collections::HashMap;
use std::sync::Mutex;

use octocrab::models::InstallationId;
use octocrab::Octocrab;
use serde::Deserialize;

use super::client::{self, describe, status_of, Credential};
use crate::error::{Error, Result};
use crate::redact::Secret;

/// A token handed to Git has at least this long left (as bors does before each push).
pub const GIT_TOKEN_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The App's credentials, as the operator gives them (env or files, never argv).
#[derive(Clone)]
pub struct AppCredentials {
    pub id: u64,
    /// The private key, PEM (PKCS#1 or PKCS#8).
    pub key: Secret,
    /// The installation to use when none is known otherwise.
    pub installation: Option<u64>,
}

impl AppCredentials {
    /// App `id` with the PEM `key`, checked now so a bad key is told at start.
    pub fn new(id: u64, key: Secret, installation: Option<u64>) -> Result<AppCredentials> {
        encoding_key(&key)?;
        Ok(AppCredentials {
            id,
            key,
            installation,
        })
    }
}

/// The App's signing key from its PEM text; the error never shows the text.
fn encoding_key(pem: &Secret) -> Result<octocrab::auth::EncodingKey> {
    octocrab::auth::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|_| {
        Error::config(
            "the GitHub App's private key is not an RSA private key in PEM form \
             (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`): download \
             it again from the App's settings",
        )
    })
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GitHub App {} (key hidden)", self.id)
    }
}

/// What an installation may do, as GitHub says (`permissions` of the installation).
pub type Permissions = std::collections::BTreeMap<String, String>;

/// One installation of the App: its id, the account it is on, and its permissions.
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: u64,
    #[serde(default)]
    pub permissions: Permissions,
    pub account: Option<Account>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
}

/// A GitHub App on one API, for the whole process.
pub struct App {
    pub api: String,
    pub id: u64,
    /// Speaks as the App itself (a JWT per request).
    jwt: Octocrab,
    default_installation: Option<u64>,
    slug: Mutex<Option<String>>,
    /// installation id → its client (which caches the installation's token).
    installations: Mutex<HashMap<u64, Octocrab>>,
    /// `owner/name` (lower case) → installation id.
    holders: Mutex<HashMap<String, Installation>>,
    /// (installation, repository name) → a client whose token is scoped to that repository.
    scoped: Mutex<HashMap<(u64, String), Octocrab>>,
}

impl App {
    pub fn new(api: &str, creds: &AppCredentials) -> Result<App> {
        let key = encoding_key(&creds.key)?;
        Ok(App {
            api: api.to_string(),
            id: creds.id,
            jwt: client::client(api, Credential::App(creds.id, key))?,
            default_installation: creds.installation,
            slug: Mutex::new(None),
            installations: Mutex::default(),
            holders: Mutex::default(),
            scoped: Mutex::default(),
        })
    }

    /// The App's slug, from `GET /app` (read once).
    pub async fn slug(&self) -> Result<String> {
        if let Some(s) = self.slug.lock().ok().and_then(|s| s.clone()) {
            return Ok(s);
        }
        #[derive(Deserialize)]
        struct Me {
            slug: Option<String>,
        }
        let me: Me = self
            .jwt
            .get("/app", None::<&()>)
            .await
            .map_err(|e| self.err("read the App (GET /app)", &e))?;
        let slug = me
            .slug
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::remote(format!("GitHub {}: GET /app names no slug", self.api)))?;
        if let Ok(mut s) = self.slug.lock() {
            *s = Some(slug.clone());
        }
        Ok(slug)
    }

    /// The App's login on GitHub: `<slug>[bot]`.
    pub async fn login(&self) -> Result<String> {
        Ok(format!("{}[bot]", self.slug().await?))
    }

    /// Remember that installation `id` holds `repository` (from a signed webhook).
    pub fn note_holder(&self, repository: &str, id: u64) {
        if let Ok(mut h) = self.holders.lock() {
            let known = h.get(&repository.to_ascii_lowercase());
            if known.is_none_or(|i| i.id != id) {
                h.insert(
                    repository.to_ascii_lowercase(),
                    Installation {
                        id,
                        permissions: Permissions::new(),
                        account: None,
                    },
                );
            }
        }
    }

    /// The installation that holds `repository` (`owner/name`): known from a webhook, else asked
    /// (`GET /repos/{owner}/{repo}/installation`), else the configured default. `None`: the App
    /// is not installed there.
    pub async fn holder(&self, repository: &str) -> Result<Option<Installation>> {
        let key = repository.to_ascii_lowercase();
        if let Some(i) = self.holders.lock().ok().and_then(|h| h.get(&key).cloned()) {
            return Ok(Some(i));
        }
        let route = format!("/repos/{repository}/installation");
        match self.jwt.get::<Installation, _, ()>(&route, None).await {
            Ok(i) => {
                if let Ok(mut h) = self.holders.lock() {
                    h.insert(key, i.clone());
                }
                Ok(Some(i))
            }
            Err(e) if status_of(&e) == Some(404) => {
                Ok(self.default_installation.map(|id| Installation {
                    id,
                    permissions: Permissions::new(),
                    account: None,
                }))
            }
            Err(e) => Err(self.err(&format!("find the installation of {repository}"), &e)),
        }
    }

    /// The installation that holds `repository`, or an error that says how to install the App.
    pub async fn holder_of(&self, repository: &str) -> Result<u64> {
        self.holder(repository).await?.map(|i| i.id).ok_or_else(|| {
            Error::config(format!(
                "the GitHub App {} is not installed on {repository}: install it there (the App's \
                 settings, Install App) or set FLUX_EPHEMERAL_GITHUB_APP_INSTALLATION_ID",
                self.id
            ))
        })
    }

    /// The client of installation `id` (one per process: its token is cached and renewed in it).
    pub fn installation(&self, id: u64) -> Result<Octocrab> {
        let mut all = self
            .installations
            .lock()
            .map_err(|_| Error::internal("the installations' lock is poisoned"))?;
        if let Some(c) = all.get(&id) {
            return Ok(c.clone());
        }
        let _entered = client::runtime().enter();
        let c = self
            .jwt
            .installation(InstallationId(id))
            .map_err(|e| self.err("use the installation", &e))?;
        all.insert(id, c.clone());
        Ok(c)
    }

    /// A token for Git on `repository`, scoped to it, with at least [`GIT_TOKEN_MARGIN`] left.
    pub async fn git_token(&self, repository: &str) -> Result<Secret> {
        let id = self.holder_of(repository).await?;
        let name = repository
            .rsplit_once('/')
            .map(|(_, n)| n)
            .unwrap_or(repository)
            .to_string();
        let crab = {
            let mut scoped = self
                .scoped
                .lock()
                .map_err(|_| Error::internal("the tokens' lock is poisoned"))?;
            match scoped.get(&(id, name.clone())) {
                Some(c) => c.clone(),
                None => {
                    let _entered = client::runtime().enter();
                    let c = self
                        .jwt
                        .installation_builder(InstallationId(id))
                        .repositories(vec![name.clone()])
                        .build()
                        .map_err(|e| self.err("use the installation", &e))?;
                    scoped.insert((id, name), c.clone());
                    c
                }
            }
        };
        use octocrab::secrecy::ExposeSecret;
        let token = crab
            .installation_token_with_buffer(GIT_TOKEN_MARGIN)
            .await
            .map_err(|e| self.err(&format!("get a token for Git on {repository}"), &e))?;
        Ok(Secret::new(token.expose_secret()))
    }

    fn err(&self, what: &str, e: &octocrab::Error) -> Error {
        Error::remote(format!(
            "GitHub {}: {what} as the GitHub App {} failed: {} — check \
             FLUX_EPHEMERAL_GITHUB_APP_ID, its private key and where the App is installed",
            self.api,
            self.id,
            describe(e)
        ))
    }
}
