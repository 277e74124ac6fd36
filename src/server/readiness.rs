//! Whether `serve` is ready, and if not, why: `/readyz` answers with the reason (the GitOps
//! repository cannot be read, its configuration is invalid, a delivery panicked), so whoever
//! looks at the probe's failure sees what to fix.

use std::sync::Mutex;

#[derive(Default)]
pub struct Readiness {
    /// `None`: ready.
    why: Mutex<Option<String>>,
}

impl Readiness {
    pub fn ready(&self) {
        *self.lock() = None;
    }

    pub fn unready(&self, why: impl Into<String>) {
        *self.lock() = Some(why.into());
    }

    /// `Err(why)` when not ready.
    pub fn status(&self) -> Result<(), String> {
        match self.lock().clone() {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.why.lock().unwrap_or_else(|p| p.into_inner())
    }
}
