//! `reflex`: the command-line entry point of Reflex.

mod bench;

use anyhow::Result;
use clap::{Parser, Subcommand};
use reflex_runtime::{init_tracing, LogFormat};

/// Reflex: real-time perception and control middleware for vehicles and robots.
///
/// Nodes are processes that talk over zenoh with ROS 2-compatible messages; every hop is
/// stamped and watched against a deadline.
#[derive(Parser)]
#[command(name = "reflex", version, propagate_version = true)]
struct Cli {
    /// Log as JSON lines instead of human-readable text (filter with REFLEX_LOG or RUST_LOG).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the versions of Reflex and the components it was built with.
    Version,
    /// Run a benchmark and print its table (baseline measured side by side in the same run).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(if cli.log_json { LogFormat::Json } else { LogFormat::Human });
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Version => {
            println!("reflex {}", env!("CARGO_PKG_VERSION"));
            println!("transport: zenoh 1.10 (peer mode, shared memory for large payloads)");
            println!("message encoding: CDR little-endian (XCDR1), ROS 2 compatible");
            Ok(())
        }
        Command::Bench(command) => bench::run(command),
    }
}
