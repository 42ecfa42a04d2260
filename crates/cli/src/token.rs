//! `bulkhead token create | list | revoke`: operator tokens (`bht_…`) and join tokens
//! (`bhj_…`, one sidecar identity's first certificate).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use bulkhead_api::REST_PREFIX;
use bulkhead_api::rest::{
    CreateJoinToken, CreateToken, CreatedJoinToken, CreatedToken, Role, TokenList,
};
use clap::{Args, Subcommand, ValueEnum};

use crate::cert::parse_duration;
use crate::client::{Client, encode};
use crate::context::ConnArgs;
use crate::output::{self, Format, Table};

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create an operator token (--name, --role) or, with --join, a join token for one
    /// sidecar identity; the secret is printed this once.
    Create(CreateArgs),
    /// List operator and join tokens (never their secrets).
    List(ListArgs),
    /// Revoke an operator (tok_…) or join (jt_…) token.
    Revoke(RevokeArgs),
}

impl TokenCommand {
    /// The connection flags of whichever subcommand this is.
    pub(crate) fn conn(&self) -> &ConnArgs {
        match self {
            TokenCommand::Create(a) => &a.conn,
            TokenCommand::List(a) => &a.conn,
            TokenCommand::Revoke(a) => &a.conn,
        }
    }
}

/// An operator token's role, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Everything, including tokens.
    Admin,
    /// Read, apply and delete resources.
    Editor,
    /// Read only.
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Editor => Role::Editor,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// `token create` flags.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Create a join token (for `--namespace` and `--service-account`) instead.
    #[arg(long, requires_all = ["namespace", "service_account"], conflicts_with_all = ["name", "role"])]
    join: bool,
    /// Operator token: a label for people (ci, alice), unique among live tokens.
    #[arg(long, required_unless_present = "join", requires = "role")]
    name: Option<String>,
    /// Operator token: what it may do.
    #[arg(long, value_enum, required_unless_present = "join", requires = "name")]
    role: Option<RoleArg>,
    /// Join token: namespace of the identity it buys.
    #[arg(long, requires = "join")]
    namespace: Option<String>,
    /// Join token: service account of the identity it buys.
    #[arg(long, requires = "join")]
    service_account: Option<String>,
    /// Join token: lifetime (90s, 30m, 1h, 7d) [server default: 1h].
    #[arg(long, requires = "join", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Join token: how many certificates it may buy [server default: 1].
    #[arg(long, requires = "join", value_parser = clap::value_parser!(u32).range(1..))]
    uses: Option<u32>,
    /// Output format (json and yaml print the server's CreatedToken / CreatedJoinToken).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `token list` flags.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Output format (json and yaml print the server's TokenList).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `token revoke` flags.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The token's id: tok_… or jt_….
    id: String,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// Runs one token subcommand.
