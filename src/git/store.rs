//! A place to read the GitOps repository and write commits into it.
//!
//! - A local repository is used directly: objects are written into it and the branch is moved with
//!   an atomic compare-and-swap (`reference_matching`). libgit2's own local "push" overwrites the
//!   ref without comparing, which could lose a concurrent writer's commit.
//! - A remote is reached through a bare mirror (in `--cache-dir`, or a temporary directory):
//!   shallow fetch of the one target branch, commit in the mirror, non-forced push. The server
//!   compares the old value, so a concurrent writer makes our push fail instead of being lost.

use std::fs::File;
use std::path::Path;
use std::rc::Rc;

use git2::build::TreeUpdateBuilder;
use git2::{
    AutotagOption, Direction, ErrorCode, FetchOptions, FileMode, ObjectType, Oid, PushOptions,
    Repository, RepositoryOpenFlags, Signature,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::auth::{Auth, Transcript};
use super::errors::{local_error, remote_error, server_lines};
use super::location::Location;
use crate::config::CommitAuthor;
use crate::error::{Error, Result};
use crate::model::slug_of_file_name;
use crate::overlay::Files;
use crate::plan::Change;

const OUT_REF: &str = "refs/flux-ephemeral/out";

/// What one commit writes: sync files relative to `dir`, other files (the queue) relative to the
/// repository, and the directories that must not vanish.
pub struct Tree<'a> {
    pub dir: &'a str,
    pub changes: &'a [Change],
    pub outside: &'a [Change],
    pub keep: &'a [String],
}

pub struct Store {
    pub(super) repo: Repository,
    /// Blob id → text, of the sync files the last snapshot read.
    blobs: std::cell::RefCell<std::collections::HashMap<Oid, std::sync::Arc<str>>>,
    location: Location,
    auth: Auth,
    _tmp: Option<TempDir>,
    _lock: Option<File>,
}

/// The result of trying to move the target branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Done,
    /// Somebody else moved the branch first (or the server refused a stale update): re-plan.
    Lost(String),
    /// The branch is not where the snapshot was taken (the push's ref advertisement says so):
    /// nothing was sent; fetch and re-plan at once.
    Stale,
}

