use std::path::PathBuf;

use clap::Args;

use super::args::GitOpsArgs;
use super::flags::StepArgs;
use crate::error::{Error, Result};
use crate::events::Forge;
use crate::output::Format;
use crate::service::environment::Mode;
use crate::service::hook::Handler;

/// Handle one forge event (a webhook payload).
///
/// GitLab Deployment Hook: a deployment that is `running` or `success` in an environment that
/// passes include_environment/exclude_environment is deployed at the deployment's commit (read from
/// the Deployments API: the hook only carries a short sha), with GitLab's environment slug and URL.
/// Stops come from the environment's stop job (`flux-ephemeral env`), not from hooks.
///
/// The GitLab API is --gitlab-url, CI_API_V4_URL or GITLAB_URL, with the token in GITLAB_TOKEN. A
/// refused or ignored event exits 0 (it was handled); a failure to act exits non-zero.
///
/// Example: flux-ephemeral handle --event-name 'Deployment Hook' --event-file hook.json
#[derive(Debug, Args)]
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
    /// With require_checks: wait up to this long for the commit's checks to pass before
    /// answering "waiting" (a CI job that runs after the build)
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    wait_checks: Option<std::time::Duration>,
    #[command(flatten)]
    gitops: GitOpsArgs,
    #[command(flatten)]
    steps: StepArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ForgeArg {
    Github,
    Gitlab,
    Gitea,
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
            requested_by: None,
        };
        let handler = Handler {
            repo: super::args::repo(&self.gitops.repo, &self.gitops.settings)?,
            gitlab_url: self.gitlab_url.clone(),
            artifact: self.steps.artifact.options(),
            notify: self.steps.notify.options(),
            wait: Some(self.steps.wait.options()),
            wait_checks: self.wait_checks,
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
            Some(ForgeArg::Gitea) => Forge::Gitea,
            // Gitea Actions sets GITHUB_ACTIONS too: its own variable first.
            None if set("GITEA_ACTIONS") => Forge::Gitea,
            None if set("GITHUB_ACTIONS") => Forge::GitHub,
            None if set("GITLAB_CI") => Forge::GitLab,
            None if name.is_some_and(crate::events::github::handles) => Forge::GitHub,
            None => Forge::GitLab,
        }
    }
}
