//! `flux-ephemeral config-schema`: the JSON Schema of `.flux-ephemeral.yaml`.

use crate::error::{Error, Result};

/// Print the JSON Schema of .flux-ephemeral.yaml
///
/// Editors use it to complete and check the file: start it with `# yaml-language-server: $schema=<URL or path of schema/flux-ephemeral.schema.json>`. The repository keeps a copy in `schema/flux-ephemeral.schema.json`, equal to this output.
#[derive(Debug, clap::Args)]
pub struct ConfigSchemaCmd {}

impl ConfigSchemaCmd {
    pub fn run(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&crate::config::schema())
            .map_err(|e| Error::internal(format!("schema: {e}")))?;
        super::emit(format!("{text}\n").as_bytes())
    }
}
