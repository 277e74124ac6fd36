use std::path::PathBuf;

use clap::Args;

use super::args::GitOpsArgs;
use super::flags::StepArgs;
use crate::error::Result;
use crate::output::Format;
use crate::service::environment::{self as ops, Mode};

/// Deploy or destroy as the GitLab environment job says (CI_ENVIRONMENT_ACTION).
///
/// `start` deploys the job's branch at its commit as GitLab's environment (CI_ENVIRONMENT_NAME,
/// CI_ENVIRONMENT_SLUG), `stop` destroys it, `prepare`, `verify` and `access` do nothing. The same
/// command serves a review app's start job and its on_stop job.
///
/// Example (.gitlab-ci.yml):
///
/// start-review: { environment: { name: review/$CI_COMMIT_REF_SLUG, on_stop: stop-review }, script:
/// flux-ephemeral env --dotenv deploy.env }
#[derive(Debug, Args)]
pub struct EnvCmd {
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    steps: StepArgs,
    /// Also write DYNAMIC_ENVIRONMENT_URL, FLUX_EPHEMERAL_SLUG, _NAME and _NAMESPACE to this dotenv file
    #[arg(long, value_name = "FILE")]
    dotenv: Option<PathBuf>,
}

impl EnvCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: self.dotenv.clone(),
            refresh: false,
            requested_by: None,
        };
        ops::environment_job(
            &super::args::repo(&self.gitops.repo, &self.gitops.settings)?,
            &self.steps.steps(),
            &mode,
        )
    }
}
