//! GitHub's API through octocrab.

use std::collections::BTreeSet;

use octocrab::{Octocrab, Page};
use serde::Deserialize;

pub mod app;
mod changes;
pub use changes::GitHubChanges;
pub mod client;
mod deploy;
mod memory;

use super::Status;
use crate::error::{Error, Result};
use crate::events::github::PrUser;
use crate::events::REPLY_MARKER;
use crate::redact::Secret;

pub const DEFAULT_API: &str = "https://api.github.com";

/// At most this many pages of a commit's statuses are read (100 a page, newest first).
pub const STATUS_PAGES: usize = 10;

pub struct GitHub {
    pub(crate) client: Octocrab,
    pub(crate) owner: String,
    pub(crate) repo: String,
    api: String,
    /// Whose credential the client speaks with: "token", "anonymous" or "installation <id>"
    /// (a name for the memory and the budgets, never the secret).
    who: String,
    /// The GitHub App, when the client is one of its installations.
    app: Option<std::sync::Arc<app::App>>,
}

/// Who the bot is on GitHub, so it edits only its own comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotLogin {
    Known(String),
    /// The token's user cannot be read (an app installation token outside Actions, without
    /// FLUX_EPHEMERAL_BOT_LOGIN): every reply is a new comment.
    Unknown,
}

impl GitHub {
    /// `repository` is `owner/name`; `api` is `GITHUB_API_URL` (the public API by default).
    pub fn new(api: &str, token: Option<&Secret>, repository: &str) -> Result<Self> {
        let (owner, repo) = split_repository(repository)?;
        Ok(GitHub {
            client: memory::token_client(api, token)?,
            owner,
            repo,
            api: api.into(),
            who: if token.is_some() {
                "token"
            } else {
                "anonymous"
            }
            .into(),
            app: None,
        })
    }

    /// `repository` through installation `installation` of the GitHub App `app`.
    pub fn installed(
        app: std::sync::Arc<app::App>,
        installation: u64,
        repository: &str,
    ) -> Result<Self> {
        let (owner, repo) = split_repository(repository)?;
        Ok(GitHub {
            client: app.installation(installation)?,
            owner,
            repo,
            api: app.api.clone(),
            who: format!("installation {installation}"),
            app: Some(app),
        })
    }

    /// What this client's credential has left of its rate limit (`GET /rate_limit`, free).
    pub async fn budget(&self) -> Result<client::Budget> {
        client::read_budget(&self.client, &self.who)
            .await
            .map_err(|e| {
                Error::remote(format!(
                    "GitHub {}: reach the API for {}/{}: {} — {}",
                    self.api,
                    self.owner,
                    self.repo,
                    e.message,
                    self.credential_hint()
                ))
            })
    }

    /// What to check when a call fails, by the credential in use.
    fn credential_hint(&self) -> &'static str {
        if self.app.is_some() {
            "check the GitHub App's installation on the repository and its permissions"
        } else {
            "check GITHUB_TOKEN and the repository name"
        }
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// Every open pull request: one paged list, 100 a page (octocrab follows the `Link` pages).
    pub async fn open_pulls(&self) -> Result<Vec<crate::events::github::PullRequest>> {
        let route = format!("/repos/{}/{}/pulls", self.owner, self.repo);
        let params = [("state", "open"), ("per_page", "100")];
        let first: Page<crate::events::github::PullRequest> = self
            .client
            .get(&route, Some(&params))
            .await
            .map_err(|e| self.err("list open pull requests", e))?;
        self.client
            .all_pages(first)
            .await
            .map_err(|e| self.err("list open pull requests", e))
    }