pub(crate) async fn run(
    client: &Client,
    cmd: &TokenCommand,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create(args) if args.join => create_join(client, args, out).await?,
        TokenCommand::Create(args) => create(client, args, out).await?,
        TokenCommand::List(args) => list(client, args, out).await?,
        TokenCommand::Revoke(args) => {
            client
                .delete(&format!("{REST_PREFIX}/tokens/{}", encode(&args.id)))
                .await?;
            writeln!(out, "revoked {}", args.id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Said on standard error so that standard output holds only what scripts read.
const SHOWN_ONCE: &str =
    "warning: the secret is shown only this once (the server keeps only its hash); store it now";

async fn create(client: &Client, args: &CreateArgs, out: &mut dyn Write) -> Result<()> {
    let (Some(name), Some(role)) = (&args.name, args.role) else {
        unreachable!("clap requires --name and --role without --join");
    };
    let body = CreateToken {
        name: name.clone(),
        role: role.into(),
    };
    let path = format!("{REST_PREFIX}/tokens");
    let created: CreatedToken = client
        .post(&path, "application/json", serde_json::to_vec(&body)?)
        .await?;
    eprintln!("{SHOWN_ONCE}");
    if args.output != Format::Table {
        return output::document(out, args.output, &created);
    }
    let token = &created.token;
    output::fields(
        out,
        &[
            ("id", token.id.clone()),
            ("name", token.name.clone()),
            ("role", token.role.as_str().to_owned()),
            ("secret", created.secret.clone()),
        ],
    )
}

async fn create_join(client: &Client, args: &CreateArgs, out: &mut dyn Write) -> Result<()> {
    let (Some(namespace), Some(service_account)) = (&args.namespace, &args.service_account) else {
        unreachable!("clap requires --namespace and --service-account with --join");
    };
    let body = CreateJoinToken {
        namespace: namespace.clone(),
        service_account: service_account.clone(),
        ttl_seconds: args.ttl.map(|d| d.as_secs()),
        max_uses: args.uses,
    };
    let path = format!("{REST_PREFIX}/jointokens");
    let created: CreatedJoinToken = client
        .post(&path, "application/json", serde_json::to_vec(&body)?)
        .await?;
    eprintln!("{SHOWN_ONCE}");
    if args.output != Format::Table {
        return output::document(out, args.output, &created);
    }
    let token = &created.token;
    output::fields(
        out,
        &[
            ("id", token.id.clone()),
            ("identity", token.identity.clone()),
            ("expires", token.expires.clone()),
            ("uses", format!("{} of {}", token.uses, token.max_uses)),
            ("secret", created.secret.clone()),
        ],
    )
}

async fn list(client: &Client, args: &ListArgs, out: &mut dyn Write) -> Result<()> {
    let list: TokenList = client.get(&format!("{REST_PREFIX}/tokens")).await?;
    if args.output != Format::Table {
        return output::document(out, args.output, &list);
    }
    let now = output::now();
    let revoked = |at: &Option<String>| match at {
        Some(t) => format!("{} ago", output::age(Some(t), now)),
        None => "-".to_owned(),
    };
    let mut tokens = Table::new(&["ID", "NAME", "ROLE", "AGE", "REVOKED"]);
    for t in &list.tokens {
        let role = t.role.as_str().to_owned();
        let age = output::age(Some(&t.created), now);
        tokens.row(vec![
            t.id.clone(),
            t.name.clone(),
            role,
            age,
            revoked(&t.revoked),
        ]);
    }
    tokens.print(out, "No operator tokens found.")?;
    if list.join_tokens.is_empty() {
        return Ok(());
    }
    let mut join = Table::new(&["ID", "IDENTITY", "AGE", "EXPIRES", "USES", "REVOKED"]);
    for t in &list.join_tokens {
        join.row(vec![
            t.id.clone(),
            t.identity.clone(),
            output::age(Some(&t.created), now),
            output::until(Some(&t.expires), now),
            format!("{}/{}", t.uses, t.max_uses),
            revoked(&t.revoked),
        ]);
    }
    writeln!(out)?;
    join.print(out, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Token {
        #[command(subcommand)]
        cmd: TokenCommand,
    }

    fn parse(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        Token::try_parse_from(std::iter::once("token").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn operator_and_join_flags_do_not_mix() {
        assert!(parse(&["create", "--name", "ci", "--role", "editor"]).is_ok());
        assert!(parse(&["create", "--name", "ci"]).is_err());
        assert!(parse(&["create", "--role", "root", "--name", "x"]).is_err());
        let join = [
            "create",
            "--join",
            "--namespace",
            "shop",
            "--service-account",
            "web",
        ];
        assert!(parse(&join).is_ok());
        assert!(parse(&join[..4]).is_err());
        assert!(parse(&[&join[..], &["--name", "x"]].concat()).is_err());
        assert!(parse(&["create", "--name", "ci", "--role", "admin", "--ttl", "1h"]).is_err());
        let Ok(TokenCommand::Create(args)) =
            parse(&[&join[..], &["--ttl", "1h30m", "--uses", "3"]].concat())
        else {
            panic!("join token flags should parse");
        };
        assert_eq!(args.ttl, Some(Duration::from_secs(5400)));
        assert_eq!(args.uses, Some(3));
    }

    #[test]
    fn durations_read_like_cert_durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("1h5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
    }
}
