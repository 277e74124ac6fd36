use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;

use super::args::{check_ttl, EnvArgs, SettingsArgs};
use crate::config::{FileConfig, Settings};
use crate::error::{Error, Result};
use crate::output::Format;
use crate::reconcile::ConfigSource;

/// Print the sync file of one environment; touches no repository.
///
/// Example: flux-ephemeral render --branch feature/login --source-url https://github.com/org/app.git
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RenderCmd {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Configuration file (.flux-ephemeral.yaml) to read settings from
    #[arg(long, env = "FLUX_EPHEMERAL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl RenderCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        check_ttl(&self.settings.ttl)?;
        let source = ConfigSource::load(self.config.as_deref(), self.settings.to_file_config())?;
        let (file, dir) = source
            .local
            .clone()
            .unwrap_or((FileConfig::default(), PathBuf::new()));
        let settings = Settings::resolve(file.overlay(source.flags.clone()))?;
        let from_flag = self.settings.template.is_some();
        let renderer = settings.renderer(|path| {
            let full = if from_flag {
                PathBuf::from(path)
            } else {
                dir.join(path)
            };
            std::fs::read_to_string(&full)
                .map(Some)
                .map_err(|e| Error::config(format!("cannot read template {}: {e}", full.display())))
        })?;
        let spec = self.env.input()?.spec(&settings)?;
        let rendered = renderer.render(&spec, SystemTime::now())?;
        match format {
            Format::Text => print!("{}", rendered.content),
            Format::Json => println!(
                "{}",
                serde_json::json!({
                    "slug": spec.slug, "name": rendered.name, "namespace": rendered.namespace,
                    "file": format!("{}/{}", settings.instances_dir, crate::model::file_name(&spec.slug)),
                    "preview_url": rendered.preview_url, "content": rendered.content,
                })
            ),
        }
        Ok(())
    }
}
