//! `web-bff`: the GraphQL BFF for web dashboards, as a standalone process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_core::{config, server, telemetry};
use web_bff::WebConfig;

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
    let config: WebConfig = match config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("web-bff: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "web-bff: cannot listen on {} (key `listen`): {error}",
                config.listen
            );
            return ExitCode::from(2);
        }
    };
    tracing::info!(listen = %config.listen, "web-bff serving");
    match web_bff::serve(&config, listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web-bff: {error:#}");
            ExitCode::FAILURE
        }
    }
}
