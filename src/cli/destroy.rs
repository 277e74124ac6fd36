use clap::Args;

use super::args::{EnvInput, GitOpsArgs, TargetArgs};
use super::flags::NotifyArgs;
use crate::error::Result;
use crate::output::Format;
use crate::service::environment::{self as ops, Mode};

/// Remove the environment of a branch: delete its sync file in a commit; Flux prunes the rest.
///
/// Destroying an environment that does not exist succeeds and commits nothing. With --id (in CI:
/// the job's pull/merge request), an environment recorded for another change is left alone. Inside
/// GitLab CI (a stop job) the environment is GitLab's CI_ENVIRONMENT_SLUG.
///
/// Examples:
///
/// flux-ephemeral destroy --repo ssh://git@git.example.com/org/gitops.git --branch feature/login
///
/// flux-ephemeral destroy --from-ci (a GitLab stop job)
#[derive(Debug, Args)]
pub struct DestroyCmd {
    /// Application branch whose environment to remove [in CI: the job's branch]
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

impl DestroyCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: None,
            refresh: false,
            requested_by: None,
        };
        ops::destroy(
            &super::args::repo(&self.gitops.repo, &self.gitops.settings)?,
            &{
                let input = self.target.input(self.branch.clone())?;
                EnvInput {
                    id: self.id.clone().or(input.id.clone()),
                    ..input
                }
            },
            &self.notify.options(),
            &mode,
        )
    }
}
