//! `keyward bench`: the headline comparison (placeholder until the benchmarks land).

use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `keyward bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Write the results as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(_args: BenchArgs) -> ExitCode {
    eprintln!("keyward bench is not implemented yet");
    ExitCode::FAILURE
}
