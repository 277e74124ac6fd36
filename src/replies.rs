//! Every text flux-ephemeral posts on a pull/merge request, in one place.

use crate::cleanup::{Reason, Stale};

/// Left on a pull/merge request whose environment cleanup removed while it is still open.
pub fn removed_by_cleanup(s: &Stale) -> String {
    let why = match &s.reason {
        Reason::TtlExpired { ttl, .. } => format!("its time to live ({ttl}) ran out"),
        other => other.describe(),
    };
    format!(
        "flux-ephemeral removed the preview environment `{}` of branch `{}`: {why}.\n\n\
         Comment `/deploy-ephemeral` to deploy it again.",
        s.slug, s.branch
    )
}
