//! The OWASP CRS v4.25.1 regression corpus (go-ftw tests) run against bulkhead-waf in-process.
//!
//! Configuration as the upstream CI loads it: `ci-setup/modsecurity.ci.conf`, then
//! `ci-setup/crs-setup.ci.conf` (which ends with the X-CRS-Test log-marker rule 999999;
//! test requests never carry that header, so it never fires), then `rules/*.conf` in name
//! order. Expectations are the tests' own, with the upstream `httpd-overrides.yaml` (the CI
//! runs Apache) and then our `overrides.yaml` applied. Each stage's bytes go through the
//! Apache front-server emulation (malformed requests get Apache's 400 and no WAF log), then
//! through a fresh transaction with albedo as the backend.
//!
//! `CRS_FTW_VERBOSE=1` lists every failure with expected and logged ids.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bulkhead_crs_ftw::albedo;
use bulkhead_crs_ftw::expect::Observed;
use bulkhead_crs_ftw::load::Suite;
use bulkhead_crs_ftw::log::LogEntry;
use bulkhead_crs_ftw::overrides::Overrides;
use bulkhead_crs_ftw::runner::run_suite;
use bulkhead_crs_ftw::server::{apache_body, apache_view};
use bulkhead_waf::http1::{RawRequest, parse_request};
use bulkhead_waf::{RuleSet, Transaction};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus() -> PathBuf {
    manifest_dir().join("../../../shared/corpus/crs")
}

/// The rule set exactly as the CRS CI loads it.
fn load_rules(corpus: &Path) -> Result<RuleSet> {
    let mut builder = RuleSet::builder()
        .file(corpus.join("ci-setup/modsecurity.ci.conf"))?
        .file(corpus.join("ci-setup/crs-setup.ci.conf"))?;
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(corpus.join("rules"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    rule_files.retain(|p| p.extension().is_some_and(|e| e == "conf"));
    rule_files.sort();
    for file in rule_files {
        builder = builder.file(&file)?;
    }
    Ok(builder.build()?)
}

/// Drives one transaction through every phase, as a web server connector does, and returns
/// the logged matches and the status the client gets. This is the only engine-facing code.
fn run_waf(
    rules: &Arc<RuleSet>,
    req: &RawRequest,
    headers: &[(Vec<u8>, Vec<u8>)],
    resp: &albedo::Response,
) -> (Vec<LogEntry>, u16) {
    let mut tx = Transaction::new(Arc::clone(rules));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    tx.process_connection(local, 40_000, local, 80);
    tx.process_uri(&req.uri, &req.method, &req.version);
    for (name, value) in headers {
        tx.add_request_header(name, value);
    }
    let mut stopped = tx.process_request_headers();
    if stopped.is_none() {
        tx.append_request_body(&req.body);
        stopped = tx.process_request_body();
    }
    if stopped.is_none() {
        for (name, value) in &resp.headers {
            tx.add_response_header(name.as_bytes(), value.as_bytes());
        }
        stopped = tx.process_response_headers(resp.status, b"1.1");
    }
    if stopped.is_none() {
        tx.append_response_body(&resp.body);
        stopped = tx.process_response_body();
    }
    tx.process_logging();
    let status = stopped.map_or(resp.status, |i| i.status);
    let logged = tx
        .matches()
        .iter()
        .filter(|m| m.logged)
        .map(|m| LogEntry {
            id: m.id,
            phase: m.phase,
            msg: m.msg.clone(),
            data: m.data.clone(),
            severity: m.severity,
            tags: m.tags.to_vec(),
            matched_var_name: m.matched_var_name.clone(),
        })
        .collect();
    (logged, status)
}

/// One forwarded request: parsed as the server would, answered by albedo, seen by the WAF.
fn observe(rules: &Arc<RuleSet>, raw: &[u8]) -> Observed {
    let Ok(req) = parse_request(raw) else {
        return Observed::Response {
            status: 400,
            text: "HTTP/1.1 400 Bad Request\r\n\r\n".into(),
            log_lines: Vec::new(),
        };
    };
    let headers = apache_view(&req.headers, &req.uri);
    let req = RawRequest {
        body: apache_body(&req.headers, &req.body).to_vec(),
        ..req
    };
    let resp = albedo::respond(&req.method, &req.uri, &req.body);
    let (logged, status) = run_waf(rules, &req, &headers, &resp);
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in &resp.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&String::from_utf8_lossy(&resp.body));
    Observed::Response {
        status,
        text,
        log_lines: logged.iter().map(LogEntry::render).collect(),
    }
}

fn read_ratchet(path: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    line.context("ratchet.txt has no number")?
        .parse()
        .context("ratchet.txt: not a number")
}

#[test]
fn crs_regression_corpus() -> Result<()> {
    let corpus = corpus();
    let started = Instant::now();
    let rules = Arc::new(load_rules(&corpus).context("loading the CRS test configuration")?);
    let suite = Suite::load(&corpus.join("tests/regression/tests"))?;
    let mut overrides =
        Overrides::load_go_ftw(&corpus.join("tests/regression/httpd-overrides.yaml"))?;
    overrides.extend(Overrides::load_ours(
        &manifest_dir().join("overrides.yaml"),
    )?);
    let loaded = started.elapsed();

    let report = run_suite(&suite, &overrides, 2, &|raw: &[u8]| observe(&rules, raw));

    if std::env::var_os("CRS_FTW_VERBOSE").is_some_and(|v| v == "1") {
        println!("{}", report.failure_details());
    }
    println!("{report}");
    println!(
        "(rules compiled in {loaded:.1?}, {} tests run in {:.1?})",
        suite.test_count(),
        started.elapsed() - loaded
    );
    for name in overrides
        .unused(&suite)
        .iter()
        .filter(|n| n.contains("overrides.yaml") && !n.contains("httpd"))
    {
        println!("note: override names a test that is not in the corpus: {name}");
    }

    let passed = report.totals().passed;
    let ratchet = read_ratchet(&manifest_dir().join("ratchet.txt"))?;
    if passed < ratchet {
        bail!(
            "only {passed} CRS tests passed, fewer than the ratchet ({ratchet}); run with CRS_FTW_VERBOSE=1 to list failures"
        );
    }
    if passed > ratchet {
        println!(
            "hint: {passed} tests pass now; raise tests/crs-ftw/ratchet.txt from {ratchet} to {passed}"
        );
    }
    Ok(())
}
