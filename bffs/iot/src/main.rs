//! `iot-bff`: the CBOR BFF for warehouse devices, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use iot_bff::IotConfig;
use switchyard_core::{config, server, telemetry};

/// Serves the Switchyard IoT BFF (CBOR over HTTP).
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
    let config: IotConfig = match config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("iot-bff: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "iot-bff: cannot listen on {} (key `listen`): {error}",
                config.listen
            );
            return ExitCode::from(2);
        }
    };
    tracing::info!(listen = %config.listen, "iot-bff serving");
    match iot_bff::serve(&config, listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iot-bff: {error:#}");
            ExitCode::FAILURE
        }
    }
}
