//! Command-line front end of Bulkhead: flag parsing and output formatting only; the work
//! happens in the library crates.

mod audit;
mod batch;
mod cert;
mod client;
mod context;
mod control;
mod control_serve;
mod demo;
mod output;
mod policy;
mod proxies;
mod proxy;
mod remote;
mod resources;
mod status;
mod token;
mod up;
mod waf;

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
    /// Run the sidecar proxy next to one workload (a ProxyConfig file, optionally under a control plane).
    Proxy(proxy::ProxyArgs),
    /// Run the control plane (--data-dir DIR), or ask a running one (`status`).
    Control(control::ControlArgs),
    #[command(flatten)]
    Remote(remote::RemoteCommand),
    /// Run a whole mesh from a directory of resources: control plane, sidecars, workloads.
    Up(up::UpArgs),
    /// Stop a `bulkhead up --detach` (SIGTERM to the pid in DATA/up.pid).
    Down(up::DownArgs),
    /// How `bulkhead up` runs a workload: its command, stopped when `up` goes away.
    #[command(hide = true)]
    UpExec(up::UpExecArgs),
    /// The example apps `bulkhead up examples/bookstore` runs (`bulkhead demo bookstore ...`).
    #[command(subcommand)]
    Demo(demo::DemoCommand),
    /// Web application firewall tools: run a raw request through the OWASP CRS (`waf test`).
    #[command(subcommand)]
    Waf(waf::WafCommand),
}

/// Entry point used by the `bulkhead` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Proxy(args) => proxy::run(args),
        Command::Control(args) => control::run(args),
        Command::Remote(cmd) => remote::run(cmd),
        Command::Up(args) => up::run_up(args),
        Command::Down(args) => up::run_down(args),
        Command::UpExec(args) => up::run_exec(args),
        Command::Demo(cmd) => demo::run(cmd),
        Command::Waf(cmd) => waf::run(cmd),
    };
    match result {
        Ok(code) => code,
        // A reader that stopped early (`bulkhead audit | head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // The control-plane commands' documented codes (docs/cli.md); 1 otherwise.
            client::exit_code(&e)
        }
    }
}

/// Whether writing the output failed because its reader went away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
