//! Pushing (and, for cleanup, reading and deleting) artifacts with the registry HTTP API of the
//! OCI distribution spec. The manifest is pushed as the exact bytes that were hashed, so the digest
//! committed is the one the registry holds; the registry's own answer (`Docker-Content-Digest`)
//! is checked against it.
//!
//! Written out rather than through an OCI client crate so that every answer is read up to a
//! bound (a registry answering 300 MB costs a bounded buffer and an error, not the memory) and
//! credentials go only where they are asked for: each request is sent anonymously first, and
//! credentials follow only this host's challenge (`Basic`), or go to a token service it names
//! (`Bearer`) over HTTPS. Every call has connect and read timeouts; remote text in errors is cut
//! short and escaped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::Method;

use super::artifact::{Packed, CONFIG, MANIFEST_MEDIA_TYPE};
use super::auth::Credentials;
use super::{ArtifactUrl, Pushed};
use crate::error::{Error, Result};

/// One registry repository with one set of credentials.
pub struct Registry {
    /// Same timeouts for every call, and no redirects (credentials never follow one).
    http: reqwest::Client,
    credentials: Option<Credentials>,
    url: ArtifactUrl,
    insecure: bool,
    runtime: tokio::runtime::Runtime,
    /// The `Authorization` this host's challenge asked for, per token action (`pull`,
    /// `pull,push`, `delete`): later requests send it at once instead of being refused and
    /// asking again (and fetching a new token each time).
    answered: Mutex<HashMap<String, HeaderValue>>,
}

/// What a request sends besides its method and URL.
#[derive(Default, Clone)]
struct Send<'a> {
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<bytes::Bytes>,
}

impl Registry {
    /// `insecure`: plain HTTP, because `--insecure-registry` names this registry's host (a
    /// registry on loopback in tests; never across a network).
    pub fn new(
        url: &ArtifactUrl,
        credentials: Option<Credentials>,
        insecure: bool,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(read_timeout()))
            .read_timeout(read_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(Registry {
            http,
            credentials,
            url: url.clone(),
            insecure,
            runtime,
            answered: Mutex::default(),
        })
    }

