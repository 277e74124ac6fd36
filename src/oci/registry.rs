//! Pushing (and, for cleanup, deleting) artifacts with `oci-client`. The manifest is pushed as
//! the exact bytes that were hashed, so the digest committed is the one the registry holds; the
//! registry's own answer (`Docker-Content-Digest`) is checked against it.
//!
//! Credentials go only where they are asked for: the registry is first asked anonymously, and
//! they are used only after that host challenges for them (`Basic`), or sent to a token service
//! it names (`Bearer`) over HTTPS. Every call has connect and read timeouts; remote text in errors
//! is cut short and escaped.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::time::Duration;

use super::artifact::{Packed, CONFIG, MANIFEST_MEDIA_TYPE};
use super::auth::Credentials;
use super::{ArtifactUrl, Pushed};
use crate::error::{Error, Result};

/// One registry repository with one set of credentials (an `oci-client` client keeps the first
/// credentials it is given, so each set gets its own client).
pub struct Registry {
    client: Client,
    /// For the challenge probe, deletion and token requests: same timeouts, no redirects.
    http: reqwest::Client,
    auth: RegistryAuth,
    credentials: Option<Credentials>,
    url: ArtifactUrl,
    insecure: bool,
    runtime: tokio::runtime::Runtime,
    /// The `Authorization` this host's challenge asked for, per token action (`pull`,
    /// `delete`): later requests send it at once instead of being refused and asking again
    /// (and fetching a new token each time).
    answered: std::sync::Mutex<std::collections::HashMap<String, reqwest::header::HeaderValue>>,
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
        let client = {
            let _entered = runtime.enter();
            Client::new(ClientConfig {
                protocol: if insecure {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                connect_timeout: Some(CONNECT_TIMEOUT.min(read_timeout())),
                read_timeout: Some(read_timeout()),
                ..ClientConfig::default()
            })
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(read_timeout()))
            .read_timeout(read_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        let mut registry = Registry {
            client,
            http,
            auth: RegistryAuth::Anonymous,
            credentials,
            url: url.clone(),
            insecure,
            runtime,
            answered: Default::default(),
        };
        registry.auth = registry.challenged_auth()?;
        Ok(registry)
    }

    fn scheme(&self) -> &'static str {
        if self.insecure {
            "http"
        } else {
            "https"
        }
    }

