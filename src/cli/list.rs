use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::git::Store;
use crate::output::{print_list, Format};
use crate::overlay::records;
use crate::reconcile::{snapshot, ConfigSource};

/// Show the environments in the instances directory (slug, branch, ref, file).
///
/// Files that flux-ephemeral did not create are not listed (and never touched).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ListCmd {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

impl ListCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let location = self.repo.location()?;
        let config =
            ConfigSource::load(self.repo.config.as_deref(), self.settings.to_file_config())?;
        let store = Store::open(location, self.repo.auth()?, self.repo.cache_dir.as_deref())?;
        let branch = match self
            .repo
            .target_branch
            .clone()
            .or_else(|| config.target_branch())
        {
            Some(b) => b,
            None => store.default_branch()?,
        };
        let snap = snapshot(&store, &branch, &config)?;
        print_list(format, &records(&snap.files), &snap.settings.instances_dir);
        Ok(())
    }
}
