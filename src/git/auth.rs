//! Credentials for remotes: an HTTPS token, an SSH key or the SSH agent, and host-key checking.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use crate::redact::Secret;

#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// HTTPS token or password (`GIT_TOKEN`, `--token-file`).
    pub token: Option<Secret>,
    /// HTTPS user name sent with the token (any value works for GitHub and GitLab tokens).
    pub username: Option<String>,
    /// SSH private key; without it the SSH agent is asked.
    pub ssh_key: Option<PathBuf>,
    /// Accept any SSH host key. For tests only: it allows a man in the middle.
    pub insecure_ignore_host_key: bool,
    /// A token asked for before each fetch or push (a GitHub App installation's, which lasts an
    /// hour), used when no `token` is given.
    pub fresh_token: Option<FreshToken>,
}

/// Where a short-lived HTTPS token comes from.
pub trait TokenSource: Send + Sync {
    /// A token with enough time left for one fetch or push; the error says why there is none.
    fn token(&self) -> Result<Secret, crate::error::Error>;
}

/// A [`TokenSource`] and the token it last gave (to send, and to scrub from messages).
#[derive(Clone)]
pub struct FreshToken {
    source: Arc<dyn TokenSource>,
    current: Arc<Mutex<Option<Secret>>>,
}

impl FreshToken {
    pub fn new(source: Arc<dyn TokenSource>) -> FreshToken {
        FreshToken {
            source,
            current: Arc::default(),
        }
    }
}

impl std::fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreshToken(***)")
    }
}

/// What the callbacks saw, for error messages.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Lines the server printed (`remote: ...`), e.g. from a refusing hook.
    pub remote_messages: RefCell<String>,
    /// Per-ref refusal from the server during push.
    pub rejections: RefCell<Vec<(String, String)>>,
    /// Which kind of credential we last offered (to explain an authentication failure).
    pub offered: Cell<Option<&'static str>>,
}

impl Auth {
    /// Ask the token source (if any) for a token good for the next fetch or push.
    pub fn refresh(&self) -> crate::error::Result<()> {
        if let (None, Some(fresh)) = (&self.token, &self.fresh_token) {
            let token = fresh.source.token()?;
            if let Ok(mut c) = fresh.current.lock() {
                *c = Some(token);
            }
        }
        Ok(())
    }

    /// The HTTPS token sent: the one given, else the fresh one last asked for.
    pub fn current_token(&self) -> Option<Secret> {
        self.token.clone().or_else(|| {
            self.fresh_token
                .as_ref()
                .and_then(|f| f.current.lock().ok().and_then(|c| c.clone()))
        })
    }

    /// Callbacks for one fetch or push. `transcript` collects what happened.
    pub fn callbacks<'a>(&'a self, transcript: Rc<Transcript>) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        let attempts = Cell::new(0u32);
        let t = transcript.clone();
        let token = self.current_token();
        cb.credentials(move |_url, user_from_url, allowed| {
            attempts.set(attempts.get() + 1);
            // libgit2 asks again after the server refused what we offered: stop there.
            if attempts.get() > 2 {
                let hint = match t.offered.get() {
                    Some("token") => "the remote refused the token: check GIT_TOKEN or --token-file, GIT_USERNAME, and that the token may push",
                    Some(_) => "the remote refused the SSH key: check --ssh-key (or the agent) and that it is a deploy key with write access",
                    None => "the remote refused the credentials",
                };
                return Err(git2::Error::from_str(hint));
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                let user = user_from_url.unwrap_or("git");
                if let Some(key) = &self.ssh_key {
                    t.offered.set(Some("ssh key"));
                    return Cred::ssh_key(user, None, key, None);
                }
                t.offered.set(Some("ssh agent"));
                return Cred::ssh_key_from_agent(user);
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(token) = &token {
                    t.offered.set(Some("token"));
                    let user = self.username.as_deref().or(user_from_url).unwrap_or("x-access-token");
                    return Cred::userpass_plaintext(user, token.expose());
                }
                t.offered.set(None);
                return Err(git2::Error::from_str("the remote asks for credentials; set GIT_TOKEN or --token-file"));
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user_from_url.unwrap_or("git"));
            }
            Cred::default()
        });
        let insecure = self.insecure_ignore_host_key;
        cb.certificate_check(move |_cert, _host| {
            Ok(if insecure {
                CertificateCheckStatus::CertificateOk
            } else {
                CertificateCheckStatus::CertificatePassthrough
            })
        });
        let t = transcript.clone();
        cb.sideband_progress(move |data| {
            t.remote_messages
                .borrow_mut()
                .push_str(&String::from_utf8_lossy(data));
            true
        });
        let t = transcript;
        cb.push_update_reference(move |refname, status| {
            if let Some(msg) = status {
                t.rejections
                    .borrow_mut()
                    .push((refname.to_string(), msg.to_string()));
            }
            Ok(())
        });
        cb
    }
}
