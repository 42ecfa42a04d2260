//! Differential test: every stage of the go-ftw corpus through libmodsecurity 3.0.9 and
//! bulkhead-waf, with the CRS CI configuration, comparing the rule ids each logs.
//!
//! Both engines see identical stages: go-ftw's request bytes (bulkhead-crs-ftw), the Apache
//! front's decision (rejected requests reach neither engine), the request as parsed by
//! bulkhead_waf::http1 with Apache's header view, and albedo's response. The test prints
//! libmodsecurity's own pass rate against the corpus expectations (a sanity check of the
//! reference and the harness), then the disagreements: counts per rule file and per rule id,
//! and the first DIFF_SHOW (default 40) disagreeing stages with both id lists.
//!
//! It fails only if the reference cannot load, or if the number of disagreeing stages exceeds
//! the ratchet in tests/modsec-ref/disagreements.txt. One-sided ids that a known
//! libmodsecurity 3.0.9 deviation explains (bulkhead_modsec_ref::deviations) are reported
//! apart and not counted. Run it with
//! `cargo test -p bulkhead-modsec-ref --features libmodsecurity --test differential -- --nocapture`
//! (after scripts/install-libmodsecurity).
//!
//! bulkhead-waf fills REQUEST_BODY as ModSecurity 2 does (URL-encoded bodies, or when a rule
//! forces it), which the CRS tests are written for; libmodsecurity 3 always fills it. So that
//! this deliberate difference (about 760 stages: 920272/920273 and 944xxx on multipart, JSON
//! and XML bodies) does not hide the others, our engine gets one extra rule here,
//! [`LIBMODSECURITY_REQUEST_BODY`], which forces the variable for every body processor.
//!
//! Environment:
//! * DIFF_THREADS: worker count (default 2; each worker loads its own libmodsecurity, whose
//!   objects are not shared across threads).
//! * DIFF_SHOW: how many disagreeing stages to print (default 40).
//! * DIFF_ONLY=922110,941180-7,REQUEST-930: only these rule ids, test names (`<rule>-<test>`)
//!   or rule-file directories containing the text (comma-separated); ratchet not checked.
//! * DIFF_VERBOSE=1: with each shown stage, libmodsecurity's log lines and bulkhead-waf's
//!   matches (variable name and value) of the rules in disagreement (`all`: of all rules).
//! * DIFF_REQUEST_BODY=modsec2: leave the REQUEST_BODY rule out; ratchet not checked.
#![cfg(feature = "libmodsecurity")]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use bulkhead_crs_ftw::expect::{Observed, check};
use bulkhead_crs_ftw::load::Suite;
use bulkhead_crs_ftw::model::Stage;
use bulkhead_crs_ftw::overrides::Overrides;
use bulkhead_crs_ftw::runner::exchange;
use bulkhead_crs_ftw::server::apache_view;
use bulkhead_crs_ftw::{albedo, wire};
use bulkhead_modsec_ref::crs::{Profile, Source, corpus_dir};
use bulkhead_modsec_ref::deviations::{self, Evidence};
use bulkhead_modsec_ref::drive::{Exchange, Outcome, Response, Stages, drive};
use bulkhead_modsec_ref::{Reference, bulkhead_rules_with};
use bulkhead_waf::{RuleMatch, RuleSet, Transaction};

/// Rule ids left out of the comparison: libmodsecurity 3.0.9 bugs that upstream's
/// nginx-overrides.yaml records too, where bulkhead-waf follows ModSecurity's documented
/// semantics (and the CRS tests as written).
const KNOWN_REFERENCE_DEVIATIONS: &[(u32, &str)] = &[(
    980170,
    "libmodsecurity 3 writes no error-log line for a rule with `noauditlog` (nginx-overrides.yaml, 980170); \
     this phase-5 score report fires on every request",
)];

/// Makes bulkhead-waf fill REQUEST_BODY for every body, as libmodsecurity 3 does (its
/// `ctl:forceRequestBodyVariable` gives the ModSecurity 2 semantics for all processors).
/// Phase 1, after the CRS rules, so it is in force when phase 2 processes the body.
const LIBMODSECURITY_REQUEST_BODY: Source = Source::Text {
    label: "differential: REQUEST_BODY as libmodsecurity 3 fills it",
    text: "SecAction \"id:7770001,phase:1,pass,nolog,ctl:forceRequestBodyVariable=On\"\n",
};

/// The extra sources our engine loads (see [`LIBMODSECURITY_REQUEST_BODY`]).
fn extra_sources() -> Vec<Source> {
    match std::env::var("DIFF_REQUEST_BODY").as_deref() {
        Ok("modsec2") => Vec::new(),
        _ => vec![LIBMODSECURITY_REQUEST_BODY],
    }
}