    /// The paths a pull request changes: its files list, 100 a page, following `Link` pages up to
    /// GitHub's own limit of 3,000 files. A failed page fails the whole read.
    pub async fn changed_files(&self, number: u64) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct File {
            filename: String,
            /// A renamed file's old path: it counts too.
            previous_filename: Option<String>,
        }
        let route = format!("/repos/{}/{}/pulls/{number}/files", self.owner, self.repo);
        let what = format!("list the files of pull request #{number}");
        let mut page: Page<File> = self
            .client
            .get(&route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.err(&what, e))?;
        let mut files = Vec::new();
        for _ in 0..30 {
            for f in page.items.drain(..) {
                files.extend(f.previous_filename);
                files.push(f.filename);
            }
            match self
                .client
                .get_page::<File>(&page.next)
                .await
                .map_err(|e| self.err(&what, e))?
            {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(files)
    }

    /// Every open pull request number.
    pub async fn open_pull_numbers(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .open_pulls()
            .await?
            .iter()
            .map(|p| p.number.to_string())
            .collect())
    }

    /// `write`, `maintain` and `admin` may deploy; anybody else (or a 404) may not.
    pub async fn has_write_access(&self, login: &str) -> Result<bool> {
        // The login comes from a payload and goes into a URL path: GitHub's own alphabet only.
        if !is_name(login.trim_end_matches("[bot]")) {
            return Ok(false);
        }
        #[derive(Deserialize)]
        struct Permission {
            permission: Option<String>,
            role_name: Option<String>,
        }
        let route = format!(
            "/repos/{}/{}/collaborators/{login}/permission",
            self.owner, self.repo
        );
        let repository = self.full_name();
        if let Some(may) = memory::permission(&self.api, &self.who, &repository, login) {
            return Ok(may);
        }
        let may = match self.client.get::<Permission, _, ()>(&route, None).await {
            Ok(p) => {
                let ok = |v: &Option<String>| {
                    matches!(v.as_deref(), Some("write" | "maintain" | "admin"))
                };
                ok(&p.permission) || ok(&p.role_name)
            }
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                false
            }
            Err(e) => return Err(self.err(&format!("read the permission of {login}"), e)),
        };
        memory::remember_permission(&self.api, &self.who, &repository, login, may);
        Ok(may)
    }

    pub async fn pull_request(&self, number: u64) -> Result<crate::events::github::PullRequest> {
        let route = format!("/repos/{}/{}/pulls/{number}", self.owner, self.repo);
        self.client
            .get(&route, None::<&()>)
            .await
            .map_err(|e| self.err(&format!("read pull request #{number}"), e))
    }

    /// The login comments are written under: FLUX_EPHEMERAL_BOT_LOGIN, else a GitHub App's
    /// `<slug>[bot]` (`GET /app`), else the token's user (`GET /user`), else in GitHub Actions
    /// `github-actions[bot]` (the GITHUB_TOKEN's author). Read once a process.
    pub async fn bot_login(&self) -> Result<BotLogin> {
        if let Some(l) = std::env::var("FLUX_EPHEMERAL_BOT_LOGIN")
            .ok()
            .filter(|l| !l.is_empty())
        {
            return Ok(BotLogin::Known(l));
        }
        let who = match &self.app {
            Some(app) => format!("app {}", app.id),
            None => self.who.clone(),
        };
        if let Some(l) = memory::login(&self.api, &who) {
            return Ok(BotLogin::Known(l));
        }
        let login = match &self.app {
            Some(app) => app.login().await?,
            None => match self.token_user().await? {
                Some(l) => l,
                None => return Ok(BotLogin::Unknown),
            },
        };
        memory::remember_login(&self.api, &who, &login);
        Ok(BotLogin::Known(login))
    }

    /// The token's user, `GET /user`; `None` when the token may not read it.
    async fn token_user(&self) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Me {
            login: String,
        }
        match self.client.get::<Me, _, ()>("/user", None).await {
            Ok(me) => Ok(Some(me.login)),
            // An installation token may not read /user ("Resource not accessible by integration").
            Err(octocrab::Error::GitHub { source, .. })
                if matches!(source.status_code.as_u16(), 401 | 403 | 404) =>
            {
                if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
                    Ok(Some("github-actions[bot]".into()))
                } else {
                    tracing::warn!("cannot tell which account the GitHub token belongs to; run as a GitHub App (FLUX_EPHEMERAL_GITHUB_APP_ID) or set FLUX_EPHEMERAL_BOT_LOGIN so replies are edited instead of added");
                    Ok(None)
                }
            }
            Err(e) => Err(self.err("read the token's user", e)),
        }
    }

    /// Every status of `sha`, oldest first, each naming who posted it. GitHub's combined status
    /// (`…/commits/{ref}/status`) names nobody (`simple-commit-status` has no `creator`), so this
    /// reads the list, `GET /repos/{owner}/{repo}/commits/{ref}/statuses`: newest first, 100 a page,
    /// following `Link` pages up to [`STATUS_PAGES`] (GitHub keeps at most 1,000 a context). What
    /// lies beyond is older than everything read, so the newest of each context is always there.
    pub async fn commit_statuses(&self, sha: &str) -> Result<Vec<super::CommitStatus>> {
        #[derive(Deserialize)]
        struct One {
            context: String,
            state: String,
            description: Option<String>,
            created_at: Option<String>,
            creator: Option<Login>,
        }
        #[derive(Deserialize)]
        struct Login {
            login: String,
        }
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let route = format!("/repos/{}/{}/commits/{sha}/statuses", self.owner, self.repo);
        let what = "read the commit statuses";
        let mut page: Page<One> = self
            .client
            .get(&route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.err(what, e))?;
        let mut newest_first = Vec::new();
        for _ in 1..STATUS_PAGES {
            newest_first.append(&mut page.items);
            match self
                .client
                .get_page::<One>(&page.next)
                .await
                .map_err(|e| self.err(what, e))?
            {
                Some(next) => page = next,
                None => break,
            }
        }
        newest_first.append(&mut page.items);
        Ok(newest_first
            .into_iter()
            .rev()
            .map(|s| super::CommitStatus {
                context: s.context,
                state: s.state,
                description: s.description.unwrap_or_default(),
                created_at: s.created_at.as_deref().and_then(crate::model::parse_time),
                author: s.creator.map(|c| c.login),
            })
            .collect())
    }

    pub async fn set_status(
        &self,
        sha: &str,
        status: Status,
        description: &str,
        url: Option<&str>,
    ) -> Result<()> {
        let state = match status {
            Status::Pending => "pending",
            Status::Success => "success",
            Status::Failure => "failure",
        };
        let sha = super::checked_sha(sha.to_string(), "the caller")?;
        let route = format!("/repos/{}/{}/statuses/{sha}", self.owner, self.repo);
        let mut body = serde_json::json!({ "state": state, "context": "flux-ephemeral", "description": truncate(description, 140) });
        if let Some(u) = url {
            body["target_url"] = serde_json::json!(u);
        }
        let _: serde_json::Value = self
            .client
            .post(&route, Some(&body))
            .await
            .map_err(|e| self.err("set the commit status", e))?;
        Ok(())
    }

    /// Edit the bot's comment on the pull request (the bot's own, carrying the marker), or
    /// create it. The bot's login is asked for only when a comment carries the marker; `none_yet`:
    /// the pull request is known to hold no comment of the bot's, so none is looked for.
    pub async fn upsert_comment(
        &self,
        number: u64,
        body: &str,
        none_yet: bool,
    ) -> Result<Option<String>> {
        let what = format!("comment on pull request #{number}");
        let payload = serde_json::json!({ "body": body });
        let repository = self.full_name();
        // The bot's comment, once found or written, is edited in place without listing again.
        if let Some(id) = memory::comment(&self.api, &repository, number) {
            let edit = format!("/repos/{}/{}/issues/comments/{id}", self.owner, self.repo);
            match self
                .client
                .patch::<serde_json::Value, _, _>(&edit, Some(&payload))
                .await
            {
                Ok(written) => return Ok(written["html_url"].as_str().map(str::to_string)),
                // Deleted by someone: find it again (or write a new one).
                Err(e) if client::status_of(&e) == Some(404) => {
                    memory::remember_comment(&self.api, &repository, number, None)
                }
                Err(e) => return Err(self.err(&what, e)),
            }
        }
        let (existing, bot) = if none_yet {
            (None, None)
        } else {
            self.find_own_comment(number).await?
        };
        let route = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.repo
        );
        let written: serde_json::Value = match existing {
            Some(id) => {
                let route = format!("/repos/{}/{}/issues/comments/{id}", self.owner, self.repo);
                self.client.patch(&route, Some(&payload)).await
            }
            None => self.client.post(&route, Some(&payload)).await,
        }
        .map_err(|e| self.err(&what, e))?;
        // Remembered unless the bot cannot tell its own comments (then each reply is new).
        if !matches!(bot, Some(BotLogin::Unknown)) {
            let id = written["id"].as_u64().or(existing);
            memory::remember_comment(&self.api, &repository, number, id);
        }
        Ok(written["html_url"].as_str().map(str::to_string))
    }

    /// The bot's own comment on pull request `number` (its login and the marker), and the login
    /// when it had to be asked for.
    async fn find_own_comment(&self, number: u64) -> Result<(Option<u64>, Option<BotLogin>)> {
        #[derive(Deserialize)]
        struct IssueComment {
            id: u64,
            body: Option<String>,
            user: Option<PrUser>,
        }
        let route = format!(
            "/repos/{}/{}/issues/{number}/comments",
            self.owner, self.repo
        );
        let what = format!("comment on pull request #{number}");
        let mut bot: Option<BotLogin> = None;
        let mut page: Page<IssueComment> = self
            .client
            .get(&route, Some(&[("per_page", "100")]))
            .await
            .map_err(|e| self.err(&what, e))?;
        loop {
            for c in page.items.iter() {
                if !c.body.as_deref().is_some_and(|b| b.contains(REPLY_MARKER)) {
                    continue;
                }
                if bot.is_none() {
                    bot = Some(self.bot_login().await?);
                }
                if let Some(BotLogin::Known(login)) = &bot {
                    if c.user.as_ref().is_some_and(|u| &u.login == login) {
                        return Ok((Some(c.id), bot));
                    }
                }
            }
            match self
                .client
                .get_page::<IssueComment>(&page.next)
                .await
                .map_err(|e| self.err(&what, e))?
            {
                Some(next) => page = next,
                None => return Ok((None, bot)),
            }
        }
    }

    pub(crate) fn err(&self, what: &str, e: octocrab::Error) -> Error {
        let detail = client::describe(&e);
        Error::remote(format!(
            "GitHub {}: {what} in {}/{} failed: {detail} — {}",
            self.api,
            self.owner,
            self.repo,
            self.credential_hint()
        ))
    }
}

/// `owner/name`, both in GitHub's alphabet.
fn split_repository(repository: &str) -> Result<(String, String)> {
    repository
        .split_once('/')
        .filter(|(o, r)| is_name(o) && is_name(r))
        .map(|(o, r)| (o.to_string(), r.to_string()))
        .ok_or_else(|| {
            Error::config(format!(
                "GitHub repository {repository:?} is not owner/name"
            ))
        })
}

/// An owner, repository or user name as GitHub allows them: ASCII letters, digits, `-`, `_`, `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 100
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `GITHUB_API_URL`, else the public API.
pub fn api_from_env() -> String {
    std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_API.into())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::is_name;

    #[test]
    fn names_from_payloads_are_checked() {
        for ok in ["org", "my-app", "app.js", "a_b", "dependabot"] {
            assert!(is_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a?b", "a b", "%2e%2e", "ü"] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
