//! WAF benchmark: bulkhead-waf against libmodsecurity 3.0.9 on the same CRS v4 rules.
//!
//! Per engine, in a process of its own (so resident memory is the engine's): rule-set
//! compile time, RSS before and after loading, then per-transaction CPU time for three benign
//! exchanges (scenarios.rs), whole transaction (request and response phases, logging).
//! Configuration: the CRS CI engine settings with `SecRuleEngine On` and crs-setup.conf.example
//! (paranoia level 1): what a production deployment runs. CPU time is the thread's own
//! scheduler run time (/proc/thread-self/schedstat), measured over batches of transactions.
//! Output: JSON lines on stdout (one `load`, one `transaction` per scenario, one `memory` per
//! engine); a table on stderr. bench/waf.sh runs it pinned to one core.
//!
//! Usage: bulkhead-bench-waf [--engine modsecurity|bulkhead] [--seconds S] [--compile-reps N] [--crs DIR]
//! Without --engine it runs itself once per engine and passes the lines through.

mod bulkhead;
mod measure;
mod scenarios;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bulkhead_modsec_ref::Reference;
use bulkhead_modsec_ref::crs::{self, Profile};
use bulkhead_modsec_ref::drive::{self, Exchange, Outcome};
use serde_json::json;

use measure::{Summary, status_kib, thread_cpu_ns, timed};

/// An engine under test, loaded.
trait Engine {
    /// Its version string.
    fn version(&self) -> String;
    /// One whole transaction.
    fn run(&self, ex: &Exchange) -> anyhow::Result<Outcome>;
}

struct Modsec(Reference);

impl Engine for Modsec {
    fn version(&self) -> String {
        self.0.modsecurity().who_am_i()
    }
    fn run(&self, ex: &Exchange) -> anyhow::Result<Outcome> {
        let mut tx = self.0.transaction().map_err(anyhow::Error::msg)?;
        Ok(drive::drive(&mut tx, ex))
    }
}

const ENGINES: [&str; 2] = ["bulkhead", "modsecurity"];

fn load(engine: &str, corpus: &std::path::Path) -> anyhow::Result<Box<dyn Engine>> {
    Ok(match engine {
        "modsecurity" => Box::new(Modsec(
            Reference::load(Profile::Pl1On, corpus).map_err(anyhow::Error::msg)?,
        )),
        "bulkhead" => bulkhead::load(corpus)?,
        other => bail!("unknown engine {other:?} (expected bulkhead or modsecurity)"),
    })
}

struct Args {
    engine: Option<String>,
    seconds: f64,
    compile_reps: usize,
    crs: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        engine: None,
        seconds: 3.0,
        compile_reps: 3,
        crs: crs::corpus_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--engine" => args.engine = Some(val()?),
            "--seconds" => args.seconds = val()?.parse().context("--seconds: a number")?,
            "--compile-reps" => {
                args.compile_reps = val()?.parse().context("--compile-reps: a count")?
            }
            "--crs" => args.crs = PathBuf::from(val()?),
            "-h" | "--help" => {
                eprintln!(
                    "usage: bulkhead-bench-waf [--engine bulkhead|modsecurity] [--seconds S] [--compile-reps N] [--crs DIR]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (see --help)"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match &args.engine {
        Some(engine) => bench_engine(engine, &args),
        None => {
            for engine in ENGINES {
                run_child(engine)?;
            }
            Ok(())
        }
    }
}

/// Runs this binary for one engine; its JSON lines go straight to our stdout.
fn run_child(engine: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let status = Command::new(exe)
        .args(std::env::args().skip(1))
        .args(["--engine", engine])
        .stdout(Stdio::inherit())
        .status()
        .with_context(|| format!("running the {engine} benchmark"))?;
    if !status.success() {
        bail!("the {engine} benchmark failed ({status})");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_engine(name: &str, args: &Args) -> anyhow::Result<()> {
    let rss_before = status_kib("VmRSS");
    let (engine, wall, cpu) = timed(|| load(name, &args.crs));
    let engine = engine?;
    let rss_after = status_kib("VmRSS");
    let mut compile_ms = vec![ms(wall)];
    for _ in 1..args.compile_reps {
        let (again, wall, _) = timed(|| load(name, &args.crs));
        drop(again?);
        compile_ms.push(ms(wall));
    }
    let compile = Summary::of(&mut compile_ms).context("no compile timings")?;
    let version = engine.version();
    println!(
        "{}",
        json!({
            "engine": name, "version": version, "kind": "load", "profile": "crs-4.25.1-pl1-engine-on",
            "compile_ms_first": ms(wall), "compile_cpu_ms_first": cpu.map(|c| c as f64 / 1e6),
            "compile_ms": compile.json(),
            "rss_before_kib": rss_before, "rss_after_load_kib": rss_after,
            "rss_rules_kib": rss_after.zip(rss_before).map(|(a, b)| a.saturating_sub(b)),
        })
    );
    eprintln!(
        "{name:12} {version}: compile {:.0} ms (median of {}), RSS after load {} KiB",
        compile.p50,
        compile.n,
        rss_after.unwrap_or(0)
    );
    for sc in scenarios::all() {
        bench_scenario(name, engine.as_ref(), &sc, args.seconds)?;
    }
    println!(
        "{}",
        json!({"engine": name, "kind": "memory", "rss_end_kib": status_kib("VmRSS"), "rss_peak_kib": status_kib("VmHWM")})
    );
    Ok(())
}

/// Transactions of one scenario: a check run, warm-up, then timed batches for `seconds`.
fn bench_scenario(
    name: &str,
    engine: &dyn Engine,
    sc: &scenarios::Scenario,
    seconds: f64,
) -> anyhow::Result<()> {
    let check = engine.run(&sc.exchange)?;
    // Warm-up, and a batch size that takes about 50 ms, so reading the clock is noise.
    let t0 = Instant::now();
    let mut warm = 0usize;
    while t0.elapsed() < Duration::from_millis(300) || warm < 10 {
        engine.run(&sc.exchange)?;
        warm += 1;
    }
    let per_tx = t0.elapsed().as_secs_f64() / warm as f64;
    let batch = ((0.05 / per_tx) as usize).clamp(1, 100_000);
    let (mut cpu_us, mut wall_us) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds || cpu_us.len() < 5 {
        let c0 = thread_cpu_ns().context("/proc/thread-self/schedstat is unreadable")?;
        for _ in 0..batch {
            let t = Instant::now();
            engine.run(&sc.exchange)?;
            wall_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let c1 = thread_cpu_ns().context("/proc/thread-self/schedstat is unreadable")?;
        cpu_us.push(c1.saturating_sub(c0) as f64 / 1e3 / batch as f64);
    }
    let cpu = Summary::of(&mut cpu_us).context("no batches")?;
    let wall = Summary::of(&mut wall_us).context("no transactions")?;
    println!(
        "{}",
        json!({
            "engine": name, "kind": "transaction", "scenario": sc.name, "what": sc.what,
            "request_body_bytes": sc.exchange.body.len(),
            "logged_ids": check.logged, "blocked": check.blocked.map(|b| json!({"status": b.status, "rule_id": b.rule_id})),
            "transactions": wall.n, "batch": batch,
            "cpu_us_per_tx": cpu.json(), "wall_us": wall.json(),
        })
    );
    eprintln!(
        "{name:12} {:14} CPU/tx median {:9.1} µs (min {:9.1}), wall p50 {:9.1} µs p99 {:9.1} µs, logged {:?}",
        sc.name, cpu.p50, cpu.min, wall.p50, wall.p99, check.logged
    );
    Ok(())
}
