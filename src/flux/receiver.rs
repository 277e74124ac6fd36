//! Notify a Flux notification-controller Receiver after a push, so Flux reconciles now instead of
//! at its interval. The URL is the full webhook URL, or a base URL plus the Receiver's name and
//! namespace, from which the path is computed as `flux trigger receiver` does:
//! `/hook/<hex sha256(token + name + namespace)>`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::redact::Secret;

pub use crate::receiver_type::ReceiverType;

/// A Receiver to notify.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// The full webhook URL.
    pub url: String,
    pub kind: ReceiverType,
    pub token: Secret,
}

/// A runtime for one call.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("tokio: {e}")))
}

/// The webhook path of Receiver `name` in `namespace`, as notification-controller computes it.
pub fn hook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!("/hook/{}", hex::encode(digest))
}

impl Receiver {
    /// `url` is the full webhook URL (with `/hook/`), or a base URL when `name` is given.
    pub fn new(
        url: &str,
        name: Option<&str>,
        namespace: &str,
        kind: ReceiverType,
        token: Secret,
    ) -> Result<Self> {
        let url = match name {
            Some(n) => format!(
                "{}{}",
                url.trim_end_matches('/'),
                hook_path(token.expose(), n, namespace)
            ),
            None if url.contains("/hook/") => url.to_string(),
            None => {
                return Err(Error::config(format!(
                    "receiver URL {} has no /hook/ path: give the full webhook URL, or --receiver-name (and --receiver-namespace)",
                    crate::redact::redact_url(url)
                )))
            }
        };
        Ok(Receiver { url, kind, token })
    }

    /// The headers and body of a notification that `commit` landed on `branch`.
    pub fn request(&self, branch: &str, commit: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
        let body = serde_json::to_vec(&serde_json::json!({
            "ref": format!("refs/heads/{branch}"),
            "after": commit,
            "source": "flux-ephemeral",
        }))
        .unwrap_or_default();
        let hmac = || {
            let mut mac = Hmac::<Sha256>::new_from_slice(self.token.expose().as_bytes())
                .expect("HMAC takes any key length");
            mac.update(&body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        match self.kind {
            ReceiverType::Generic => {}
            ReceiverType::GenericHmac => headers.push(("X-Signature", hmac())),
            ReceiverType::Github => {
                headers.push(("X-Hub-Signature-256", hmac()));
                headers.push(("X-GitHub-Event", "push".into()));
            }
            ReceiverType::Gitlab => {
                headers.push(("X-Gitlab-Token", self.token.expose().to_string()));
                headers.push(("X-Gitlab-Event", "Push Hook".into()));
            }
        }
        (headers, body)
    }

    /// Whether the Receiver's server answers HTTP at all: a GET of its root (never the webhook
    /// path, which would trigger a reconciliation). Any status is an answer.
    pub fn probe(&self) -> Result<u16> {
        let base = match self.url.split_once("/hook/") {
            Some((base, _)) => format!("{base}/"),
            None => self.url.clone(),
        };
        let runtime = runtime()?;
        runtime.block_on(async {
            reqwest::Client::new()
                .get(&base)
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .map(|a| a.status().as_u16())
                .map_err(|e| {
                    Error::remote(format!(
                        "the Flux receiver at {base} cannot be reached: {}",
                        e.without_url()
                    ))
                })
        })
    }

    /// POST the notification; an error names the URL without its secret path.
    pub fn notify(&self, branch: &str, commit: &str) -> Result<()> {
        let (headers, body) = self.request(branch, commit);
        let shown = match self.url.split_once("/hook/") {
            Some((base, _)) => format!("{base}/hook/***"),
            None => self.url.clone(),
        };
        let runtime = runtime()?;
        runtime.block_on(async {
            let mut req = reqwest::Client::new()
                .post(&self.url)
                .timeout(std::time::Duration::from_secs(10))
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            // The webhook path is as good as the token: the error must not carry the URL.
            let answer = req.send().await.map_err(|e| {
                Error::remote(format!(
                    "notifying the Flux receiver {shown} failed: {}",
                    crate::redact::scrub(&e.without_url().to_string(), Some(&self.token))
                ))
            })?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(Error::remote(format!(
                    "the Flux receiver {shown} answered {}",
                    answer.status()
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_flux_computes_them() {
        // sha256("token" + "name" + "flux-system")
        let want = hex::encode(Sha256::digest(b"s3cretmy-receiverflux-system"));
        assert_eq!(
            hook_path("s3cret", "my-receiver", "flux-system"),
            format!("/hook/{want}")
        );
        let r = Receiver::new(
            "http://127.0.0.1:9292/",
            Some("my-receiver"),
            "flux-system",
            ReceiverType::Generic,
            Secret::new("s3cret"),
        )
        .unwrap();
        assert_eq!(r.url, format!("http://127.0.0.1:9292/hook/{want}"));
        assert!(Receiver::new(
            "http://x",
            None,
            "flux-system",
            ReceiverType::Generic,
            Secret::new("t")
        )
        .is_err());
    }

    #[test]
    fn headers_per_type() {
        let r = |kind| Receiver {
            url: "http://x/hook/abc".into(),
            kind,
            token: Secret::new("tok"),
        };
        let (h, body) = r(ReceiverType::GenericHmac).request("main", "abc");
        let sig = h
            .iter()
            .find(|(k, _)| *k == "X-Signature")
            .unwrap()
            .1
            .clone();
        assert_eq!(sig, crate::signatures::sign_github(b"tok", &body));
        let (h, _) = r(ReceiverType::Github).request("main", "abc");
        assert!(h.contains(&("X-GitHub-Event", "push".into())));
        let (h, _) = r(ReceiverType::Gitlab).request("main", "abc");
        assert!(h.contains(&("X-Gitlab-Token", "tok".into())));
        assert!(h.contains(&("X-Gitlab-Event", "Push Hook".into())));
    }
}
