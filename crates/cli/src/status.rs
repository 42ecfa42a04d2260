//! `bulkhead control status`: a summary of a running control plane.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use bulkhead_api::REST_PREFIX;
use bulkhead_api::rest::ControlStatus;
use clap::Args;

use crate::client::Client;
use crate::context::ConnArgs;
use crate::output::{self, Format};

/// `control status` flags.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Output format (json and yaml print the server's ControlStatus).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `GET /api/v1/status`.
pub(crate) async fn run(
    client: &Client,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let status: ControlStatus = client.get(&format!("{REST_PREFIX}/status")).await?;
    if args.output != Format::Table {
        output::document(out, args.output, &status)?;
    } else {
        output::fields(out, &summary(&status, output::now()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(s: &ControlStatus, now: i64) -> Vec<(&'static str, String)> {
    let uptime = i64::try_from(s.uptime_seconds).unwrap_or(i64::MAX);
    vec![
        ("version", s.version.clone()),
        ("revision", s.revision.to_string()),
        ("objects", s.objects.to_string()),
        ("uptime", output::span(uptime)),
        ("trust domain", s.trust_domain.clone()),
        (
            "CA expiry",
            format!(
                "{} ({})",
                s.ca_expiry,
                output::until(Some(&s.ca_expiry), now)
            ),
        ),
        (
            "proxies",
            format!(
                "{} connected, {} known",
                s.proxies_connected, s.proxies_known
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_key_value_lines() {
        let status = ControlStatus {
            version: "0.1.0".into(),
            revision: 12,
            objects: 30,
            uptime_seconds: 7_300,
            trust_domain: "cluster.local".into(),
            ca_expiry: "2030-01-02T00:00:00Z".into(),
            proxies_connected: 2,
            proxies_known: 3,
        };
        let now = output::parse_time("2030-01-01T00:00:00Z").unwrap();
        let mut out = Vec::new();
        output::fields(&mut out, &summary(&status, now)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "version:       0.1.0\n\
             revision:      12\n\
             objects:       30\n\
             uptime:        2h\n\
             trust domain:  cluster.local\n\
             CA expiry:     2030-01-02T00:00:00Z (in 24h)\n\
             proxies:       2 connected, 3 known\n"
        );
    }
}
