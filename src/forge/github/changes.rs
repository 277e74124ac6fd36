//! The GitHub side of ChatOps as the rest of flux-ephemeral sees a forge: blocking calls over
//! octocrab, on the process's GitHub runtime.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{client, BotLogin, GitHub};
use crate::error::Result;
use crate::events::{Actor, Change};
use crate::forge::{ChangeForge, Status};
use crate::redact::Secret;

/// The GitHub side of ChatOps: blocking calls over octocrab, on the process's GitHub runtime.
pub struct GitHubChanges {
    pub github: GitHub,
    bot: std::sync::OnceLock<BotLogin>,
    /// The web address of the bot's comment, per pull request, once written.
    replies: std::sync::Mutex<std::collections::BTreeMap<u64, String>>,
    /// Pull requests known to hold no comment of the bot's yet.
    no_comment_yet: std::sync::Mutex<BTreeSet<u64>>,
    /// How many comments each pull request read held.
    comment_counts: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
}

impl GitHubChanges {
    /// A client for `repository` (`owner/name`) with the process's token (or none).
    pub fn connect(api: &str, token: Option<&Secret>, repository: &str) -> Result<Self> {
        Ok(Self::of(GitHub::new(api, token, repository)?))
    }

    pub fn of(github: GitHub) -> Self {
        GitHubChanges {
            github,
            bot: std::sync::OnceLock::new(),
            replies: Default::default(),
            no_comment_yet: Default::default(),
            comment_counts: Default::default(),
        }
    }

    /// Run a call on the GitHub runtime, bounded ([`client::LONGEST_WAIT`]).
    pub fn block_on<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        client::block_on(&format!("a call on {}", self.github.full_name()), f)
    }
}

impl ChangeForge for GitHubChanges {
    fn has_write_access(&self, actor: &Actor) -> Result<bool> {
        self.block_on(self.github.has_write_access(&actor.login))
    }

    fn read(&self, number: u64) -> Result<Change> {
        let pr = self.block_on(self.github.pull_request(number))?;
        if let Ok(mut counts) = self.comment_counts.lock() {
            if let Some(n) = pr.comments {
                counts.insert(number, n);
            }
        }
        if pr.comments == Some(0) {
            if let Ok(mut n) = self.no_comment_yet.lock() {
                n.insert(number);
            }
        }
        let mut change = pr.change();
        change.sha = Some(crate::forge::checked_sha(pr.head.sha.clone(), "GitHub")?);
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
        self.block_on(self.github.set_status(sha, status, description, url))
    }

    fn commit_statuses(&self, sha: &str) -> Result<Vec<crate::forge::CommitStatus>> {
        self.block_on(self.github.commit_statuses(sha))
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
        let route = format!("/repos/{}/{}", self.github.owner, self.github.repo);
        let repo: Repo = self.block_on(async {
            self.github
                .client
                .get(&route, None::<&()>)
                .await
                .map_err(|e| self.github.err("read the repository", e))
        })?;
        Ok(repo.permissions.map(|p| p.push))
    }

    fn ping(&self) -> Result<()> {
        // Answers any valid token (app installations too), costs no rate limit, and says what
        // is left of it (for /metrics and doctor).
        self.block_on(self.github.budget()).map(|_| ())
    }

    fn open_changes(&self) -> Result<Vec<crate::forge::OpenChange>> {
        let pulls = self.block_on(self.github.open_pulls())?;
        pulls
            .iter()
            .map(|p| {
                let c = p.change();
                Ok(crate::forge::OpenChange {
                    number: p.number.to_string(),
                    branch: p.head.branch.clone(),
                    sha: crate::forge::checked_sha(p.head.sha.clone(), "GitHub")?,
                    from_fork: c.from_fork == Some(true),
                    author: c.author.unwrap_or_default(),
                })
            })
            .collect()
    }

    fn changed_files(&self, number: u64) -> Result<Vec<String>> {
        self.block_on(self.github.changed_files(number))
    }

    fn reply(&self, number: u64, body: &str) -> Result<()> {
        let none_yet = self
            .no_comment_yet
            .lock()
            .is_ok_and(|n| n.contains(&number));
        let url = self.block_on(self.github.upsert_comment(number, body, none_yet))?;
        if let Ok(mut n) = self.no_comment_yet.lock() {
            n.remove(&number);
        }
        if let (Some(url), Ok(mut m)) = (url, self.replies.lock()) {
            m.insert(number, url);
        }
        Ok(())
    }

    fn asked_in_a_comment(&self, number: u64) {
        // The one comment of the conversation is the one that asked: none is the bot's.
        let only_the_question = self
            .comment_counts
            .lock()
            .is_ok_and(|c| c.get(&number) == Some(&1));
        if only_the_question {
            if let Ok(mut n) = self.no_comment_yet.lock() {
                n.insert(number);
            }
        }
    }

    fn checks(&self, sha: &str) -> Result<Vec<crate::checks::Check>> {
        self.block_on(self.github.checks(sha))
    }

    fn bot_login(&self) -> Option<String> {
        let b = match self.bot.get() {
            Some(b) => b.clone(),
            None => {
                let b = self.block_on(self.github.bot_login()).ok()?;
                self.bot.get_or_init(|| b).clone()
            }
        };
        match b {
            BotLogin::Known(login) => Some(login),
            _ => None,
        }
    }

    fn clone_url(&self) -> Option<String> {
        let api = self.github.api.trim_end_matches('/');
        let web = match api {
            "https://api.github.com" => "https://github.com".to_string(),
            other => other.trim_end_matches("/api/v3").to_string(),
        };
        Some(format!(
            "{web}/{}/{}.git",
            self.github.owner, self.github.repo
        ))
    }

    fn reply_url(&self, number: u64) -> Option<String> {
        self.replies.lock().ok()?.get(&number).cloned()
    }

    fn start_deployment(&self, sha: &str, _branch: &str, environment: &str) -> Result<Option<u64>> {
        self.block_on(self.github.create_deployment(sha, environment))
            .map(Some)
    }

    fn deployment_status(
        &self,
        id: u64,
        state: crate::forge::DeploymentState,
        environment_url: Option<&str>,
        log_url: Option<&str>,
        description: &str,
    ) -> Result<()> {
        self.block_on(self.github.deployment_status(
            id,
            state,
            environment_url,
            log_url,
            description,
        ))
    }

    fn deactivate_environment(&self, environment: &str) -> Result<()> {
        self.block_on(self.github.deactivate(environment))
    }

    fn retire_earlier_deployments(&self, environment: &str, keep: u64, fresh: bool) -> Result<()> {
        if fresh {
            self.github.first_of(environment, keep);
            return Ok(());
        }
        self.block_on(self.github.retire_before(environment, keep))
    }
}
