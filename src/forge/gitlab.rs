//! GitLab's API through the `gitlab` crate.

use gitlab::api::{self, Query};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::redact::Secret;

/// Where GitLab's API is: `--gitlab-url`, `CI_API_V4_URL` or `GITLAB_URL`; never the payload's
/// own URLs (a forged hook must not make us send our token elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabUrl {
    pub host: String,
    pub insecure: bool,
}

impl GitLabUrl {
    /// `https://gitlab.example.com`, `https://gitlab.example.com/api/v4`, `http://127.0.0.1:8080`.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "GitLab URL {url:?} is not like https://gitlab.example.com"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let insecure = match scheme {
            "https" => false,
            "http" => true,
            _ => return Err(bad()),
        };
        let host = rest
            .trim_end_matches('/')
            .trim_end_matches("/api/v4")
            .trim_end_matches('/');
        if host.is_empty() || host.contains('@') {
            return Err(bad());
        }
        Ok(GitLabUrl {
            host: host.to_string(),
            insecure,
        })
    }
}

/// What the Deployments API says about one deployment.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: u64,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub status: Option<String>,
    pub user: Option<User>,
    pub environment: Option<EnvironmentInfo>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    pub username: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EnvironmentInfo {
    pub name: String,
    pub external_url: Option<String>,
}

pub struct GitLab {
    client: gitlab::Gitlab,
    host: String,
}

impl GitLab {
    /// Connect (the crate checks the token against `/api/v4/user`).
    pub fn connect(url: &GitLabUrl, token: &Secret) -> Result<Self> {
        let mut b = gitlab::Gitlab::builder(url.host.clone(), token.expose());
        if url.insecure {
            b.insecure();
        }
        let client = b.build().map_err(|e| {
            Error::remote(format!(
                "cannot use GitLab at {}: {} — check GITLAB_TOKEN (api scope) and --gitlab-url",
                url.host,
                clean(&e.to_string(), token)
            ))
        })?;
        Ok(GitLab {
            client,
            host: url.host.clone(),
        })
    }

    pub fn deployment(&self, project: u64, deployment: u64) -> Result<DeploymentInfo> {
        let endpoint = gitlab::api::projects::deployments::Deployment::builder()
            .project(project)
            .deployment_id(deployment)
            .build()
            .map_err(|e| Error::internal(e.to_string()))?;
        endpoint.query(&self.client).map_err(|e: api::ApiError<_>| {
            Error::remote(format!(
                "GitLab {}: reading deployment {deployment} of project {project} failed: {e}",
                self.host
            ))
        })
    }
}

fn clean(text: &str, token: &Secret) -> String {
    crate::redact::scrub(text, Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            GitLabUrl::parse("https://gitlab.example.com/api/v4").unwrap(),
            GitLabUrl {
                host: "gitlab.example.com".into(),
                insecure: false
            }
        );
        assert_eq!(
            GitLabUrl::parse("http://127.0.0.1:8080/").unwrap(),
            GitLabUrl {
                host: "127.0.0.1:8080".into(),
                insecure: true
            }
        );
        assert!(GitLabUrl::parse("gitlab.example.com").is_err());
        assert!(GitLabUrl::parse("https://user:pw@gitlab.example.com").is_err());
    }
}
