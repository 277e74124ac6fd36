//! What this process remembers of GitHub between events, to spend the API budget carefully:
//! the clients (their token and answer caches live in them), the bot's identity (it cannot change
//! within a process), a person's permission for a short while, and where the bot's own comment on
//! each change is. Keys name the credential ("token", "installation 42"), never its secret.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use octocrab::Octocrab;

use super::client::{self, Credential};
use crate::error::Result;
use crate::redact::Secret;

/// How long a permission read from GitHub is believed: long enough for the events of one push
/// (synchronize, check runs, statuses), short enough that a removed collaborator soon loses it.
pub const PERMISSION_TTL: Duration = Duration::from_secs(60);

/// At most this many permissions and comment places are kept; past it the memory starts over.
const ENTRIES: usize = 10_000;

#[derive(Default)]
struct Memory {
    /// api → the client of the process's token.
    token_clients: HashMap<String, Octocrab>,
    /// (api, credential) → the bot's login.
    logins: HashMap<(String, String), String>,
    /// (api, credential, repository, login) → (may write, when read).
    permissions: HashMap<(String, String, String, String), (bool, Instant)>,
    /// (api, repository, change) → the bot's comment id.
    comments: HashMap<(String, String, u64), u64>,
    /// (api, repository, environment) → the one deployment of it left active, created by this
    /// process (its predecessors were retired when it succeeded, or there were none).
    deployments: HashMap<(String, String, String), u64>,
}

fn memory() -> std::sync::MutexGuard<'static, Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    let m = MEMORY.get_or_init(Default::default);
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The client of `token` (or anonymous) on `api`, made once a process.
pub fn token_client(api: &str, token: Option<&Secret>) -> Result<Octocrab> {
    let key = format!(
        "{api} {}",
        if token.is_some() {
            "token"
        } else {
            "anonymous"
        }
    );
    if let Some(c) = memory().token_clients.get(&key) {
        return Ok(c.clone());
    }
    let who = match token {
        Some(t) => Credential::Token(t),
        None => Credential::Anonymous,
    };
    let c = client::client(api, who)?;
    memory().token_clients.insert(key, c.clone());
    Ok(c)
}

pub fn login(api: &str, who: &str) -> Option<String> {
    memory().logins.get(&(api.into(), who.into())).cloned()
}

pub fn remember_login(api: &str, who: &str, login: &str) {
    memory()
        .logins
        .insert((api.into(), who.into()), login.into());
}

/// A permission read less than [`PERMISSION_TTL`] ago.
pub fn permission(api: &str, who: &str, repository: &str, login: &str) -> Option<bool> {
    let key = (
        api.into(),
        who.into(),
        repository.to_ascii_lowercase(),
        login.to_ascii_lowercase(),
    );
    let m = memory();
    m.permissions
        .get(&key)
        .filter(|(_, at)| at.elapsed() < PERMISSION_TTL)
        .map(|(may, _)| *may)
}

pub fn remember_permission(api: &str, who: &str, repository: &str, login: &str, may: bool) {
    let mut m = memory();
    if m.permissions.len() >= ENTRIES {
        m.permissions
            .retain(|_, (_, at)| at.elapsed() < PERMISSION_TTL);
    }
    if m.permissions.len() < ENTRIES {
        let key = (
            api.into(),
            who.into(),
            repository.to_ascii_lowercase(),
            login.to_ascii_lowercase(),
        );
        m.permissions.insert(key, (may, Instant::now()));
    }
}

/// Where the bot's comment on change `number` is, once found or written.
pub fn comment(api: &str, repository: &str, number: u64) -> Option<u64> {
    memory()
        .comments
        .get(&(api.into(), repository.to_ascii_lowercase(), number))
        .copied()
}

pub fn remember_comment(api: &str, repository: &str, number: u64, id: Option<u64>) {
    let mut m = memory();
    let key = (api.into(), repository.to_ascii_lowercase(), number);
    match id {
        Some(id) => {
            if m.comments.len() >= ENTRIES {
                m.comments.clear();
            }
            m.comments.insert(key, id);
        }
        None => {
            m.comments.remove(&key);
        }
    }
}

/// The deployment of `environment` this process knows to be its only active one.
pub fn active_deployment(api: &str, repository: &str, environment: &str) -> Option<u64> {
    memory()
        .deployments
        .get(&(
            api.into(),
            repository.to_ascii_lowercase(),
            environment.into(),
        ))
        .copied()
}

/// `id` is now `environment`'s only active deployment (`None`: none is, or it is not known).
pub fn remember_deployment(api: &str, repository: &str, environment: &str, id: Option<u64>) {
    let mut m = memory();
    let key = (
        api.into(),
        repository.to_ascii_lowercase(),
        environment.into(),
    );
    match id {
        Some(id) => {
            if m.deployments.len() >= ENTRIES {
                m.deployments.clear();
            }
            m.deployments.insert(key, id);
        }
        None => {
            m.deployments.remove(&key);
        }
    }
}
