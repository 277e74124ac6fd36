//! A request that waited in the queue and got room: its pull/merge request is told, its commit
//! status set, and (GitHub) a deployment recorded, as for any deploy. Failures are warnings: the
//! preview is deployed all the same.

use crate::forge::{ChangeForge, DeploymentState, Status};
use crate::plan::Outcome;
use crate::reconcile::Report;

/// Tell every admitted request's change.
pub fn announce(report: &Report) {
    for o in report.plan.outcomes.iter().filter(|o| o.admitted.is_some()) {
        if let Err(e) = announce_one(o, report) {
            tracing::warn!(slug = %o.slug, "could not tell the admitted preview's change: {e}");
        }
    }
}

pub(super) fn forge_of(
    forge: &str,
    repository: &str,
) -> crate::error::Result<Box<dyn ChangeForge>> {
    use crate::service::forges;
    Ok(match forge {
        "github" => Box::new(forges::github(repository)?),
        "gitea" => Box::new(forges::gitea(repository)?),
        _ => Box::new(forges::gitlab(None, repository)?),
    })
}

fn announce_one(o: &Outcome, report: &Report) -> crate::error::Result<()> {
    let Some(w) = &o.admitted else { return Ok(()) };
    let (Some(forge), Some(repository), Some(number)) = (
        w.forge.as_deref(),
        w.repository.as_deref(),
        w.id.as_deref().and_then(|n| n.parse::<u64>().ok()),
    ) else {
        tracing::info!(slug = %o.slug, "admitted from the queue (no pull/merge request to tell)");
        return Ok(());
    };
    let forge = forge_of(forge, repository)?;
    let r = o.rendered.as_ref();
    let url = r.and_then(|r| r.preview_url.as_deref());
    let prefixes = crate::command::Prefixes::default();
    let body = crate::replies::deployed(
        &crate::replies::Deployed {
            slug: &o.slug,
            namespace: r.map(|r| r.namespace.as_str()).unwrap_or(""),
            preview_url: url,
            sha: o.sha.as_deref(),
            commit: report.commit.as_deref(),
            changed: true,
            until: None,
            flux: None,
            cluster: o.cluster.as_deref().filter(|_| report.clustered),
            admitted: true,
        },
        &prefixes,
    );
    forge.reply(number, &body)?;
    let Some(sha) = o.sha.as_deref() else {
        return Ok(());
    };
    let text = "preview environment deployed (admitted from the queue)";
    forge.set_status(sha, Status::Success, text, url)?;
    if let (Some(branch), Some(environment)) =
        (o.branch.as_deref(), o.deployment_environment.as_deref())
    {
        if let Some(d) = crate::service::deployments::start(
            forge.as_ref(),
            sha,
            branch,
            environment,
            false,
            false,
        ) {
            d.status(DeploymentState::Success, url, None, text);
        }
    }
    tracing::info!(slug = %o.slug, cluster = ?o.cluster, "admitted from the queue");
    Ok(())
}
