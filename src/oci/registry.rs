//! Pushing (and, for cleanup, deleting) artifacts with `oci-client`. The manifest is pushed as
//! the exact bytes that were hashed, so the digest committed is the one the registry holds; the
//! registry's own answer (`Docker-Content-Digest`) is checked against it.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::artifact::{Packed, CONFIG, MANIFEST_MEDIA_TYPE};
use super::auth::Credentials;
use super::{ArtifactUrl, Pushed};
use crate::error::{Error, Result};

/// One registry repository with one set of credentials (an `oci-client` client keeps the first
/// credentials it is given, so each set gets its own client).
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    credentials: Option<Credentials>,
    url: ArtifactUrl,
    insecure: bool,
    runtime: tokio::runtime::Runtime,
}

impl Registry {
    /// `insecure`: plain HTTP (a registry on loopback in tests; never across a network).
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
                ..ClientConfig::default()
            })
        };
        let auth = match &credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.expose().to_string()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client,
            auth,
            credentials,
            url: url.clone(),
            insecure,
            runtime,
        })
    }

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.url.registry.clone(),
            self.url.repository.clone(),
            tag.to_string(),
        )
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> Error {
        let text = crate::redact::scrub(
            &e.to_string(),
            self.credentials.as_ref().map(|c| &c.password),
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

    /// The digest the registry holds under `tag`, if any.
    pub fn digest_of(&self, tag: &str) -> Result<Option<String>> {
        let reference = self.reference(tag);
        self.runtime.block_on(async {
            match self
                .client
                .fetch_manifest_digest(&reference, &self.auth)
                .await
            {
                Ok(d) => Ok(Some(d)),
                Err(oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_)) => {
                    Ok(None)
                }
                Err(oci_client::errors::OciDistributionError::RegistryError {
                    envelope, ..
                }) if envelope
                    .errors
                    .iter()
                    .any(|e| format!("{:?}", e.code).contains("Unknown")) =>
                {
                    Ok(None)
                }
                Err(e) => Err(self.err("reading the tag", e)),
            }
        })
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

    /// Delete the manifest `digest` (and so its tags), where the registry allows it.
    pub fn delete(&self, digest: &str) -> Result<()> {
        let scheme = if self.insecure { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{}/manifests/{digest}",
            self.url.registry, self.url.repository
        );
        self.runtime.block_on(async {
            let http = reqwest::Client::new();
            let basic = |r: reqwest::RequestBuilder| match &self.credentials {
                Some(c) => r.basic_auth(&c.username, Some(c.password.expose())),
                None => r,
            };
            let first = basic(http.delete(&url))
                .send()
                .await
                .map_err(|e| self.err("deleting the manifest", e))?;
            let answer = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
                // The token dance of GHCR, GitLab and Docker Hub: a bearer token for the scope.
                let challenge = first
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let token = self.token(&http, &challenge).await?;
                http.delete(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map_err(|e| self.err("deleting the manifest", e))?
            } else {
                first
            };
            match answer.status().as_u16() {
                200..=299 | 404 => Ok(()),
                405 => Err(self.err(
                    "deleting the manifest",
                    "the registry does not allow deletion (405)",
                )),
                s => Err(self.err("deleting the manifest", format!("HTTP {s}"))),
            }
        })
    }

    async fn token(&self, http: &reqwest::Client, challenge: &str) -> Result<String> {
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(self.err("deleting the manifest", "unauthorized"));
        };
        let field = |k: &str| {
            params.split(',').find_map(|p| {
                let (key, v) = p.trim().split_once('=')?;
                (key == k).then(|| v.trim_matches('"').to_string())
            })
        };
        let realm = field("realm").ok_or_else(|| self.err("deleting", "no realm"))?;
        let mut query = vec![(
            "scope".to_string(),
            field("scope").unwrap_or(format!("repository:{}:delete", self.url.repository)),
        )];
        if let Some(s) = field("service") {
            query.push(("service".into(), s));
        }
        let mut req = http.get(&realm).query(&query);
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(c.password.expose()));
        }
        let v: serde_json::Value = req
            .send()
            .await
            .map_err(|e| self.err("getting a token", e))?
            .json()
            .await
            .map_err(|e| self.err("getting a token", e))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| self.err("getting a token", "no token in the answer"))
    }
}
