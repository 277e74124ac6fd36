use std::cell::RefCell;
use std::path::PathBuf;

use clap::Args;

use super::args::{EnvInput, GitOpsArgs, RepoArgs, SettingsArgs};
use super::artifact::ArtifactArgs;
use super::chat;
use super::flux::{NotifyArgs, WaitArgs};
use super::ops::{self, Mode};
use crate::error::{Error, Result};
use crate::events::gitlab::{self as hooks, DeploymentHook, GitLabEvent};
use crate::events::{Forge, Parsed};
use crate::forge::github::{api_from_env, GitHubChanges};
use crate::forge::gitlab::GitLabChanges;
use crate::forge::gitlab::{DeploymentInfo, GitLab, GitLabUrl};
use crate::output::{print_ignored, Format};
use crate::plan::Intent;
use crate::reconcile::first_snapshot;
use crate::redact::Secret;

/// Handle one forge event (a webhook payload).
///
/// GitLab Deployment Hook: a deployment that is `running` or `success` in an environment that
/// passes include_environment/exclude_environment is deployed at the deployment's commit (read
/// from the Deployments API: the hook only carries a short sha), with GitLab's environment slug
/// and URL. Stops come from the environment's stop job (`flux-ephemeral env`), not from hooks.
///
/// The GitLab API is --gitlab-url, CI_API_V4_URL or GITLAB_URL, with the token in GITLAB_TOKEN.
/// A refused or ignored event exits 0 (it was handled); a failure to act exits non-zero.
///
/// Example: flux-ephemeral handle --event-name 'Deployment Hook' --event-file hook.json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HandleCmd {
    /// The event payload, JSON [env: GITHUB_EVENT_PATH]
    #[arg(long, env = "GITHUB_EVENT_PATH", value_name = "FILE")]
    event_file: PathBuf,
    /// The event kind: GitHub's event name (issue_comment, pull_request) or the X-Gitlab-Event
    /// header (Note Hook, Merge Request Hook, Deployment Hook) [default: the payload's object_kind]
    #[arg(long, env = "GITHUB_EVENT_NAME", value_name = "NAME")]
    event_name: Option<String>,
    /// Which forge sent the event [default: github in GitHub Actions, gitlab in GitLab CI, else
    /// github for GitHub's event names (issue_comment, pull_request) and gitlab otherwise]
    #[arg(long, value_enum, value_name = "FORGE")]
    forge: Option<ForgeArg>,
    /// GitLab's URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    artifact: ArtifactArgs,
    #[command(flatten)]
    notify: NotifyArgs,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ForgeArg {
    Github,
    Gitlab,
}

impl HandleCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let body = std::fs::read_to_string(&self.event_file).map_err(|e| {
            Error::input(format!(
                "cannot read --event-file {}: {e}",
                self.event_file.display()
            ))
        })?;
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: None,
            refresh: false,
        };
        let handler = Handler {
            repo: &self.gitops.repo,
            settings: &self.gitops.settings,
            gitlab_url: self.gitlab_url.clone(),
            artifact: self.artifact.clone(),
            notify: self.notify.clone(),
            wait: Some(self.wait.clone()),
        };
        let name = self.event_name.as_deref();
        handler.handle(self.forge(name), name, &body, &mode)
    }

    /// The forge: `--forge`, else the CI the job runs in, else guessed from the event name. (The
    /// server never guesses: the route a delivery came in on decides.)
    fn forge(&self, name: Option<&str>) -> Forge {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| v == "true");
        match self.forge {
            Some(ForgeArg::Github) => Forge::GitHub,
            Some(ForgeArg::Gitlab) => Forge::GitLab,
            None if set("GITHUB_ACTIONS") => Forge::GitHub,
            None if set("GITLAB_CI") => Forge::GitLab,
            None if name.is_some_and(crate::events::github::handles) => Forge::GitHub,
            None => Forge::GitLab,
        }
    }
}

/// Handles one event: for `handle` (an event file) and `serve` (webhooks).
pub struct Handler<'a> {
    pub repo: &'a RepoArgs,
    pub settings: &'a SettingsArgs,
    pub gitlab_url: Option<String>,
    pub artifact: ArtifactArgs,
    pub notify: NotifyArgs,
    pub wait: Option<WaitArgs>,
}

