//! The command line: global options and one module per subcommand.

pub mod args;

mod cleanup;
mod completions;
mod config_schema;
mod deploy;
mod destroy;
mod doctor;
mod env;
mod flags;
mod github_app_manifest;
mod handle;
mod life;
mod list;
mod manpage;

mod render;
mod resync;
mod serve;
mod wait;

use clap::{ArgAction, Parser, Subcommand};

use crate::error::Result;
pub use crate::output::Format;

/// Preview environments for pull requests and merge requests, the GitOps way.
///
/// flux-ephemeral renders one Flux sync file per branch (a GitRepository for the branch or commit
/// and a Kustomization or HelmRelease deploying it into its own namespace), commits it into the
/// directory of your GitOps repository that Flux watches, and deletes it again when the environment
/// is destroyed. It never checks out a working tree, retries when another writer pushes first, and
/// never loses anyone's commit.
///
/// Try it without a server: flux-ephemeral deploy --branch feature/login
///
/// Exit codes: 0 done (also when nothing had to change), 1 bad input or refused, 2 bad usage, 3 bad
/// configuration or template, 4 the Git remote or a registry failed or refused, 5 the target branch
/// kept moving, 6 Flux reported the preview failed (--wait), 7 the preview was not Ready in time
/// (--wait), 70 internal error.
#[derive(Debug, Parser)]
#[command(name = "flux-ephemeral", version)]
pub struct Cli {
    /// Output: text for people, json (one object) for pipelines
    #[arg(long, global = true, value_enum, default_value_t = Format::Text, env = "FLUX_EPHEMERAL_OUTPUT")]
    pub output: Format,

    /// More logs on stderr (-v, -vv); or set FLUX_EPHEMERAL_LOG=debug
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Logs on stderr as text, or as JSON lines (delivery, event, slug, commit as fields)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FLUX_EPHEMERAL_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub github_app: args::GitHubAppArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Render(render::RenderCmd),
    Deploy(deploy::DeployCmd),
    Destroy(destroy::DestroyCmd),
    Extend(life::ExtendCmd),
    Sleep(life::SleepCmd),
    Wake(life::WakeCmd),
    Env(env::EnvCmd),
    Handle(handle::HandleCmd),
    Serve(serve::ServeCmd),
    List(list::ListCmd),
    Cleanup(cleanup::CleanupCmd),
    Wait(wait::WaitCmd),
    Resync(resync::ResyncCmd),
    Doctor(doctor::DoctorCmd),
    Completions(completions::CompletionsCmd),
    Manpage(manpage::ManpageCmd),
    ConfigSchema(config_schema::ConfigSchemaCmd),
    GithubAppManifest(github_app_manifest::GitHubAppManifestCmd),
}

/// Write `bytes` to stdout; a reader that stopped early (`| head`) is not an error.
fn emit(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::error::Error::internal(
            format!("could not write to stdout: {e}"),
        )),
        _ => Ok(()),
    }
}

impl Cli {
    pub fn run(&self) -> Result<()> {
        crate::service::forges::use_github_app(self.github_app.credentials()?);
        match &self.command {
            Command::Render(c) => c.run(self.output),
            Command::Deploy(c) => c.run(self.output),
            Command::Destroy(c) => c.run(self.output),
            Command::Extend(c) => c.run(self.output),
            Command::Sleep(c) => c.run(self.output),
            Command::Wake(c) => c.run(self.output),
            Command::Env(c) => c.run(self.output),
            Command::Handle(c) => c.run(self.output),
            Command::Serve(c) => c.run(self.output),
            Command::List(c) => c.run(self.output),
            Command::Cleanup(c) => c.run(self.output),
            Command::Wait(c) => c.run(self.output),
            Command::Resync(c) => c.run(self.output),
            Command::Doctor(c) => c.run(self.output),
            Command::Completions(c) => c.run(),
            Command::Manpage(c) => c.run(),
            Command::ConfigSchema(c) => c.run(),
            Command::GithubAppManifest(c) => c.run(),
        }
    }
}
