//! A Flux artifact, byte for byte reproducible: the directory as a gzip-compressed tarball
//! (entries sorted by path, fixed times, owners and modes, no gzip timestamp) and the OCI image
//! manifest `flux push artifact` writes (config `application/vnd.cncf.flux.config.v1+json`, one
//! layer `application/vnd.cncf.flux.content.v1.tar+gzip`, source/revision/created annotations).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config blob: an empty JSON object (Flux reads only its media type).
pub const CONFIG: &[u8] = b"{}";

/// What goes into the manifest's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `org.opencontainers.image.source`: the application repository.
    pub source: String,
    /// `org.opencontainers.image.revision`: `<branch>@sha1:<sha>`.
    pub revision: String,
    /// `org.opencontainers.image.created`: RFC 3339; the commit's time when known, else the Unix
    /// epoch (as `flux push artifact --reproducible`).
    pub created: String,
}

/// A packed artifact: the layer, the manifest's exact bytes and the digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    /// `sha256:…` of `manifest`: what the registry answers for these exact bytes.
    pub digest: String,
    pub layer_digest: String,
    pub config_digest: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `<branch>@sha1:<sha>`, or the branch alone when the commit is not known.
pub fn revision(branch: &str, sha: Option<&str>) -> String {
    match sha {
        Some(s) => format!("{branch}@sha1:{s}"),
        None => branch.to_string(),
    }
}

/// Pack `dir` and describe it.
pub fn pack(dir: &Path, provenance: &Provenance) -> Result<Packed> {
    let layer = tarball(dir)?;
    let (layer_digest, config_digest) = (sha256(&layer), sha256(CONFIG));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": CONFIG.len()},
        "layers": [{"mediaType": CONTENT_MEDIA_TYPE, "digest": layer_digest, "size": layer.len()}],
        "annotations": {
            "org.opencontainers.image.created": provenance.created,
            "org.opencontainers.image.revision": provenance.revision,
            "org.opencontainers.image.source": provenance.source,
        },
    });
    // These exact bytes are pushed, so the digest below is the one the registry holds.
    let manifest = serde_json::to_vec(&manifest)
        .map_err(|e| Error::internal(format!("artifact manifest: {e}")))?;
    Ok(Packed {
        digest: sha256(&manifest),
        manifest,
        layer,
        layer_digest,
        config_digest,
    })
}

/// The directory as a reproducible `.tar.gz`: regular files and directories only, sorted, with
/// mode 0644/0755, owner 0:0 and time 0. A symlink is packed as the file it points to when that
/// file is inside `dir`; one that points outside (or to a directory) is refused.
pub fn tarball(dir: &Path) -> Result<Vec<u8>> {
    let root = dir.canonicalize().map_err(|e| {
        Error::input(format!(
            "--artifact {}: cannot read the directory: {e}",
            dir.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(Error::input(format!(
            "--artifact {} is not a directory",
            dir.display()
        )));
    }
    let mut entries = Vec::new();
    walk(&root, &root, &mut entries)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, entry) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let io = |e: std::io::Error| Error::internal(format!("packing {name}: {e}"));
        match entry {
            Entry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{name}/"), std::io::empty())
                    .map_err(io)?;
            }
            Entry::File(path) => {
                // Streamed: a large (or sparse) file costs a buffer, not its size in memory.
                let file = std::fs::File::open(path).map_err(io)?;
                let len = file.metadata().map_err(io)?.len();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(len);
                // Exactly `len` bytes, even if the file grows while it is read.
                let mut reader = std::io::Read::take(file, len);
                tar.append_data(&mut h, name, &mut reader).map_err(io)?;
            }
        }
    }
    let gz = tar
        .into_inner()
        .map_err(|e| Error::internal(format!("packing: {e}")))?;
    let mut out = gz
        .finish()
        .map_err(|e| Error::internal(format!("packing: {e}")))?;
    out.flush().ok();
    Ok(out)
}

