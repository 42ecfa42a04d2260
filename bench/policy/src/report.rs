//! Targets from the issue and the human-readable table.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// `(name, JSON pointer, comparison, target, unit)`: the requirements.
const TARGETS: [(&str, &str, Cmp, f64, &str); 5] = [
    (
        "compile time (median)",
        "/compile_ms/median",
        Cmp::Below,
        1000.0,
        "ms",
    ),
    (
        "L4 throughput, 1 thread (median pass)",
        "/l4/throughput/median_per_s",
        Cmp::AtLeast,
        1_000_000.0,
        "decisions/s",
    ),
    (
        "L7 throughput, 1 thread (median pass)",
        "/l7/throughput/median_per_s",
        Cmp::AtLeast,
        300_000.0,
        "decisions/s",
    ),
    (
        "L4 p99 latency",
        "/l4/latency/p99_ns",
        Cmp::Below,
        10_000.0,
        "ns",
    ),
    (
        "L7 p99 latency",
        "/l7/latency/p99_ns",
        Cmp::Below,
        10_000.0,
        "ns",
    ),
];

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Below,
    AtLeast,
}

/// Every target with the measured value and whether it is met.
pub(crate) fn targets(results: &Value) -> Value {
    TARGETS
        .iter()
        .map(|(name, pointer, cmp, target, unit)| {
            let measured = results.pointer(pointer).and_then(Value::as_f64);
            let met = measured.map(|m| match cmp {
                Cmp::Below => m < *target,
                Cmp::AtLeast => m >= *target,
            });
            let op = match cmp {
                Cmp::Below => "<",
                Cmp::AtLeast => ">=",
            };
            json!({"metric": name, "target": format!("{op} {target} {unit}"),
                   "measured": measured, "unit": unit, "met": met})
        })
        .collect()
}

fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// Thousands separators for a rounded number.
fn grouped(x: f64) -> String {
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// The human table.
pub(crate) fn table(r: &Value) -> String {
    let mut t = String::new();
    header(&mut t, r);
    setup(&mut t, r);
    workloads(&mut t, r);
    scenarios(&mut t, r);
    baseline(&mut t, r);
    target_rows(&mut t, r);
    t
}

fn header(t: &mut String, r: &Value) {
    let n = |p: &str| num(r, p);
    let _ = writeln!(t, "Bulkhead policy-engine benchmark (one thread)");
    let _ = writeln!(
        t,
        "machine: {} × {}",
        r.pointer("/machine/nproc").unwrap_or(&Value::Null),
        r.pointer("/machine/cpu_model")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    let _ = writeln!(
        t,
        "cluster: {} namespaces, {} pods, {} services, {} NetworkPolicies, {} AuthorizationPolicies, {} PeerAuthentications ({:.1} MiB YAML)",
        n("/cluster/namespaces"),
        n("/cluster/pods"),
        n("/cluster/services"),
        n("/cluster/network_policies"),
        n("/cluster/authorization_policies"),
        n("/cluster/peer_authentications"),
        n("/cluster/yaml_bytes") / 1048576.0
    );
}

fn setup(t: &mut String, r: &Value) {
    let n = |p: &str| num(r, p);
    let mib = |p: &str| format!("{:.1} MiB", n(p) / 1024.0);
    let rows = [
        (
            "load: YAML parse + validation (median)",
            format!("{:.1} ms", n("/load_ms/median")),
        ),
        (
            "compile (median)",
            format!("{:.1} ms", n("/compile_ms/median")),
        ),
        (
            "RSS before load (YAML text in memory)",
            mib("/memory_kib/rss_before_load"),
        ),
        (
            "RSS increment: load (ResourceSet + retained)",
            mib("/memory_kib/load_increment"),
        ),
        (
            "RSS increment: compiled engine",
            mib("/memory_kib/engine_increment"),
        ),
        (
            "peak RSS (VmHWM) during load",
            mib("/memory_kib/peak_during_load"),
        ),
        (
            "peak RSS (VmHWM) during compile",
            mib("/memory_kib/peak_during_compile"),
        ),
        (
            "timer overhead (subtracted)",
            format!("{:.0} ns", n("/timer_overhead_ns")),
        ),
    ];
    let _ = writeln!(t);
    let _ = writeln!(t, "{:<44} {:>16}", "setup", "value");
    for (k, v) in rows {
        let _ = writeln!(t, "{k:<44} {v:>16}");
    }
}

fn target_rows(t: &mut String, r: &Value) {
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:<40} {:>24} {:>24} {:>8}",
        "target", "required", "measured", ""
    );
    for row in r["targets"].as_array().into_iter().flatten() {
        let measured = row["measured"].as_f64().map_or("n/a".into(), grouped);
        let met = match row["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "n/a",
        };
        let _ = writeln!(
            t,
            "{:<40} {:>24} {:>24} {:>8}",
            row["metric"].as_str().unwrap_or(""),
            target_text(row),
            format!("{measured} {}", row["unit"].as_str().unwrap_or("")),
            met
        );
    }
}

