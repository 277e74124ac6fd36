use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::forge::github::DEFAULT_API;
use crate::output::Format;
use crate::service::cleanup::Cleanup;

/// Remove stale environments in one commit.
///
/// An environment is stale when its pull request (--github-repo) or merge request
/// (--gitlab-project) is no longer open, when its GitLab environment is no longer available, or
/// when its time to live ran out (its own, recorded at deploy, else --ttl / config ttl), counted
/// from its last deploy. Files flux-ephemeral did not create are never touched.
///
/// Safe by default: if any forge call fails nothing is deleted and the exit code is non-zero; more
/// than --max-deletions, or more than half of all environments, are refused without --force.
/// Tokens: GITHUB_TOKEN, GITLAB_TOKEN (and GIT_TOKEN for the GitOps repository).
///
/// Examples:
///
/// flux-ephemeral cleanup --repo https://github.com/org/gitops.git --github-repo org/app --ttl 72h
///
/// flux-ephemeral cleanup --gitlab-project group/app --stop-gitlab-environments --dry-run
#[derive(Debug, Args)]
pub struct CleanupCmd {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// GitHub repository (owner/name) whose pull requests the environments belong to (config: github_repository)
    #[arg(long, value_name = "OWNER/NAME")]
    github_repo: Option<String>,
    /// GitHub API
    #[arg(long, env = "GITHUB_API_URL", default_value = DEFAULT_API, value_name = "URL")]
    github_api_url: String,
    /// GitLab project (id or group/name) whose merge requests and environments to check (config: gitlab_project)
    #[arg(long, value_name = "PROJECT")]
    gitlab_project: Option<String>,
    /// GitLab URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    /// Refuse to delete more environments than this at once (without --force)
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_deletions: usize,
    /// Delete even when more than --max-deletions or more than half of the environments are stale
    #[arg(long)]
    force: bool,
    /// Stop the GitLab environments of the removed previews
    #[arg(long)]
    stop_gitlab_environments: bool,
    /// Then call GitLab's "delete multiple stopped review apps"
    #[arg(long)]
    delete_stopped_review_apps: bool,
    /// Do not comment on open pull/merge requests whose environment's time ran out
    #[arg(long)]
    no_comment: bool,
    /// Show the plan and the change as a diff; delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Also delete the removed environments' OCI artifacts from their registry, where it allows
    /// that (a failure is a warning). Credentials as for deploy --artifact
    #[arg(long)]
    prune_artifacts: bool,
    /// The repository the artifacts were pushed to, oci://HOST/REPOSITORY (else the
    /// configuration's artifact_url). Only what the tool pushed there, under an environment's own
    /// tag, is pruned: never a reference read from a sync file
    #[arg(long, env = "FLUX_EPHEMERAL_ARTIFACT_URL", value_name = "URL")]
    artifact_url: Option<String>,
    /// The artifacts' registry host is plain HTTP (HOST[:PORT]; loopback tests)
    #[arg(long, value_name = "HOST")]
    insecure_registry: Option<String>,
    #[command(flatten)]
    notify: super::flags::NotifyArgs,
    /// With an `applications` list: clean up every application, each with its own forge listing
    /// (else the application of --app, --github-repo/--gitlab-project or the CI job's repository)
    #[arg(long)]
    all_applications: bool,
}

impl CleanupCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        Cleanup {
            repo: super::args::repo(&self.repo, &self.settings)?,
            github_repo: self.github_repo.clone(),
            github_api_url: self.github_api_url.clone(),
            gitlab_project: self.gitlab_project.clone(),
            gitlab_url: self.gitlab_url.clone(),
            max_deletions: self.max_deletions,
            force: self.force,
            stop_gitlab_environments: self.stop_gitlab_environments,
            delete_stopped_review_apps: self.delete_stopped_review_apps,
            no_comment: self.no_comment,
            dry_run: self.dry_run,
            prune_artifacts: self.prune_artifacts,
            insecure_registry: self.insecure_registry.clone(),
            artifact_url: self.artifact_url.clone(),
            notify: self.notify.options(),
            all_applications: self.all_applications,
        }
        .run(format)
    }
}