impl Store {
    /// Open the repository at `location`; remotes get a mirror in `cache_dir` (kept) or a temporary
    /// directory (removed when the store is dropped).
    pub fn open(location: Location, auth: Auth, cache_dir: Option<&Path>) -> Result<Store> {
        global_options(&location);
        match &location {
            Location::Local(path) => {
                let repo = Repository::open(path).map_err(|e| {
                    Error::input(format!(
                        "{} is not a Git repository ({}); pass --repo with a repository path or URL",
                        path.display(),
                        e.message()
                    ))
                })?;
                Ok(Store {
                    repo,
                    blobs: Default::default(),
                    location,
                    auth,
                    _tmp: None,
                    _lock: None,
                })
            }
            Location::Remote(url) => {
                let (dir, tmp, lock) = match cache_dir {
                    Some(cache) => {
                        std::fs::create_dir_all(cache).map_err(|e| {
                            Error::input(format!(
                                "cannot create --cache-dir {}: {e}",
                                cache.display()
                            ))
                        })?;
                        let key = mirror_key(url);
                        let lock = File::create(cache.join(format!("{key}.lock")))?;
                        lock.lock()
                            .map_err(|e| Error::internal(format!("cannot lock the cache: {e}")))?;
                        (cache.join(format!("{key}.git")), None, Some(lock))
                    }
                    None => {
                        let tmp = tempfile::Builder::new()
                            .prefix("flux-ephemeral-")
                            .tempdir()?;
                        (tmp.path().join("mirror.git"), Some(tmp), None)
                    }
                };
                // open_ext, not open_bare: libgit2's open_bare skips the shallow grafts, and a
                // push from a shallow mirror then walks past the boundary into missing commits.
                let flags = RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::BARE;
                let repo =
                    match Repository::open_ext(&dir, flags, std::iter::empty::<&std::ffi::OsStr>())
                    {
                        Ok(r) => r,
                        Err(_) => Repository::init_bare(&dir)
                            .map_err(|e| local_error(&e, "cannot create the mirror"))?,
                    };
                Ok(Store {
                    repo,
                    blobs: Default::default(),
                    location,
                    auth,
                    _tmp: tmp,
                    _lock: lock,
                })
            }
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Whether `branch` could be pushed to: the push protocol's first half (connect for push, with
    /// the credentials, and read the ref advertisement), nothing sent. For a local repository,
    /// whether the branch exists.
    pub fn check_push(&self, branch: &str) -> Result<()> {
        let name = format!("refs/heads/{branch}");
        let found = match &self.location {
            Location::Local(_) => self.repo.refname_to_id(&name).is_ok(),
            Location::Remote(url) => {
                let (mut remote, t) = self.remote(url)?;
                let conn = remote
                    .connect_auth(Direction::Push, Some(self.auth.callbacks(t.clone())), None)
                    .map_err(|e| self.remote_err(&e, "connect for a push to", &t))?;
                self.advertised(&conn, &name, &t)?.is_some()
            }
        };
        if found {
            Ok(())
        } else {
            Err(Error::input(format!(
                "branch {branch:?} does not exist in {}",
                self.location.display()
            )))
        }
    }

    /// Where a persistent mirror (`--cache-dir`) last saw `branch`, without asking the remote.
    /// A snapshot from it is unverified: the push checks the remote's tip before it sends
    /// anything (see [`Store::publish`]).
    pub fn cached_tip(&self, branch: &str) -> Option<Oid> {
        match (&self.location, &self._tmp) {
            (Location::Remote(_), None) => self
                .repo
                .refname_to_id(&format!("refs/remotes/origin/{branch}"))
                .ok(),
            _ => None,
        }
    }

    /// The branch the remote's HEAD points at.
    pub fn default_branch(&self) -> Result<String> {
        let name = match &self.location {
            Location::Local(_) => {
                let head = self
                    .repo
                    .find_reference("HEAD")
                    .map_err(|e| local_error(&e, "cannot read HEAD"))?;
                head.symbolic_target().ok().flatten().map(str::to_string)
            }
            Location::Remote(url) => {
                let (mut remote, t) = self.remote(url)?;
                let conn = remote
                    .connect_auth(Direction::Fetch, Some(self.auth.callbacks(t.clone())), None)
                    .map_err(|e| self.remote_err(&e, "connect", &t))?;
                let buf = conn
                    .default_branch()
                    .map_err(|e| self.remote_err(&e, "read the default branch of", &t))?;
                buf.as_str().ok().map(str::to_string)
            }
        };
        name.and_then(|n| n.strip_prefix("refs/heads/").map(str::to_string))
            .ok_or_else(|| {
                Error::input(format!(
                    "cannot tell the default branch of {}; pass --target-branch",
                    self.location.display()
                ))
            })
    }

    /// Bring the target branch up to date and return its commit.
    pub fn fetch(&self, branch: &str) -> Result<Oid> {
        tracing::debug!(branch, "reading the target branch");
        let local_ref = match &self.location {
            Location::Local(_) => format!("refs/heads/{branch}"),
            Location::Remote(url) => {
                let (mut remote, t) = self.remote(url)?;
                let mut fo = FetchOptions::new();
                fo.remote_callbacks(self.auth.callbacks(t.clone()));
                // Shallow on the first fetch only: asking a warm mirror to deepen again makes the
                // server recompute the shallow boundary, three times slower than a plain fetch.
                let tracking = format!("refs/remotes/origin/{branch}");
                if self.repo.refname_to_id(&tracking).is_err() {
                    fo.depth(1);
                }
                fo.download_tags(AutotagOption::None);
                let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
                remote
                    .fetch(&[&spec], Some(&mut fo), None)
                    .map_err(|e| self.remote_err(&e, "fetch", &t))?;
                format!("refs/remotes/origin/{branch}")
            }
        };
        self.repo.refname_to_id(&local_ref).map_err(|_| {
            Error::input(format!(
                "branch {branch:?} does not exist in {}; pass --target-branch with an existing branch",
                self.location.display()
            ))
        })
    }

    /// A file of the snapshot, if present and text.
    pub fn read_file(&self, commit: Oid, path: &str) -> Result<Option<String>> {
        let tree = self.tree_of(commit)?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(local_error(&e, "read tree")),
        };
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| local_error(&e, &format!("read {path}")))?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// The `sync-*.yaml` files of every cluster's instances directory in the snapshot, keyed by
    /// their path relative to `layout.root`. Blobs already read are taken from memory: with
    /// thousands of previews a batch reads only the files that changed since the last one.
    pub fn read_layout(&self, commit: Oid, layout: &crate::clusters::Layout) -> Result<Files> {
        let tree = self.tree_of(commit)?;
        let mut files = Files::new();
        let mut seen = std::collections::HashSet::new();
        for cluster in &layout.clusters {
            let dir = &cluster.instances_dir;
            let entry = match tree.get_path(Path::new(dir)) {
                Ok(e) if e.kind() == Some(ObjectType::Tree) => e,
                Ok(_) => {
                    return Err(Error::config(format!(
                        "instances_dir {dir} is a file in the repository, not a directory"
                    )))
                }
                Err(e) if e.code() == ErrorCode::NotFound => continue,
                Err(e) => return Err(local_error(&e, "read tree")),
            };
            let sub = self
                .repo
                .find_tree(entry.id())
                .map_err(|e| local_error(&e, "read tree"))?;
            for e in sub.iter() {
                let Ok(name) = e.name() else { continue };
                if slug_of_file_name(name).is_none() || e.kind() != Some(ObjectType::Blob) {
                    continue;
                }
                seen.insert(e.id());
                let content = self.blob_text(e.id())?;
                files.insert(crate::clusters::layout::join(&cluster.rel, name), content);
            }
        }
        // Forget what no snapshot holds any more.
        self.blobs.borrow_mut().retain(|id, _| seen.contains(id));
        Ok(files)
    }

    fn blob_text(&self, id: Oid) -> Result<std::sync::Arc<str>> {
        if let Some(text) = self.blobs.borrow().get(&id) {
            return Ok(text.clone());
        }
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| local_error(&e, "read blob"))?;
        let text: std::sync::Arc<str> = String::from_utf8_lossy(blob.content()).into();
        self.blobs.borrow_mut().insert(id, text.clone());
        Ok(text)
    }

