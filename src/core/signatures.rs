//! Webhook authentication, in constant time: GitHub's HMAC-SHA256 signature and GitLab's secret
//! token.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// GitHub: `X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn verify_github(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Gitea (and Forgejo): `X-Gitea-Signature: <hex of HMAC-SHA256(secret, body)>`, no prefix.
pub fn verify_gitea(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    match header {
        Some(h) => verify_github(secret, body, Some(&format!("sha256={}", h.trim()))),
        None => false,
    }
}

/// GitLab: `X-Gitlab-Token` equals the configured secret token.
pub fn verify_gitlab(token: &[u8], header: Option<&str>) -> bool {
    match header {
        Some(h) => !token.is_empty() && bool::from(h.as_bytes().ct_eq(token)),
        None => false,
    }
}

/// `sha256=<hex>` for `body` (what GitHub sends; for tests and tools).
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries".
        let secret = b"It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify_github(secret, b"Hello, World!", Some(sig)));
        assert_eq!(sign_github(secret, b"Hello, World!"), sig);
        assert!(!verify_github(secret, b"Hello, World?", Some(sig)));
        assert!(!verify_github(
            secret,
            b"Hello, World!",
            Some("sha1=757107ea")
        ));
        assert!(!verify_github(secret, b"Hello, World!", Some("sha256=zz")));
        assert!(!verify_github(secret, b"Hello, World!", None));
    }

    #[test]
    fn gitlab_tokens() {
        assert!(verify_gitlab(b"t0ken", Some("t0ken")));
        assert!(!verify_gitlab(b"t0ken", Some("t0ke")));
        assert!(!verify_gitlab(b"t0ken", None));
        assert!(!verify_gitlab(b"", Some("")));
    }
}
