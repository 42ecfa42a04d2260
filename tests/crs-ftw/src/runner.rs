//! Running every stage of every test against an in-process WAF, in parallel, and tallying
//! the results per rule-file directory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::expect::{Observed, check};
use crate::load::{Suite, TestCase, TestFile};
use crate::overrides::Overrides;
use crate::server::{Front, apache_front};
use crate::wire::build_request;

/// Results of one directory (one CRS rule file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests whose every stage passed.
    pub passed: usize,
    /// Tests with a failing stage.
    pub failed: usize,
    /// Tests skipped by an override.
    pub skipped: usize,
}

/// One failed test.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Directory of the test file.
    pub dir: String,
    /// `<rule_id>-<test_id>`.
    pub name: String,
    /// 0-based index of the failing stage.
    pub stage: usize,
    /// Why it failed.
    pub problems: Vec<String>,
    /// Ids the stage expected to be logged.
    pub expected_ids: Vec<u32>,
    /// Ids the stage expected not to be logged.
    pub unexpected_ids: Vec<u32>,
    /// Ids that were logged.
    pub logged_ids: Vec<u32>,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Counts per directory, sorted by name.
    pub per_dir: BTreeMap<String, Counts>,
    /// Every failure, in suite order.
    pub failures: Vec<Failure>,
    /// The slowest tests (name and wall time), slowest first, at most ten.
    pub slowest: Vec<(String, Duration)>,
}

impl Report {
    /// Totals over all directories.
    pub fn totals(&self) -> Counts {
        self.per_dir
            .values()
            .fold(Counts::default(), |acc, c| Counts {
                passed: acc.passed + c.passed,
                failed: acc.failed + c.failed,
                skipped: acc.skipped + c.skipped,
            })
    }

    /// Failures listed one per line with expected and logged ids, then the slowest tests.
    pub fn failure_details(&self) -> String {
        let mut out = String::new();
        let slowest: Vec<String> = self
            .slowest
            .iter()
            .map(|(n, d)| format!("{n} {d:.1?}"))
            .collect();
        out.push_str(&format!("slowest tests: {}\n", slowest.join(", ")));
        for f in &self.failures {
            out.push_str(&format!(
                "FAIL {} [{}] stage {}: {}\n     expect_ids {:?} no_expect_ids {:?} logged {:?}\n",
                f.name,
                f.dir,
                f.stage,
                f.problems.join("; "),
                f.expected_ids,
                f.unexpected_ids,
                f.logged_ids
            ));
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (dir, c) in &self.per_dir {
            writeln!(
                f,
                "{dir:<48} {:>5} passed, {:>4} failed, {:>3} skipped",
                c.passed, c.failed, c.skipped
            )?;
        }
        let t = self.totals();
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        )
    }
}

/// Runs one stage's raw request through the front server and, when it is forwarded, `waf`.
/// A panic in `waf` becomes a failed exchange, so one engine bug does not stop the run.
pub fn exchange(raw: &[u8], waf: &(impl Fn(&[u8]) -> Observed + ?Sized)) -> Observed {
    match apache_front(raw) {
        Front::Forward => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waf(raw)))
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Observed::TransportError(format!("the WAF panicked: {message}"))
            }),
        Front::Reject { status, reason } => Observed::Response {
            status,
            text: format!("HTTP/1.1 {status} ({reason})\r\n\r\n"),
            log_lines: Vec::new(),
        },
        Front::Http09 => Observed::TransportError("HTTP/0.9 response without a status line".into()),
    }
}

enum CaseResult {
    Passed,
    Skipped,
    Failed(Failure),
}

fn run_case(
    file: &TestFile,
    test: &TestCase,
    overrides: &Overrides,
    waf: &(impl Fn(&[u8]) -> Observed + Sync),
) -> CaseResult {
    if overrides.skip_reason(test.rule_id, test.test_id).is_some() {
        return CaseResult::Skipped;
    }
    for (index, stage) in test.stages.iter().enumerate() {
        let output = overrides.output_for(test.rule_id, test.test_id, index, &stage.output);
        let fail = |problems: Vec<String>, logged_ids: Vec<u32>| {
            CaseResult::Failed(Failure {
                dir: file.dir.clone(),
                name: test.name(),
                stage: index,
                problems,
                expected_ids: output.log.expect_ids.clone(),
                unexpected_ids: output.log.no_expect_ids.clone(),
                logged_ids,
            })
        };
        let raw = match build_request(&stage.input) {
            Ok(raw) => raw,
            Err(e) => return fail(vec![e.to_string()], Vec::new()),
        };
        let mut observed = exchange(&raw, waf);
        let mut verdict = check(output, &observed);
        // The in-process run is deterministic, so a retry only matters for fidelity.
        if verdict.is_err() && output.retry_once == Some(true) {
            observed = exchange(&raw, waf);
            verdict = check(output, &observed);
        }
        if let Err(problems) = verdict {
            return fail(problems, observed.triggered());
        }
    }
    CaseResult::Passed
}

/// Runs every test of the suite on `threads` threads; `waf` handles each forwarded request.
pub fn run_suite(
    suite: &Suite,
    overrides: &Overrides,
    threads: usize,
    waf: &(impl Fn(&[u8]) -> Observed + Sync),
) -> Report {
    let cases: Vec<(&TestFile, &TestCase)> = suite.cases().collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(CaseResult, Duration)>>> =
        Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((file, test)) = cases.get(i) else {
                        break;
                    };
                    let started = Instant::now();
                    let result = run_case(file, test, overrides, waf);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some((result, started.elapsed()));
                    }
                }
            });
        }
    });
    let mut report = Report::default();
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut timings = Vec::with_capacity(cases.len());
    for ((file, test), slot) in cases.iter().zip(results) {
        let counts = report.per_dir.entry(file.dir.clone()).or_default();
        let result = slot.map(|(result, took)| {
            timings.push((test.name(), took));
            result
        });
        match result {
            Some(CaseResult::Passed) => counts.passed += 1,
            Some(CaseResult::Skipped) => counts.skipped += 1,
            Some(CaseResult::Failed(failure)) => {
                counts.failed += 1;
                report.failures.push(failure);
            }
            None => counts.failed += 1,
        }
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.1));
    timings.truncate(10);
    report.slowest = timings;
    report
}
