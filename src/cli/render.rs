use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;

use super::args::{check_ttl, EnvArgs, SettingsArgs};
use crate::config::FileConfig;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::reconcile::ConfigSource;
use crate::settings::Settings;

/// Print the sync file of one environment; touches no repository.
///
/// Example: flux-ephemeral render --branch feature/login --source-url
/// https://github.com/org/app.git
#[derive(Debug, Args)]
pub struct RenderCmd {
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Configuration file (.flux-ephemeral.yaml) to read settings from
    #[arg(long, env = "FLUX_EPHEMERAL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Render an OCI source: the artifact's oci://HOST/REPOSITORY ...
    #[arg(long, value_name = "URL", requires = "artifact_digest")]
    artifact_url: Option<String>,
    /// ... pinned to this manifest digest (sha256:...)
    #[arg(long, value_name = "DIGEST", requires = "artifact_url")]
    artifact_digest: Option<String>,
    /// The registry is plain HTTP (the OCIRepository says insecure: true)
    #[arg(long)]
    insecure_registry: bool,
    /// Render the environment asleep (its workloads patched to zero replicas), as the
    /// lifecycle pass or /sleep-ephemeral would
    #[arg(long)]
    sleeping: bool,
}

impl RenderCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        check_ttl(&self.settings.ttl)?;
        let source = ConfigSource::load(self.config.as_deref(), self.settings.to_file_config())?;
        let (file, dir) = source
            .local
            .clone()
            .unwrap_or((FileConfig::default(), PathBuf::new()));
        let origin = crate::apps::Origin {
            app: source.flags.app.clone(),
            ..crate::apps::Origin::default()
        };
        let settings = Settings::resolve_for(file, source.flags.clone(), &origin)?;
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
        let artifact = match (&self.artifact_url, &self.artifact_digest) {
            (Some(url), Some(digest)) => {
                if !crate::oci::is_digest(digest) {
                    return Err(Error::input(format!(
                        "--artifact-digest {digest:?} is not sha256: and 64 hex digits"
                    )));
                }
                Some(crate::model::ArtifactRef {
                    url: crate::oci::ArtifactUrl::parse(url)?.url(),
                    digest: digest.clone(),
                    insecure: self.insecure_registry,
                })
            }
            _ => None,
        };
        let spec = crate::cli::args::EnvInput {
            artifact,
            ..self.env.input()?
        }
        .spec(&settings)?;
        let now = SystemTime::now();
        let mut spec = spec;
        if self.sleeping {
            spec.lifecycle.sleeping = Some((now, crate::model::SleepReason::Requested));
        }
        let rendered = renderer.render(&spec, now)?;
        match format {
            Format::Text => print!("{}", rendered.content),
            Format::Json => crate::output::json_line(&serde_json::json!({
                "slug": spec.slug, "name": rendered.name, "namespace": rendered.namespace,
                "file": format!("{}/{}", settings.instances_dir, crate::model::file_name(spec.key())),
                "preview_url": rendered.preview_url, "content": rendered.content,
            })),
        }
        Ok(())
    }
}
