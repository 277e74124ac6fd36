//! The journal: every delivery answered 2xx is written here first (one file each, written to a
//! temporary name, synced and renamed, readable by the service's user only), and it is the queue
//! the worker drains: bounded by a configured size and the disk, not by memory. An entry is
//! removed once handled; one whose handling failed for a reason that may pass is retried with
//! backoff; one whose handling did not finish twice (the process died on it) is moved to
//! `failed/` so one poison delivery cannot take the service down at every start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::job::Job;
use crate::error::{Error, Result};
use crate::events::Forge;

/// What is written for one delivery.
#[derive(Debug, Deserialize)]
struct Record {
    forge: String,
    event: Option<String>,
    delivery: Option<String>,
    body: String,
}

/// The same, borrowed from the job for writing (the body is not copied).
#[derive(Serialize)]
struct RecordRef<'a> {
    forge: &'a str,
    event: Option<&'a str>,
    delivery: Option<&'a str>,
    body: &'a str,
}

/// Handling of an entry that did not finish this many times: quarantined.
const MAX_UNFINISHED: u32 = 2;
/// A delivery held until the configuration reads is tried again this often.
const HOLD: Duration = Duration::from_secs(10);
/// A delivery kept after failures that may pass is retried this many times, then quarantined.
const MAX_RETRIES: u32 = 12;

/// What the index knows of one entry (the body stays on disk).
#[derive(Debug, Clone)]
struct Meta {
    bytes: u64,
    delivery: Option<String>,
    /// Failed for a reason that may pass, so far.
    retries: u32,
    /// Taken by the worker at some start and not finished (read from the `.tries` file).
    unfinished: u32,
    not_before: Instant,
    in_flight: bool,
    /// When it was accepted (this run), for the accepted → pushed latency.
    accepted: Instant,
}

struct State {
    entries: BTreeMap<u64, Meta>,
    bytes: u64,
    next: u64,
    /// When the worker last finished an entry (progress, for readiness).
    progress: Instant,
}

pub struct Journal {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

/// Why an entry could not be accepted.
#[derive(Debug)]
pub enum Refusal {
    /// The journal holds its configured size: say so, the forge may retry later.
    Full {
        bytes: u64,
        max: u64,
    },
    Failed(Error),
}

impl Journal {
    /// Open (create, 0700) the journal in `dir`, index what an earlier run left, and quarantine
    /// what did not finish twice. Returns the journal and how many entries were quarantined.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Journal, usize)> {
        let bad = |e: std::io::Error| Error::config(format!("--state-dir {}: {e}", dir.display()));
        private_dir(dir).map_err(bad)?;
        let mut entries = BTreeMap::new();
        let mut bytes = 0;
        let mut quarantined = 0;
        for entry in std::fs::read_dir(dir).map_err(bad)? {
            let path = entry.map_err(bad)?.path();
            // A write that died before its rename was never answered 2xx: nothing to keep.
            if path.extension().is_some_and(|x| x == "tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(seq) = seq_of(&path) else { continue };
            let unfinished = tries(dir, seq);
            if unfinished >= MAX_UNFINISHED {
                quarantine(dir, seq, "its handling did not finish twice")?;
                quarantined += 1;
                continue;
            }
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let delivery = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
                .and_then(|r| r.delivery);
            bytes += len;
            entries.insert(
                seq,
                Meta {
                    bytes: len,
                    delivery,
                    retries: 0,
                    unfinished,
                    not_before: Instant::now(),
                    in_flight: false,
                    accepted: Instant::now(),
                },
            );
        }
        let next = match entries.keys().next_back() {
            None => 0,
            Some(last) => last.checked_add(1).ok_or_else(|| {
                Error::config(format!(
                    "--state-dir {}: a journal entry has the largest sequence number; move it away",
                    dir.display()
                ))
            })?,
        };
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                max_bytes,
                state: Mutex::new(State {
                    entries,
                    bytes,
                    next,
                    progress: Instant::now(),
                }),
            },
            quarantined,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write `job` durably (synced, 0600) and queue it; its id is the file's name.
    pub fn accept(&self, job: &Job) -> std::result::Result<String, Refusal> {
        let record = RecordRef {
            forge: job.forge.name(),
            event: job.event.as_deref(),
            delivery: job.delivery.as_deref(),
            body: &job.body,
        };
        let text = serde_json::to_vec(&record)
            .map_err(|e| Refusal::Failed(Error::internal(e.to_string())))?;
        let len = text.len() as u64;
        let seq = {
            let mut s = self.lock();
            if s.bytes + len > self.max_bytes {
                return Err(Refusal::Full {
                    bytes: s.bytes,
                    max: self.max_bytes,
                });
            }
            let seq = s.next;
            s.next = seq.checked_add(1).ok_or_else(|| {
                Refusal::Failed(Error::internal("journal sequence numbers are exhausted"))
            })?;
            // Counted now, so concurrent writers cannot overshoot the limit together.
            s.bytes += len;
            seq
        };
        let id = name(seq);
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = private_file(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(&id))?;
            Ok(())
        };
        // The synced write runs without the lock: writers (and the worker) do not wait on each
        // other's fsync.
        let written = write();
        let mut s = self.lock();
        if let Err(e) = written {
            s.bytes -= len;
            let _ = std::fs::remove_file(&tmp);
            return Err(Refusal::Failed(Error::internal(format!(
                "journal {}: {e}",
                self.dir.display()
            ))));
        }
        s.entries.insert(
            seq,
            Meta {
                bytes: len,
                delivery: job.delivery.clone(),
                retries: 0,
                unfinished: 0,
                not_before: Instant::now(),
                in_flight: false,
                accepted: job.accepted,
            },
        );
        Ok(id)
    }

