//! Targets from the issue, the JSON results and the human-readable table.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::handshake::Handshakes;
use crate::issue::Issuance;
use crate::{Args, median};

/// Issuances per second per core the issue asks for.
const ISSUANCE_TARGET: f64 = 5_000.0;
/// The SPIFFE handshake rate must be at least this fraction of WebPKI's.
const HANDSHAKE_RATIO_TARGET: f64 = 0.9;

pub(crate) fn results(args: &Args, issuance: &Issuance, handshakes: &Handshakes) -> Value {
    let ca = median(&issuance.ca_per_s);
    let spiffe = median(&handshakes.spiffe_per_s);
    let webpki = median(&handshakes.webpki_per_s);
    let ratio = if webpki > 0.0 { spiffe / webpki } else { 0.0 };
    json!({
        "benchmark": "bulkhead identity",
        "machine": machine(),
        "config": {
            "round_seconds": args.seconds,
            "rounds": args.rounds,
            "threads": 1,
            "commit": args.commit,
        },
        "issuance": {
            "ca_issue_per_s": { "median": ca, "rounds": issuance.ca_per_s },
            "rcgen_sign_per_s": {
                "median": median(&issuance.rcgen_per_s),
                "rounds": issuance.rcgen_per_s,
            },
        },
        "handshakes": {
            "spiffe_per_s": { "median": spiffe, "rounds": handshakes.spiffe_per_s },
            "webpki_per_s": { "median": webpki, "rounds": handshakes.webpki_per_s },
            "spiffe_over_webpki": ratio,
            "negotiated": handshakes.negotiated,
        },
        "targets": [
            {
                "name": "CSR → SVID issuances/s, 1 core (CertificateAuthority::issue)",
                "target": format!(">= {ISSUANCE_TARGET}"),
                "measured": ca,
                "met": ca >= ISSUANCE_TARGET,
            },
            {
                "name": "mTLS 1.3 handshakes/s, SPIFFE vs WebPKI verifiers",
                "target": format!(">= {HANDSHAKE_RATIO_TARGET} × WebPKI"),
                "measured": ratio,
                "met": ratio >= HANDSHAKE_RATIO_TARGET,
            },
        ],
    })
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": cpu,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

pub(crate) fn table(r: &Value) -> String {
    let f = |p: &str| r.pointer(p).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let mut out = String::new();
    let _ = writeln!(out, "identity benchmark (1 thread, median of rounds)");
    let _ = writeln!(
        out,
        "handshakes negotiate: {}",
        r.pointer("/handshakes/negotiated")
            .and_then(Value::as_str)
            .unwrap_or("?")
    );
    let _ = writeln!(out, "{:<48} {:>12}", "measurement", "per second");
    for (name, p) in [
        (
            "issue: CertificateAuthority::issue",
            "/issuance/ca_issue_per_s/median",
        ),
        (
            "issue: rcgen sign only (same profile)",
            "/issuance/rcgen_sign_per_s/median",
        ),
        (
            "mTLS 1.3 handshake: SPIFFE verifiers",
            "/handshakes/spiffe_per_s/median",
        ),
        (
            "mTLS 1.3 handshake: WebPKI verifiers",
            "/handshakes/webpki_per_s/median",
        ),
    ] {
        let _ = writeln!(out, "{name:<48} {:>12.0}", f(p));
    }
    let _ = writeln!(
        out,
        "{:<48} {:>12.3}",
        "SPIFFE / WebPKI",
        f("/handshakes/spiffe_over_webpki")
    );
    for t in r["targets"].as_array().into_iter().flatten() {
        let met = if t["met"].as_bool() == Some(true) {
            "met"
        } else {
            "NOT met"
        };
        let _ = writeln!(
            out,
            "target: {} {}: measured {:.3} — {met}",
            t["name"].as_str().unwrap_or(""),
            t["target"].as_str().unwrap_or(""),
            t["measured"].as_f64().unwrap_or(f64::NAN)
        );
    }
    out
}
