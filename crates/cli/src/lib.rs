//! Command-line front end of Bulkhead: flag parsing and output formatting only; the work
//! happens in the library crates.

mod cert;
mod policy;
mod proxy;

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
    /// Create a CA, issue and inspect X.509-SVIDs, and manage the trust bundle.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Run the sidecar proxy next to one workload (standalone mode: a ProxyConfig file).
    Proxy(proxy::ProxyArgs),
}

/// Entry point used by the `bulkhead` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Proxy(args) => proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
