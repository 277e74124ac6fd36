//! The journal: every delivery answered 2xx is written here first (one file each, written to a
//! temporary name, synced and renamed), removed once handled, and replayed on start — a restart
//! or a SIGTERM loses nothing that was accepted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::http::Job;
use crate::error::{Error, Result};
use crate::events::Forge;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    forge: String,
    event: Option<String>,
    delivery: Option<String>,
    body: String,
}

pub struct Journal {
    dir: PathBuf,
    next: AtomicU64,
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::config(format!("--state-dir {}: {e}", dir.display())))?;
        let next = Self::entries(dir)?
            .last()
            .and_then(|p| seq_of(p))
            .map_or(0, |n| n + 1);
        Ok(Journal {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(next),
        })
    }

    fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::config(format!("--state-dir {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Write `job` durably; its id is the file's name.
    pub fn accept(&self, job: &Job) -> Result<String> {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let id = format!("{seq:020}.json");
        let entry = Entry {
            forge: match job.forge {
                Forge::GitHub => "github".into(),
                Forge::GitLab => "gitlab".into(),
            },
            event: job.event.clone(),
            delivery: job.delivery.clone(),
            body: job.body.clone(),
        };
        let text = serde_json::to_vec(&entry).map_err(|e| Error::internal(e.to_string()))?;
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(&id))?;
            Ok(())
        };
        write().map_err(|e| Error::internal(format!("journal {}: {e}", self.dir.display())))?;
        Ok(id)
    }

    /// The delivery is handled: forget it.
    pub fn done(&self, id: &str) {
        if let Err(e) = std::fs::remove_file(self.dir.join(id)) {
            tracing::warn!(id, "journal: {e}");
        }
    }

    /// What was accepted and not handled yet, oldest first.
    pub fn pending(&self) -> Result<Vec<(String, Job)>> {
        let mut out = Vec::new();
        for p in Self::entries(&self.dir)? {
            let id = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let parsed = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            let Some(e) = parsed else {
                tracing::error!(file = %p.display(), "journal entry unreadable; left in place");
                continue;
            };
            let forge = if e.forge == "github" {
                Forge::GitHub
            } else {
                Forge::GitLab
            };
            out.push((
                id,
                Job {
                    forge,
                    event: e.event,
                    delivery: e.delivery,
                    body: e.body,
                    accepted: std::time::Instant::now(),
                    journal_id: None,
                },
            ));
        }
        Ok(out)
    }
}

fn seq_of(p: &Path) -> Option<u64> {
    p.file_stem()?.to_str()?.parse().ok()
}
