use std::path::PathBuf;

use clap::Args;

use super::args::{EnvArgs, GitOpsArgs};
use super::flags::StepArgs;
use crate::error::Result;
use crate::output::Format;
use crate::service::environment::{self as ops, Mode};

/// Create or update the environment of a branch, commit its sync file and push.
///
/// Deploying an environment that is already up to date succeeds and commits nothing. Inside GitLab
/// CI or GitHub Actions, what the flags do not give comes from the job (branch, sha, merge/pull
/// request, author, GitLab environment name and slug).
///
/// Examples:
///
/// flux-ephemeral deploy --branch feature/login (demo repository)
///
/// flux-ephemeral deploy --repo git@github.com:org/gitops.git --branch feature/login --sha
/// 3f2c...e1 --id 42 --author alice --source-url https://github.com/org/app.git
///
/// flux-ephemeral deploy --from-ci --dotenv deploy.env (a GitLab start job)
///
/// flux-ephemeral deploy --from-ci --artifact ./rendered --artifact-url
/// oci://$CI_REGISTRY_IMAGE/manifests (an OCI artifact source)
#[derive(Debug, Args)]
pub struct DeployCmd {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    steps: StepArgs,
    /// Also write DYNAMIC_ENVIRONMENT_URL, FLUX_EPHEMERAL_SLUG, _NAME and _NAMESPACE to this
    /// dotenv file (publish it as artifacts:reports:dotenv in GitLab)
    #[arg(long, value_name = "FILE")]
    dotenv: Option<PathBuf>,
    /// Record a new deploy time even when nothing else changed: extends the time to live
    #[arg(long)]
    refresh: bool,
}

impl DeployCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: self.dotenv.clone(),
            refresh: self.refresh,
            requested_by: None,
        };
        ops::deploy(
            &super::args::repo(&self.gitops.repo, &self.gitops.settings)?,
            &self.env.input()?,
            &self.steps.steps(),
            &mode,
        )
    }
}