    /// Ask the registry anonymously (`GET /v2/`) and hand the credentials over only for the
    /// challenge it answers with: `Basic` from this host, or `Bearer` with a token service on
    /// HTTPS (or on this very host when the operator named it insecure).
    fn challenged_auth(&self) -> Result<RegistryAuth> {
        let Some(c) = &self.credentials else {
            return Ok(RegistryAuth::Anonymous);
        };
        let url = format!("{}://{}/v2/", self.scheme(), self.url.registry);
        let challenge = self.runtime.block_on(async {
            let answer = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.err("reaching the registry", e))?;
            Ok::<_, Error>(
                answer
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            )
        })?;
        let basic = RegistryAuth::Basic(c.username.clone(), c.password.expose().to_string());
        Ok(match challenge.as_deref().map(Challenge::parse) {
            Some(Challenge::Basic) => basic,
            Some(Challenge::Bearer { realm, .. }) if self.may_send_to(&realm) => basic,
            Some(Challenge::Bearer { realm, .. }) => {
                tracing::warn!(
                    realm = %crate::redact::remote_text(&realm, 200),
                    "the registry's token service is neither HTTPS nor the registry itself: no credentials sent"
                );
                RegistryAuth::Anonymous
            }
            _ => RegistryAuth::Anonymous,
        })
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

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.url.registry.clone(),
            self.url.repository.clone(),
            tag.to_string(),
        )
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
                "no credentials (set REGISTRY_USERNAME/REGISTRY_PASSWORD or docker login)".into()
            }
        };
        Error::remote(format!(
            "registry {}: {what} failed: {text} ({hint})",
            self.url.url()
        ))
    }

    /// The digest the registry holds under `tag`, if any: its `Docker-Content-Digest`, else the
    /// hash of the manifest (read up to a bound, never whole whatever its size).
    pub fn digest_of(&self, tag: &str) -> Result<Option<String>> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{tag}",
            self.scheme(),
            self.url.registry,
            self.url.repository
        );
        let accept = [
            MANIFEST_MEDIA_TYPE,
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
        .join(", ");
        self.runtime.block_on(async {
            let answer = self
                .request(reqwest::Method::HEAD, &url, &accept, "pull")
                .await?;
            let status = answer.status().as_u16();
            if status == 404 {
                return Ok(None);
            }
            if !(200..300).contains(&status) {
                return Err(self.err("reading the tag", format!("HTTP {status}")));
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
            let answer = self
                .request(reqwest::Method::GET, &url, &accept, "pull")
                .await?;
            let body = read_bounded(answer, MANIFEST_MAX)
                .await
                .map_err(|e| self.err("reading the tag", e))?;
            use sha2::Digest;
            Ok(Some(format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(&body))
            )))
        })
    }

    /// One request, anonymous first; on a 401 again with what this host's challenge asks for
    /// (`action`: the token scope's action, `pull` or `delete`), remembered for the next request.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: &str,
        action: &str,
    ) -> Result<reqwest::Response> {
        let build = |authorization: Option<&reqwest::header::HeaderValue>| {
            let mut r = self.http.request(method.clone(), url);
            if !accept.is_empty() {
                r = r.header("accept", accept);
            }
            match authorization {
                Some(a) => r.header(reqwest::header::AUTHORIZATION, a.clone()),
                None => r,
            }
        };
        let send = |r: reqwest::RequestBuilder| async {
            r.send()
                .await
                .map_err(|e| self.err("asking the registry", e))
        };
        let known = self.lock_answered().get(action).cloned();
        let first = send(build(known.as_ref())).await?;
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
        let mut authorization = reqwest::header::HeaderValue::from_str(&authorization)
            .map_err(|_| self.err("authenticating", "the token is not a valid header value"))?;
        authorization.set_sensitive(true);
        self.lock_answered()
            .insert(action.to_string(), authorization.clone());
        send(build(Some(&authorization))).await
    }

    fn lock_answered(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, reqwest::header::HeaderValue>>
    {
        self.answered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Push `packed` under `tag`. Nothing is uploaded when the tag already holds its digest.
    pub fn push(&self, tag: &str, packed: &Packed) -> Result<Pushed> {
        let reference = self.reference(tag);
        let pushed = |uploaded| Pushed {
            url: self.url.clone(),
            tag: tag.to_string(),
            digest: packed.digest.clone(),
            uploaded,
        };
        self.runtime
            .block_on(
                self.client
                    .auth(&reference, &self.auth, RegistryOperation::Push),
            )
            .map_err(|e| self.err("authenticating", e))?;
        if self.digest_of(tag)?.as_deref() == Some(packed.digest.as_str()) {
            return Ok(pushed(false));
        }
        self.runtime.block_on(async {
            for (data, digest) in [
                (packed.layer.clone(), &packed.layer_digest),
                (CONFIG.to_vec(), &packed.config_digest),
            ] {
                let exists = self
                    .client
                    .blob_exists(&reference, digest)
                    .await
                    .map_err(|e| self.err("checking a blob", e))?;
                if !exists {
                    self.client
                        .push_blob(&reference, data, digest)
                        .await
                        .map_err(|e| self.err("uploading a blob", e))?;
                }
            }
            let content_type = MANIFEST_MEDIA_TYPE
                .parse()
                .map_err(|_| Error::internal("manifest media type"))?;
            let location = self
                .client
                .push_manifest_raw(&reference, packed.manifest.clone(), content_type)
                .await
                .map_err(|e| self.err("pushing the manifest", e))?;
            if let Some((_, d)) = location
                .rsplit_once('/')
                .filter(|(_, d)| d.starts_with("sha256:"))
            {
                if d != packed.digest {
                    return Err(self.err(
                        "pushing the manifest",
                        format!("the registry stored {d}, not {}", packed.digest),
                    ));
                }
            }
            Ok::<(), Error>(())
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

    /// Delete the manifest `digest` (and so its tags), where the registry allows it. Asked
    /// anonymously first; credentials only after this host's challenge.
    pub fn delete(&self, digest: &str) -> Result<()> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{digest}",
            self.scheme(),
            self.url.registry,
            self.url.repository
        );
        let answer =
            self.runtime
                .block_on(self.request(reqwest::Method::DELETE, &url, "", "delete"))?;
        match answer.status().as_u16() {
            200..=299 | 404 => Ok(()),
            405 => Err(self.err(
                "deleting the manifest",
                "the registry does not allow deletion (405)",
            )),
            s => Err(self.err("deleting the manifest", format!("HTTP {s}"))),
        }
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
        let answer = self
            .http
            .get(realm)
            .query(&query)
            .basic_auth(&c.username, Some(c.password.expose()))
            .send()
            .await
            .map_err(|e| self.err("getting a token", e))?;
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

/// A body of at most `max` bytes, read as it arrives (a larger one is an error, not a buffer).
async fn read_bounded(
    mut answer: reqwest::Response,
    max: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
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