    /// Up to `max` entries that are due, oldest first, marked as taken (on disk too: if the
    /// process dies handling them, the next start knows). An entry that did not finish before is
    /// taken alone, so a poison delivery takes no others with it.
    pub fn take(&self, max: usize) -> Vec<Job> {
        let now = Instant::now();
        let mut s = self.lock();
        let due: Vec<(u64, u32)> = s
            .entries
            .iter()
            .filter(|(_, m)| !m.in_flight && m.not_before <= now)
            .map(|(k, m)| (*k, m.unfinished))
            .take(max.max(1))
            .collect();
        let chosen: Vec<u64> = match due.iter().find(|(_, u)| *u > 0) {
            Some((seq, _)) => vec![*seq],
            None => due.iter().map(|(k, _)| *k).collect(),
        };
        let mut out = Vec::new();
        for seq in chosen {
            let Some(meta) = s.entries.get_mut(&seq) else {
                continue;
            };
            meta.in_flight = true;
            meta.unfinished += 1;
            let accepted = meta.accepted;
            if let Err(e) = set_tries(&self.dir, seq, meta.unfinished) {
                tracing::warn!(id = %name(seq), "journal: {e}");
            }
            let path = self.dir.join(name(seq));
            let record = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
                .and_then(|r| Forge::from_name(&r.forge).map(|f| (f, r)));
            match record {
                Some((forge, r)) => out.push(Job {
                    forge,
                    event: r.event,
                    delivery: r.delivery,
                    body: r.body,
                    accepted,
                    journal_id: Some(name(seq)),
                }),
                None => {
                    tracing::error!(file = %path.display(), "journal entry unreadable: quarantined");
                    let m = s.entries.remove(&seq);
                    s.bytes -= m.map_or(0, |m| m.bytes);
                    let _ = quarantine(&self.dir, seq, "it cannot be read");
                }
            }
        }
        out
    }

