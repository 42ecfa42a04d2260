//! Compiles every operator of the OWASP CRS rule files and every `.data` file.
//!
//! The extraction is deliberately rough (the real SecLang parser lives in `parse`): comment
//! lines are dropped, continuation lines joined, and every double-quoted string starting
//! with `@` or `!@` is taken as an operator.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::{Captures, OpContext, Operator};

fn crs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/crs")
}

fn conf_files() -> Vec<PathBuf> {
    let dir = crs_dir();
    let mut files = Vec::new();
    for sub in ["rules", "ci-setup"] {
        let entries = std::fs::read_dir(dir.join(sub))
            .unwrap_or_else(|e| panic!("{}: {e} (is ../shared beside the repo?)", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "conf") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `(name, argument)` of every operator in `text`.
fn operators(text: &str) -> Vec<(String, String)> {
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let re = Regex::new(r#""!?@([A-Za-z0-9]+)(?: ((?:[^"\\]|\\.)*))?""#)
        .unwrap_or_else(|e| panic!("{e}"));
    re.captures_iter(&joined)
        .map(|c| {
            let arg = c.get(2).map_or("", |m| m.as_str()).replace("\\\"", "\"");
            (c[1].to_owned(), arg)
        })
        .collect()
}

fn all_operators() -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    for file in conf_files() {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (name, arg) in operators(&text) {
            out.push((file.clone(), name, arg));
        }
    }
    out
}

#[test]
fn every_crs_operator_compiles() {
    let rules = crs_dir().join("rules");
    let ctx = OpContext { base_dir: &rules };
    let ops = all_operators();
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (file, name, arg) in &ops {
        match Operator::compile(name, arg, &ctx) {
            Ok(op) => *counts.entry(op.name().to_owned()).or_default() += 1,
            Err(e) => failures.push(format!("{}: @{name} {arg}: {e}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Sanity: the extraction found the CRS's operators (counts from the rule files).
    assert!(counts.get("rx").copied().unwrap_or(0) >= 310, "{counts:?}");
    assert!(
        counts.get("pmFromFile").copied().unwrap_or(0) >= 20,
        "{counts:?}"
    );
    assert!(counts.get("pm").copied().unwrap_or(0) >= 10, "{counts:?}");
}

#[test]
fn every_crs_regex_has_byte_semantics() {
    let mut unicode = Vec::new();
    let mut translated = 0;
    for (file, name, arg) in all_operators() {
        if name != "rx" {
            continue;
        }
        if super::pcre::translate(&arg) != arg {
            translated += 1;
            eprintln!("translated: {arg}");
        }
        if !super::rx::compiles_as_bytes(&arg) {
            unicode.push(format!("{}: {arg}", file.display()));
        }
    }
    eprintln!("{translated} CRS patterns were rewritten from PCRE syntax");
    assert!(
        unicode.is_empty(),
        "needs Unicode mode:\n{}",
        unicode.join("\n")
    );
}

#[test]
fn every_data_file_compiles_and_matches_its_phrases() {
    let rules = crs_dir().join("rules");
    let ctx = OpContext { base_dir: &rules };
    let mut seen = 0;
    for entry in std::fs::read_dir(&rules).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "data") {
            continue;
        }
        seen += 1;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let op = Operator::compile("pmFromFile", &name, &ctx).unwrap_or_else(|e| panic!("{e}"));
        let content = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let phrases: Vec<Vec<u8>> = super::phrase::phrases_from_file(&content).collect();
        assert!(!phrases.is_empty(), "{name} has no phrases");
        for phrase in &phrases {
            let mut caps = Captures::default();
            let upper = phrase.to_ascii_uppercase();
            assert!(
                op.matches(&upper, None, Some(&mut caps)),
                "{name}: {phrase:?}"
            );
        }
    }
    assert!(seen >= 21, "found only {seen} .data files");
}

#[test]
fn crs_regexes_behave_on_known_inputs() {
    let rules = crs_dir().join("rules");
    let ctx = OpContext { base_dir: &rules };
    let find = |needle: &str| {
        all_operators()
            .into_iter()
            .find(|(_, n, a)| n == "rx" && a.contains(needle))
            .map(|(_, _, a)| Operator::compile("rx", &a, &ctx).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|| panic!("no @rx containing {needle:?}"))
    };
    // A CRS pattern with `\x7f-\x{ff}` ranges (PHP variables): the range is of bytes.
    let php = find("[A-Z_a-z\\x7f-\\x{ff}]");
    assert!(php.matches(b"$_GET['x'](1)", None, None));
    assert!(php.matches(b"$\xff\xfe(1)", None, None));
    assert!(!php.matches(b"price 5 dollars", None, None));

    // `\x{bc}`/`\x{be}` are the bytes 0xBC/0xBE (US-ASCII-encoded `<`/`>` in 941310), not
    // the UTF-8 encodings of U+00BC/U+00BE.
    let ascii_xss = find("\\x{bc}[^>\\x{be}]*[>\\x{be}]|<[^\\x{be}]*\\x{be}");
    assert!(ascii_xss.matches(b"\xbcscript\xbealert(1)", None, None));
    assert!(!ascii_xss.matches("\u{bc}script".as_bytes(), None, None));

    // 942430-style special-character counting: `\x{c2}\x{b4}` is the UTF-8 encoding of `´`.
    let twelve =
        find("\\x{c2}\\x{b4}|\\x{e2}\\x80[\\x98\\x99])[^!-\\+\\-:->@\\[\\]\\^`\\{-~]*?){12}");
    assert!(twelve.matches("´".repeat(12).as_bytes(), None, None));
    assert!(!twelve.matches("´".repeat(11).as_bytes(), None, None));
}

/// Rough cost of running every CRS `@rx`/`@pm`/`@pmFromFile` on the values of a benign GET
/// (run with `--release --ignored --nocapture`).
#[test]
#[ignore = "timing report, run manually in release mode"]
fn benign_get_timing() {
    let rules = crs_dir().join("rules");
    let ctx = OpContext { base_dir: &rules };
    let ops: Vec<Operator> = all_operators()
        .into_iter()
        .filter(|(_, n, _)| matches!(n.as_str(), "rx" | "pm" | "pmFromFile"))
        .filter_map(|(_, n, a)| Operator::compile(&n, &a, &ctx).ok())
        .collect();
    let values: [&[u8]; 6] = [
        b"/index.html",
        b"www.example.com",
        b"mozilla/5.0 (x11; linux x86_64; rv:128.0) gecko/20100101 firefox/128.0",
        b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        b"en-us,en;q=0.5",
        b"gzip, deflate, br",
    ];
    let run = || {
        let mut hits = 0usize;
        for op in &ops {
            for v in values {
                hits += usize::from(op.matches(v, None, None));
            }
        }
        hits
    };
    run();
    let rounds = 200;
    let start = std::time::Instant::now();
    let mut hits = 0;
    for _ in 0..rounds {
        hits += run();
    }
    let per = start.elapsed() / rounds;
    eprintln!(
        "{} operators x {} values: {per:?} per request ({hits} hits)",
        ops.len(),
        values.len()
    );
    let mut slowest: Vec<(std::time::Duration, &Operator)> = ops
        .iter()
        .map(|op| {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                for v in values {
                    let _ = op.matches(v, None, None);
                }
            }
            (start.elapsed() / rounds, op)
        })
        .collect();
    slowest.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (t, op) in slowest.iter().take(12) {
        let arg: String = op.argument().chars().take(100).collect();
        eprintln!("{t:?} @{} {arg}", op.name());
    }
}
