use std::process::ExitCode;

use clap::Parser;
use flux_ephemeral::cli::Cli;
use flux_ephemeral::output::print_error;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("FLUX_EPHEMERAL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(cli.output, &e);
            ExitCode::from(e.kind.exit_code() as u8)
        }
    }
}
