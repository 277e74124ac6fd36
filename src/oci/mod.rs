//! Flux OCI artifacts as a preview's source: pack a directory reproducibly, push it to a registry,
//! and pin the OCIRepository to the digest the registry holds.

pub mod artifact;
pub mod auth;
pub mod registry;

/// Where an artifact goes: `oci://HOST[:PORT]/REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactUrl {
    pub registry: String,
    pub repository: String,
}

impl ArtifactUrl {
    pub fn parse(url: &str) -> crate::error::Result<ArtifactUrl> {
        let bad = |why: &str| {
            crate::error::Error::input(format!(
                "artifact URL {:?} {why}: use oci://HOST[:PORT]/REPOSITORY, e.g. oci://registry.gitlab.com/group/app/manifests",
                crate::redact::redact_url(url)
            ))
        };
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| bad("does not start with oci://"))?;
        let (registry, repository) = rest
            .split_once('/')
            .ok_or_else(|| bad("has no repository"))?;
        let repository = repository.trim_end_matches('/');
        if registry.is_empty() || registry.contains('@') {
            return Err(bad("has no host, or has credentials in it"));
        }
        // The distribution spec's repository name: lower-case path components.
        let component =
            regex::Regex::new(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$").expect("valid");
        if repository.is_empty() || !repository.split('/').all(|c| component.is_match(c)) {
            return Err(bad(
                "has an invalid repository name (lower-case letters, digits, . _ - and /)",
            ));
        }
        if repository.contains(':') {
            return Err(bad("names a tag: the tag is the environment's slug"));
        }
        Ok(ArtifactUrl {
            registry: registry.to_string(),
            repository: repository.to_string(),
        })
    }

    /// `oci://HOST/REPOSITORY`, what the OCIRepository's `spec.url` holds.
    pub fn url(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }
}

/// Whether `--insecure-registry NAMED` names this URL's registry host (only then plain HTTP).
pub fn insecure_for(named: Option<&str>, url: &ArtifactUrl) -> bool {
    named.is_some_and(|n| {
        let n = n.trim();
        let n = n.split_once("://").map_or(n, |x| x.1).trim_end_matches('/');
        n.eq_ignore_ascii_case(&url.registry)
    })
}

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