/// One stage of the corpus, located.
struct Item<'a> {
    dir: &'a str,
    name: String,
    index: usize,
    stage: &'a Stage,
    rule_id: u32,
    test_id: u32,
}

/// What both engines made of one stage.
struct StageResult {
    /// Whether libmodsecurity ran: the Apache front let the request through and the harness
    /// could parse it (else neither engine ran).
    forwarded: bool,
    /// libmodsecurity's logged ids (None: not run or the harness failed).
    reference: Option<Vec<u32>>,
    /// Whether libmodsecurity met the corpus expectation, as written / with nginx-overrides.
    reference_pass: (bool, bool),
    /// bulkhead-waf's logged ids (None: not run, or it panicked).
    ours: Option<Vec<u32>>,
    /// With DIFF_VERBOSE: libmodsecurity's log lines, and bulkhead-waf's matches as
    /// `id phase logged VAR=value` lines.
    detail: Option<(Vec<String>, Vec<String>)>,
    /// One-sided ids that a known deviation explains (see bulkhead_modsec_ref::deviations).
    explained: Vec<(u32, &'static str)>,
}

impl StageResult {
    /// A stage neither engine ran.
    fn not_run() -> Self {
        Self {
            forwarded: false,
            reference: None,
            reference_pass: (false, false),
            ours: None,
            detail: None,
            explained: Vec::new(),
        }
    }
}

/// Whether DIFF_VERBOSE asks for log lines and matches.
fn verbose() -> bool {
    std::env::var_os("DIFF_VERBOSE").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether DIFF_VERBOSE=all asks for the details of every logged rule, not only those in
/// disagreement.
fn verbose_all() -> bool {
    std::env::var("DIFF_VERBOSE").is_ok_and(|v| v == "all")
}

/// DIFF_ONLY's filters: rule ids, test names, or rule-file directory fragments.
fn only_filters() -> Vec<String> {
    std::env::var("DIFF_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `item` passes the DIFF_ONLY filters (all items pass when there are none).
fn selected(filters: &[String], item: &Item<'_>) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            f.parse::<u32>().is_ok_and(|id| id == item.rule_id)
                || *f == item.name
                || (f.parse::<u32>().is_err() && item.dir.contains(f.as_str()))
        })
}

/// bulkhead-waf's matches, one line each.
fn describe_matches(matches: &[RuleMatch]) -> Vec<String> {
    matches
        .iter()
        .map(|m| {
            format!(
                "{} phase {}{} {}={:?}",
                m.id,
                m.phase,
                if m.logged { "" } else { " (nolog)" },
                m.matched_var_name,
                String::from_utf8_lossy(&m.matched_value)
            )
        })
        .collect()
}

/// The request and albedo's answer, as both engines are fed them.
fn exchange_of(raw: &[u8]) -> Result<Exchange, String> {
    let req = bulkhead_waf::http1::parse_request(raw).map_err(|e| format!("http1: {e}"))?;
    let backend = albedo::respond(&req.method, &req.uri, &req.body);
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    Ok(Exchange {
        client: (local, 40_000),
        server: (local, 80),
        headers: apache_view(&req.headers, &req.uri),
        method: req.method,
        uri: req.uri,
        version: req.version,
        body: req.body,
        response: Some(Response {
            status: backend.status,
            version: b"1.1".to_vec(),
            headers: backend
                .headers
                .into_iter()
                .map(|(n, v)| (n.into_bytes(), v.into_bytes()))
                .collect(),
            body: backend.body,
        }),
    })
}

/// Drives one engine; records its ids in `ids` and answers what go-ftw would observe.
fn observe<T: Stages>(
    raw: &[u8],
    ids: &RefCell<Option<Vec<u32>>>,
    new_tx: impl FnOnce() -> Result<T, String>,
    lines: impl FnOnce(&T, &Outcome) -> Vec<String>,
) -> Observed {
    let ex = match exchange_of(raw) {
        Ok(ex) => ex,
        Err(e) => return Observed::TransportError(e),
    };
    let mut tx = match new_tx() {
        Ok(tx) => tx,
        Err(e) => return Observed::TransportError(e),
    };
    let out = drive(&mut tx, &ex);
    let resp = ex.response.as_ref();
    let status = out
        .blocked
        .map(|b| b.status)
        .or(resp.map(|r| r.status))
        .unwrap_or(200);
    let body = resp
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    let log_lines = lines(&tx, &out);
    *ids.borrow_mut() = Some(out.logged);
    Observed::Response {
        status,
        text: format!("HTTP/1.1 {status}\r\n\r\n{body}"),
        log_lines,
    }
}

fn run_stage(
    reference: &Reference,
    ours: &Arc<RuleSet>,
    nginx: &Overrides,
    item: &Item<'_>,
) -> StageResult {
    let raw = match wire::build_request(&item.stage.input) {
        Ok(raw) => raw,
        Err(_) => {
            return StageResult::not_run();
        }
    };
    let ref_ids = RefCell::new(None);
    let ref_lines = RefCell::new(Vec::new());
    let observed = exchange(&raw, &|raw: &[u8]| {
        observe(
            raw,
            &ref_ids,
            || reference.transaction(),
            |tx, _| {
                let lines = tx.log_lines();
                ref_lines.borrow_mut().clone_from(&lines);
                lines
            },
        )
    });
    let as_written = check(&item.stage.output, &observed).is_ok();
    let nginx_output = nginx.output_for(item.rule_id, item.test_id, item.index, &item.stage.output);
    let skipped = nginx.skip_reason(item.rule_id, item.test_id).is_some();
    let with_nginx = skipped || check(nginx_output, &observed).is_ok();
    let our_ids = RefCell::new(None);
    let our_matches = RefCell::new(Vec::new());
    exchange(&raw, &|raw: &[u8]| {
        let lines = |tx: &Transaction, out: &Outcome| {
            our_matches.borrow_mut().clone_from(&tx.matches().to_vec());
            out.logged
                .iter()
                .map(|id| format!("[id \"{id}\"]"))
                .collect()
        };
        observe(
            raw,
            &our_ids,
            || Ok(Transaction::new(Arc::clone(ours))),
            lines,
        )
    });
    let reference = ref_ids.into_inner();
    let ours = our_ids.into_inner();
    let (ref_lines, our_matches) = (ref_lines.into_inner(), our_matches.into_inner());
    let explained = explain(item, (&reference, &ref_lines), (&ours, &our_matches));
    StageResult {
        forwarded: reference.is_some(),
        reference,
        reference_pass: (as_written, with_nginx),
        ours,
        detail: verbose().then(|| (ref_lines.clone(), describe_matches(&our_matches))),
        explained,
    }
}

/// The one-sided ids of a stage that a known deviation explains.
fn explain(
    item: &Item<'_>,
    (reference, reference_lines): (&Option<Vec<u32>>, &[String]),
    (ours, our_matches): (&Option<Vec<u32>>, &[RuleMatch]),
) -> Vec<(u32, &'static str)> {
    let set = |ids: &Option<Vec<u32>>| ids.iter().flatten().copied().collect::<BTreeSet<u32>>();
    let (a, b) = (set(reference), set(ours));
    let evidence = Evidence {
        test: &item.name,
        reference_lines,
        ours: our_matches,
    };
    deviations::explained(
        &evidence,
        &a.difference(&b).copied().collect(),
        &b.difference(&a).copied().collect(),
    )
}

/// Runs every item on `threads` workers, each with its own libmodsecurity.
fn run_all(
    items: &[Item<'_>],
    ours: &Arc<RuleSet>,
    nginx: &Overrides,
    threads: usize,
) -> anyhow::Result<Vec<StageResult>> {
    let corpus = corpus_dir();
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<StageResult>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let reference = match Reference::load(Profile::Ci, &corpus) {
                    Ok(r) => r,
                    Err(e) => return errors.lock().map(|mut v| v.push(e)).unwrap_or(()),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = run_stage(&reference, ours, nginx, item);
                    if let Ok(mut s) = slots.lock() {
                        s[i] = Some(result);
                    }
                }
            });
        }
    });
    let errors = errors
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = errors.first() {
        anyhow::bail!("libmodsecurity could not load the CRS CI configuration: {e}");
    }
    let slots = slots
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(slots
        .into_iter()
        .map(|s| s.unwrap_or_else(StageResult::not_run))
        .collect())
}

