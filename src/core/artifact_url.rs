//! Where an OCI artifact goes, `oci://HOST[:PORT]/REPOSITORY`, checked (pure; `oci` pushes).

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
