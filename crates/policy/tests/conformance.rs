//! Runs every case under `conformance/` (see its README): load the case's resources with the
//! same loader and engine as `bulkhead policy eval`, evaluate each query, compare.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use bulkhead_policy::query::Query;
use bulkhead_policy::{Engine, Options};
use bulkhead_resources::load::{Format, Loader};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    name: String,
    description: String,
    source: String,
    #[serde(default)]
    options: CaseOptions,
    resources: String,
    #[serde(default)]
    queries: Vec<CaseQuery>,
    #[serde(default)]
    expect_error: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaseOptions {
    trust_domain: Option<String>,
    root_namespace: Option<String>,
    #[serde(default)]
    trust_domain_aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseQuery {
    query: Value,
    expect: BTreeMap<String, Value>,
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

fn case_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            case_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

fn options(o: &CaseOptions) -> Options {
    let d = Options::default();
    Options {
        trust_domain: o.trust_domain.clone().unwrap_or(d.trust_domain),
        trust_domain_aliases: o.trust_domain_aliases.clone(),
        root_namespace: o.root_namespace.clone().unwrap_or(d.root_namespace),
    }
}

/// Runs one case; returns the failures as text (empty when it passes) and the query count.
fn run_case(path: &Path) -> Result<(String, usize)> {
    let text = std::fs::read_to_string(path)?;
    let case: Case = serde_norway::from_str(&text).map_err(|e| anyhow!("case file: {e}"))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    anyhow::ensure!(
        case.name == stem,
        "case name `{}` differs from file name",
        case.name
    );
    anyhow::ensure!(
        !case.description.is_empty() && !case.source.is_empty(),
        "case needs a description and a source"
    );
    let mut loader = Loader::new();
    let origin = format!("{}#resources", path.display());
    let loaded = loader
        .add_str(&case.resources, &origin, Format::Yaml)
        .and_then(|()| loader.finish());
    if !case.expect_error.is_empty() {
        let err = match loaded {
            Ok(_) => {
                return Ok((
                    format!(
                        "expected a load error containing {:?}, loading succeeded\n",
                        case.expect_error
                    ),
                    1,
                ));
            }
            Err(e) => e.to_string(),
        };
        let missing: Vec<_> = case
            .expect_error
            .iter()
            .filter(|s| !err.contains(s.as_str()))
            .collect();
        let report = if missing.is_empty() {
            String::new()
        } else {
            format!("error lacks {missing:?}:\n{err}\n")
        };
        return Ok((report, 1));
    }
    let resources = loaded.map_err(|e| anyhow!("loading resources: {e}"))?;
    let engine = Engine::compile(&resources, options(&case.options))?;
    let mut failures = String::new();
    for q in &case.queries {
        let query = Query::from_value(q.query.clone())?;
        let request = query.request(&engine)?;
        let record = engine.evaluate(&request).to_json();
        anyhow::ensure!(
            q.expect.contains_key("decision"),
            "query {} has no expected decision",
            query.id
        );
        for (key, want) in &q.expect {
            let got = record.get(key).unwrap_or(&Value::Null);
            if got != want {
                let _ = writeln!(
                    failures,
                    "  query {}: {key}: expected {want}, got {got}\n    decision: {}",
                    query.id,
                    Value::Object(record.clone())
                );
            }
        }
    }
    Ok((failures, case.queries.len()))
}

#[test]
fn conformance_suite() {
    let mut files = Vec::new();
    case_files(&suite_dir(), &mut files).expect("conformance directory");
    files.sort();
    let mut report = String::new();
    let (mut cases, mut queries, mut failed) = (0, 0, 0);
    for path in &files {
        cases += 1;
        match run_case(path) {
            Ok((f, n)) => {
                queries += n;
                if !f.is_empty() {
                    failed += 1;
                    let _ = write!(report, "{}:\n{f}", path.display());
                }
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(report, "{}: {e:#}", path.display());
            }
        }
    }
    println!("conformance: {cases} cases, {queries} queries, {failed} failing cases");
    assert!(
        cases >= 80,
        "the suite must hold at least 80 cases, found {cases}"
    );
    assert!(
        failed == 0,
        "{failed} of {cases} conformance cases failed:\n{report}"
    );
}
