//! `flux-ephemeral manpage`: the man page (roff), from the same clap definition.

use clap::CommandFactory;

use crate::error::{Error, Result};

/// Print the man page (roff) on stdout
///
/// For example `flux-ephemeral manpage > /usr/local/share/man/man1/flux-ephemeral.1`, then `man flux-ephemeral`.
#[derive(Debug, clap::Args)]
pub struct ManpageCmd {}

impl ManpageCmd {
    pub fn run(&self) -> Result<()> {
        let page = clap_mangen::Man::new(super::Cli::command());
        let mut out = Vec::new();
        page.render(&mut out)
            .map_err(|e| Error::internal(format!("could not render the man page: {e}")))?;
        super::emit(&out)
    }
}
