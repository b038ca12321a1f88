//! `mobile-bff`: the REST BFF for mobile apps, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mobile_bff::MobileConfig;
use switchyard_core::{server, telemetry};

/// The binary's name in messages.
const NAME: &str = "mobile-bff";

/// Serves the Switchyard mobile BFF (compact REST/JSON).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file; `SWITCHYARD_…` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::run_bff(
        NAME,
        args.config.as_deref(),
        |config: MobileConfig, listener| async move {
            mobile_bff::serve(&config, listener, server::shutdown_signal()).await
        },
    )
    .await
}
