//! The `keyward` command line.

mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keyward: manage API keys and measure verification from a shell.
#[derive(Parser)]
#[command(name = "keyward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the headline benchmark on a temporary store.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::run(args),
    }
}
