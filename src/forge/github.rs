//! GitHub's API through octocrab.

use std::collections::BTreeSet;

use octocrab::{Octocrab, Page};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::redact::Secret;

pub const DEFAULT_API: &str = "https://api.github.com";

pub struct GitHub {
    client: Octocrab,
    owner: String,
    repo: String,
    api: String,
}

#[derive(Debug, Deserialize)]
struct PullNumber {
    number: u64,
}

impl GitHub {
    /// `repository` is `owner/name`; `api` is `GITHUB_API_URL` (the public API by default).
    pub fn new(api: &str, token: Option<&Secret>, repository: &str) -> Result<Self> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                Error::config(format!(
                    "GitHub repository {repository:?} is not owner/name"
                ))
            })?;
        let mut b = Octocrab::builder()
            .base_uri(api)
            .map_err(|e| Error::config(format!("GitHub API URL {api:?}: {e}")))?;
        if let Some(t) = token {
            b = b.personal_token(t.expose().to_string());
        }
        let client = b
            .build()
            .map_err(|e| Error::internal(format!("GitHub client: {e}")))?;
        Ok(GitHub {
            client,
            owner: owner.into(),
            repo: repo.into(),
            api: api.into(),
        })
    }

    /// Every open pull request number: one paged list, 100 a page.
    pub async fn open_pull_numbers(&self) -> Result<BTreeSet<String>> {
        let route = format!("/repos/{}/{}/pulls", self.owner, self.repo);
        let params = [("state", "open"), ("per_page", "100")];
        let mut page: Page<PullNumber> = self
            .client
            .get(&route, Some(&params))
            .await
            .map_err(|e| self.err("list open pull requests", e))?;
        let mut open = BTreeSet::new();
        loop {
            open.extend(page.items.iter().map(|p| p.number.to_string()));
            match self
                .client
                .get_page::<PullNumber>(&page.next)
                .await
                .map_err(|e| self.err("list open pull requests", e))?
            {
                Some(next) => page = next,
                None => return Ok(open),
            }
        }
    }

    /// Comment on a pull request.
    pub async fn comment(&self, number: &str, body: &str) -> Result<()> {
        let route = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.repo
        );
        let _: serde_json::Value = self
            .client
            .post(&route, Some(&serde_json::json!({ "body": body })))
            .await
            .map_err(|e| self.err(&format!("comment on pull request #{number}"), e))?;
        Ok(())
    }

    fn err(&self, what: &str, e: octocrab::Error) -> Error {
        let detail = match &e {
            octocrab::Error::GitHub { source, .. } => {
                format!("{} ({})", source.message, source.status_code)
            }
            other => other.to_string(),
        };
        Error::remote(format!(
            "GitHub {}: {what} in {}/{} failed: {detail} — check GITHUB_TOKEN and the repository name",
            self.api, self.owner, self.repo
        ))
    }
}
