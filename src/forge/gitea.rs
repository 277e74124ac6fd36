//! Gitea's (and Forgejo's) API, `/api/v1`, as ChatOps needs it: a small client typed with serde
//! (no maintained Gitea crate covers it soundly), checked in the tests against the running
//! Gitea's own description (`/swagger.v1.json`).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{ChangeForge, CommitStatus, OpenChange, Status};
use crate::error::{Error, Result};
use crate::events::github::PullRequest;
use crate::events::{Actor, Change, REPLY_MARKER};
use crate::redact::{remote_text, Secret};

/// Items a page (Gitea's default maximum is 50).
const PAGE: usize = 50;
/// At most this many pages of a listing are read; more fails (closed) rather than judge part.
const PAGES: usize = 40;
/// The largest answer read from Gitea; a larger one is an error, not a memory exhausted.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A Gitea repository through the API at `url` (`GITEA_URL`) with a token.
pub struct GiteaChanges {
    url: String,
    token: Secret,
    owner: String,
    repo: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    bot: std::sync::OnceLock<Option<String>>,
    /// The bot's comment id per pull request, once found or written.
    comments: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct IssueComment {
    id: u64,
    body: Option<String>,
    user: Option<User>,
    html_url: Option<String>,
}

impl GiteaChanges {
    /// `repository` is `owner/name` on the Gitea at `url` (e.g. `https://gitea.example.com`).
    pub fn connect(url: &str, token: &Secret, repository: &str) -> Result<GiteaChanges> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| is_name(o) && is_name(r))
            .ok_or_else(|| {
                Error::config(format!("Gitea repository {repository:?} is not owner/name"))
            })?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Error::config(format!(
                "GITEA_URL {url:?} is not an http(s) address"
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::internal(format!("Gitea client: {e}")))?;
        Ok(GiteaChanges {
            url: url.trim_end_matches('/').to_string(),
            token: token.clone(),
            owner: owner.into(),
            repo: repo.into(),
            http,
            runtime,
            bot: std::sync::OnceLock::new(),
            comments: Default::default(),
        })
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    fn route(&self, rest: &str) -> String {
        format!(
            "{}/api/v1/repos/{}/{}{rest}",
            self.url, self.owner, self.repo
        )
    }

    /// One call: `method` on `url` with an optional JSON body; the status and the answer.
    fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>)> {
        self.runtime.block_on(async {
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("Authorization", format!("token {}", self.token.expose()))
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let mut answer = req
                .send()
                .await
                .map_err(|e| self.err(&method, url, &e.to_string()))?;
            let status = answer.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = answer
                .chunk()
                .await
                .map_err(|e| self.err(&method, url, &e.to_string()))?
            {
                if bytes.len() + chunk.len() > MAX_ANSWER {
                    return Err(self.err(
                        &method,
                        url,
                        &format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        })
    }

    /// `GET`, the answer parsed; a status other than 2xx is an error.
    fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let (status, bytes) = self.call(reqwest::Method::GET, url, None)?;
        self.parsed(reqwest::Method::GET, url, status, &bytes)
    }

    fn parsed<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        status: u16,
        bytes: &[u8],
    ) -> Result<T> {
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(bytes);
            return Err(self.err(&method, url, &format!("{status}: {text}")));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| self.err(&method, url, &format!("unexpected answer: {e}")))
    }

    /// Every item of a paged listing (`page`, `limit`), up to [`PAGES`] pages.
    fn all<T: DeserializeOwned>(&self, rest: &str) -> Result<Vec<T>> {
        let sep = if rest.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        for page in 1..=PAGES {
            let url = self.route(&format!("{rest}{sep}limit={PAGE}&page={page}"));
            let mut items: Vec<T> = self.get(&url)?;
            let last = items.len() < PAGE;
            out.append(&mut items);
            if last {
                return Ok(out);
            }
        }
        Err(Error::remote(format!(
            "Gitea {}: {} lists more than {} items; not judged",
            self.url,
            self.full_name(),
            PAGES * PAGE
        )))
    }

    fn err(&self, method: &reqwest::Method, url: &str, detail: &str) -> Error {
        let path = url.strip_prefix(&self.url).unwrap_or(url);
        Error::remote(format!(
            "Gitea {}: {method} {} failed: {} — check GITEA_TOKEN and the repository name",
            self.url,
            path.split('?').next().unwrap_or(path),
            remote_text(detail, 300)
        ))
    }

    fn pull(&self, number: u64) -> Result<PullRequest> {
        self.get(&self.route(&format!("/pulls/{number}")))
    }

    /// The bot's own comment on `number`: its login and the marker.
    fn own_comment(&self, number: u64) -> Result<Option<u64>> {
        if let Some(id) = self
            .comments
            .lock()
            .ok()
            .and_then(|c| c.get(&number).copied())
        {
            return Ok(Some(id));
        }
        let Some(bot) = self.bot_login() else {
            return Ok(None);
        };
        // Gitea answers every comment at once here (the operation takes no paging).
        let list: Vec<IssueComment> =
            self.get(&self.route(&format!("/issues/{number}/comments")))?;
        Ok(list
            .into_iter()
            .find(|c| {
                c.user.as_ref().is_some_and(|u| u.login == bot)
                    && c.body.as_deref().is_some_and(|b| b.contains(REPLY_MARKER))
            })
            .map(|c| c.id))
    }
}

impl ChangeForge for GiteaChanges {
    /// `write`, `admin` and `owner` may deploy. Gitea lets only repository admins read another
    /// user's permission: when the token may not, nobody is trusted (the asker is refused) and
    /// the log says what the bot's account lacks.
    fn has_write_access(&self, actor: &Actor) -> Result<bool> {
        if !is_name(&actor.login) {
            return Ok(false);
        }
        #[derive(Deserialize)]
        struct Permission {
            permission: Option<String>,
        }
        let url = self.route(&format!("/collaborators/{}/permission", actor.login));
        let (status, bytes) = self.call(reqwest::Method::GET, &url, None)?;
        match status {
            404 => Ok(false),
            401 | 403 => {
                tracing::error!(
                    "Gitea {}: GITEA_TOKEN may not read {}'s permission on {}: the bot's account \
                     needs admin on the repository (Gitea shows permissions to admins only); \
                     refused, as everyone is until it has",
                    self.url,
                    actor.login,
                    self.full_name()
                );
                Ok(false)
            }
            _ => {
                let p: Permission = self.parsed(reqwest::Method::GET, &url, status, &bytes)?;
                Ok(matches!(
                    p.permission.as_deref(),
                    Some("write" | "admin" | "owner")
                ))
            }
        }
    }

