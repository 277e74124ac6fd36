use std::path::PathBuf;

use clap::Args;

use super::args::{EnvInput, GitOpsArgs};
use super::flags::{ArtifactArgs, NotifyArgs, WaitArgs};
use crate::ci::{from_process, EnvAction, Provider};
use crate::error::{Error, Result};
use crate::output::{print_ignored, Format};
use crate::service::environment::{self as ops, Mode};

/// Deploy or destroy as the GitLab environment job says (CI_ENVIRONMENT_ACTION).
///
/// `start` deploys the job's branch at its commit as GitLab's environment (CI_ENVIRONMENT_NAME,
/// CI_ENVIRONMENT_SLUG), `stop` destroys it, `prepare`, `verify` and `access` do nothing. The
/// same command serves a review app's start job and its on_stop job.
///
/// Example (.gitlab-ci.yml):
///   start-review: { environment: { name: review/$CI_COMMIT_REF_SLUG, on_stop: stop-review },
///                   script: flux-ephemeral env --dotenv deploy.env }
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EnvCmd {
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    artifact: ArtifactArgs,
    #[command(flatten)]
    notify: NotifyArgs,
    #[command(flatten)]
    wait: WaitArgs,
    /// Also write DYNAMIC_ENVIRONMENT_URL, FLUX_EPHEMERAL_SLUG, _NAME and _NAMESPACE to this dotenv file
    #[arg(long, value_name = "FILE")]
    dotenv: Option<PathBuf>,
}

impl EnvCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let ci = from_process()?
            .filter(|c| c.provider == Provider::GitLab)
            .ok_or_else(|| {
                Error::input(
                    "`env` runs inside a GitLab CI job with an environment (GITLAB_CI is not set)",
                )
            })?;
        let action = ci.action.ok_or_else(|| {
            Error::input("CI_ENVIRONMENT_ACTION is not set: give the job an `environment:` with `action: start` or `stop`")
        })?;
        let input = EnvInput::default().with_ci(Some(ci))?;
        let mode = Mode {
            dry_run: self.gitops.dry_run,
            format,
            dotenv: self.dotenv.clone(),
            refresh: false,
        };
        let repo = super::args::repo(&self.gitops.repo, &self.gitops.settings)?;
        match action {
            EnvAction::Start => ops::deploy(
                &repo,
                &input,
                &ops::Steps {
                    artifact: &self.artifact.options(),
                    notify: &self.notify.options(),
                    wait: Some(&self.wait.options()),
                },
                &mode,
            ),
            EnvAction::Stop => ops::destroy(&repo, &input, &self.notify.options(), &mode),
            EnvAction::Other => {
                print_ignored(format, "CI_ENVIRONMENT_ACTION is neither start nor stop");
                Ok(())
            }
        }
    }
}
