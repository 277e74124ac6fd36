//! Deliveries already accepted, by the forge's delivery id (`X-GitHub-Delivery`,
//! `X-Gitlab-Event-UUID`): a redelivery does nothing twice. Ids are remembered as fixed-size
//! hashes (16 bytes each, whatever the header's length) within a byte budget: the oldest are
//! forgotten.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::Digest;

type Key = [u8; 16];

pub struct Seen {
    inner: Mutex<(HashSet<Key>, VecDeque<Key>)>,
    capacity: usize,
}

/// What one remembered id costs, roughly: the key in the set and in the queue, and the set's
/// overhead.
const BYTES_PER_ID: usize = 64;

fn key(id: &str) -> Key {
    let d = sha2::Sha256::digest(id.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

impl Seen {
    /// Remember as many ids as fit in `budget` bytes.
    pub fn with_budget(budget: usize) -> Self {
        Self::new((budget / BYTES_PER_ID).max(1))
    }

    pub fn new(capacity: usize) -> Self {
        Seen {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity,
        }
    }

    /// Forget `id` (its delivery was not accepted after all: the forge will send it again).
    pub fn forget(&self, id: &str) {
        let k = key(id);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.remove(&k) {
            g.1.retain(|x| *x != k);
        }
    }

    /// Record `id`; `false` when it was seen already.
    pub fn first_time(&self, id: &str) -> bool {
        let k = key(id);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.contains(&k) {
            return false;
        }
        g.0.insert(k);
        g.1.push_back(k);
        while g.1.len() > self.capacity {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounded() {
        let s = super::Seen::new(2);
        assert!(s.first_time("a"));
        assert!(!s.first_time("a"));
        assert!(s.first_time("b"));
        assert!(s.first_time("c"));
        assert!(s.first_time("a"), "forgotten after two newer ones");
        s.forget("a");
        assert!(s.first_time("a"), "forgotten on purpose");
        // A 32 KB id costs what a short one does.
        let big = "x".repeat(32 * 1024);
        assert!(s.first_time(&big));
        assert!(!s.first_time(&big));
        assert_eq!(super::Seen::with_budget(1 << 20).capacity, (1 << 20) / 64);
    }
}