    fn read(&self, number: u64) -> Result<Change> {
        let pr = self.pull(number)?;
        let mut change = pr.change();
        change.sha = Some(super::checked_sha(pr.head.sha.clone(), "Gitea")?);
        change.state = pr.state();
        Ok(change)
    }

    fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()> {
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let state = match status {
            Status::Pending => "pending",
            Status::Success => "success",
            Status::Failure => "failure",
        };
        let mut body = serde_json::json!({
            "state": state,
            "context": "flux-ephemeral",
            "description": description.chars().take(140).collect::<String>(),
        });
        if let Some(u) = url {
            body["target_url"] = serde_json::json!(u);
        }
        let target = self.route(&format!("/statuses/{sha}"));
        let (code, bytes) = self.call(reqwest::Method::POST, &target, Some(&body))?;
        self.parsed::<serde_json::Value>(reqwest::Method::POST, &target, code, &bytes)
            .map(|_| ())
    }

    fn reply(&self, number: u64, body: &str) -> Result<()> {
        let payload = serde_json::json!({ "body": body });
        let (method, url) = match self.own_comment(number)? {
            Some(id) => (
                reqwest::Method::PATCH,
                self.route(&format!("/issues/comments/{id}")),
            ),
            None => (
                reqwest::Method::POST,
                self.route(&format!("/issues/{number}/comments")),
            ),
        };
        let (status, bytes) = self.call(method.clone(), &url, Some(&payload))?;
        let written: IssueComment = self.parsed(method, &url, status, &bytes)?;
        let _ = written.html_url;
        if let Ok(mut c) = self.comments.lock() {
            c.insert(number, written.id);
        }
        Ok(())
    }

    fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
        #[derive(Deserialize)]
        struct One {
            context: String,
            status: String,
            description: Option<String>,
            created_at: Option<String>,
            creator: Option<User>,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let newest_first: Vec<One> = self.all(&format!("/commits/{sha}/statuses"))?;
        Ok(newest_first
            .into_iter()
            .rev()
            .map(|s| CommitStatus {
                context: s.context,
                state: s.status,
                description: s.description.unwrap_or_default(),
                created_at: s.created_at.as_deref().and_then(crate::model::parse_time),
                author: s.creator.map(|c| c.login),
            })
            .collect())
    }

    fn open_changes(&self) -> Result<Vec<OpenChange>> {
        let pulls: Vec<PullRequest> = self.all("/pulls?state=open")?;
        pulls
            .iter()
            .map(|p| {
                let c = p.change();
                Ok(OpenChange {
                    number: p.number.to_string(),
                    branch: p.head.branch.clone(),
                    sha: super::checked_sha(p.head.sha.clone(), "Gitea")?,
                    from_fork: c.from_fork == Some(true),
                    author: c.author.unwrap_or_default(),
                })
            })
            .collect()
    }

    fn changed_files(&self, number: u64) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct File {
            filename: String,
            previous_filename: Option<String>,
        }
        let files: Vec<File> = self.all(&format!("/pulls/{number}/files"))?;
        let mut out = BTreeSet::new();
        for f in files {
            out.extend(f.previous_filename.filter(|p| !p.is_empty()));
            out.insert(f.filename);
        }
        Ok(out.into_iter().collect())
    }

    /// Gitea has commit statuses (its Actions post them too): the newest of each context, from
    /// the combined status.
    fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        #[derive(Deserialize)]
        struct Combined {
            statuses: Option<Vec<Latest>>,
        }
        #[derive(Deserialize)]
        struct Latest {
            context: String,
            status: String,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let c: Combined = self.get(&self.route(&format!("/commits/{sha}/status")))?;
        Ok(c.statuses
            .unwrap_or_default()
            .into_iter()
            .map(|s| crate::checks::Check {
                state: crate::checks::of_status(&s.status),
                name: s.context,
            })
            .collect())
    }

    fn bot_login(&self) -> Option<String> {
        self.bot
            .get_or_init(|| {
                self.get::<User>(&format!("{}/api/v1/user", self.url))
                    .map_err(|e| tracing::warn!("cannot tell which account GITEA_TOKEN is: {e}"))
                    .ok()
                    .map(|u| u.login)
            })
            .clone()
    }

    fn clone_url(&self) -> Option<String> {
        Some(format!("{}/{}.git", self.url, self.full_name()))
    }

    fn reply_url(&self, number: u64) -> Option<String> {
        Some(format!("{}/{}/pulls/{number}", self.url, self.full_name()))
    }

    fn token_can_write(&self) -> Result<Option<bool>> {
        #[derive(Deserialize)]
        struct Repo {
            permissions: Option<Perms>,
        }
        #[derive(Deserialize)]
        struct Perms {
            push: bool,
        }
        let r: Repo = self.get(&self.route(""))?;
        Ok(r.permissions.map(|p| p.push))
    }

    fn ping(&self) -> Result<()> {
        self.get::<serde_json::Value>(&format!("{}/api/v1/version", self.url))
            .map(|_| ())
    }
}

/// An owner, repository or user name as Gitea allows them: letters, digits, `-`, `_`, `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
