//! Previews across clusters, the service's share: every transaction goes through
//! [`transaction`], so a request admitted from the queue by any commit (a destroy, a close,
//! cleanup, expiry, resync) is told on its pull/merge request that it is deployed.

mod admitted;
mod waiting;

use crate::error::Result;
use crate::git::Store;
use crate::plan::Intent;
use crate::reconcile::{reconcile, ConfigSource, Report, RunOptions, Snapshot};

pub use admitted::announce;
pub use waiting::tell_places;

/// [`reconcile`], then the follow-up of the requests its commit admitted from the queue, and
/// of those that moved up in it.
pub fn transaction(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    intents: &mut dyn FnMut(&Snapshot) -> Result<Vec<Intent>>,
    opts: &RunOptions,
) -> Result<Report> {
    let report = reconcile(store, config, first, intents, opts)?;
    if report.commit.is_some() {
        announce(&report);
        tell_places(&report);
    }
    Ok(report)
}
