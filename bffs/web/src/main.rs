//! `web-bff`: the GraphQL BFF for web dashboards, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_core::{server, telemetry};
use web_bff::WebConfig;

/// The binary's name in messages.
const NAME: &str = "web-bff";

/// Serves the Switchyard web BFF (GraphQL over HTTP).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file; `SWITCHYARD_…` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the GraphQL schema (SDL) and exit.
    #[arg(long)]
    print_schema: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_schema {
        print!("{}", web_bff::sdl());
        return ExitCode::SUCCESS;
    }
    telemetry::run_bff(
        NAME,
        args.config.as_deref(),
        |config: WebConfig, listener| async move {
            web_bff::serve(&config, listener, server::shutdown_signal()).await
        },
    )
    .await
}
