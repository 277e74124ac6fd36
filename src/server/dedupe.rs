//! Deliveries already accepted, by the forge's delivery id (`X-GitHub-Delivery`,
//! `X-Gitlab-Event-UUID`): a redelivery does nothing twice. Bounded: the oldest ids are forgotten.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

pub struct Seen {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Seen {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity,
        }
    }

    /// Forget `id` (its delivery was not accepted after all: the forge will send it again).
    pub fn forget(&self, id: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.remove(id) {
            g.1.retain(|x| x != id);
        }
    }

    /// Record `id`; `false` when it was seen already.
    pub fn first_time(&self, id: &str) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.contains(id) {
            return false;
        }
        g.0.insert(id.to_string());
        g.1.push_back(id.to_string());
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
    }
}
