//! The GitOps repository a run works on: where it is (the demo repository when none is given),
//! how to reach it, and the settings given outside its configuration file.

use std::path::PathBuf;

use crate::config::FileConfig;
use crate::error::{Error, Result};
use crate::git::{Auth, Location, Store};
use crate::reconcile::ConfigSource;

/// The GitOps repository, how to reach it, and the settings given outside its configuration file.
#[derive(Debug, Clone, Default)]
pub struct Repo {
    /// A path or URL; `None`: the local demo repository.
    pub url: Option<String>,
    /// Else the repository's default branch.
    pub target_branch: Option<String>,
    /// Keep a bare mirror here between runs.
    pub cache_dir: Option<PathBuf>,
    pub auth: Auth,
    /// A configuration file to use instead of the repository's `.flux-ephemeral.yaml`.
    pub config: Option<PathBuf>,
    /// Settings that win over the configuration file.
    pub flags: FileConfig,
}

/// The store and settings. `dry_run`: create nothing, not even the demo repository.
pub fn open(repo: &Repo, dry_run: bool) -> Result<(Store, ConfigSource)> {
    let location = locate(repo.url.as_deref(), dry_run)?;
    let config = ConfigSource::load(repo.config.as_deref(), repo.flags.clone())?;
    let config = ConfigSource {
        flags: FileConfig {
            target_branch: repo.target_branch.clone(),
            ..config.flags
        },
        ..config
    };
    let mut auth = repo.auth.clone();
    if auth.token.is_none() && auth.ssh_key.is_none() {
        if let Location::Remote(url) = &location {
            auth.fresh_token = super::forges::github_git_token(url)?;
            // A GitOps repository on the Gitea server: its token (GITEA_TOKEN).
            if auth.fresh_token.is_none() {
                auth.token = super::forges::gitea_git_token(url);
            }
        }
    }
    let store = Store::open(location, auth, repo.cache_dir.as_deref())?;
    Ok((store, config))
}

/// The repository's location; the demo repository when none is given (a dry run does not
/// create it).
pub fn locate(url: Option<&str>, dry_run: bool) -> Result<Location> {
    match url {
        Some(r) => Location::parse(r),
        None if dry_run => {
            let path = crate::local_default::existing()?.ok_or_else(|| {
                Error::input(
                    "no --repo given and the demo repository does not exist yet; a dry run creates nothing: \
                     run once without --dry-run to create it, or pass --repo",
                )
            })?;
            eprintln!(
                "note: no --repo given: using the demo GitOps repository {}",
                path.display()
            );
            Ok(Location::Local(path))
        }
        None => {
            let (path, created) = crate::local_default::ensure()?;
            let verb = if created { "created" } else { "using" };
            eprintln!(
                "note: no --repo given: {verb} the demo GitOps repository {}",
                path.display()
            );
            Ok(Location::Local(path))
        }
    }
}
