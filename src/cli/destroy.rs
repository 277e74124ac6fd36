use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::{Error, Result};
use crate::git::Store;
use crate::output::{print_single, Format};
use crate::plan::{Intent, PlanOptions};
use crate::reconcile::{reconcile, ConfigSource, RunOptions};
use crate::slug::{slugify, validate_slug};

/// Remove the environment of a branch: delete its sync file in a commit; Flux prunes the rest.
///
/// Destroying an environment that does not exist succeeds and commits nothing.
///
/// Example: flux-ephemeral destroy --repo ssh://git@git.example.com/org/gitops.git --branch feature/login
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DestroyCmd {
    /// Application branch whose environment to remove
    #[arg(long, value_name = "BRANCH", required_unless_present = "slug")]
    branch: Option<String>,
    /// Remove the environment with this slug (e.g. GitLab's CI_ENVIRONMENT_SLUG)
    #[arg(long, value_name = "SLUG")]
    slug: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Show the change as a diff and push nothing
    #[arg(long)]
    dry_run: bool,
}

impl DestroyCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let location = self.repo.location()?;
        let config =
            ConfigSource::load(self.repo.config.as_deref(), self.settings.to_file_config())?;
        let config = ConfigSource {
            flags: crate::config::FileConfig {
                target_branch: self.repo.target_branch.clone(),
                ..config.flags
            },
            ..config
        };
        let store = Store::open(location, self.repo.auth()?, self.repo.cache_dir.as_deref())?;
        let opts = RunOptions {
            dry_run: self.dry_run,
            plan: PlanOptions::default(),
            max_attempts: 10,
        };
        let intents = |snap: &crate::reconcile::Snapshot| {
            let budget = snap.settings.slug_budget();
            let slug = match (&self.slug, &self.branch) {
                (Some(s), _) => {
                    validate_slug(s, budget)?;
                    s.clone()
                }
                (None, Some(b)) => slugify(b, budget)?,
                (None, None) => return Err(Error::input("pass --branch or --slug")),
            };
            Ok(vec![Intent::Remove {
                slug,
                branch: self.branch.clone(),
            }])
        };
        let report = reconcile(&store, &config, &intents, &opts)?;
        print_single(format, &report, &store.location().display(), self.dry_run);
        Ok(())
    }
}
