//! One verified, well-formed delivery, as the HTTP side accepts it, the journal keeps it and the
//! worker handles it.

use crate::events::Forge;

#[derive(Debug, Clone)]
pub struct Job {
    pub forge: Forge,
    pub event: Option<String>,
    /// `X-GitHub-Delivery` / `X-Gitlab-Event-UUID`.
    pub delivery: Option<String>,
    pub body: String,
    pub accepted: std::time::Instant,
    /// Its journal entry, removed once handled.
    pub journal_id: Option<String>,
}
