//! `flux-ephemeral completions SHELL`: shell completions, from the same clap definition.

use clap::CommandFactory;

use crate::error::Result;

/// Print shell completions for SHELL
///
/// Load them for the running shell, or install them where the shell looks, for example `flux-ephemeral completions bash > /etc/bash_completion.d/flux-ephemeral` or `flux-ephemeral completions zsh > "${fpath[1]}/_flux-ephemeral"`.
#[derive(Debug, clap::Args)]
pub struct CompletionsCmd {
    /// The shell
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl CompletionsCmd {
    pub fn run(&self) -> Result<()> {
        let mut cmd = super::Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "flux-ephemeral", &mut out);
        super::emit(&out)
    }
}
