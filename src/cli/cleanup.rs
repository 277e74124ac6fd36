use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::SystemTime;

use clap::Args;
use serde_json::json;

use super::args::{RepoArgs, SettingsArgs};
use super::ops;
use crate::cleanup::{guard, stale, ForgeState, Reason, Stale};
use crate::error::{Error, Result};
use crate::forge::github::{GitHub, DEFAULT_API};
use crate::forge::gitlab::{Environment, GitLab, GitLabUrl};
use crate::output::Format;
use crate::overlay::records;
use crate::plan::{Intent, PlanOptions};
use crate::reconcile::{reconcile, Report, RunOptions, Snapshot};
use crate::redact::Secret;

/// Remove stale environments in one commit.
///
/// An environment is stale when its pull request (--github-repo) or merge request
/// (--gitlab-project) is no longer open, when its GitLab environment is no longer available, or
/// when its time to live ran out (its own, recorded at deploy, else --ttl / config ttl), counted
/// from its last deploy. Files flux-ephemeral did not create are never touched.
///
/// Safe by default: if any forge call fails nothing is deleted and the exit code is non-zero;
/// more than --max-deletions, or more than half of all environments, are refused without --force.
/// Tokens: GITHUB_TOKEN, GITLAB_TOKEN (and GIT_TOKEN for the GitOps repository).
///
/// Examples:
///   flux-ephemeral cleanup --repo https://github.com/org/gitops.git --github-repo org/app --ttl 72h
///   flux-ephemeral cleanup --gitlab-project group/app --stop-gitlab-environments --dry-run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
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
}

enum Forge {
    None,
    GitHub(GitHub),
    GitLab(GitLab, String),
}

