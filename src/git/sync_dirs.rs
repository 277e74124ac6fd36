//! Where flux-ephemeral's sync files lie anywhere in the repository's tree: for `doctor`, which
//! warns of those in a directory no configured cluster names (a cluster taken out of the
//! configuration while previews were still in it: Flux keeps applying them, flux-ephemeral no
//! longer sees them).

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};

use super::errors::local_error;
use super::store::Store;
use crate::error::Result;

/// The text every sync file flux-ephemeral renders carries (its objects' annotation).
const MARK: &str = "flux-ephemeral.io/managed-by";

/// Looked at, at most: a repository larger than this is only partly surveyed.
const MAX_FILES: usize = 100_000;

/// A file named like a sync file but larger than this is not read.
const MAX_BYTES: usize = 1 << 20;

impl Store {
    /// Each directory holding sync files flux-ephemeral rendered at `commit`, with their count.
    pub fn sync_file_dirs(&self, commit: Oid) -> Result<BTreeMap<String, usize>> {
        let tree = self.tree_of(commit)?;
        let mut candidates = Vec::new();
        let mut seen = 0usize;
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            seen += 1;
            if seen > MAX_FILES {
                return TreeWalkResult::Abort;
            }
            let named = entry
                .name()
                .is_ok_and(|n| crate::model::slug_of_file_name(n).is_some());
            if named && entry.kind() == Some(ObjectType::Blob) {
                candidates.push((dir.trim_end_matches('/').to_string(), entry.id()));
            }
            TreeWalkResult::Ok
        })
        .or_else(|e| match e.code() {
            git2::ErrorCode::User => Ok(()),
            _ => Err(local_error(&e, "read tree")),
        })?;
        let mut dirs = BTreeMap::new();
        for (dir, id) in candidates {
            let blob = self
                .repo
                .find_blob(id)
                .map_err(|e| local_error(&e, "read blob"))?;
            // Rendered sync files are small; a large file of that name is not one of ours.
            if blob.size() <= MAX_BYTES && String::from_utf8_lossy(blob.content()).contains(MARK) {
                *dirs.entry(dir).or_insert(0) += 1;
            }
        }
        Ok(dirs)
    }
}