    /// The delivery is handled: forget it.
    pub fn done(&self, id: &str) {
        let Some(seq) = seq_of(Path::new(id)) else {
            return;
        };
        let mut s = self.lock();
        if let Some(m) = s.entries.remove(&seq) {
            s.bytes -= m.bytes;
        }
        s.progress = Instant::now();
        for p in [self.dir.join(name(seq)), tries_path(&self.dir, seq)] {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(id, "journal: {e}");
                }
            }
        }
    }

    /// Handling failed for a reason that may pass: try again after a backoff (5 s, doubling, at
    /// most 10 min); after [`MAX_RETRIES`] failures it is quarantined. Returns whether it stays.
    pub fn retry_later(&self, id: &str) -> bool {
        let Some(seq) = seq_of(Path::new(id)) else {
            return false;
        };
        let mut s = self.lock();
        s.progress = Instant::now();
        let Some(m) = s.entries.get_mut(&seq) else {
            return false;
        };
        m.in_flight = false;
        m.unfinished = 0;
        m.retries += 1;
        let _ = std::fs::remove_file(tries_path(&self.dir, seq));
        if m.retries > MAX_RETRIES {
            let m = s.entries.remove(&seq);
            s.bytes -= m.map_or(0, |m| m.bytes);
            let _ = quarantine(&self.dir, seq, "it kept failing");
            return false;
        }
        let backoff = Duration::from_secs(5)
            .saturating_mul(1 << (m.retries - 1).min(7))
            .min(Duration::from_secs(600));
        m.not_before = Instant::now() + backoff;
        true
    }

    /// Keep entry `id` for a reason that only a change elsewhere ends (the GitOps repository's
    /// configuration does not read): tried again every 10 s, never counted towards quarantine.
    pub fn hold(&self, id: &str) {
        let Some(seq) = seq_of(Path::new(id)) else {
            return;
        };
        let mut s = self.lock();
        s.progress = Instant::now();
        if let Some(m) = s.entries.get_mut(&seq) {
            m.in_flight = false;
            m.unfinished = 0;
            m.not_before = Instant::now() + HOLD;
            let _ = std::fs::remove_file(tries_path(&self.dir, seq));
        }
    }

    /// A redelivery of `delivery` while it is still journaled (kept after a failure): try it
    /// again now instead of waiting. `false` when no such entry waits.
    pub fn retry_now(&self, delivery: &str) -> bool {
        let mut s = self.lock();
        let found = s
            .entries
            .values_mut()
            .find(|m| m.delivery.as_deref() == Some(delivery));
        match found {
            Some(m) => {
                m.not_before = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Entries waiting (including those in flight).
    pub fn backlog(&self) -> usize {
        self.lock().entries.len()
    }

    /// When the next entry not in flight is due (for the worker's wait).
    pub fn next_due(&self) -> Option<Instant> {
        self.lock()
            .entries
            .values()
            .filter(|m| !m.in_flight)
            .map(|m| m.not_before)
            .min()
    }

    /// Whether the backlog is drained, or the worker finished something within `window`.
    pub fn progressing(&self, window: Duration) -> bool {
        let s = self.lock();
        s.entries.is_empty() || s.progress.elapsed() <= window
    }

    /// Whether a new entry could be written now (readiness).
    pub fn writable(&self) -> std::result::Result<(), String> {
        let probe = self.dir.join(".probe.tmp");
        private_file(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|e| {
                format!(
                    "the journal in {} cannot be written: {e}",
                    self.dir.display()
                )
            })
    }
}

fn name(seq: u64) -> String {
    format!("{seq:020}.json")
}

fn seq_of(p: &Path) -> Option<u64> {
    if p.extension()? != "json" {
        return None;
    }
    p.file_stem()?.to_str()?.parse().ok()
}

fn tries_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.tries"))
}

fn tries(dir: &Path, seq: u64) -> u32 {
    std::fs::read_to_string(tries_path(dir, seq))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Not synced: it only has to survive the process dying (the page cache keeps it), and a sync
/// per entry would cost every batch.
fn set_tries(dir: &Path, seq: u64, n: u32) -> std::io::Result<()> {
    use std::io::Write;
    private_file(&tries_path(dir, seq))?.write_all(n.to_string().as_bytes())
}

/// Move entry `seq` to `failed/` (kept for a person to look at), logged.
fn quarantine(dir: &Path, seq: u64, why: &str) -> Result<()> {
    let failed = dir.join("failed");
    let io = |e: std::io::Error| Error::internal(format!("journal {}: {e}", failed.display()));
    private_dir(&failed).map_err(io)?;
    std::fs::rename(dir.join(name(seq)), failed.join(name(seq))).map_err(io)?;
    let _ = std::fs::remove_file(tries_path(dir, seq));
    tracing::error!(id = %name(seq), "journal entry quarantined in {}: {why}", failed.display());
    Ok(())
}

/// A directory only the service's user can read (0700).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A new file only the service's user can read (0600).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(delivery: &str) -> Job {
        Job {
            forge: Forge::GitHub,
            event: Some("issue_comment".into()),
            delivery: Some(delivery.into()),
            body: "{}".into(),
            accepted: Instant::now(),
            journal_id: None,
        }
    }

    #[test]
    fn a_poison_entry_is_quarantined_after_two_unfinished_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        j.accept(&job("a")).unwrap();
        j.accept(&job("b")).unwrap();
        assert_eq!(j.take(10).len(), 2);
        drop(j); // died while handling both
        let (j, q) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q, 0);
        // After one unfinished run, each is taken alone.
        let first = j.take(10);
        assert_eq!(first.len(), 1);
        drop(j); // died again on "a"
        let (j, q) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q, 1, "a did not finish twice");
        assert!(dir.path().join("failed").join(name(0)).exists());
        let next = j.take(10);
        assert_eq!(next[0].delivery.as_deref(), Some("b"));
        j.done(next[0].journal_id.as_deref().unwrap());
        assert_eq!(j.backlog(), 0);
    }

    #[test]
    fn full_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(&dir.path().join("state"), 100).unwrap();
        let id = j.accept(&job("a")).unwrap();
        assert!(matches!(j.accept(&job("b")), Err(Refusal::Full { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("state")), 0o700);
            assert_eq!(mode(&dir.path().join("state").join(&id)), 0o600);
        }
        let taken = j.take(10);
        assert!(j.retry_later(taken[0].journal_id.as_deref().unwrap()));
        assert!(j.take(10).is_empty(), "backing off");
        assert!(j.retry_now("a"));
        assert_eq!(j.take(10).len(), 1, "a redelivery retries it at once");
        assert!(!j.retry_now("zzz"));
    }

    #[test]
    fn the_largest_sequence_number_does_not_wrap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name(u64::MAX)), "{}").unwrap();
        let e = Journal::open(dir.path(), 1 << 20).err().unwrap();
        assert!(e.message.contains("largest sequence number"), "{e}");
    }
}
