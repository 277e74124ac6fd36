use clap::Args;
use serde_json::json;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::output::Format;
use crate::service::environment;
use crate::service::resync::resync_all;

/// Repair the drift webhooks missed: destroy the environments of pull/merge requests that are no
/// longer open (each one read on its own first: absence from a listing is not proof), and move
/// environments whose pull/merge request has new commits to its head when whoever pushed may deploy
/// (with allowlist_only the pusher cannot be known: the new head gets a pending status instead;
/// never forks). Nothing is created. Run it from a schedule, or let `serve --resync-interval` do
/// it.
///
/// Each application is checked with its own listing (github_repository or gitlab_project, with
/// GITHUB_TOKEN or GITLAB_TOKEN); environments of other repositories are never touched.
///
/// Example: flux-ephemeral resync --repo https://github.com/org/gitops.git --github-repo org/app
#[derive(Debug, Args)]
pub struct ResyncCmd {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// GitHub repository (owner/name) to check (config: github_repository)
    #[arg(long, value_name = "OWNER/NAME")]
    github_repo: Option<String>,
    /// GitLab project (id or group/name) to check (config: gitlab_project)
    #[arg(long, value_name = "PROJECT")]
    gitlab_project: Option<String>,
    /// GitLab URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    /// Show what would be repaired; change nothing
    #[arg(long)]
    dry_run: bool,
}

impl ResyncCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let mut repo = super::args::repo(&self.repo, &self.settings)?;
        repo.flags.github_repository = self.github_repo.clone().or(repo.flags.github_repository);
        repo.flags.gitlab_project = self.gitlab_project.clone().or(repo.flags.gitlab_project);
        let (store, config) = environment::open(&repo, self.dry_run)?;
        let mut first_error = None;
        for result in resync_all(&store, &config, self.gitlab_url.as_deref(), self.dry_run) {
            match result {
                Ok(r) => match format {
                    Format::Json => crate::output::json_line(
                        &json!({"action": "resync", "repairs": r.repairs, "commit": r.report.commit,
                               "changed": r.report.commit.is_some(), "dry_run": self.dry_run}),
                    ),
                    Format::Text => {
                        if r.repairs.is_empty() {
                            println!("no drift");
                        }
                        for rep in &r.repairs {
                            println!("{}", serde_json::to_string(rep).unwrap_or_default());
                        }
                        if let Some(c) = &r.report.commit {
                            println!("  commit: {c}");
                        }
                    }
                },
                Err(e) => {
                    tracing::error!("{e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
