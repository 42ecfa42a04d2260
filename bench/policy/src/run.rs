//! One benchmark run: generate, load, compile, resolve queries, measure, compare.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bulkhead_policy::query::Query;
use bulkhead_policy::{Decision, Engine, Layer, Options, Request};
use bulkhead_resources::ResourceSet;
use bulkhead_resources::load::{Format, Loader};
use serde_json::{Value, json};

use crate::Args;
use crate::baseline::{Baseline, NaiveQuery};
use crate::cluster::{self, Generated, Shape};
use crate::measure::{self, Latency, Memory, median, ms, round1};
use crate::queries::{self, Kind};

/// Runs everything; `None` when only generating.
pub(crate) fn run(args: &Args) -> Result<Option<Value>> {
    let shape = Shape {
        namespaces: args.namespaces,
        replicas: args.replicas,
    };
    let started = Instant::now();
    let generated = cluster::generate(shape, args.seed, !args.without_audit);
    let generate_ms = ms(started.elapsed());
    let gen_queries = |kind| queries::generate(&generated.cluster, args.seed, kind, args.queries);
    if let Some(dir) = &args.write {
        write_yaml(dir, &generated)?;
    }
    if args.generate_only {
        if let Some(dir) = &args.write {
            write_queries(dir, &gen_queries(Kind::L4), &gen_queries(Kind::L7))?;
        }
        return Ok(None);
    }
    // Load and compile first, in a process that holds nothing else yet, so the memory
    // figures are not blurred by the query sets.
    let built = load_and_compile(args.repeats, &generated)?;
    let mut results = json!({
        "benchmark": "bulkhead policy engine",
        "machine": machine(),
        "config": config(args),
        "cluster": cluster_json(&generated, &built.engine),
        "generate_yaml_ms": round1(generate_ms),
        "load_ms": runs_json(&built.load),
        "compile_ms": runs_json(&built.compile),
        "memory_kib": built.memory,
    });
    let queries = (gen_queries(Kind::L4), gen_queries(Kind::L7));
    if let Some(dir) = &args.write {
        write_queries(dir, &queries.0, &queries.1)?;
    }
    decide_all(args, &built, queries, &mut results)?;
    results["targets"] = crate::report::targets(&results);
    Ok(Some(results))
}

/// Parses and resolves the queries, then measures the engine on each workload and the
/// baseline on the L4 one.
fn decide_all(
    args: &Args,
    built: &Built,
    (l4g, l7g): (Vec<queries::Generated>, Vec<queries::Generated>),
    results: &mut Value,
) -> Result<()> {
    let engine = &built.engine;
    let (l4, l4_scenarios) = parse_queries(l4g)?;
    let (l7, l7_scenarios) = parse_queries(l7g)?;
    let (l4r, resolve_l4) = resolve(engine, &l4)?;
    let (l7r, resolve_l7) = resolve(engine, &l7)?;
    let overhead = measure::timer_overhead();
    results["resolve_ms"] =
        json!({"l4": round1(resolve_l4), "l7": round1(resolve_l7), "queries": args.queries});
    results["timer_overhead_ns"] = json!(round1(overhead));
    if args.only != Some(Kind::L7) {
        results["l4"] = workload(engine, &l4r, &l4_scenarios, args, overhead);
        if args.baseline_queries > 0 {
            results["baseline"] =
                compare_baseline(args, &built.resources, engine, &l4, &l4r, overhead)?;
        }
    }
    if args.only != Some(Kind::L4) {
        results["l7"] = workload(engine, &l7r, &l7_scenarios, args, overhead);
    }
    Ok(())
}

/// Parses generated queries as `bulkhead policy eval` would; also returns their scenarios.
fn parse_queries(generated: Vec<queries::Generated>) -> Result<(Vec<Query>, Vec<&'static str>)> {
    let scenarios = generated.iter().map(|g| g.scenario).collect();
    let parsed = generated
        .into_iter()
        .map(|g| Query::from_value(g.value).context("generated query does not parse"))
        .collect::<Result<_>>()?;
    Ok((parsed, scenarios))
}

/// Pre-resolves names into requests (not part of a decision); returns the time it took.
fn resolve<'q>(engine: &Engine, queries: &'q [Query]) -> Result<(Vec<Request<'q>>, f64)> {
    let started = Instant::now();
    let reqs = queries
        .iter()
        .map(|q| q.request(engine))
        .collect::<Result<Vec<_>, _>>()
        .context("generated query does not resolve")?;
    Ok((reqs, ms(started.elapsed())))
}

fn write_yaml(dir: &Path, g: &Generated) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in &g.files {
        let path = dir.join(f.name);
        fs::write(&path, &f.text).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("wrote {} YAML files to {}", g.files.len(), dir.display());
    Ok(())
}

