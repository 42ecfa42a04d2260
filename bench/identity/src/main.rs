//! `bulkhead-bench-identity`: the identity-layer benchmark.
//!
//! Measures on one thread, in one run: (a) CSR → signed X.509-SVID issuances per second
//! through `CertificateAuthority::issue` (CSR signature check, identity check, signing), with
//! a bare rcgen signature of the same leaf profile for contrast; (b) full mutual-TLS 1.3
//! handshakes per second between two in-process endpoints over memory, with the SPIFFE
//! verifiers and with rustls's own WebPKI verifiers on the same certificates. Variants
//! alternate round by round so that a noisy neighbour hurts both alike; medians are
//! reported. `--json` prints the results as JSON on stdout (the table then goes to stderr).

mod handshake;
mod issue;
mod report;

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;

/// Identity benchmark: SVID issuance and mTLS handshake rates.
#[derive(Debug, Clone, Parser)]
#[command(name = "bulkhead-bench-identity", version)]
pub(crate) struct Args {
    /// Length of one timed round of one variant, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Rounds per variant (alternating); the median round is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Revision to record in the results (identity.sh passes `git describe`).
    #[arg(long)]
    commit: Option<String>,
    /// Print results as JSON on stdout; the human table goes to stderr.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let round = Duration::from_secs_f64(args.seconds);
    let issuance = issue::run(round, args.rounds)?;
    let handshakes = handshake::run(round, args.rounds)?;
    let results = report::results(&args, &issuance, &handshakes);
    let table = report::table(&results);
    if args.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

/// Runs `op` back to back for `round` and returns operations per second.
pub(crate) fn rate(round: Duration, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut count = 0u64;
    loop {
        op()?;
        count += 1;
        let elapsed = start.elapsed();
        if elapsed >= round {
            return Ok(count as f64 / elapsed.as_secs_f64());
        }
    }
}

/// The median of the rounds (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
