//! `mobile-bff`: the REST BFF for mobile apps, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mobile_bff::MobileConfig;
use switchyard_core::{config, server, telemetry};

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
    let config: MobileConfig = match config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mobile-bff: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "mobile-bff: cannot listen on {} (key `listen`): {error}",
                config.listen
            );
            return ExitCode::from(2);
        }
    };
    tracing::info!(listen = %config.listen, "mobile-bff serving");
    match mobile_bff::serve(&config, listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mobile-bff: {error:#}");
            ExitCode::FAILURE
        }
    }
}
