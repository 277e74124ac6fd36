use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use flux_ephemeral::cli::{Cli, LogFormat};
use flux_ephemeral::output::print_error;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // One TLS crypto provider for every client (octocrab, the GitLab and OCI clients).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // The previews page's access log (target `access`) is kept at every level; the libraries'
    // own lines (octocrab, kube, …) only with -v, where the tool's messages already say what
    // failed.
    let default = match cli.verbose {
        0 => "flux_ephemeral=warn,access=info",
        1 => "flux_ephemeral=info,access=info,warn",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("FLUX_EPHEMERAL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal, and never with NO_COLOR (https://no-color.org).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(colour).init(),
    }
    // A panic is a defect: report it as an internal error (exit 70), never as Rust's 101.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli.run()));
    let result = run.unwrap_or_else(|_| {
        Err(flux_ephemeral::error::Error::internal(
            "flux-ephemeral hit a bug (a panic, shown above); please report it",
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(cli.output, &e);
            ExitCode::from(e.kind.exit_code() as u8)
        }
    }
}
