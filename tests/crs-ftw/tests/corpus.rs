//! The go-ftw emulation against the real CRS corpus, without a WAF: every file loads, every
//! stage builds, and the front-server emulation reproduces every `status`/`expect_error`
//! expectation that comes from Apache rather than from the WAF.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use bulkhead_crs_ftw::load::Suite;
use bulkhead_crs_ftw::overrides::Overrides;
use bulkhead_crs_ftw::server::{Front, apache_front};
use bulkhead_crs_ftw::wire::build_request;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/crs")
}

fn suite() -> Result<Suite> {
    let dir = corpus().join("tests/regression/tests");
    Suite::load(&dir).with_context(|| format!("loading {}", dir.display()))
}

#[test]
fn every_file_loads_and_every_stage_builds() -> Result<()> {
    let suite = suite()?;
    let stages: usize = suite.cases().map(|(_, t)| t.stages.len()).sum();
    ensure!(suite.files.len() == 257, "files: {}", suite.files.len());
    ensure!(suite.test_count() == 4106, "tests: {}", suite.test_count());
    ensure!(stages == 4112, "stages: {stages}");
    for (_, test) in suite.cases() {
        for stage in &test.stages {
            build_request(&stage.input).with_context(|| test.name())?;
        }
    }
    Ok(())
}

#[test]
fn front_server_matches_status_expectations() -> Result<()> {
    let suite = suite()?;
    let mut checked = 0;
    for (_, test) in suite.cases() {
        for stage in &test.stages {
            let raw = build_request(&stage.input)?;
            let front = apache_front(&raw);
            let expected = match (stage.output.expect_error, stage.output.status) {
                (Some(true), _) => Front::Http09,
                (_, 0) => continue,
                (_, 400) => Front::Reject {
                    status: 400,
                    reason: String::new(),
                },
                _ => Front::Forward,
            };
            let same = match (&front, &expected) {
                (Front::Reject { status: a, .. }, Front::Reject { status: b, .. }) => a == b,
                _ => front == expected,
            };
            ensure!(
                same,
                "{}: front server said {front:?}, test expects {expected:?}",
                test.name()
            );
            checked += 1;
        }
    }
    ensure!(checked == 28, "checked {checked} stages");
    Ok(())
}

#[test]
fn requests_that_expect_rule_matches_reach_the_waf() -> Result<()> {
    let suite = suite()?;
    let mut rejected = Vec::new();
    for (_, test) in suite.cases() {
        for stage in &test.stages {
            let wants_match =
                !stage.output.log.expect_ids.is_empty() || !stage.output.log.match_regex.is_empty();
            if !wants_match || stage.output.expect_error == Some(true) {
                continue;
            }
            if let Front::Reject { reason, .. } = apache_front(&build_request(&stage.input)?) {
                rejected.push(format!("{}: {reason}", test.name()));
            }
        }
    }
    ensure!(
        rejected.is_empty(),
        "rejected although a match is expected: {rejected:#?}"
    );
    Ok(())
}

#[test]
fn upstream_overrides_files_parse() -> Result<()> {
    for name in ["httpd", "nginx", "coraza"] {
        let path = corpus().join(format!("tests/regression/{name}-overrides.yaml"));
        let overrides = Overrides::load_go_ftw(&path)?;
        ensure!(!overrides.entries.is_empty(), "{name}: no entries");
    }
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("overrides.yaml");
    Overrides::load_ours(&ours)?;
    Ok(())
}

#[test]
fn byte_exact_corpus_requests() -> Result<()> {
    let suite = suite()?;
    let stage = |rule: u32, test: u32| {
        suite
            .cases()
            .find(|(_, t)| t.rule_id == rule && t.test_id == test)
            .map(|(_, t)| t.stages[0].input.clone())
            .with_context(|| format!("{rule}-{test} not found"))
    };
    // A bodyless POST gets Content-Length: 0 after the sorted headers.
    let raw = String::from_utf8(build_request(&stage(920470, 5)?)?)?;
    ensure!(
        raw.ends_with("Connection: close\r\nContent-Length: 0\r\n\r\n"),
        "{raw:?}"
    );
    // 920400's template expands to a body of just over 64 KB, sent with CRLF line ends.
    let raw = build_request(&stage(920400, 1)?)?;
    ensure!(raw.windows(64200).any(|w| w.iter().all(|&b| b == b'1')));
    ensure!(raw.len() > 64300 && !raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
    // An encoded_request is sent verbatim.
    let raw = build_request(&stage(920290, 4)?)?;
    ensure!(raw == b"GET / HTTP/1.0\r\nHost:\r\n\r\n", "{raw:?}");
    Ok(())
}
