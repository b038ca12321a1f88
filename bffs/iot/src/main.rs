//! `iot-bff`: the CBOR BFF for warehouse devices, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use iot_bff::IotConfig;
use switchyard_core::{server, telemetry};

/// The binary's name in messages.
const NAME: &str = "iot-bff";

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
    telemetry::run_bff(
        NAME,
        args.config.as_deref(),
        |config: IotConfig, listener| async move {
            iot_bff::serve(&config, listener, server::shutdown_signal()).await
        },
    )
    .await
}
