//! The commands that talk to a control plane's REST API: resolve the context, build one
//! client, run the command on a single-threaded runtime, print to standard output.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::audit::{self, AuditArgs};
use crate::client::Client;
use crate::context::ConnArgs;
use crate::proxies::{self, ProxiesArgs};
use crate::resources::{self, ApplyArgs, DeleteArgs, DiffArgs, GetArgs};
use crate::token::{self, TokenCommand};

/// Control-plane client commands (flattened into `bulkhead`'s own subcommands).
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Create or update resources from files or directories, as one atomic batch.
    Apply(ApplyArgs),
    /// List resources of a kind, or show one.
    Get(GetArgs),
    /// Delete the resources files name (-f), or one resource by KIND and NAME.
    Delete(DeleteArgs),
    /// Show what `apply` would change as unified diffs; exit 1 when it would change
    /// something.
    Diff(DiffArgs),
    /// Read the control plane's audit log.
    Audit(AuditArgs),
    /// Create, list and revoke operator and join tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List the proxies the control plane knows and what they applied.
    Proxies(ProxiesArgs),
}

impl RemoteCommand {
    /// The connection flags of whichever command this is.
    pub(crate) fn conn(&self) -> &ConnArgs {
        match self {
            RemoteCommand::Apply(a) => &a.conn,
            RemoteCommand::Get(a) => &a.conn,
            RemoteCommand::Delete(a) => &a.conn,
            RemoteCommand::Diff(a) => &a.conn,
            RemoteCommand::Audit(a) => &a.conn,
            RemoteCommand::Token(cmd) => cmd.conn(),
            RemoteCommand::Proxies(a) => &a.conn,
        }
    }
}

/// Runs one command against the control plane its flags and context name.
pub(crate) fn run(cmd: RemoteCommand) -> Result<ExitCode> {
    let conn = cmd.conn().clone();
    run_with(&conn, async move |client, out| {
        execute(client, &cmd, out).await
    })
}

/// Resolves `conn` into a client and runs `command` with it, printing to standard output.
pub(crate) fn run_with<F>(conn: &ConnArgs, command: F) -> Result<ExitCode>
where
    F: AsyncFnOnce(&Client, &mut dyn Write) -> Result<ExitCode>,
{
    let client = Client::new(&conn.resolve()?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = io::stdout().lock();
    let code = runtime.block_on(command(&client, &mut out))?;
    out.flush()?;
    Ok(code)
}

/// Runs one command with `client`, writing what it prints to `out`.
pub(crate) async fn execute(
    client: &Client,
    cmd: &RemoteCommand,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    match cmd {
        RemoteCommand::Apply(args) => resources::apply(client, args, out).await,
        RemoteCommand::Get(args) => resources::get(client, args, out).await,
        RemoteCommand::Delete(args) => resources::delete(client, args, out).await,
        RemoteCommand::Diff(args) => resources::diff(client, args, out).await,
        RemoteCommand::Audit(args) => audit::run(client, args, out).await,
        RemoteCommand::Token(cmd) => token::run(client, cmd, out).await,
        RemoteCommand::Proxies(args) => proxies::run(client, args, out).await,
    }
}