    /// Write `changes` (relative to `tree.dir`) and `tree.outside` (relative to the repository)
    /// on top of `parent` as one commit. `None` when the tree would not change: there are no
    /// empty commits.
    pub fn commit(
        &self,
        parent: Oid,
        tree: &Tree,
        message: &str,
        author: &CommitAuthor,
    ) -> Result<Option<Oid>> {
        let parent = self
            .repo
            .find_commit(parent)
            .map_err(|e| local_error(&e, "read parent"))?;
        let base = parent.tree().map_err(|e| local_error(&e, "read tree"))?;
        let mut update = TreeUpdateBuilder::new();
        let all = tree
            .changes
            .iter()
            .map(|c| (crate::clusters::layout::join(tree.dir, c.file()), c))
            .chain(tree.outside.iter().map(|c| (c.file().to_string(), c)));
        for (path, change) in all {
            match change {
                Change::Write { content, .. } => {
                    let blob = self
                        .repo
                        .blob(content.as_bytes())
                        .map_err(|e| local_error(&e, "write blob"))?;
                    update.upsert(path, blob, FileMode::Blob);
                }
                Change::Delete { .. } => {
                    update.remove(path);
                }
            }
        }
        let mut tree_id = update
            .create_updated(&self.repo, &base)
            .map_err(|e| local_error(&e, "write tree"))?;
        if tree_id != base.id() {
            tree_id = self.keep_dirs(&base, tree_id, tree.keep)?;
        }
        if tree_id == base.id() {
            return Ok(None);
        }
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| local_error(&e, "read tree"))?;
        let sig = Signature::now(&author.name, &author.email)
            .map_err(|e| Error::config(format!("commit_author is not usable: {}", e.message())))?;
        let oid = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &[&parent])
            .map_err(|e| local_error(&e, "write commit"))?;
        Ok(Some(oid))
    }

    /// Git drops empty directories. Flux fails on a missing path (and then prunes nothing), so an
    /// instances directory keeps a placeholder once its last file is gone.
    fn keep_dirs(&self, base: &git2::Tree, tree_id: Oid, dirs: &[String]) -> Result<Oid> {
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| local_error(&e, "read tree"))?;
        let vanished: Vec<&String> = dirs
            .iter()
            .filter(|d| base.get_path(Path::new(d)).is_ok() && tree.get_path(Path::new(d)).is_err())
            .collect();
        if vanished.is_empty() {
            return Ok(tree_id);
        }
        let empty = self
            .repo
            .blob(b"")
            .map_err(|e| local_error(&e, "write blob"))?;
        let mut keep = TreeUpdateBuilder::new();
        for d in vanished {
            keep.upsert(format!("{d}/.keep"), empty, FileMode::Blob);
        }
        keep.create_updated(&self.repo, &tree)
            .map_err(|e| local_error(&e, "write tree"))
    }

    /// Move `branch` from `old` to `new` if, and only if, it still is at `old`.
    pub fn publish(&self, branch: &str, old: Oid, new: Oid) -> Result<Published> {
        let name = format!("refs/heads/{branch}");
        match &self.location {
            Location::Local(path) => {
                if !self.repo.is_bare()
                    && self
                        .repo
                        .head()
                        .ok()
                        .and_then(|h| h.name().ok().map(str::to_string))
                        .as_deref()
                        == Some(&name)
                {
                    return Err(Error::input(format!(
                        "{branch} is checked out in the working tree of {}; use a bare repository (git clone --bare) or push through a server",
                        path.display()
                    )));
                }
                match self
                    .repo
                    .reference_matching(&name, new, true, old, "flux-ephemeral")
                {
                    Ok(_) => Ok(Published::Done),
                    Err(e)
                        if matches!(
                            e.code(),
                            ErrorCode::Modified | ErrorCode::Locked | ErrorCode::Exists
                        ) =>
                    {
                        Ok(Published::Lost(e.message().to_string()))
                    }
                    Err(e) => Err(local_error(&e, &format!("update {name}"))),
                }
            }
            Location::Remote(url) => {
                self.repo
                    .reference(OUT_REF, new, true, "flux-ephemeral")
                    .map_err(|e| local_error(&e, "write ref"))?;
                let (mut remote, t) = self.remote(url)?;
                // One connection: its ref advertisement is the compare of the compare-and-swap
                // (the branch must still be at `old`), then the push.
                let mut conn = remote
                    .connect_auth(Direction::Push, Some(self.auth.callbacks(t.clone())), None)
                    .map_err(|e| self.remote_err(&e, "connect", &t))?;
                let advertised = self.advertised(&conn, &name, &t)?;
                if advertised != Some(old) {
                    tracing::debug!(?advertised, %old, "the branch moved since the snapshot");
                    return Ok(Published::Stale);
                }
                let mut po = PushOptions::new();
                po.remote_callbacks(self.auth.callbacks(t.clone()));
                let spec = format!("{OUT_REF}:{name}");
                match conn.remote().push(&[&spec], Some(&mut po)) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::NotFastForward => {
                        return Ok(Published::Lost(e.message().to_string()))
                    }
                    Err(e) => return Err(self.remote_err(&e, "push", &t)),
                }
                let rejected = t.rejections.borrow().first().map(|(_, msg)| msg.clone());
                match rejected {
                    None => {
                        let tracking = format!("refs/remotes/origin/{branch}");
                        let _ = self
                            .repo
                            .reference(&tracking, new, true, "flux-ephemeral: pushed");
                        Ok(Published::Done)
                    }
                    Some(msg) if is_permanent_refusal(&msg) => {
                        let server = server_lines(&t, self.auth.current_token().as_ref());
                        let mut text = format!(
                            "the server refused the push to {} ({branch}): {msg}; nothing was changed",
                            self.location.display()
                        );
                        if !server.is_empty() {
                            text.push_str(&format!("\nthe server said:\n{server}"));
                        }
                        Err(Error::remote(text))
                    }
                    Some(msg) => Ok(Published::Lost(msg)),
                }
            }
        }
    }

    /// Where the remote's ref advertisement says `name` is, on an open connection.
    fn advertised(
        &self,
        conn: &git2::RemoteConnection<'_, '_, '_>,
        name: &str,
        t: &Transcript,
    ) -> Result<Option<Oid>> {
        Ok(conn
            .list()
            .map_err(|e| self.remote_err(&e, "list the branches of", t))?
            .iter()
            .find(|h| h.name() == name)
            .map(|h| h.oid()))
    }

    /// An anonymous remote for `url`, and the transcript its callbacks fill.
    fn remote<'r>(&'r self, url: &str) -> Result<(git2::Remote<'r>, Rc<Transcript>)> {
        self.auth.refresh()?;
        let remote = self
            .repo
            .remote_anonymous(url)
            .map_err(|e| local_error(&e, "bad remote"))?;
        Ok((remote, Rc::new(Transcript::default())))
    }

    pub(super) fn tree_of(&self, commit: Oid) -> Result<git2::Tree<'_>> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| local_error(&e, "read commit"))
    }

    fn remote_err(&self, e: &git2::Error, what: &str, t: &Transcript) -> Error {
        let url = match &self.location {
            Location::Remote(u) => u.as_str(),
            Location::Local(_) => "",
        };
        remote_error(
            e,
            &format!("{what} {}", self.location.display()),
            url,
            self.auth.current_token().as_ref(),
            t,
        )
    }
}

