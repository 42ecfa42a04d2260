//! Targets from the issue, the JSON results and the human-readable table.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

use crate::metrics::{HISTOGRAMS, Histogram, Scrape};
use crate::stats::Summary;
use crate::{Args, Run};

/// Push latency p99 bound, ms.
const PUSH_P99_TARGET_MS: f64 = 1000.0;
/// Resident memory bound: 200 MB (10^6 bytes), in MiB.
const MEMORY_TARGET_MIB: f64 = 200.0 * 1e6 / (1024.0 * 1024.0);

pub(crate) fn results(args: &Args, run: &Run) -> Value {
    let unconcerned: u64 = run.pushes.iter().map(|p| p.unconcerned_snapshots).sum();
    let env: Vec<String> = args
        .control_env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let apply_ms: Vec<f64> = run.pushes.iter().map(|p| p.apply_ms).collect();
    json!({
        "benchmark": "bulkhead control plane: simulated proxies against a real `bulkhead control` process",
        "commit": args.commit,
        "machine": machine(),
        "other_processes_cpu_share": run.other_cpu_share,
        "config": {
            "namespaces": run.layout.namespaces,
            "workloads": run.layout.workloads(),
            "objects": run.objects,
            "proxies": run.layout.proxies,
            "ramp_concurrency": args.concurrency,
            "rounds": args.rounds,
            "client_threads": args.client_threads,
            "control_plane_env": env,
        },
        "load": {
            "apply_requests": run.batch_ms.len(),
            "seconds": run.load_s,
            "apply_ms": Summary::of(&run.batch_ms).to_json(),
        },
        "ramp": ramp(run),
        "push": {
            "mesh_wide_latency_ms": pooled(run, "mesh").to_json(),
            "namespace_latency_ms": pooled(run, "namespace").to_json(),
            "apply_ms": Summary::of(&apply_ms).to_json(),
            "snapshots_to_unconcerned_proxies": unconcerned,
            "control_plane_cpu_s_per_change": {
                "mesh": cpu_per_change(run, "mesh"),
                "namespace": cpu_per_change(run, "namespace"),
            },
            "rounds": run.pushes.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        },
        "server_metrics": server_metrics(&run.scrapes).unwrap_or_else(|e| json!({"error": e.to_string()})),
        "memory_mib": {
            "control_plane": run.memory.iter().map(|(phase, m)| json!({
                "phase": phase, "rss": m.rss_mib, "hwm": m.hwm_mib, "threads": m.threads,
                "cpu_s": m.cpu_s,
            })).collect::<Vec<_>>(),
            "bench_process_rss_at_end": run.client_memory.rss_mib,
            "bench_process_cpu_s_at_end": run.client_memory.cpu_s,
        },
        "targets": targets(run, unconcerned),
    })
}

/// The targets, and that nothing is sent to proxies a change does not concern.
fn targets(run: &Run, unconcerned: u64) -> Value {
    let mesh = pooled(run, "mesh");
    let namespace = pooled(run, "namespace");
    let peak = run
        .memory
        .iter()
        .map(|(_, m)| m.hwm_mib)
        .fold(0.0, f64::max);
    json!([
        target(
            "push latency p99, mesh-wide change (all proxies), ms",
            "< 1000",
            mesh.p99,
            mesh.n > 0 && mesh.p99 < PUSH_P99_TARGET_MS
        ),
        target(
            "push latency p99, namespace change (its proxies), ms",
            "< 1000",
            namespace.p99,
            namespace.n > 0 && namespace.p99 < PUSH_P99_TARGET_MS
        ),
        target(
            "control-plane peak resident memory (VmHWM), MiB",
            "< 200 MB (190.7 MiB)",
            peak,
            peak < MEMORY_TARGET_MIB
        ),
        target(
            "snapshots sent to proxies a change does not concern",
            "0",
            unconcerned as f64,
            unconcerned == 0
        ),
    ])
}

fn target(name: &str, bound: &str, measured: f64, met: bool) -> Value {
    json!({"name": name, "target": bound, "measured": measured, "met": met})
}

/// Latencies of every push of `scope`, pooled over the rounds.
fn pooled(run: &Run, scope: &str) -> Summary {
    let all: Vec<f64> = run
        .pushes
        .iter()
        .filter(|p| p.scope == scope)
        .flat_map(|p| p.latencies_ms.iter().copied())
        .collect();
    Summary::of(&all)
}

/// The control plane's mean CPU seconds per change of `scope`.
fn cpu_per_change(run: &Run, scope: &str) -> f64 {
    let cpu: Vec<f64> = run
        .pushes
        .iter()
        .filter(|p| p.scope == scope)
        .map(|p| p.cpu_s)
        .collect();
    Summary::of(&cpu).mean
}

fn ramp(run: &Run) -> Value {
    let n = run.layout.proxies as f64;
    json!({
        "join_tokens": run.join_tokens,
        "join_tokens_seconds": run.join_tokens_s,
        "certify_seconds": run.certify_s,
        "certificates_per_second": n / run.certify_s.max(1e-9),
        "certify_call_ms": Summary::of(&run.certify_ms).to_json(),
        "connect_seconds_until_all_acked_first_snapshot": run.connect_s,
        "first_snapshot_ms": Summary::of(&run.first_snapshot_ms).to_json(),
        "seconds_until_quiet": run.quiet_after_ramp_s,
        "snapshots_received_during_ramp": run.ramp_snapshots,
        "snapshot_bytes": Summary::of(&run.snapshot_bytes).to_json(),
    })
}

