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
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_schema {
        print!("{}", web_bff::sdl());
        return ExitCode::SUCCESS;
    }
    bff::block_on_run::<WebBff>(&args.bff)
}
