//! Flux OCI artifacts as a preview's source: pack a directory reproducibly, push it to a registry,
//! and pin the OCIRepository to the digest the registry holds.

pub mod artifact;
pub mod auth;
pub mod registry;

pub use crate::artifact_url::{insecure_for, ArtifactUrl};

/// A pushed artifact: where, under which tag, and its manifest's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub url: ArtifactUrl,
    pub tag: String,
    pub digest: String,
    /// Whether anything was uploaded (false: the registry already had this digest under the tag).
    pub uploaded: bool,
}

/// `sha256:` and 64 lower-case hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ArtifactUrl::parse("oci://127.0.0.1:5000/org/app/manifests").unwrap();
        assert_eq!(u.registry, "127.0.0.1:5000");
        assert_eq!(u.repository, "org/app/manifests");
        assert_eq!(u.url(), "oci://127.0.0.1:5000/org/app/manifests");
        for bad in [
            "https://r/x",
            "oci://r",
            "oci://u:p@r/x",
            "oci://r/Upper",
            "oci://r/x:tag",
            "oci://r/",
        ] {
            assert!(ArtifactUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(!ArtifactUrl::parse("oci://u:secret@r/x")
            .unwrap_err()
            .message
            .contains("secret"));
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_digest("sha256:abc"));
    }
}