/// The control plane's histograms per phase: the ramp (from loaded to connected) and the
/// pushes (from connected to the end).
fn server_metrics(scrapes: &[Scrape]) -> Result<Value> {
    let [loaded, connected, end] = scrapes else {
        anyhow::bail!("expected 3 scrapes of /metrics, got {}", scrapes.len());
    };
    let mut out = serde_json::Map::new();
    for (phase, from, to) in [("ramp", loaded, connected), ("pushes", connected, end)] {
        let mut hists = serde_json::Map::new();
        for name in HISTOGRAMS {
            let h: Histogram = to.histogram(name)?.since(&from.histogram(name)?);
            hists.insert(name.to_owned(), h.to_json());
        }
        let sent = to.value("snapshots_sent_total") - from.value("snapshots_sent_total");
        hists.insert("snapshots_sent".to_owned(), json!(sent));
        out.insert(phase.to_owned(), Value::Object(hists));
    }
    out.insert(
        "proxies_connected".to_owned(),
        json!(end.value("proxies_connected")),
    );
    out.insert("nacks".to_owned(), json!(end.value("snapshot_nacks_total")));
    Ok(Value::Object(out))
}

fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim);
    let meminfo = read("/proc/meminfo");
    let mem_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": cpu,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "memory_gib": (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "loadavg_at_end": read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>(),
    })
}

/// The human-readable table.
pub(crate) fn table(r: &Value) -> String {
    let f = |p: &str| num(r, p);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ncontrol-plane benchmark: {} proxies, {} workloads, {} objects\n",
        f("/config/proxies"),
        f("/config/workloads"),
        f("/config/objects")
    );
    let _ = writeln!(out, "| figure | value |\n|---|---:|");
    for (name, value) in rows(r) {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    let _ = writeln!(out);
    for t in r["targets"].as_array().into_iter().flatten() {
        let met = if t["met"].as_bool() == Some(true) {
            "met"
        } else {
            "NOT met"
        };
        let _ = writeln!(
            out,
            "target: {} {}: measured {:.1} — {met}",
            t["name"].as_str().unwrap_or(""),
            t["target"].as_str().unwrap_or(""),
            t["measured"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let _ = writeln!(
        out,
        "\nother processes used {:.1} % of the machine's CPU time during the run (noise)",
        100.0 * f("/other_processes_cpu_share")
    );
    out
}

/// A value of the results by JSON pointer (NaN when absent).
fn num(r: &Value, pointer: &str) -> f64 {
    r.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// "p50 / p99 / max" of the summary at `pointer`.
fn lat(r: &Value, pointer: &str) -> String {
    let q = |k: &str| num(r, &format!("{pointer}/{k}"));
    format!("{:.0} / {:.0} / {:.0}", q("p50"), q("p99"), q("max"))
}

/// The table's rows: (figure, value).
fn rows(r: &Value) -> Vec<(String, String)> {
    let f = |p: &str| num(r, p);
    let row = |name: &str, value: String| (name.to_owned(), value);
    let mut rows = vec![
        row(
            "load: apply requests / total s",
            format!("{} / {:.1}", f("/load/apply_requests"), f("/load/seconds")),
        ),
        row(
            "join tokens created / s",
            format!(
                "{} / {:.2}",
                f("/ramp/join_tokens"),
                f("/ramp/join_tokens_seconds")
            ),
        ),
        row(
            &format!(
                "certify: certificates/s ({} at a time)",
                f("/config/ramp_concurrency")
            ),
            format!("{:.0}", f("/ramp/certificates_per_second")),
        ),
        row(
            "certify call p50 / p99 / max, ms",
            lat(r, "/ramp/certify_call_ms"),
        ),
        row(
            "connect: all proxies ACKed first snapshot, s",
            format!(
                "{:.2}",
                f("/ramp/connect_seconds_until_all_acked_first_snapshot")
            ),
        ),
        row(
            "first snapshot p50 / p99 / max, ms",
            lat(r, "/ramp/first_snapshot_ms"),
        ),
        row(
            "snapshot size, mean bytes",
            format!("{:.0}", f("/ramp/snapshot_bytes/mean")),
        ),
    ];
    rows.extend(push_rows(r));
    let phases = r
        .pointer("/memory_mib/control_plane")
        .and_then(Value::as_array);
    for m in phases.into_iter().flatten() {
        let g = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        rows.push(row(
            &format!(
                "control-plane RSS / peak, {}, MiB",
                m["phase"].as_str().unwrap_or("?")
            ),
            format!("{:.1} / {:.1}", g("rss"), g("hwm")),
        ));
    }
    rows
}

/// Rows of the push measurement and the server's histograms.
fn push_rows(r: &Value) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "push, mesh-wide change: p50 / p99 / max, ms".to_owned(),
            lat(r, "/push/mesh_wide_latency_ms"),
        ),
        (
            "push, namespace change: p50 / p99 / max, ms".to_owned(),
            lat(r, "/push/namespace_latency_ms"),
        ),
        (
            "apply answer (validate + commit) p50 / p99 / max, ms".to_owned(),
            lat(r, "/push/apply_ms"),
        ),
        (
            "control-plane CPU per change, mesh-wide / namespace, s".to_owned(),
            format!(
                "{:.3} / {:.3}",
                num(r, "/push/control_plane_cpu_s_per_change/mesh"),
                num(r, "/push/control_plane_cpu_s_per_change/namespace")
            ),
        ),
    ];
    for (name, key) in [
        ("view build", "view_build"),
        ("snapshot build", "snapshot_build"),
        ("push latency (commit → ACK)", "push_latency"),
    ] {
        let p = format!("/server_metrics/pushes/{key}");
        let q = |k: &str| num(r, &format!("{p}/{k}"));
        rows.push((
            format!("server {name} during pushes: mean / p99 est., ms"),
            format!("{:.3} / {:.3}", q("mean_ms"), q("p99_ms_estimated")),
        ));
    }
    rows
}
