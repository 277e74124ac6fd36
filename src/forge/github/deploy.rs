//! GitHub Deployments for previews: the pull request shows "View deployment" with the preview's
//! URL. One transient, non-production deployment of the head commit per deploy, its statuses
//! (`in_progress`, then `success` with `environment_url` and `log_url`, or `failure`), and
//! `inactive` when the preview is removed. The token needs `deployments: write`; without it the
//! callers only warn. Also the checks of a commit, for `require_checks`.

use serde::Deserialize;

use super::GitHub;
use crate::error::Result;
use crate::forge::DeploymentState;

impl DeploymentState {
    fn github(self) -> &'static str {
        match self {
            DeploymentState::Queued => "queued",
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Inactive => "inactive",
        }
    }
}

/// The workflow run this process is a job of, in GitHub Actions (`GITHUB_RUN_ID`).
fn own_workflow_run() -> Option<String> {
    (std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true"))
        .then(|| std::env::var("GITHUB_RUN_ID").ok())
        .flatten()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a check run's `details_url` (`…/actions/runs/<run>/job/<job>`) is a job of `run`.
fn is_of_run(details_url: &str, run: &str) -> bool {
    details_url.contains(&format!("/actions/runs/{run}/"))
}

/// At most this many pages of a commit's check runs are read (100 a page).
pub const CHECK_RUN_PAGES: usize = 10;

#[derive(Deserialize)]
struct Deployment {
    id: u64,
}

impl GitHub {
    /// The checks of `sha`: all its check runs (100 a page, up to [`CHECK_RUN_PAGES`] pages; more
    /// is an error, so a gate fails closed rather than judge part of them) and the newest commit
    /// status of each context.
    pub async fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        #[derive(Deserialize)]
        struct Runs {
            total_count: u64,
            check_runs: Vec<Run>,
        }
        #[derive(Deserialize)]
        struct Run {
            name: String,
            status: String,
            conclusion: Option<String>,
            details_url: Option<String>,
        }
        let sha = crate::forge::checked_sha(sha.to_string(), "the caller")?;
        let route = format!(
            "/repos/{}/{}/commits/{sha}/check-runs",
            self.owner, self.repo
        );
        let mut runs: Vec<Run> = Vec::new();
        let mut page = 1;
        loop {
            let number = page.to_string();
            let mut one: Runs = self
                .client
                .get(
                    &route,
                    Some(&[("per_page", "100"), ("page", number.as_str())]),
                )
                .await
                .map_err(|e| self.err("read the check runs", e))?;
            let empty = one.check_runs.is_empty();
            runs.append(&mut one.check_runs);
            // `total_count` counts every run of the commit, on every page.
            if empty || runs.len() as u64 >= one.total_count {
                break;
            }
            if page == CHECK_RUN_PAGES {
                return Err(crate::error::Error::remote(format!(
                    "GitHub: commit {sha} of {}/{} has {} check runs, more than the {} read: not judged",
                    self.owner,
                    self.repo,
                    one.total_count,
                    CHECK_RUN_PAGES * 100
                )));
            }
            page += 1;
        }
        // In GitHub Actions, the jobs of this very workflow run that have not finished (the one
        // running `handle --wait-checks` among them) are left out: waiting for them would wait
        // for ourselves. A sibling that finished still counts.
        let own_run = own_workflow_run();
        let mut out: Vec<crate::checks::Check> = runs
            .into_iter()
            .filter(|r| {
                !(r.status != "completed"
                    && own_run.as_deref().is_some_and(|id| {
                        r.details_url.as_deref().is_some_and(|u| is_of_run(u, id))
                    }))
            })
            .map(|r| crate::checks::Check {
                state: crate::checks::of_check_run(&r.status, r.conclusion.as_deref()),
                name: r.name,
            })
            .collect();
        // A status counts by its context's newest (the list is oldest first).
        let mut newest = std::collections::BTreeMap::new();
        for s in self.commit_statuses(&sha).await? {
            newest.insert(s.context, s.state);
        }
        out.extend(
            newest
                .into_iter()
                .map(|(name, state)| crate::checks::Check {
                    state: crate::checks::of_status(&state),
                    name,
                }),
        );
        Ok(out)
    }

    /// Create the deployment of `sha` to `environment`; its id.
    pub async fn create_deployment(&self, sha: &str, environment: &str) -> Result<u64> {
        let sha = crate::forge::checked_sha(sha.to_string(), "the caller")?;
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

    /// The deployments of `environment`, newest first (one page of `per_page`).
    async fn deployments_of(&self, environment: &str, per_page: &str) -> Result<Vec<Deployment>> {
        let route = format!("/repos/{}/{}/deployments", self.owner, self.repo);
        self.client
            .get(
                &route,
                Some(&[("environment", environment), ("per_page", per_page)]),
            )
            .await
            .map_err(|e| self.err("list deployments", e))
    }

    async fn set_inactive(&self, id: u64) -> Result<()> {
        self.deployment_status(
            id,
            DeploymentState::Inactive,
            None,
            None,
            "preview environment removed",
        )
        .await
    }

    /// Deployment `keep` of `environment` succeeded: mark the one before it inactive. GitHub's
    /// `auto_inactive` leaves transient deployments alone, and each success retires its
    /// predecessor, so the ones before that are inactive already. The predecessor is the one
    /// this process left active, when it knows it; else the newest other one listed.
    pub async fn retire_before(&self, environment: &str, keep: u64) -> Result<()> {
        let repository = self.full_name();
        let previous = match super::memory::active_deployment(&self.api, &repository, environment) {
            Some(id) if id != keep => Some(id),
            Some(_) => None,
            None => self
                .deployments_of(environment, "2")
                .await?
                .iter()
                .find(|d| d.id != keep)
                .map(|d| d.id),
        };
        if let Some(id) = previous {
            if let Err(e) = self.set_inactive(id).await {
                // Two may be active now: a removal lists them all again.
                super::memory::remember_deployment(&self.api, &repository, environment, None);
                return Err(e);
            }
        }
        super::memory::remember_deployment(&self.api, &repository, environment, Some(keep));
        Ok(())
    }

    /// Deployment `id` of a new preview succeeded: nothing came before it (a removed preview's
    /// deployments were marked inactive with it), so it is the only active one.
    pub fn first_of(&self, environment: &str, id: u64) {
        super::memory::remember_deployment(&self.api, &self.full_name(), environment, Some(id));
    }

    /// The preview of `environment` was removed: mark every deployment of it that is still
    /// active inactive, newest first, up to the first one that is inactive already (the ones
    /// before it were retired in their turn). One page of 100.
    pub async fn deactivate(&self, environment: &str) -> Result<()> {
        #[derive(Deserialize)]
        struct Status {
            state: String,
        }
        let repository = self.full_name();
        // The one this process left active: nothing to look for.
        if let Some(id) = super::memory::active_deployment(&self.api, &repository, environment) {
            super::memory::remember_deployment(&self.api, &repository, environment, None);
            match self.set_inactive(id).await {
                Ok(()) => return Ok(()),
                // Gone (deleted by someone) or refused: list them as without a memory.
                Err(e) => tracing::info!("deployments: {e}; listing the environment's deployments"),
            }
        }
        for d in self.deployments_of(environment, "100").await? {
            let route = format!(
                "/repos/{}/{}/deployments/{}/statuses",
                self.owner, self.repo, d.id
            );
            let latest: Vec<Status> = self
                .client
                .get(&route, Some(&[("per_page", "1")]))
                .await
                .map_err(|e| self.err("read a deployment's status", e))?;
            if latest.first().is_some_and(|s| s.state == "inactive") {
                break;
            }
            self.set_inactive(d.id).await?;
        }
        Ok(())
    }
}
