//! The demo GitOps repository used when no `--repo` is given: a local bare repository created on
//! first use from the example layout shipped in `overlays/`, so a newcomer sees a real commit with
//! a real sync file without a server or a token.
//!
//! It lives in `$FLUX_EPHEMERAL_HOME`, else `$XDG_DATA_HOME/flux-ephemeral`, else
//! `~/.local/share/flux-ephemeral`, as `gitops.git`.

use std::path::PathBuf;

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Repository, RepositoryInitOptions, Signature};

use crate::error::{Error, Result};

const SEED: &[(&str, &str)] = &[
    (
        "overlays/ephemeral/kustomization.yaml",
        include_str!("../overlays/ephemeral/kustomization.yaml"),
    ),
    (
        "overlays/ephemeral/namespace.yaml",
        include_str!("../overlays/ephemeral/namespace.yaml"),
    ),
    (
        "overlays/ephemeral/deployment.yaml",
        include_str!("../overlays/ephemeral/deployment.yaml"),
    ),
    (
        "overlays/ephemeral/service.yaml",
        include_str!("../overlays/ephemeral/service.yaml"),
    ),
    (
        "overlays/ephemeral/ingress.yaml",
        include_str!("../overlays/ephemeral/ingress.yaml"),
    ),
    (
        "overlays/ephemeral-instances/sync.yaml",
        include_str!("../overlays/ephemeral-instances/sync.yaml"),
    ),
    (
        ".flux-ephemeral.yaml",
        "# flux-ephemeral settings for this demo repository (see the README for every key).\n\
         source_url: https://github.com/example/app.git\n\
         preview_url: \"https://{{ slug }}.preview.example.com\"\n",
    ),
    (
        "README.md",
        "# Demo GitOps repository\n\nCreated by flux-ephemeral because no --repo was given. \
         Inspect it with `git --git-dir=<this directory> log --stat`.\n",
    ),
];

/// Where the demo repository lives.
pub fn home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLUX_EPHEMERAL_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("flux-ephemeral"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/flux-ephemeral")),
        None => Err(Error::input(
            "no --repo given and no HOME to keep the demo repository in; pass --repo",
        )),
    }
}

/// The demo repository's path when it exists.
pub fn existing() -> Result<Option<PathBuf>> {
    let path = home()?.join("gitops.git");
    Ok(path.join("HEAD").exists().then_some(path))
}

/// The demo repository's path, creating it when missing. The flag says whether it was created now.
pub fn ensure() -> Result<(PathBuf, bool)> {
    let path = home()?.join("gitops.git");
    if path.join("HEAD").exists() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(&path).map_err(|e| {
        Error::input(format!(
            "cannot create the demo repository at {}: {e}",
            path.display()
        ))
    })?;
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let repo = Repository::init_opts(&path, &opts)
        .map_err(|e| Error::internal(format!("init demo repository: {}", e.message())))?;
    seed(&repo).map_err(|e| Error::internal(format!("seed demo repository: {}", e.message())))?;
    Ok((path, true))
}

fn seed(repo: &Repository) -> Result<(), git2::Error> {
    let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
    let mut update = TreeUpdateBuilder::new();
    for (path, content) in SEED {
        update.upsert(*path, repo.blob(content.as_bytes())?, FileMode::Blob);
    }
    let tree = repo.find_tree(update.create_updated(repo, &empty)?)?;
    let sig = Signature::now("flux-ephemeral", "flux-ephemeral@localhost")?;
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "Demo GitOps repository for flux-ephemeral",
        &tree,
        &[],
    )?;
    Ok(())
}
