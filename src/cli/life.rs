//! `extend`, `sleep` and `wake`: from CI or a shell, what `/extend-ephemeral`,
//! `/sleep-ephemeral` and `/wake-ephemeral` do in a comment.

use std::time::Duration;

use clap::Args;

use super::args::{EnvInput, GitOpsArgs, TargetArgs};
use super::flags::NotifyArgs;
use crate::chatops::LifeCommand;
use crate::error::Result;
use crate::output::Format;
use crate::service::environment::Mode;

/// The environment to act on.
#[derive(Debug, Args)]
pub struct Which {
    /// Application branch of the environment [in CI: the job's branch]
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Only the environment recorded for this pull/merge request number [in CI: the job's]
    #[arg(long, value_name = "N")]
    id: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    notify: NotifyArgs,
}

impl Which {
    fn run(&self, command: LifeCommand, asked: Option<Duration>, format: Format) -> Result<()> {
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: None,
            refresh: false,
            requested_by: None,
        };
        let input = self.target.input(self.branch.clone())?;
        let input = EnvInput {
            id: self.id.clone().or(input.id.clone()),
            ..input
        };
        crate::service::lifecycle::commands::run(
            &super::args::repo(&self.gitops.repo, &self.gitops.settings)?,
            &input,
            &command,
            asked,
            &self.notify.options(),
            &mode,
        )
    }
}

/// Keep an environment longer: its expiry becomes now + DURATION (default: its time to live), at
/// most max_ttl after now. The expiry warning is posted again before the new expiry.
///
/// Example: flux-ephemeral extend --repo https://github.com/org/gitops.git --branch feature/login
/// 2d
#[derive(Debug, Args)]
pub struct ExtendCmd {
    /// How long from now, like 2d or 12h [default: the environment's time to live]
    #[arg(value_parser = crate::config::parse_ttl, value_name = "DURATION")]
    duration: Option<Duration>,
    #[command(flatten)]
    which: Which,
}

impl ExtendCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let command = LifeCommand::Extend {
            duration: self
                .duration
                .map(|d| humantime::format_duration(d).to_string()),
        };
        self.which.run(command, self.duration, format)
    }
}

/// Put an environment to sleep now: Flux scales its Deployments and StatefulSets to zero. It keeps
/// its expiry; `wake`, a push to its change or a deploy wakes it.
///
/// Example: flux-ephemeral sleep --repo https://github.com/org/gitops.git --branch feature/login
#[derive(Debug, Args)]
pub struct SleepCmd {
    #[command(flatten)]
    which: Which,
}

impl SleepCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        self.which.run(LifeCommand::Sleep, None, format)
    }
}

/// Wake a sleeping environment: Flux scales its workloads back to their own replica counts.
///
/// Example: flux-ephemeral wake --repo https://github.com/org/gitops.git --branch feature/login
#[derive(Debug, Args)]
pub struct WakeCmd {
    #[command(flatten)]
    which: Which,
}

impl WakeCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        self.which.run(LifeCommand::Wake, None, format)
    }
}