impl CleanupCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let (store, mut config) = ops::open(&self.repo, &self.settings)?;
        // Read the configuration once to learn the forge; the transaction reads it again.
        let branch = match config.target_branch() {
            Some(b) => b,
            None => store.default_branch()?,
        };
        config.flags.target_branch = Some(branch.clone());
        let first = crate::reconcile::snapshot(&store, &branch, &config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        // octocrab's client must be built inside the runtime.
        let _entered = runtime.enter();
        let forge = self.forge(&first.settings)?;
        let mut environments: Vec<Environment> = Vec::new();
        // Every forge answer first: if any call fails, nothing is deleted.
        let state = match &forge {
            Forge::None => ForgeState::default(),
            Forge::GitHub(gh) => ForgeState {
                open: Some(runtime.block_on(gh.open_pull_numbers())?),
                available_environments: None,
            },
            Forge::GitLab(gl, project) => {
                environments = gl.available_environments(project)?;
                ForgeState {
                    open: Some(gl.open_merge_requests(project)?),
                    available_environments: Some(
                        environments
                            .iter()
                            .map(|e| e.name.clone())
                            .collect::<BTreeSet<_>>(),
                    ),
                }
            }
        };
        let removed: RefCell<(Vec<Stale>, usize)> = RefCell::new((Vec::new(), 0));
        let intents = |snap: &Snapshot| {
            let all = records(&snap.files);
            let found = stale(&all, &state, SystemTime::now(), snap.settings.ttl);
            guard(found.len(), all.len(), self.max_deletions, self.force)?;
            let intents = found
                .iter()
                .map(|s| Intent::Remove {
                    slug: s.slug.clone(),
                    branch: Some(s.branch.clone()),
                })
                .collect();
            *removed.borrow_mut() = (found, all.len());
            Ok(intents)
        };
        let opts = RunOptions {
            dry_run: self.dry_run,
            plan: PlanOptions::default(),
            max_attempts: 10,
        };
        let report = reconcile(&store, &config, &intents, &opts)?;
        let (removed, total) = removed.into_inner();
        let mut problems = Vec::new();
        let mut comments = 0;
        let mut stopped = 0;
        if !self.dry_run && report.commit.is_some() {
            self.after(
                &runtime,
                &forge,
                &state,
                &removed,
                &environments,
                &mut comments,
                &mut stopped,
                &mut problems,
            );
        }
        print(
            format,
            &report,
            &removed,
            total,
            &forge,
            comments,
            stopped,
            &problems,
            self.dry_run,
        );
        match problems.first() {
            Some(p) if self.stop_gitlab_environments || self.delete_stopped_review_apps => {
                Err(p.clone())
            }
            _ => Ok(()),
        }
    }

    /// Replies and GitLab clean-up after the commit landed. Comment failures are reported, not fatal.
    #[allow(clippy::too_many_arguments)]
    fn after(
        &self,
        rt: &tokio::runtime::Runtime,
        forge: &Forge,
        state: &ForgeState,
        removed: &[Stale],
        environments: &[Environment],
        comments: &mut usize,
        stopped: &mut usize,
        problems: &mut Vec<Error>,
    ) {
        let still_open = |s: &Stale| {
            s.id.as_ref()
                .is_some_and(|id| state.open.as_ref().is_some_and(|o| o.contains(id)))
        };
        for s in removed.iter().filter(|s| {
            matches!(s.reason, Reason::TtlExpired { .. }) && still_open(s) && !self.no_comment
        }) {
            let body = crate::replies::removed_by_cleanup(s);
            let id = s.id.as_deref().unwrap_or_default();
            let result = match forge {
                Forge::GitHub(gh) => rt.block_on(gh.comment(id, &body)),
                Forge::GitLab(gl, project) => {
                    gl.comment(project, id.parse().unwrap_or_default(), &body)
                }
                Forge::None => continue,
            };
            match result {
                Ok(()) => *comments += 1,
                Err(e) => {
                    tracing::warn!("{e}");
                    problems.push(e);
                }
            }
        }
        let Forge::GitLab(gl, project) = forge else {
            return;
        };
        if self.stop_gitlab_environments {
            for s in removed {
                let Some(env) = environments
                    .iter()
                    .find(|e| Some(&e.name) == s.environment.as_ref())
                else {
                    continue;
                };
                match gl.stop_environment(project, env.id) {
                    Ok(()) => *stopped += 1,
                    Err(e) => problems.push(e),
                }
            }
        }
        if self.delete_stopped_review_apps {
            if let Err(e) = gl.delete_stopped_review_apps(project) {
                problems.push(e);
            }
        }
    }

    fn forge(&self, settings: &crate::config::Settings) -> Result<Forge> {
        let github = self
            .github_repo
            .clone()
            .or(settings.github_repository.clone());
        let gitlab = self
            .gitlab_project
            .clone()
            .or(settings.gitlab_project.clone());
        match (github, gitlab) {
            (Some(_), Some(_)) => Err(Error::input(
                "pass either --github-repo or --gitlab-project, not both",
            )),
            (Some(repo), None) => {
                let token = env_secret("GITHUB_TOKEN");
                Ok(Forge::GitHub(GitHub::new(
                    &self.github_api_url,
                    token.as_ref(),
                    &repo,
                )?))
            }
            (None, Some(project)) => {
                let url = GitLabUrl::resolve(self.gitlab_url.as_deref())?;
                let token = env_secret("GITLAB_TOKEN")
                    .ok_or_else(|| Error::config("GITLAB_TOKEN is not set"))?;
                Ok(Forge::GitLab(GitLab::connect(&url, &token)?, project))
            }
            (None, None) => Ok(Forge::None),
        }
    }
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

#[allow(clippy::too_many_arguments)]
fn print(
    format: Format,
    report: &Report,
    removed: &[Stale],
    total: usize,
    forge: &Forge,
    comments: usize,
    stopped: usize,
    problems: &[Error],
    dry_run: bool,
) {
    let forge_name = match forge {
        Forge::None => "none",
        Forge::GitHub(_) => "github",
        Forge::GitLab(..) => "gitlab",
    };
    match format {
        Format::Json => {
            let mut v = json!({
                "action": "cleanup", "forge": forge_name, "removed": removed, "kept": total - removed.len(),
                "changed": report.commit.is_some(), "commit": report.commit, "dry_run": dry_run,
                "comments": comments, "stopped_environments": stopped,
                "problems": problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>(),
            });
            if let Some(d) = &report.diff {
                v["diff"] = json!(d);
            }
            println!("{v}");
        }
        Format::Text => {
            if forge_name == "none" {
                println!("no --github-repo or --gitlab-project: only time to live decides");
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for s in removed {
                println!(
                    "{verb} {} (branch {}): {}",
                    s.slug,
                    s.branch,
                    s.reason.describe()
                );
            }
            println!(
                "{} stale of {total} environments; {} kept",
                removed.len(),
                total - removed.len()
            );
            if let Some(c) = &report.commit {
                println!("commit {c} on {}", report.target_branch);
            }
            if dry_run {
                print!("{}", report.diff.as_deref().unwrap_or(""));
            }
            for p in problems {
                eprintln!("warning: {p}");
            }
        }
    }
}
