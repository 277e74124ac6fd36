//! A listing is not proof: a change that closes while the list is paged shifts others off every
//! page. Before anything is destroyed because its change is absent from a listing, the change is
//! read on its own; only the forge's own "closed" or "merged" for it counts.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::events::ChangeState;
use crate::forge::ChangeForge;

/// What the forge said, change by change, so a retried transaction asks each only once.
#[derive(Debug, Default)]
pub struct Confirmed {
    closed: BTreeMap<String, bool>,
}

impl Confirmed {
    /// Whether change `id` is really no longer open. An id that is not a number cannot be read,
    /// so it is never confirmed closed. A failed read is an error: nothing is destroyed on it.
    pub fn closed(&mut self, forge: &dyn ChangeForge, id: &str) -> Result<bool> {
        if let Some(known) = self.closed.get(id) {
            return Ok(*known);
        }
        let closed = match id.parse::<u64>() {
            Ok(number) => matches!(
                forge.read(number)?.state,
                ChangeState::Closed | ChangeState::Merged
            ),
            Err(_) => false,
        };
        if !closed {
            tracing::warn!(change = %id, "absent from the listing but still open: kept");
        }
        self.closed.insert(id.to_string(), closed);
        Ok(closed)
    }
}
