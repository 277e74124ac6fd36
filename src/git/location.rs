//! Where the GitOps repository is: a local repository, or a remote reached over a transport.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::redact::redact_url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A repository on this machine (a path or `file://`), written to directly.
    Local(PathBuf),
    /// `git://`, `http(s)://`, `ssh://` or scp-style `user@host:path`, reached through a mirror.
    Remote(String),
}

impl Location {
    pub fn parse(spec: &str) -> Result<Location> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::input(
                "--repo is empty: pass a path or URL of the GitOps repository",
            ));
        }
        if let Some(path) = spec.strip_prefix("file://") {
            if path
                .split('/')
                .next()
                .is_some_and(|host| host.contains('@'))
            {
                return Err(Error::input(format!(
                    "{} names a user: a file:// URL is a local path (file:///srv/gitops.git) and takes no credentials",
                    redact_url(spec)
                )));
            }
            return Ok(Location::Local(absolute(Path::new(path))?));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return match scheme {
                "git" | "http" | "https" | "ssh" | "git+ssh" | "ssh+git" => Ok(Location::Remote(spec.to_string())),
                _ => Err(Error::input(format!(
                    "unsupported repository URL scheme {scheme:?} in {}: use a path, file://, git://, http(s)://, ssh:// or user@host:path",
                    redact_url(spec)
                ))),
            };
        }
        let colon = spec.find(':');
        let slash = spec.find('/');
        let scp_like = match (colon, slash) {
            (Some(c), Some(s)) => c < s,
            (Some(_), None) => true,
            _ => false,
        };
        if scp_like && !Path::new(spec).exists() {
            return Ok(Location::Remote(spec.to_string()));
        }
        Ok(Location::Local(absolute(Path::new(spec))?))
    }

    /// For messages: never shows a password.
    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Remote(u) => redact_url(u),
        }
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(matches!(
            Location::parse("/srv/gitops.git").unwrap(),
            Location::Local(_)
        ));
        assert!(matches!(
            Location::parse("file:///srv/gitops.git").unwrap(),
            Location::Local(_)
        ));
        assert!(matches!(
            Location::parse("relative/dir").unwrap(),
            Location::Local(_)
        ));
        for r in [
            "git://h/x.git",
            "https://h/x.git",
            "http://127.0.0.1:1/x",
            "ssh://git@h:22/x.git",
            "git@github.com:org/x.git",
        ] {
            assert_eq!(
                Location::parse(r).unwrap(),
                Location::Remote(r.into()),
                "{r}"
            );
        }
        assert!(Location::parse("ftp://h/x").is_err());
        assert!(Location::parse("").is_err());
    }
}