fn write_queries(dir: &Path, l4: &[queries::Generated], l7: &[queries::Generated]) -> Result<()> {
    for (name, values) in [("queries-l4.jsonl", l4), ("queries-l7.jsonl", l7)] {
        let mut text = String::new();
        for q in values {
            text.push_str(&serde_json::to_string(&q.value)?);
            text.push('\n');
        }
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "wrote queries-l4.jsonl and queries-l7.jsonl to {}",
        dir.display()
    );
    Ok(())
}

fn load(g: &Generated) -> Result<ResourceSet> {
    let mut loader = Loader::new();
    for f in &g.files {
        loader
            .add_str(&f.text, f.name, Format::Yaml)
            .map_err(|e| anyhow!("{e}"))?;
    }
    loader.finish().map_err(|e| anyhow!("{e}"))
}

fn compile(rs: &ResourceSet) -> Result<Engine> {
    Engine::compile(rs, Options::default()).map_err(|e| anyhow!("{e}"))
}

struct Built {
    resources: ResourceSet,
    engine: Engine,
    load: Vec<Duration>,
    compile: Vec<Duration>,
    memory: Value,
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0); false when that is not possible.
fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Loads and compiles `repeats` times and reads memory around the first load and compile.
///
/// The first load runs on a helper thread: glibc gives that thread its own malloc arena,
/// so the loader's transient garbage (retained by the allocator, not returned to the OS)
/// stays there and the compile on the main thread cannot hide inside it. The engine
/// increment is then the RSS growth across the compile (engine plus whatever compile
/// garbage the allocator keeps). Peaks are `VmHWM`, reset before each step.
fn load_and_compile(repeats: usize, g: &Generated) -> Result<Built> {
    let reset = reset_peak();
    let m0 = Memory::now();
    let (resources, first_load) = std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            load(g).map(|rs| (rs, started.elapsed()))
        })
        .join()
        .map_err(|_| anyhow!("the loader thread panicked"))
    })??;
    let mut load_times = vec![first_load];
    let m1 = Memory::now();
    reset_peak();
    let started = Instant::now();
    let engine = compile(&resources)?;
    let mut compile_times = vec![started.elapsed()];
    let m2 = Memory::now();
    for _ in 1..repeats {
        let (t, rs) = measure::timed_runs(1, || load(g));
        rs?;
        load_times.extend(t);
    }
    for _ in 1..repeats {
        let (t, e) = measure::timed_runs(1, || compile(&resources));
        e?;
        compile_times.extend(t);
    }
    let memory = json!({
        "method": "VmRSS/VmHWM from /proc/self/status; first load on a helper thread (own malloc arena); VmHWM reset via /proc/self/clear_refs before load and before compile",
        "yaml_text": g.bytes() / 1024,
        "rss_before_load": m0.rss_kib,
        "rss_after_load": m1.rss_kib,
        "rss_after_compile": m2.rss_kib,
        "load_increment": m1.rss_kib.saturating_sub(m0.rss_kib),
        "engine_increment": m2.rss_kib.saturating_sub(m1.rss_kib),
        "peak_during_load": reset.then_some(m1.hwm_kib),
        "peak_during_compile": reset.then_some(m2.hwm_kib),
    });
    Ok(Built {
        resources,
        engine,
        load: load_times,
        compile: compile_times,
        memory,
    })
}

fn runs_json(d: &[Duration]) -> Value {
    json!({
        "median": round1(ms(median(d))),
        "runs": d.iter().map(|x| round1(ms(*x))).collect::<Vec<_>>(),
    })
}