impl Handler<'_> {
    pub fn handle(&self, forge: Forge, name: Option<&str>, body: &str, mode: &Mode) -> Result<()> {
        let format = mode.format;
        // Check the payload before touching any repository; then read the settings (they may
        // rename the commands) and parse for real.
        crate::events::check(forge, name, body)?;
        let (store, mut config) = ops::open(self.repo, self.settings, mode.dry_run)?;
        // The event's repository picks the application; one that is not configured is refused
        // before anything else (no reply: it is not this bot's repository).
        config.origin = crate::apps::Origin {
            app: None,
            repository: crate::events::repository_of(forge, body),
            ci_repository: crate::ci::from_process()
                .ok()
                .flatten()
                .and_then(|c| c.repository),
        };
        let first = match first_snapshot(&store, &mut config) {
            Err(e) if e.kind == crate::error::ErrorKind::Refused => {
                tracing::warn!("{}", e.message);
                chat::print_refused(format, &e.message);
                return Ok(());
            }
            other => other?,
        };
        let mut ctx = chat::Ctx::new(&store, &config, first);
        ctx.artifact = self.artifact.clone();
        ctx.notify = self.notify.clone();
        ctx.wait = self.wait.clone();
        let prefixes = &ctx.settings.commands;
        if forge == Forge::GitHub {
            let parsed = crate::events::github::parse(name.unwrap_or_default(), body, prefixes)?;
            let Parsed::Act(event) = parsed else {
                return ignored(format, parsed);
            };
            let token = Secret::from_env("GITHUB_TOKEN");
            let forge = GitHubChanges::connect(&api_from_env(), token.as_ref(), &event.repository)?;
            return chat::handle(*event, &forge, &ctx, mode);
        }
        match hooks::parse(name, body, prefixes)? {
            GitLabEvent::Deployment(hook) => self.deployment(&hook, mode, &ctx),
            GitLabEvent::Change(Parsed::Act(event)) => {
                let gitlab = GitLab::connect(&self.gitlab_url()?, &gitlab_token()?)?;
                let project = event
                    .project_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| event.repository.clone());
                let forge = GitLabChanges::new(gitlab, project);
                chat::handle(*event, &forge, &ctx, mode)
            }
            GitLabEvent::Change(parsed) => ignored(format, parsed),
        }
    }

    fn deployment(&self, hook: &DeploymentHook, mode: &Mode, ctx: &chat::Ctx) -> Result<()> {
        if !matches!(hook.status.as_str(), "running" | "success") {
            print_ignored(
                mode.format,
                &format!(
                    "deployment status is {:?}, not running or success",
                    hook.status
                ),
            );
            return Ok(());
        }
        let info: RefCell<Option<DeploymentInfo>> = RefCell::new(None);
        let done = ops::run(
            ctx.store,
            ctx.config,
            ctx.take_first(),
            Some(&hook.environment),
            mode,
            &|snap| {
                if info.borrow().is_none() {
                    let api = GitLab::connect(&self.gitlab_url()?, &gitlab_token()?)?;
                    *info.borrow_mut() = Some(api.deployment(hook.project.id, hook.deployment_id)?);
                }
                let d = info.borrow().clone().expect("fetched above");
                let input = EnvInput {
                    branch: Some(d.git_ref.clone()),
                    sha: Some(d.sha.clone()),
                    author: hook
                        .user
                        .as_ref()
                        .map(|u| u.username.clone())
                        .or(d.user.map(|u| u.username)),
                    slug: hook.environment_slug.clone(),
                    environment: Some(hook.environment.clone()),
                    environment_url: hook.environment_external_url.clone(),
                    ci_source_url: hook
                        .project
                        .git_http_url
                        .clone()
                        .or(hook.project.web_url.clone()),
                    ..EnvInput::default()
                };
                Ok(Ok(Intent::Upsert(input.spec(&snap.settings)?)))
            },
        )?;
        match done {
            ops::Done::Ignored(reason) => print_ignored(mode.format, &reason),
            ops::Done::Report(report) => chat::print_deployed(
                mode.format,
                &report,
                &format!("deployment {} is {}", hook.deployment_id, hook.status),
            ),
        }
        Ok(())
    }

    fn gitlab_url(&self) -> Result<GitLabUrl> {
        GitLabUrl::resolve(self.gitlab_url.as_deref())
    }
}

fn ignored(format: Format, parsed: Parsed) -> Result<()> {
    if let Parsed::Ignore(reason) = parsed {
        print_ignored(format, &reason);
    }
    Ok(())
}

fn gitlab_token() -> Result<Secret> {
    Secret::from_env("GITLAB_TOKEN").ok_or_else(|| {
        Error::config(
            "GITLAB_TOKEN is not set: GitLab's API needs a token with api or read_api scope",
        )
    })
}
