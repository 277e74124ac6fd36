//! One forge event, handled: ChatOps events (comments, close/merge, pushes, labels) and GitLab
//! Deployment Hooks. `handle` feeds it an event file, the server webhook deliveries.

use super::artifact::ArtifactOptions;
use super::chatops;
use super::environment::{self, Mode, Repo, Wanted};
use super::input::EnvInput;
use super::notify_wait::{NotifyOptions, WaitOptions};
use crate::error::Result;
use crate::events::gitlab::{self as hooks, DeploymentHook, GitLabEvent};
use crate::events::{Event, Forge, Parsed};
use crate::forge::gitlab::{DeploymentInfo, GitLabUrl};
use crate::forge::ChangeForge;
use crate::output::print_ignored;
use crate::plan::Intent;
use crate::reconcile::first_snapshot;

/// Handles one event: for `handle` (an event file) and `serve` (webhooks).
pub struct Handler {
    pub repo: Repo,
    /// GitLab's URL for API calls; else CI_API_V4_URL or GITLAB_URL (never the payload's).
    pub gitlab_url: Option<String>,
    pub artifact: ArtifactOptions,
    pub notify: NotifyOptions,
    pub wait: Option<WaitOptions>,
    /// With `require_checks`, poll the checks this long before answering "waiting".
    pub wait_checks: Option<std::time::Duration>,
}

impl Handler {
    pub fn handle(&self, forge: Forge, name: Option<&str>, body: &str, mode: &Mode) -> Result<()> {
        let format = mode.format;
        // Check the payload before touching any repository; then read the settings (they may
        // rename the commands) and parse for real.
        crate::events::check(forge, name, body)?;
        let (store, mut config) = environment::open(&self.repo, mode.dry_run)?;
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
                chatops::print_refused(format, &e.message);
                return Ok(());
            }
            other => other?,
        };
        let ctx = self.context(&first, mode);
        match self.parse(forge, name, body, &ctx.settings)? {
            Work::Ignore(reason) => {
                print_ignored(format, &reason);
                Ok(())
            }
            Work::Deployment(hook) => self.deployment(&hook, mode, &store, &config, first),
            Work::Change(event) => {
                let changes = self.forge_for(forge, &event)?;
                chatops::handle(*event, changes.as_ref(), &ctx, &store, &config, first)
            }
        }
    }

    /// The options every event of a run shares.
    pub fn context(&self, first: &crate::reconcile::Snapshot, mode: &Mode) -> chatops::Context {
        chatops::Context {
            artifact: self.artifact.clone(),
            notify: self.notify.clone(),
            wait: self.wait.clone(),
            wait_checks: self.wait_checks,
            ..chatops::Context::new(first, mode.clone())
        }
    }

    /// Parse a payload as `forge`'s event, with the configured command words.
    pub fn parse(
        &self,
        forge: Forge,
        name: Option<&str>,
        body: &str,
        settings: &crate::settings::Settings,
    ) -> Result<Work> {
        self.parse_with(forge, name, body, &settings.commands)
    }

    /// Parse a payload as `forge`'s event, with the command words `prefixes`.
    pub fn parse_with(
        &self,
        forge: Forge,
        name: Option<&str>,
        body: &str,
        prefixes: &crate::command::Prefixes,
    ) -> Result<Work> {
        let parsed = match forge {
            Forge::GitHub => {
                crate::events::github::parse(name.unwrap_or_default(), body, prefixes)?
            }
            Forge::Gitea => crate::events::gitea::parse(name.unwrap_or_default(), body, prefixes)?,
            Forge::GitLab => match hooks::parse(name, body, prefixes)? {
                GitLabEvent::Deployment(hook) => return Ok(Work::Deployment(hook)),
                GitLabEvent::Change(parsed) => parsed,
            },
        };
        Ok(match parsed {
            Parsed::Act(event) => Work::Change(event),
            Parsed::Ignore(reason) => Work::Ignore(reason),
        })
    }

    /// The API of the pull/merge request's forge.
    pub fn forge_for(&self, forge: Forge, event: &Event) -> Result<Box<dyn ChangeForge>> {
        Ok(match forge {
            Forge::GitHub => Box::new(super::forges::github_event(
                &event.repository,
                event.installation,
            )?),
            Forge::Gitea => Box::new(super::forges::gitea(&event.repository)?),
            Forge::GitLab => {
                let project = event
                    .project_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| event.repository.clone());
                Box::new(super::forges::gitlab(self.gitlab_url.as_deref(), &project)?)
            }
        })
    }

    fn deployment(
        &self,
        hook: &DeploymentHook,
        mode: &Mode,
        store: &crate::git::Store,
        config: &crate::reconcile::ConfigSource,
        first: crate::reconcile::Snapshot,
    ) -> Result<()> {
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
        // The deployment is read from the API once, on the first attempt that needs it.
        let mut info: Option<DeploymentInfo> = None;
        let done = environment::run(
            store,
            config,
            Some(first),
            Some(&hook.environment),
            mode,
            &mut |snap| {
                let d = match &info {
                    Some(d) => d.clone(),
                    None => {
                        let api = super::forges::gitlab_api(&self.gitlab_url()?)?;
                        let d = api.deployment(hook.project.id, hook.deployment_id)?;
                        info = Some(d.clone());
                        d
                    }
                };
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
                Ok(Wanted::Intent(Intent::Upsert(input.spec(&snap.settings)?)))
            },
        )?;
        match done {
            environment::Done::Ignored(reason) => print_ignored(mode.format, &reason),
            environment::Done::Report(report) => chatops::print_deployed(
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

/// What a delivery asks for.
pub enum Work {
    /// A pull/merge request event.
    Change(Box<Event>),
    /// A GitLab Deployment Hook.
    Deployment(Box<DeploymentHook>),
    Ignore(String),
}