fn workload(
    engine: &Engine,
    reqs: &[Request<'_>],
    scenarios: &[&str],
    args: &Args,
    overhead: f64,
) -> Value {
    let decisions: Vec<Decision<'_>> = reqs.iter().map(|r| engine.evaluate(r)).collect();
    let tp = measure::throughput(reqs, args.passes, |r| engine.evaluate(r));
    let samples = measure::time_each(reqs, args.latency_sample, overhead, |r| engine.evaluate(r));
    let by_scenario = by_scenario(&decisions, &samples, scenarios, overhead);
    json!({
        "queries": reqs.len(),
        "outcomes": outcomes(decisions.iter()),
        "throughput": tp.to_json(),
        "latency": Latency::from_samples(samples, overhead).to_json(),
        "by_scenario": by_scenario,
    })
}

/// Share, outcomes and latency of each traffic scenario (sample `i` timed query `i mod n`).
fn by_scenario(
    decisions: &[Decision<'_>],
    samples: &[f64],
    scenarios: &[&str],
    overhead: f64,
) -> Value {
    let mut names: Vec<&str> = scenarios.to_vec();
    names.sort_unstable();
    names.dedup();
    let n = decisions.len();
    let rows = names.into_iter().map(|name| {
        let idx: Vec<usize> = (0..n).filter(|&i| scenarios[i] == name).collect();
        let times: Vec<f64> = (0..samples.len())
            .filter(|&i| scenarios[i % n] == name)
            .map(|i| samples[i])
            .collect();
        let lat = Latency::from_samples(times, overhead);
        let mut row = outcomes(idx.iter().map(|&i| &decisions[i]));
        row["share_pct"] = json!(round1(100.0 * idx.len() as f64 / n as f64));
        row["p50_ns"] = json!(round1(lat.p50_ns));
        row["p99_ns"] = json!(round1(lat.p99_ns));
        (name.to_owned(), row)
    });
    Value::Object(rows.collect())
}

/// Allow/deny fractions and the deciding layer of denies.
fn outcomes<'d, 'e: 'd>(decisions: impl Iterator<Item = &'d Decision<'e>>) -> Value {
    let (mut n, mut allow, mut net, mut authn, mut authz, mut reported) = (0, 0, 0, 0, 0, 0);
    for d in decisions {
        n += 1;
        if !d.audit.is_empty() || !d.dry_run.is_empty() {
            reported += 1;
        }
        match (d.allowed, d.layer) {
            (true, _) => allow += 1,
            (false, Layer::Network) => net += 1,
            (false, Layer::Authentication) => authn += 1,
            (false, Layer::Authorization) => authz += 1,
        }
    }
    let pct = |x: usize| round1(100.0 * x as f64 / n.max(1) as f64);
    json!({
        "allow_pct": pct(allow),
        "deny_pct": pct(n - allow),
        "deny_network_pct": pct(net),
        "deny_authentication_pct": pct(authn),
        "deny_authorization_pct": pct(authz),
        "with_audit_or_dry_run_pct": pct(reported),
    })
}

fn compare_baseline(
    args: &Args,
    rs: &ResourceSet,
    engine: &Engine,
    queries: &[Query],
    reqs: &[Request<'_>],
    overhead: f64,
) -> Result<Value> {
    let b = Baseline::new(rs);
    let n = args.baseline_queries.min(queries.len());
    let naive: Vec<NaiveQuery<'_>> = queries[..n]
        .iter()
        .map(|q| b.resolve(q))
        .collect::<Option<_>>()
        .context("baseline could not resolve a generated query")?;
    let mut disagree = Vec::new();
    for (i, (q, r)) in naive.iter().zip(reqs).enumerate() {
        let d = engine.evaluate(r);
        let engine_net_deny = !d.allowed && d.layer == Layer::Network;
        if engine_net_deny == b.allows(q) {
            disagree.push(i);
        }
    }
    let base_tp = measure::throughput(&naive, 1, |q| b.allows(q));
    let base_lat = measure::latency(&naive, n, overhead, |q| b.allows(q));
    let engine_tp = measure::throughput(&reqs[..n], args.passes, |r| engine.evaluate(r));
    Ok(json!({
        "label": "BASELINE (not a competitor): naive network-layer-only evaluator scanning all NetworkPolicies per query",
        "queries": n,
        "network_verdict_agreement_pct": round1(100.0 * (n - disagree.len()) as f64 / n.max(1) as f64),
        "disagreeing_query_ids": disagree.iter().take(10).map(|&i| queries[i].id.clone()).collect::<Vec<_>>(),
        "baseline_throughput": base_tp.to_json(),
        "baseline_latency": base_lat.to_json(),
        "engine_throughput_same_queries": engine_tp.to_json(),
        "engine_speedup_x": round1(engine_tp.median() / base_tp.median()),
    }))
}

fn config(args: &Args) -> Value {
    json!({
        "seed": args.seed,
        "namespaces": args.namespaces,
        "replicas": args.replicas,
        "queries_per_workload": args.queries,
        "passes": args.passes,
        "latency_sample": args.latency_sample,
        "repeats": args.repeats,
        "baseline_queries": args.baseline_queries,
        "mesh_audit_and_dry_run_policies": !args.without_audit,
        "only": args.only.map(Kind::as_str),
        "engine_commit": args.commit,
        "threads": 1,
    })
}

fn cluster_json(g: &Generated, engine: &Engine) -> Value {
    let c = g.counts;
    let (np, pa, ap) = engine.policy_counts();
    json!({
        "namespaces": c.namespaces,
        "pods": c.pods,
        "services": c.services,
        "network_policies": c.network_policies,
        "authorization_policies": c.authorization_policies,
        "peer_authentications": c.peer_authentications,
        "yaml_documents": g.files.iter().map(|f| f.documents).sum::<usize>(),
        "yaml_bytes": g.bytes(),
        "engine": {"endpoints": engine.endpoint_count(), "network_policies": np,
                   "peer_authentications": pa, "authorization_policies": ap},
    })
}

fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}