fn target_text(row: &Value) -> String {
    let target = row["target"].as_str().unwrap_or("");
    let mut parts = target.splitn(3, ' ');
    let (op, value, unit) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    format!(
        "{op} {} {unit}",
        value.parse::<f64>().map_or(value.to_owned(), grouped)
    )
}

fn workloads(t: &mut String, r: &Value) {
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:<4} {:>13} {:>13} {:>8} {:>8} {:>8} {:>8} {:>7} {:>24}",
        "",
        "median dec/s",
        "best dec/s",
        "p50 ns",
        "p99 ns",
        "p999 ns",
        "max ns",
        "allow%",
        "deny% net/authn/authz"
    );
    for kind in ["l4", "l7"] {
        if r[kind].is_null() {
            continue;
        }
        let n = |p: &str| num(r, &format!("/{kind}{p}"));
        let _ = writeln!(
            t,
            "{:<4} {:>13} {:>13} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>7.1} {:>24}",
            kind.to_uppercase(),
            grouped(n("/throughput/median_per_s")),
            grouped(n("/throughput/best_per_s")),
            n("/latency/p50_ns"),
            n("/latency/p99_ns"),
            n("/latency/p999_ns"),
            n("/latency/max_ns"),
            n("/outcomes/allow_pct"),
            format!(
                "{:.1}/{:.1}/{:.1}",
                n("/outcomes/deny_network_pct"),
                n("/outcomes/deny_authentication_pct"),
                n("/outcomes/deny_authorization_pct")
            ),
        );
    }
}

fn scenarios(t: &mut String, r: &Value) {
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "{:<22} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7}",
        "by scenario", "L4 %", "allow%", "p50 ns", "p99 ns", "L7 %", "allow%", "p50 ns", "p99 ns"
    );
    let names = r
        .pointer("/l4/by_scenario")
        .or_else(|| r.pointer("/l7/by_scenario"));
    let Some(names) = names.and_then(Value::as_object) else {
        return;
    };
    for name in names.keys() {
        let mut line = format!("{name:<22}");
        for kind in ["l4", "l7"] {
            let n = |f: &str| num(r, &format!("/{kind}/by_scenario/{name}/{f}"));
            let sep = if kind == "l7" { " |" } else { "" };
            let _ = write!(
                line,
                "{sep} {:>7.1} {:>7.1} {:>7.0} {:>7.0}",
                n("share_pct"),
                n("allow_pct"),
                n("p50_ns"),
                n("p99_ns")
            );
        }
        let _ = writeln!(t, "{line}");
    }
}

fn baseline(t: &mut String, r: &Value) {
    if r["baseline"].is_null() {
        return;
    }
    let n = |p: &str| num(r, &format!("/baseline{p}"));
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "BASELINE (not a competitor): naive network-layer-only scan of all NetworkPolicies, {} L4 queries",
        n("/queries")
    );
    let _ = writeln!(
        t,
        "  baseline {} dec/s (p50 {:.0} ns, p99 {:.0} ns); engine, all three layers, same queries: {} dec/s; engine {:.0}x faster; network verdicts agree on {:.1}%",
        grouped(n("/baseline_throughput/median_per_s")),
        n("/baseline_latency/p50_ns"),
        n("/baseline_latency/p99_ns"),
        grouped(n("/engine_throughput_same_queries/median_per_s")),
        n("/engine_speedup_x"),
        n("/network_verdict_agreement_pct"),
    );
}