enum Entry {
    Dir,
    File(PathBuf),
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Entry)>) -> Result<()> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", dir.display())))?;
    for entry in read {
        let entry = entry.map_err(|e| Error::input(format!("{}: {e}", dir.display())))?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map_err(|_| Error::internal("path outside the artifact"))?;
        let Some(name) = rel.to_str().map(|s| s.replace('\\', "/")) else {
            return Err(Error::input(format!(
                "{} is not a UTF-8 file name",
                path.display()
            )));
        };
        let kind = entry
            .file_type()
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        if kind.is_symlink() {
            let target = path.canonicalize().map_err(|e| {
                Error::input(format!("symlink {name} points nowhere readable: {e}"))
            })?;
            if !target.starts_with(root) {
                return Err(Error::input(format!(
                    "symlink {name} points outside the artifact directory ({}); refusing to pack it",
                    target.display()
                )));
            }
            if !target.is_file() {
                return Err(Error::input(format!(
                    "symlink {name} points to a directory; only regular files and directories are packed"
                )));
            }
            out.push((name, Entry::File(target)));
        } else if kind.is_dir() {
            out.push((name, Entry::Dir));
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push((name, Entry::File(path)));
        } else {
            tracing::warn!(file = %name, "not a regular file or directory: left out of the artifact");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(base: &Path) {
        std::fs::create_dir_all(base.join("b/c")).unwrap();
        std::fs::write(base.join("kustomization.yaml"), "resources: [b/c/x.yaml]\n").unwrap();
        std::fs::write(base.join("b/c/x.yaml"), "kind: ConfigMap\n").unwrap();
        std::fs::write(base.join("a.txt"), "a").unwrap();
    }

    fn prov() -> Provenance {
        Provenance {
            source: "https://github.com/org/app.git".into(),
            revision: revision("main", Some("0123456789abcdef0123456789abcdef01234567")),
            created: "1970-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_same_content_gives_the_same_digest_anywhere() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        tree(one.path());
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(two.path());
        // Other modes and times on the second copy change nothing.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                two.path().join("a.txt"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let (a, b) = (
            pack(one.path(), &prov()).unwrap(),
            pack(two.path(), &prov()).unwrap(),
        );
        assert_eq!(a, b);
        assert!(crate::oci::is_digest(&a.digest));
        // The content changes the digest; so does the revision.
        std::fs::write(two.path().join("a.txt"), "b").unwrap();
        assert_ne!(pack(two.path(), &prov()).unwrap().digest, a.digest);
        let other = Provenance {
            revision: "main@sha1:1111111111111111111111111111111111111111".into(),
            ..prov()
        };
        assert_ne!(pack(one.path(), &other).unwrap().digest, a.digest);
    }

    #[test]
    fn entries_are_sorted_plain_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let gz = tarball(dir.path()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        let names: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let paths: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            paths,
            ["a.txt", "b/", "b/c/", "b/c/x.yaml", "kustomization.yaml"]
        );
        assert!(names.iter().all(|n| n.2 == 0));
        assert_eq!(names[0].1, 0o644);
        assert_eq!(names[1].1, 0o755);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_outside_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("leak")).unwrap();
        let e = tarball(dir.path()).unwrap_err();
        assert!(e.message.contains("outside the artifact directory"), "{e}");
        std::fs::remove_file(dir.path().join("leak")).unwrap();
        std::os::unix::fs::symlink("a.txt", dir.path().join("inside")).unwrap();
        assert!(tarball(dir.path()).is_ok());
    }

    /// Peak resident memory of this process (Linux), in bytes.
    fn peak_rss() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    }

    #[test]
    fn a_large_sparse_file_is_streamed_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
        big.set_len(256 << 20).unwrap();
        drop(big);
        let Some(before) = peak_rss() else { return };
        let gz = tarball(dir.path()).unwrap();
        let after = peak_rss().unwrap();
        assert!(gz.len() < 2 << 20, "zeros compress: {} bytes", gz.len());
        assert!(
            after.saturating_sub(before) < 64 << 20,
            "packing 256 MiB raised the peak by {} MiB",
            after.saturating_sub(before) >> 20
        );
    }
}
