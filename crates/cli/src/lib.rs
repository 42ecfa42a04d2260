//! Command-line front end of Bulkhead: flag parsing and output formatting only; the work
//! happens in the library crates.

mod policy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Bulkhead: a zero-trust security layer for microservices.
#[derive(Debug, Parser)]
#[command(name = "bulkhead", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate, explain and check NetworkPolicy / AuthorizationPolicy / PeerAuthentication.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

/// Entry point used by the `bulkhead` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
