//! Registry credentials as people already have them: REGISTRY_USERNAME/REGISTRY_PASSWORD for the
//! host REGISTRY_HOST, in GitLab CI CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for CI_REGISTRY, or
//! Docker's config.json (DOCKER_CONFIG, ~/.docker/config.json, `auths`). Each set is bound to its
//! host: a reference to any other host (from a sync file, a configuration) gets none of them.
//! Never from argv; never printed.

use base64::Engine;

use crate::error::{Error, Result};
use crate::redact::Secret;

/// User name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// Where they came from, for messages.
    pub origin: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} from {})", self.username, self.origin)
    }
}

/// The credentials for `registry` (`host[:port]`), read through `var` and `read_file`.
pub fn resolve(
    registry: &str,
    var: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&std::path::Path) -> Option<String>,
) -> Result<Option<Credentials>> {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    if let (Some(u), Some(p)) = (get("REGISTRY_USERNAME"), get("REGISTRY_PASSWORD")) {
        let host = get("REGISTRY_HOST").ok_or_else(|| {
            Error::config(
                "REGISTRY_USERNAME/REGISTRY_PASSWORD are set but REGISTRY_HOST is not: set REGISTRY_HOST to the registry they are for (HOST[:PORT]); they are sent to no other",
            )
        })?;
        if !same_host(&host, registry) {
            return from_ci_or_docker(registry, &get, read_file);
        }
        return Ok(Some(Credentials {
            username: u,
            password: Secret::new(p),
            origin: "REGISTRY_USERNAME/REGISTRY_PASSWORD",
        }));
    }
    from_ci_or_docker(registry, &get, read_file)
}

fn from_ci_or_docker(
    registry: &str,
    get: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&std::path::Path) -> Option<String>,
) -> Result<Option<Credentials>> {
    if get("CI_REGISTRY").is_some_and(|r| same_host(&r, registry)) {
        if let (Some(u), Some(p)) = (get("CI_REGISTRY_USER"), get("CI_REGISTRY_PASSWORD")) {
            return Ok(Some(Credentials {
                username: u,
                password: Secret::new(p),
                origin: "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD",
            }));
        }
    }
    let config = match get("DOCKER_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir).join("config.json"),
        None => match get("HOME") {
            Some(h) => std::path::PathBuf::from(h).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    let Some(text) = read_file(&config) else {
        return Ok(None);
    };
    docker_config(&text, registry)
        .map_err(|why| Error::config(format!("{}: {why}", config.display())))
}

/// `auths` of a Docker config.json: `auth` (base64 of `user:password`) or `username`/`password`.
fn docker_config(text: &str, registry: &str) -> std::result::Result<Option<Credentials>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let Some((_, entry)) = auths.iter().find(|(k, _)| same_host(k, registry)) else {
        return Ok(None);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("an auths entry's auth is not base64 of user:password")?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or("an auths entry's auth is not user:password")?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: Secret::new(p),
            origin: "Docker config.json",
        }));
    }
    let s = |k: &str| entry.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(match (s("username"), s("password")) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u,
            password: Secret::new(p),
            origin: "Docker config.json",
        }),
        _ => None,
    })
}

/// `https://index.docker.io/v1/` and `registry.example.com` name hosts the same way.
fn same_host(a: &str, b: &str) -> bool {
    let host = |s: &str| {
        let s = s.split_once("://").map_or(s, |x| x.1);
        let s = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
        match s.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => s,
        }
    };
    host(a) == host(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(vars: &[(&str, &str)], file: Option<&str>, registry: &str) -> Option<Credentials> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let file = file.map(str::to_string);
        resolve(registry, &|k| vars.get(k).cloned(), &|_| file.clone()).unwrap()
    }

    #[test]
    fn sources_in_order() {
        let both = [
            ("REGISTRY_USERNAME", "u"),
            ("REGISTRY_PASSWORD", "p"),
            ("REGISTRY_HOST", "r"),
            ("HOME", "/h"),
        ];
        assert_eq!(run(&both, None, "r").unwrap().username, "u");
        // Bound to their host: a reference elsewhere (a forged sync file) gets none.
        assert!(run(&both, None, "evil.example").is_none());
        assert!(run(&both, None, "r.evil.example").is_none());
        // Without a host they go nowhere, and the error says which setting is missing.
        let unbound = [("REGISTRY_USERNAME", "u"), ("REGISTRY_PASSWORD", "p")];
        let vars: HashMap<String, String> = unbound
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = resolve("r", &|k| vars.get(k).cloned(), &|_| None).unwrap_err();
        assert!(e.message.contains("REGISTRY_HOST"), "{e}");
        let ci = [
            ("CI_REGISTRY", "registry.gitlab.com"),
            ("CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CI_REGISTRY_PASSWORD", "job"),
        ];
        assert_eq!(
            run(&ci, None, "registry.gitlab.com").unwrap().username,
            "gitlab-ci-token"
        );
        assert!(run(&ci, None, "ghcr.io").is_none(), "only for CI_REGISTRY");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let config = format!(
            r#"{{"auths": {{"https://ghcr.io/v1/": {{"auth": "{auth}"}}, "r:5000": {{"username": "bob", "password": "pw"}}}}}}"#
        );
        let home = [("HOME", "/h")];
        let c = run(&home, Some(&config), "ghcr.io").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(run(&home, Some(&config), "r:5000").unwrap().username, "bob");
        assert!(run(&home, Some(&config), "quay.io").is_none());
        assert!(run(&home, Some("{}"), "r").is_none());
    }
}
