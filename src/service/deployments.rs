//! The preview where people look: on GitHub a Deployment per deploy, its statuses, and
//! `inactive` on removal; on GitLab an environment with the preview's URL, a deployment in it,
//! and the environment stopped on removal. Every failure of those APIs (a token without
//! `deployments: write`) is a warning: the preview itself is deployed all the same.

use crate::forge::{ChangeForge, DeploymentState};

/// A deployment being reported.
pub struct Tracked<'f> {
    forge: &'f dyn ChangeForge,
    id: u64,
    environment: String,
    /// The preview is new: no earlier deployment of it is active.
    fresh: bool,
}

fn warn(what: &str, e: crate::error::Error) {
    tracing::warn!("deployments: could not {what}: {e}");
}

/// Record a deployment of `sha` (on `branch`) to `environment`, marked in progress when the
/// verdict waits for Flux (`slow`; otherwise its one status follows at once); `None` where the
/// forge has no deployments, or the API refused.
pub fn start<'f>(
    forge: &'f dyn ChangeForge,
    sha: &str,
    branch: &str,
    environment: &str,
    slow: bool,
    fresh: bool,
) -> Option<Tracked<'f>> {
    let id = match forge.start_deployment(sha, branch, environment) {
        Ok(Some(id)) => id,
        Ok(None) => return None,
        Err(e) => {
            warn("create the deployment", e);
            return None;
        }
    };
    let t = Tracked {
        forge,
        id,
        environment: environment.to_string(),
        fresh,
    };
    if slow {
        t.status(
            DeploymentState::InProgress,
            None,
            None,
            "deploying the preview",
        );
    }
    Some(t)
}

impl Tracked<'_> {
    pub fn status(
        &self,
        state: DeploymentState,
        url: Option<&str>,
        log_url: Option<&str>,
        description: &str,
    ) {
        if let Err(e) = self
            .forge
            .deployment_status(self.id, state, url, log_url, description)
        {
            warn("set the deployment status", e);
            return;
        }
        if state == DeploymentState::Success {
            if let Err(e) =
                self.forge
                    .retire_earlier_deployments(&self.environment, self.id, self.fresh)
            {
                warn("mark the earlier deployment inactive", e);
            }
        }
    }
}

/// The follow-up of every removal (a command, the page, cleanup, resync, the lifecycle pass): the
/// preview `slug`'s deployment or environment is marked inactive — except a GitLab environment
/// of the CI `env` job (`of_ci_job`), which is GitLab's own to stop.
pub fn removed(
    forge: &dyn ChangeForge,
    settings: &crate::settings::Settings,
    slug: &str,
    of_ci_job: bool,
) {
    if !(forge.is_gitlab() && of_ci_job) {
        deactivate(
            forge,
            &settings.deployment_environment(slug, forge.is_gitlab()),
        );
    }
}

/// The preview of `environment` was removed.
pub fn deactivate(forge: &dyn ChangeForge, environment: &str) {
    if let Err(e) = forge.deactivate_environment(environment) {
        warn("mark the environment inactive", e);
    }
}
