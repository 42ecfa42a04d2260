//! `bulkhead demo bookstore <app>`: the bookstore example's apps (`crates/demo`), built
//! into the `bulkhead` binary so that `cargo run -- up examples/bookstore` needs nothing
//! else. The same apps as `bulkhead-demo bookstore <app>`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use bulkhead_demo::bookstore::cli::App;
use clap::Subcommand;

/// `bulkhead demo` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DemoCommand {
    /// The bookstore's apps; each reads PORT and UPSTREAM_<NAME> (host:port).
    #[command(subcommand)]
    Bookstore(App),
}

/// Runs one demo app until SIGTERM or Ctrl-C.
pub(crate) fn run(cmd: DemoCommand) -> Result<ExitCode> {
    let DemoCommand::Bookstore(app) = cmd;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    Ok(runtime.block_on(bulkhead_demo::bookstore::cli::run(
        app,
        bulkhead_demo::terminated(),
    )))
}
