//! GitHub Deployments for previews: the pull request shows "View deployment" with the preview's
//! URL. One transient, non-production deployment of the head commit per deploy, its statuses
//! (`in_progress`, then `success` with `environment_url` and `log_url`, or `failure`), and
//! `inactive` when the preview is removed. The token needs `deployments: write`; without it the
//! callers only warn. Also the checks of a commit, for `require_checks`.

use serde::Deserialize;

use super::github::GitHub;
use super::DeploymentState;
use crate::error::Result;

impl DeploymentState {
    fn github(self) -> &'static str {
        match self {
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
        }
    }
}

#[derive(Deserialize)]
struct Deployment {
    id: u64,
}

impl GitHub {
    /// The checks of `sha`: its check runs (100 at most, GitHub's page) and its commit statuses.
    pub async fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Run {
            name: String,
            status: String,
            conclusion: Option<String>,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let route = format!(
            "/repos/{}/{}/commits/{sha}/check-runs",
            self.owner, self.repo
        );
        let runs: Runs = self
            .client
            .get(&route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.err("read the check runs", e))?;
        let mut out: Vec<crate::checks::Check> = runs
            .check_runs
            .into_iter()
            .map(|r| crate::checks::Check {
                state: crate::checks::of_check_run(&r.status, r.conclusion.as_deref()),
                name: r.name,
            })
            .collect();
        out.extend(
            self.commit_statuses(&sha)
                .await?
                .into_iter()
                .map(|s| crate::checks::Check {
                    state: crate::checks::of_status(&s.state),
                    name: s.context,
                }),
        );
        Ok(out)
    }

    /// Create the deployment of `sha` to `environment`; its id.
    pub async fn create_deployment(&self, sha: &str, environment: &str) -> Result<u64> {
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let route = format!("/repos/{}/{}/deployments", self.owner, self.repo);
        let body = serde_json::json!({
            "ref": sha,
            "environment": environment,
            "transient_environment": true,
            "production_environment": false,
            "auto_merge": false,
            "required_contexts": [],
            "description": "flux-ephemeral preview",
        });
        let d: Deployment = self
            .client
            .post(&route, Some(&body))
            .await
            .map_err(|e| self.err("create a deployment", e))?;
        Ok(d.id)
    }

    /// Post a status of deployment `id`. A success makes the environment's earlier deployments
    /// inactive (`auto_inactive`), so only the newest is active.
    pub async fn deployment_status(
        &self,
        id: u64,
        state: DeploymentState,
        environment_url: Option<&str>,
        log_url: Option<&str>,
        description: &str,
    ) -> Result<()> {
        let route = format!(
            "/repos/{}/{}/deployments/{id}/statuses",
            self.owner, self.repo
        );
        let mut body = serde_json::json!({
            "state": state.github(),
            "description": description.chars().take(140).collect::<String>(),
            "auto_inactive": true,
        });
        if let Some(u) = environment_url {
            body["environment_url"] = serde_json::json!(u);
        }
        if let Some(u) = log_url {
            body["log_url"] = serde_json::json!(u);
        }
        let _: serde_json::Value = self
            .client
            .post(&route, Some(&body))
            .await
            .map_err(|e| self.err("set a deployment status", e))?;
        Ok(())
    }

    /// Mark the newest deployment of `environment` inactive (the preview was removed).
    pub async fn deactivate(&self, environment: &str) -> Result<()> {
        let route = format!("/repos/{}/{}/deployments", self.owner, self.repo);
        let list: Vec<Deployment> = self
            .client
            .get(
                &route,
                Some(&[("environment", environment), ("per_page", "1")]),
            )
            .await
            .map_err(|e| self.err("list deployments", e))?;
        if let Some(d) = list.first() {
            self.deployment_status(
                d.id,
                DeploymentState::Inactive,
                None,
                None,
                "preview environment removed",
            )
            .await?;
        }
        Ok(())
    }
}
