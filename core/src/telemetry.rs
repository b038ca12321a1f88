//! Process start-up shared by every BFF binary: logging set-up and [`run_bff`], the body
//! of each BFF's `main`.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use tokio::net::TcpListener;

use tracing_subscriber::EnvFilter;

use crate::config::{self, BffConfig, LogConfig, LogFormat};

/// Installs the global `tracing` subscriber: JSON lines or pretty output, filtered by
/// `RUST_LOG` when set, else by `log.filter`. Calling it twice is harmless.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Loads `C` (defaults, the optional `--config` file, `SWITCHYARD_…` variables), installs
/// logging, binds `listen` and runs `serve` until it returns. Configuration and bind errors
/// name the key at fault and exit with status 2; a failure while serving exits with 1.
pub async fn run_bff<C, F, Fut, E>(name: &str, config_file: Option<&Path>, serve: F) -> ExitCode
where
    C: BffConfig,
    F: FnOnce(C, TcpListener) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config: C = match config::load(config_file) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(2);
        }
    };
    init(config.log());
    let listen = config.listen();
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: cannot listen on {listen} (key `listen`): {error}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%listen, "{name} serving");
    match serve(config, listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
