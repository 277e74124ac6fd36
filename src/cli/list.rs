use clap::Args;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::output::{print_list, Format};
use crate::reconcile::{application_names, first_snapshot};

/// Show the environments in the instances directory (slug, cluster, branch, ref, owner, file),
/// then the requests waiting in the queue, in order.
///
/// Files that flux-ephemeral did not create are not listed (and never touched).
#[derive(Debug, Args)]
pub struct ListCmd {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

impl ListCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let (store, mut config) = crate::service::environment::open(
            &super::args::repo(&self.repo, &self.settings)?,
            false,
        )?;
        // Every application's environments: the instances directory is one for all of them.
        if config.flags.app.is_none() {
            config.flags.app = application_names(&store, &config)?.into_iter().next();
        }
        let snap = first_snapshot(&store, &mut config)?;
        let records = snap.settings.layout.records(&snap.files);
        print_list(format, &records, &snap.settings.instances_dir, &snap.queue);
        Ok(())
    }
}
