//! `web-bff`: the GraphQL BFF for web dashboards, as a standalone process.

use std::process::ExitCode;

use clap::Parser;
use switchyard_core::bff::{self, BffArgs};
use web_bff::WebBff;

/// Serves the Switchyard web BFF (GraphQL over HTTP).
#[derive(Parser)]
#[command(name = "web-bff", version, about)]
struct Args {
    #[command(flatten)]
    bff: BffArgs,
    /// Print the GraphQL schema (SDL) and exit.
    #[arg(long)]
    print_schema: bool,
    /// Print the trusted-operations manifest of the `.graphql` files in DIR (each checked
    /// against the schema) and exit.
    #[arg(long, value_name = "DIR")]
    print_manifest: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_schema {
        print!("{}", web_bff::sdl());
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = args.print_manifest {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        return match runtime.block_on(web_bff::manifest::Manifest::from_operations_dir(&dir)) {
            Ok(manifest) => {
                print!("{}", manifest.to_json());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("web-bff: {error}");
                ExitCode::FAILURE
            }
        };
    }
    bff::block_on_run::<WebBff>(&args.bff)
}
