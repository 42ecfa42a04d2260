//! `bulkhead proxies`: the sidecars the control plane knows, and whether they are current.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bulkhead_api::REST_PREFIX;
use bulkhead_api::rest::{ProxyList, ProxyStatus};
use clap::Args;

use crate::client::Client;
use crate::context::ConnArgs;
use crate::output::{self, Format, Table};

/// `proxies` flags.
#[derive(Debug, Args)]
pub(crate) struct ProxiesArgs {
    /// Output format (json and yaml print the server's ProxyList).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `GET /api/v1/proxies`.
pub(crate) async fn run(
    client: &Client,
    args: &ProxiesArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let list: ProxyList = client.get(&format!("{REST_PREFIX}/proxies")).await?;
    if args.output != Format::Table {
        output::document(out, args.output, &list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = output::now();
    let mut table = Table::new(&[
        "INSTANCE",
        "IDENTITY",
        "CONNECTED",
        "APPLIED",
        "LAST-SEEN",
        "CERT-EXPIRY",
        "NACK",
    ]);
    for proxy in &list.items {
        table.row(row(proxy, now));
    }
    table.print(out, "No proxies found.")?;
    Ok(ExitCode::SUCCESS)
}

fn row(proxy: &ProxyStatus, now: i64) -> Vec<String> {
    // A proxy that has not ACKed the last snapshot sent is behind; say by how much.
    let applied = match (proxy.applied_version, proxy.sent_version) {
        (0, 0) => "-".to_owned(),
        (applied, sent) if applied == sent => applied.to_string(),
        (applied, sent) => format!("{applied} (sent {sent})"),
    };
    vec![
        proxy.instance.clone(),
        proxy.identity.clone(),
        if proxy.connected { "yes" } else { "no" }.to_owned(),
        applied,
        format!("{} ago", output::age(Some(&proxy.last_seen), now)),
        output::until(proxy.cert_expiry.as_deref(), now),
        proxy.last_nack.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_lag_expiry_and_nacks() {
        let now = output::parse_time("2030-01-01T00:00:00Z").unwrap();
        let proxy = ProxyStatus {
            instance: "shop/web@10.0.0.1".into(),
            workload: "shop/web".into(),
            identity: "spiffe://cluster.local/ns/shop/sa/web".into(),
            connected: true,
            applied_version: 3,
            sent_version: 5,
            last_nack: Some("spec.x: unknown field".into()),
            last_seen: "2029-12-31T23:59:50Z".into(),
            cert_expiry: Some("2030-01-01T12:00:00Z".into()),
            inbound: vec![],
        };
        assert_eq!(
            row(&proxy, now),
            [
                "shop/web@10.0.0.1",
                "spiffe://cluster.local/ns/shop/sa/web",
                "yes",
                "3 (sent 5)",
                "10s ago",
                "in 12h",
                "spec.x: unknown field",
            ]
        );
    }
}