/// Hook refusals and policy denials are final; stale-ref and lock failures are races to retry.
fn is_permanent_refusal(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    let race = [
        "fetch first",
        "non-fast-forward",
        "stale",
        "lock",
        "failed to update ref",
        "incorrect old value",
    ];
    !race.iter().any(|r| m.contains(r))
}

fn mirror_key(url: &str) -> String {
    let d = Sha256::digest(crate::redact::redact_url(url).as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A remote that accepts the connection and then says nothing must not hang a run (or the
/// server's worker) forever: connecting may take 15 s, each read or write 60 s.
/// libgit2's process-wide options, set once before its first use: network timeouts, and no
/// re-hashing of every object read (git does not either; `git fsck` is for that: the mirror is
/// ours and the server checks what we push).
///
/// libgit2 also reads and parses the whole CA bundle when it starts (OpenSSL's default verify
/// paths), some 15 ms per run, although only an `https://` remote needs it. For any other remote
/// the bundle is hidden from that start only: SSL_CERT_FILE points at an empty file while
/// libgit2 starts, then is put back as it was, so nothing else in the process (the forge and
/// registry clients) sees a difference.
fn global_options(location: &Location) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let needs_tls = matches!(location, Location::Remote(url) if url.to_ascii_lowercase().starts_with("https://"));
        let saved = (!needs_tls).then(|| std::env::var_os("SSL_CERT_FILE"));
        if saved.is_some() {
            // Empty, but existing: git2's probe for a bundle keeps an SSL_CERT_FILE that exists.
            std::env::set_var("SSL_CERT_FILE", "/dev/null");
        }
        // SAFETY: called once, before any other libgit2 network operation of this process.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
        }
        git2::opts::strict_hash_verification(false);
        match saved {
            Some(Some(value)) => std::env::set_var("SSL_CERT_FILE", value),
            Some(None) => std::env::remove_var("SSL_CERT_FILE"),
            None => {}
        }
    });
}
