//! `bulkhead control`: run the control plane (`bulkhead control --data-dir DIR`, in
//! control_serve.rs), or ask a running one (`bulkhead control status`).

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::control_serve::{self, ServeArgs};
use crate::remote;
use crate::status::{self, StatusArgs};

/// `control` flags: the server's own, or a client subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ControlArgs {
    #[command(subcommand)]
    command: Option<ControlSub>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Subcommands that talk to a running control plane.
#[derive(Debug, Subcommand)]
pub(crate) enum ControlSub {
    /// Summary of a running control plane: version, revision, objects, proxies, CA expiry.
    Status(StatusArgs),
}

/// Serves, or runs the client subcommand.
pub(crate) fn run(args: ControlArgs) -> Result<ExitCode> {
    match args.command {
        Some(ControlSub::Status(status)) => {
            let conn = status.conn.clone();
            remote::run_with(&conn, async move |client, out| {
                status::run(client, &status, out).await
            })
        }
        None => control_serve::run(args.serve),
    }
}
