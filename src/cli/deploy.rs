use clap::Args;

use super::args::{check_ttl, EnvArgs, RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::git::Store;
use crate::output::{print_single, Format};
use crate::plan::{Intent, PlanOptions};
use crate::reconcile::{reconcile, ConfigSource, RunOptions};

/// Create or update the environment of a branch, commit its sync file and push.
///
/// Deploying an environment that is already up to date succeeds and commits nothing.
///
/// Examples:
///   flux-ephemeral deploy --branch feature/login                      (demo repository)
///   flux-ephemeral deploy --repo git@github.com:org/gitops.git --branch feature/login \
///       --sha 3f2c...e1 --id 42 --author alice --source-url https://github.com/org/app.git
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DeployCmd {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Show the change as a diff and push nothing
    #[arg(long)]
    dry_run: bool,
}

impl DeployCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        check_ttl(&self.settings.ttl)?;
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
        let report = reconcile(
            &store,
            &config,
            &|snap| Ok(vec![Intent::Upsert(self.env.spec(&snap.settings)?)]),
            &opts,
        )?;
        print_single(format, &report, &store.location().display(), self.dry_run);
        Ok(())
    }
}
