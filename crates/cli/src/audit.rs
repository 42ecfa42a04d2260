//! `bulkhead audit`: read the control plane's append-only audit log.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bulkhead_api::REST_PREFIX;
use bulkhead_api::rest::{AuditList, AuditRecord};
use clap::Args;

use crate::client::{Client, with_query};
use crate::context::ConnArgs;
use crate::output::{self, Format, Table};

/// `audit` flags.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only records after this sequence number (the server's `since`).
    #[arg(long, value_name = "SEQ")]
    since: Option<u64>,
    /// At most this many records.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Print each record's unified diff under its row.
    #[arg(long)]
    diff: bool,
    /// Output format (json and yaml print the server's AuditList, diffs included).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// The request path: `/api/v1/audit?since=SEQ&limit=N`.
pub(crate) fn audit_path(args: &AuditArgs) -> String {
    let since = args.since.map(|s| s.to_string());
    let limit = args.limit.map(|l| l.to_string());
    with_query(
        &format!("{REST_PREFIX}/audit"),
        &[("since", since.as_deref()), ("limit", limit.as_deref())],
    )
}

/// `GET /api/v1/audit`.
pub(crate) async fn run(
    client: &Client,
    args: &AuditArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let list: AuditList = client.get(&audit_path(args)).await?;
    if args.output != Format::Table {
        output::document(out, args.output, &list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["SEQ", "TIME", "ACTOR", "VERB", "OBJECT", "REVISION"]);
    for record in &list.items {
        table.row(row(record));
    }
    if table.is_empty() || !args.diff {
        table.print(out, "No audit records found.")?;
        return Ok(ExitCode::SUCCESS);
    }
    // With --diff, each record's diff follows its row; the columns stay aligned because
    // the widths were computed over every row.
    let lines = table.lines();
    writeln!(out, "{}", lines[0])?;
    for (line, record) in lines[1..].iter().zip(&list.items) {
        writeln!(out, "{line}")?;
        if !record.diff.is_empty() {
            out.write_all(record.diff.as_bytes())?;
            if !record.diff.ends_with('\n') {
                writeln!(out)?;
            }
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(record: &AuditRecord) -> Vec<String> {
    let revision = match record.revision {
        0 => "-".to_owned(),
        n => n.to_string(),
    };
    vec![
        record.seq.to_string(),
        record.time.clone(),
        record.actor.clone(),
        record.verb.clone(),
        record.object.clone(),
        revision,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Audit {
        #[command(flatten)]
        args: AuditArgs,
    }

    #[test]
    fn since_and_limit_become_query_parameters() {
        let parse = |args: &[&str]| {
            let cli = Audit::try_parse_from(std::iter::once("audit").chain(args.iter().copied()));
            audit_path(&cli.unwrap().args)
        };
        assert_eq!(parse(&[]), "/api/v1/audit");
        assert_eq!(
            parse(&["--since", "5", "--limit", "10"]),
            "/api/v1/audit?since=5&limit=10"
        );
    }

    #[test]
    fn token_operations_show_no_revision() {
        let record = AuditRecord {
            seq: 3,
            time: "2030-01-01T00:00:00Z".into(),
            actor: "token:admin".into(),
            verb: "token.create".into(),
            object: "tok_0123".into(),
            revision: 0,
            diff: String::new(),
        };
        assert_eq!(row(&record)[5], "-");
    }
}