/// Pass counts of libmodsecurity per directory: (stages, passed as written, passed with nginx-overrides).
fn print_reference_pass_rate(items: &[Item<'_>], results: &[StageResult]) {
    let mut per_dir: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (item, r) in items.iter().zip(results) {
        let c = per_dir.entry(item.dir).or_default();
        c.0 += 1;
        c.1 += usize::from(r.reference_pass.0);
        c.2 += usize::from(r.reference_pass.1);
    }
    println!(
        "\n== libmodsecurity 3.0.9 against the corpus expectations (stages passed: as written / with nginx-overrides.yaml)"
    );
    for (dir, (n, a, b)) in &per_dir {
        println!("{dir:<48} {a:>5} / {b:>5} of {n:>5}");
    }
    for prefix in ["REQUEST-", "RESPONSE-"] {
        let (n, a, b) = per_dir
            .iter()
            .filter(|(d, _)| d.starts_with(prefix))
            .fold((0, 0, 0), |acc, (_, c)| {
                (acc.0 + c.0, acc.1 + c.1, acc.2 + c.2)
            });
        let pct = |x: usize| 100.0 * x as f64 / n.max(1) as f64;
        println!(
            "{prefix}* stages: {a} / {b} of {n} passed ({:.1} % / {:.1} %)",
            pct(a),
            pct(b)
        );
    }
    let failed: Vec<String> = items
        .iter()
        .zip(results)
        .filter(|(_, r)| !r.reference_pass.1)
        .map(|(i, r)| {
            format!(
                "{}/{} logged {:?}",
                i.name,
                i.index,
                r.reference.as_deref().unwrap_or_default()
            )
        })
        .collect();
    println!(
        "failing with nginx-overrides ({}): {}",
        failed.len(),
        failed.join(", ")
    );
}

/// What the comparison of all stages found.
#[derive(Default)]
struct Tally<'a> {
    /// Stages compared and disagreeing, per rule file.
    per_dir: BTreeMap<&'a str, (usize, usize)>,
    /// Stages where only libmodsecurity / only we logged the id.
    per_id: BTreeMap<u32, (usize, usize)>,
    /// Stages that differ only in KNOWN_REFERENCE_DEVIATIONS.
    known_only: usize,
    /// Stages per explained deviation.
    explained: BTreeMap<(u32, &'static str), usize>,
    /// The disagreeing stages to print.
    shown: Vec<String>,
    /// Disagreeing stages.
    total: usize,
}

/// Compares one stage's ids; None when the reference did not run.
fn compare(r: &StageResult) -> Option<(BTreeSet<u32>, BTreeSet<u32>)> {
    let theirs = r.reference.as_ref().filter(|_| r.forwarded)?;
    let known = |id: &u32| {
        KNOWN_REFERENCE_DEVIATIONS.iter().any(|(k, _)| k == id)
            || r.explained.iter().any(|(e, _)| e == id)
    };
    let a = theirs.iter().copied().filter(|id| !known(id)).collect();
    let b = r
        .ours
        .iter()
        .flatten()
        .copied()
        .filter(|id| !known(id))
        .collect();
    Some((a, b))
}

/// One disagreeing stage as printed.
fn show_stage(item: &Item<'_>, r: &StageResult, a: &BTreeSet<u32>, b: &BTreeSet<u32>) -> String {
    let theirs = r.reference.as_deref().unwrap_or_default();
    let ours = r
        .ours
        .as_ref()
        .map_or("panicked".to_string(), |o| format!("{o:?}"));
    let mut text = format!(
        "  {} stage {} [{}]\n    libmodsecurity {theirs:?}\n    bulkhead-waf   {ours}",
        item.name, item.index, item.dir
    );
    if let Some((lines, matches)) = &r.detail {
        let differing: BTreeSet<u32> = if verbose_all() {
            a.union(b).copied().collect()
        } else {
            a.symmetric_difference(b).copied().collect()
        };
        text.push_str(&stage_detail(&differing, lines, matches));
    }
    text
}

impl<'a> Tally<'a> {
    fn add(&mut self, item: &'a Item<'_>, r: &StageResult, show: usize) {
        let Some((a, b)) = compare(r) else { return };
        let counts = self.per_dir.entry(item.dir).or_default();
        counts.0 += 1;
        if a == b && r.ours.is_some() {
            for (id, why) in &r.explained {
                *self.explained.entry((*id, why)).or_default() += 1;
            }
            let full = |ids: &[u32]| ids.iter().copied().collect::<BTreeSet<u32>>();
            let theirs = r.reference.as_deref().unwrap_or_default();
            let differ = full(theirs) != full(r.ours.as_deref().unwrap_or_default());
            self.known_only += usize::from(differ && r.explained.is_empty());
            return;
        }
        counts.1 += 1;
        self.total += 1;
        for id in a.difference(&b) {
            self.per_id.entry(*id).or_default().0 += 1;
        }
        for id in b.difference(&a) {
            self.per_id.entry(*id).or_default().1 += 1;
        }
        if self.shown.len() < show {
            self.shown.push(show_stage(item, r, &a, &b));
        }
    }

    fn print(&self) {
        println!(
            "\n== disagreements on logged rule ids (stages compared / disagreeing), per rule file"
        );
        for (dir, (n, d)) in &self.per_dir {
            println!("{dir:<48} {n:>5} / {d:>4}");
        }
        let compared: usize = self.per_dir.values().map(|c| c.0).sum();
        println!("total: {} of {compared} stages disagree", self.total);
        for (id, why) in KNOWN_REFERENCE_DEVIATIONS {
            println!("not compared: rule {id}: {why}");
        }
        println!(
            "({} more stages differ only in those rules)",
            self.known_only
        );
        for ((id, why), n) in &self.explained {
            println!("explained: rule {id} in {n} stages: {why}");
        }
        let mut ids: Vec<_> = self.per_id.iter().collect();
        ids.sort_by_key(|(id, (a, b))| (std::cmp::Reverse(a + b), **id));
        let top: Vec<String> = ids
            .iter()
            .take(40)
            .map(|(id, (a, b))| format!("{id} (only libmodsecurity {a}, only ours {b})"))
            .collect();
        println!("rule ids most often in disagreement: {}", top.join(", "));
        println!(
            "first {} disagreeing stages:\n{}",
            self.shown.len(),
            self.shown.join("\n")
        );
    }
}

/// Disagreeing stages: reported, and counted against the ratchet.
fn disagreements(items: &[Item<'_>], results: &[StageResult]) -> usize {
    let show: usize = std::env::var("DIFF_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut tally = Tally::default();
    for (item, r) in items.iter().zip(results) {
        tally.add(item, r, show);
    }
    tally.print();
    tally.total
}

/// libmodsecurity's log lines and our matches for the rules in `differing`.
fn stage_detail(differing: &BTreeSet<u32>, lines: &[String], matches: &[String]) -> String {
    let mut out = String::new();
    for l in lines {
        if bulkhead_modsec_ref::logline::rule_id(l).is_some_and(|id| differing.contains(&id)) {
            out.push_str(&format!("\n      libmodsecurity: {l}"));
        }
    }
    for m in matches {
        let id = m.split(' ').next().and_then(|s| s.parse::<u32>().ok());
        if id.is_some_and(|id| differing.contains(&id)) {
            out.push_str(&format!("\n      bulkhead-waf:   {m}"));
        }
    }
    out
}

/// The allowed number of disagreeing stages: the first non-comment line of the ratchet file.
fn ratchet(path: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{}: no count", path.display()))?;
    line.parse()
        .with_context(|| format!("{}: {line:?} is not a count", path.display()))
}

#[test]
fn libmodsecurity_and_bulkhead_waf_log_the_same_rules() -> anyhow::Result<()> {
    let corpus = corpus_dir();
    let suite =
        Suite::load(&corpus.join("tests/regression/tests")).context("loading the go-ftw corpus")?;
    let nginx = Overrides::load_go_ftw(&corpus.join("tests/regression/nginx-overrides.yaml"))?;
    let ours =
        bulkhead_rules_with(Profile::Ci, &corpus, &extra_sources()).map_err(anyhow::Error::msg)?;
    let filters = only_filters();
    let items: Vec<Item<'_>> = suite
        .cases()
        .flat_map(|(file, test)| {
            test.stages
                .iter()
                .enumerate()
                .map(move |(index, stage)| Item {
                    dir: &file.dir,
                    name: test.name(),
                    index,
                    stage,
                    rule_id: test.rule_id,
                    test_id: test.test_id,
                })
        })
        .filter(|item| selected(&filters, item))
        .collect();
    let threads = std::env::var("DIFF_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let results = run_all(&items, &ours, &nginx, threads)?;
    let not_forwarded = results.iter().filter(|r| !r.forwarded).count();
    println!(
        "{} stages, {not_forwarded} not forwarded by the Apache front (or not buildable)",
        items.len()
    );
    print_reference_pass_rate(&items, &results);
    let total = disagreements(&items, &results);
    if !filters.is_empty() || extra_sources().is_empty() {
        println!("DIFF_ONLY or DIFF_REQUEST_BODY set: ratchet not checked");
        return Ok(());
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("disagreements.txt");
    let allowed = ratchet(&path)?;
    anyhow::ensure!(
        total <= allowed,
        "{total} stages disagree, more than the {allowed} allowed by {}: a regression (or fix the ratchet)",
        path.display()
    );
    if total < allowed {
        println!(
            "ratchet: {total} < {allowed}; lower {} to {total}",
            path.display()
        );
    }
    Ok(())
}
