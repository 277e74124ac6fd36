//! GitLab environments for ChatOps and `serve` previews (the CI `env` job has GitLab's own): an
//! environment per preview (`review/<slug>`) with the preview's URL as `external_url` and tier
//! `development`, a deployment of the merge request's head in it so the MR widget shows
//! "View app", and the environment stopped when the preview is removed. The deployment
//! endpoints are the `gitlab` crate's; creating and editing an environment are not in it.

use std::borrow::Cow;

use gitlab::api::endpoint_prelude::Method;
use gitlab::api::projects::deployments::{CreateDeployment, DeploymentStatus, EditDeployment};
use gitlab::api::{self, Endpoint, Query};
use serde::Deserialize;

use super::gitlab::GitLab;
use crate::error::{Error, Result};

/// `POST /projects/:id/environments`, or `PUT …/environments/:environment_id` when it exists.
struct SaveEnvironment<'a> {
    project: &'a str,
    id: Option<u64>,
    name: &'a str,
    external_url: Option<&'a str>,
}

impl Endpoint for SaveEnvironment<'_> {
    fn method(&self) -> Method {
        if self.id.is_some() {
            Method::PUT
        } else {
            Method::POST
        }
    }
    fn endpoint(&self) -> Cow<'static, str> {
        let project = self.project.replace('/', "%2F");
        match self.id {
            Some(id) => format!("projects/{project}/environments/{id}").into(),
            None => format!("projects/{project}/environments").into(),
        }
    }
    fn body(&self) -> std::result::Result<Option<(&'static str, Vec<u8>)>, api::BodyError> {
        let mut body = serde_json::json!({ "tier": "development" });
        if self.id.is_none() {
            body["name"] = serde_json::json!(self.name);
        }
        if let Some(u) = self.external_url {
            body["external_url"] = serde_json::json!(u);
        }
        Ok(Some((
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )))
    }
}

#[derive(Deserialize)]
struct Id {
    id: u64,
}

impl GitLab {
    /// The id of environment `name` (available or stopped), if it exists.
    fn environment_id(&self, project: &str, name: &str) -> Result<Option<u64>> {
        let endpoint = gitlab::api::projects::environments::Environments::builder()
            .project(project)
            .name(name)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let list: Vec<super::gitlab::Environment> = endpoint
            .query(&self.client)
            .map_err(|e| self.err("find the environment", project, e))?;
        Ok(list.into_iter().find(|e| e.name == name).map(|e| e.id))
    }

    /// Create or update environment `name` (tier development, with `external_url` when given).
    pub fn save_environment(
        &self,
        project: &str,
        name: &str,
        external_url: Option<&str>,
    ) -> Result<u64> {
        let id = self.environment_id(project, name)?;
        let saved: Id = SaveEnvironment {
            project,
            id,
            name,
            external_url,
        }
        .query(&self.client)
        .map_err(|e| self.err(&format!("save environment {name}"), project, e))?;
        Ok(saved.id)
    }

    /// Record a running deployment of `sha` (on `branch`) in environment `name`; its id.
    pub fn create_deployment(
        &self,
        project: &str,
        name: &str,
        sha: &str,
        branch: &str,
    ) -> Result<u64> {
        let endpoint = CreateDeployment::builder()
            .project(project)
            .environment(name)
            .sha(sha)
            .ref_(branch)
            .tag(false)
            .status(DeploymentStatus::Running)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        let d: Id = endpoint
            .query(&self.client)
            .map_err(|e| self.err("create a deployment", project, e))?;
        Ok(d.id)
    }

    pub fn finish_deployment(&self, project: &str, id: u64, ok: bool) -> Result<()> {
        let endpoint = EditDeployment::builder()
            .project(project)
            .deployment_id(id)
            .status(if ok {
                DeploymentStatus::Success
            } else {
                DeploymentStatus::Failed
            })
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        api::ignore(endpoint)
            .query(&self.client)
            .map_err(|e| self.err("finish the deployment", project, e))
    }

    /// Stop environment `name`, if it exists.
    pub fn stop_named_environment(&self, project: &str, name: &str) -> Result<()> {
        match self.environment_id(project, name)? {
            Some(id) => self.stop_environment(project, id),
            None => Ok(()),
        }
    }
}
