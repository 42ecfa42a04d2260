//! `bulkhead-bench-policy`: the policy-engine benchmark.
//!
//! Generates a deterministic cluster (10,000 pods in 200 namespaces, 2,000
//! NetworkPolicies, 1,000 AuthorizationPolicies by default), then measures in one run:
//! load (YAML parse + validation) and compile time, resident memory, and single-thread
//! throughput and latency per decision for L4 and L7 workloads, plus a naive baseline
//! network evaluator for contrast. `--json` prints the results as JSON on stdout (the
//! table then goes to stderr); `--write DIR` also writes the YAML and the query files so
//! `bulkhead policy eval` can be run on them.

mod baseline;
mod cluster;
mod measure;
mod queries;
mod report;
mod rng;
mod run;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

/// Policy-engine benchmark on a generated cluster.
#[derive(Debug, Clone, Parser)]
#[command(name = "bulkhead-bench-policy", version)]
pub(crate) struct Args {
    /// Seed for the cluster and query generators.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Application namespaces (each gets 10 apps, 10 NetworkPolicies, 5 AuthorizationPolicies).
    #[arg(long, default_value_t = 200)]
    namespaces: usize,
    /// Replicas per app (pods per namespace = 10 × replicas; 1-6, a namespace owns a /26).
    #[arg(long, default_value_t = 5)]
    replicas: usize,
    /// Queries generated per workload (L4 and L7 each).
    #[arg(long, default_value_t = 100_000)]
    queries: usize,
    /// Timed throughput passes over the queries (after one warm-up pass).
    #[arg(long, default_value_t = 10)]
    passes: usize,
    /// Decisions timed one by one for the latency distribution.
    #[arg(long, default_value_t = 100_000)]
    latency_sample: usize,
    /// Load and compile repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// L4 queries given to the naive baseline evaluator (it is slow).
    #[arg(long, default_value_t = 10_000)]
    baseline_queries: usize,
    /// Leave out the mesh-wide AUDIT and dry-run policies (to measure what they cost).
    #[arg(long)]
    without_audit: bool,
    /// Also write the generated YAML and queries-{l4,l7}.jsonl into this directory.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
    /// Stop after generating (and writing, with --write).
    #[arg(long)]
    generate_only: bool,
    /// Run only one workload (for profiling): l4 or l7.
    #[arg(long, value_parser = parse_kind)]
    only: Option<queries::Kind>,
    /// Engine revision to record in the results (run.sh passes `git describe`).
    #[arg(long)]
    commit: Option<String>,
    /// Print results as JSON on stdout; the human table goes to stderr.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<queries::Kind, String> {
    match s.to_ascii_lowercase().as_str() {
        "l4" => Ok(queries::Kind::L4),
        "l7" => Ok(queries::Kind::L7),
        _ => Err(format!("expected l4 or l7, got `{s}`")),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.namespaces >= 2, "--namespaces must be at least 2");
    anyhow::ensure!(
        (1..=6).contains(&args.replicas),
        "--replicas must be 1-6 (a namespace owns a /26)"
    );
    anyhow::ensure!(
        args.queries > 0 && args.passes > 0 && args.repeats > 0 && args.latency_sample > 0,
        "--queries, --passes, --repeats and --latency-sample must be positive"
    );
    let results = run::run(&args)?;
    let Some(results) = results else {
        return Ok(());
    };
    let table = report::table(&results);
    if args.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{table}");
    }
    Ok(())
}