    fn scheme(&self) -> &'static str {
        if self.insecure {
            "http"
        } else {
            "https"
        }
    }

    /// `/v2/<repository>/<rest>` on this registry.
    fn api(&self, rest: &str) -> String {
        format!(
            "{}://{}/v2/{}/{rest}",
            self.scheme(),
            self.url.registry,
            self.url.repository
        )
    }

    /// Whether credentials may go to a token service at `realm`.
    fn may_send_to(&self, realm: &str) -> bool {
        match realm.split_once("://") {
            Some(("https", _)) => true,
            Some(("http", rest)) => {
                self.insecure
                    && rest
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .eq_ignore_ascii_case(&self.url.registry)
            }
            _ => false,
        }
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        let text = crate::redact::remote_text(
            &crate::redact::scrub(
                &e.to_string(),
                self.credentials.as_ref().map(|c| &c.password),
            ),
            crate::redact::REMOTE_TEXT_MAX,
        );
        let hint = match &self.credentials {
            Some(c) => format!("credentials of {} from {}", c.username, c.origin),
            None => {
                "no credentials (set REGISTRY_USERNAME/REGISTRY_PASSWORD with REGISTRY_HOST, or docker login)".into()
            }
        };
        Error::remote(format!(
            "registry {}: {what} failed: {text} ({hint})",
            self.url.url()
        ))
    }

    /// An answer that is not what `what` expected: its status and the start of its body.
    async fn refused(&self, what: &str, answer: reqwest::Response) -> Error {
        let status = answer.status().as_u16();
        let body = read_prefix(answer, ERROR_BODY_MAX).await;
        let text = String::from_utf8_lossy(&body);
        self.err(what, format!("HTTP {status}: {}", text.trim()))
    }

    /// The digest the registry holds under `tag`, if any: its `Docker-Content-Digest`, else the
    /// hash of the manifest (read up to a bound, never whole whatever its size).
    pub fn digest_of(&self, tag: &str) -> Result<Option<String>> {
        self.runtime.block_on(self.digest_of_async(tag))
    }

    async fn digest_of_async(&self, tag: &str) -> Result<Option<String>> {
        let url = self.api(&format!("manifests/{tag}"));
        let accept = [
            MANIFEST_MEDIA_TYPE,
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
        .join(", ");
        let ask = Send {
            accept: Some(&accept),
            ..Send::default()
        };
        let answer = self.request(Method::HEAD, &url, "pull", &ask).await?;
        match answer.status().as_u16() {
            404 => return Ok(None),
            200..=299 => {}
            _ => return Err(self.refused("reading the tag", answer).await),
        }
        let header = answer
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| super::is_digest(d))
            .map(str::to_string);
        if let Some(d) = header {
            return Ok(Some(d));
        }
        let answer = self.request(Method::GET, &url, "pull", &ask).await?;
        if !answer.status().is_success() {
            return Err(self.refused("reading the tag", answer).await);
        }
        let body = read_bounded(answer, MANIFEST_MAX)
            .await
            .map_err(|e| self.err("reading the tag", e))?;
        use sha2::Digest;
        Ok(Some(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&body))
        )))
    }

    /// One request, anonymous first (or with what this host asked for before); on a 401 again
    /// with what its challenge asks for (`action`: the token scope's action), remembered.
    async fn request(
        &self,
        method: Method,
        url: &str,
        action: &str,
        send: &Send<'_>,
    ) -> Result<reqwest::Response> {
        let build = |authorization: Option<&HeaderValue>| {
            let mut r = self.http.request(method.clone(), url);
            if let Some(a) = send.accept {
                r = r.header("accept", a);
            }
            if let Some(c) = send.content_type {
                r = r.header(CONTENT_TYPE, c);
            }
            if let Some(b) = &send.body {
                r = r.body(b.clone());
            }
            match authorization {
                Some(a) => r.header(AUTHORIZATION, a.clone()),
                None => r,
            }
        };
        let go = |r: reqwest::RequestBuilder| async {
            r.send()
                .await
                .map_err(|e| self.err("asking the registry", e.without_url()))
        };
        let known = self.lock_answered().get(action).cloned();
        let first = go(build(known.as_ref())).await?;
        let (401, Some(c)) = (first.status().as_u16(), &self.credentials) else {
            return Ok(first);
        };
        let challenge = first
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let authorization = match Challenge::parse(&challenge) {
            Challenge::Basic => {
                use base64::Engine;
                let pair = format!("{}:{}", c.username, c.password.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or(format!("repository:{}:{action}", self.url.repository));
                format!("Bearer {}", self.token(c, &realm, service, scope).await?)
            }
            Challenge::Other => return Ok(first),
        };
        let mut authorization = HeaderValue::from_str(&authorization)
            .map_err(|_| self.err("authenticating", "the token is not a valid header value"))?;
        authorization.set_sensitive(true);
        self.lock_answered()
            .insert(action.to_string(), authorization.clone());
        go(build(Some(&authorization))).await
    }

    fn lock_answered(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeaderValue>> {
        self.answered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Push `packed` under `tag`. Nothing is uploaded when the tag already holds its digest.
    pub fn push(&self, tag: &str, packed: &Packed) -> Result<Pushed> {
        let pushed = |uploaded| Pushed {
            url: self.url.clone(),
            tag: tag.to_string(),
            digest: packed.digest.clone(),
            uploaded,
        };
        if self.digest_of(tag)?.as_deref() == Some(packed.digest.as_str()) {
            return Ok(pushed(false));
        }
        self.runtime.block_on(async {
            for (data, digest) in [
                (
                    bytes::Bytes::from(packed.layer.clone()),
                    &packed.layer_digest,
                ),
                (bytes::Bytes::from_static(CONFIG), &packed.config_digest),
            ] {
                self.upload_blob(data, digest).await?;
            }
            let answer = self
                .request(
                    Method::PUT,
                    &self.api(&format!("manifests/{tag}")),
                    "pull,push",
                    &Send {
                        content_type: Some(MANIFEST_MEDIA_TYPE),
                        body: Some(bytes::Bytes::from(packed.manifest.clone())),
                        ..Send::default()
                    },
                )
                .await?;
            if !answer.status().is_success() {
                return Err(self.refused("pushing the manifest", answer).await);
            }
            let stored = answer
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match stored {
                Some(d) if d != packed.digest => Err(self.err(
                    "pushing the manifest",
                    format!("the registry stored {d}, not {}", packed.digest),
                )),
                _ => Ok(()),
            }
        })?;
        // The registry's own word on what the tag now holds.
        match self.digest_of(tag)? {
            Some(d) if d == packed.digest => Ok(pushed(true)),
            other => Err(self.err(
                "verifying the push",
                format!(
                    "the tag holds {}, not {}",
                    other.unwrap_or_else(|| "nothing".into()),
                    packed.digest
                ),
            )),
        }
    }

    /// A blob, unless the registry has it: a monolithic upload (POST for a session, PUT with the
    /// digest), the session's location only on this registry.
    async fn upload_blob(&self, data: bytes::Bytes, digest: &str) -> Result<()> {
        let none = Send::default();
        let head = self
            .request(
                Method::HEAD,
                &self.api(&format!("blobs/{digest}")),
                "pull,push",
                &none,
            )
            .await?;
        if head.status().is_success() {
            return Ok(());
        }
        let start = self
            .request(
                Method::POST,
                &self.api("blobs/uploads/"),
                "pull,push",
                &Send {
                    body: Some(bytes::Bytes::new()),
                    ..Send::default()
                },
            )
            .await?;
        if start.status().as_u16() != 202 {
            return Err(self.refused("starting an upload", start).await);
        }
        let location = start
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.err("starting an upload", "no Location in the answer"))?;
        let session = self.same_registry(location)?;
        let sep = if session.contains('?') { '&' } else { '?' };
        let put = self
            .request(
                Method::PUT,
                &format!("{session}{sep}digest={digest}"),
                "pull,push",
                &Send {
                    content_type: Some("application/octet-stream"),
                    body: Some(data),
                    ..Send::default()
                },
            )
            .await?;
        if !put.status().is_success() {
            return Err(self.refused("uploading a blob", put).await);
        }
        Ok(())
    }

    /// An upload location as a URL on this registry: a path is joined to it, an absolute URL must
    /// name it (credentials never go to another host a registry names).
    fn same_registry(&self, location: &str) -> Result<String> {
        if location.starts_with('/') {
            return Ok(format!(
                "{}://{}{location}",
                self.scheme(),
                self.url.registry
            ));
        }
        let ours = format!("{}://{}/", self.scheme(), self.url.registry);
        if location
            .get(..ours.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&ours))
        {
            Ok(location.to_string())
        } else {
            Err(self.err(
                "starting an upload",
                format!(
                    "the registry sent the upload to another place: {}",
                    crate::redact::remote_text(location, 200)
                ),
            ))
        }
    }

    /// Delete the manifest `digest` (and so its tags), where the registry allows it.
    pub fn delete(&self, digest: &str) -> Result<()> {
        let url = self.api(&format!("manifests/{digest}"));
        self.runtime.block_on(async {
            let answer = self
                .request(Method::DELETE, &url, "delete", &Send::default())
                .await?;
            match answer.status().as_u16() {
                200..=299 | 404 => Ok(()),
                405 => Err(self.err(
                    "deleting the manifest",
                    "the registry does not allow deletion (405)",
                )),
                _ => Err(self.refused("deleting the manifest", answer).await),
            }
        })
    }

    /// The registry's digest for each of `tags` that it holds (for pruning: which digests are
    /// still in use).
    pub fn digests_of(&self, tags: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for t in tags {
            if let Some(d) = self.digest_of(t)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn token(
        &self,
        c: &Credentials,
        realm: &str,
        service: Option<String>,
        scope: String,
    ) -> Result<String> {
        if !self.may_send_to(realm) {
            return Err(self.err(
                "getting a token",
                "the token service is neither HTTPS nor the registry itself",
            ));
        }
        let mut query = vec![("scope".to_string(), scope)];
        if let Some(s) = service {
            query.push(("service".into(), s));
        }
        let url = reqwest::Url::parse_with_params(realm, &query)
            .map_err(|e| self.err("getting a token", e))?;
        let answer = self
            .http
            .get(url)
            .basic_auth(&c.username, Some(c.password.expose()))
            .send()
            .await
            .map_err(|e| self.err("getting a token", e.without_url()))?;
        if !answer.status().is_success() {
            return Err(self.refused("getting a token", answer).await);
        }
        let body = read_bounded(answer, TOKEN_ANSWER_MAX)
            .await
            .map_err(|e| self.err("getting a token", e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| self.err("getting a token", e))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| self.err("getting a token", "no token in the answer"))
    }
}

/// How long to wait for a registry to accept a connection, and for each read.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The read timeout: FLUX_EPHEMERAL_REGISTRY_TIMEOUT (`30s`, `2m`), else 60 s.
fn read_timeout() -> Duration {
    std::env::var("FLUX_EPHEMERAL_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|t| humantime::parse_duration(t.trim()).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(READ_TIMEOUT)
}
/// A token answer is a small JSON document; more is refused.
const TOKEN_ANSWER_MAX: usize = 64 * 1024;
/// A manifest is a few kilobytes; the distribution spec lets registries refuse over 4 MiB.
const MANIFEST_MAX: usize = 4 * 1024 * 1024;
/// Of an error's body, only the start is read (and less is shown).
const ERROR_BODY_MAX: usize = 16 * 1024;

/// The first `max` bytes of a body at most; the rest is never read.
async fn read_prefix(mut answer: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// A body of at most `max` bytes, read as it arrives (a larger one is an error, not a buffer).
async fn read_bounded(
    mut answer: reqwest::Response,
    max: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Other,
}

impl Challenge {
    fn parse(header: &str) -> Challenge {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        let field = |k: &str| {
            params.split(',').find_map(|p| {
                let (key, v) = p.trim().split_once('=')?;
                key.eq_ignore_ascii_case(k)
                    .then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Challenge::Basic
        } else if scheme.eq_ignore_ascii_case("bearer") {
            match field("realm") {
                Some(realm) => Challenge::Bearer {
                    realm,
                    service: field("service"),
                    scope: field("scope"),
                },
                None => Challenge::Other,
            }
        } else {
            Challenge::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry""#),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a:pull".into()),
            }
        );
        assert_eq!(Challenge::parse("Bearer"), Challenge::Other);
        assert_eq!(Challenge::parse(""), Challenge::Other);
        assert_eq!(Challenge::parse("Negotiate"), Challenge::Other);
    }
}
