//! `bulkhead waf test`: the `-o json` contract conformance tools rely on, the text output,
//! `--rules`, `--config`, `--paranoia` and the errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn waf_test(args: &[&str], request: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["waf", "test", "--request", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bulkhead");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes())
        .expect("write request");
    child.wait_with_output().expect("wait")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "exactly one line: {text}");
    serde_json::from_str(&text).expect("one JSON object")
}

fn crs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/crs")
}

const SQLI: &str = "GET /?id=1%27%20OR%201=1-- HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n";
const BENIGN: &str = "GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n";

#[test]
fn json_has_exactly_the_contract_fields() {
    let v = json(&waf_test(&["-o", "json"], SQLI));
    let obj = v.as_object().expect("object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["action", "inbound_score", "matched"]);
    let ids: Vec<u64> = v["matched"]
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i.as_u64().expect("integer id"))
        .collect();
    assert!(ids.contains(&942100), "libinjection SQLi rule: {ids:?}");
    assert!(ids.contains(&949110), "the anomaly threshold rule: {ids:?}");
    let pos = |id| ids.iter().position(|i| *i == id).expect("present");
    assert!(pos(942100) < pos(949110), "firing order: {ids:?}");
    assert!(v["inbound_score"].as_i64().expect("number") >= 5);
    assert_eq!(v["action"], "block");
}

#[test]
fn benign_request_passes_with_nothing_matched() {
    let v = json(&waf_test(&["-o", "json"], BENIGN));
    assert_eq!(
        v,
        serde_json::json!({"matched": [], "inbound_score": 0, "action": "pass"})
    );
}

#[test]
fn rules_from_a_directory_and_paranoia_change_the_result() {
    let crs = crs_dir();
    let dir = crs.to_string_lossy();
    // 920273 (strict character set) is a paranoia-level-4 rule: on at PL4, off at PL1.
    let pl4 = json(&waf_test(&["--rules", &dir, "-o", "json"], SQLI));
    let pl1 = json(&waf_test(
        &["--rules", &dir, "--paranoia", "1", "-o", "json"],
        SQLI,
    ));
    let has = |v: &Value, id: u64| {
        v["matched"]
            .as_array()
            .expect("array")
            .iter()
            .any(|i| i.as_u64() == Some(id))
    };
    assert!(
        has(&pl4, 920273) && !has(&pl1, 920273),
        "pl4 {pl4} pl1 {pl1}"
    );
    assert!(has(&pl1, 942100));
    assert!(pl1["inbound_score"].as_i64() < pl4["inbound_score"].as_i64());
}

#[test]
fn blocking_config_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("blocking.conf");
    std::fs::write(
        &config,
        "SecRuleEngine On\nSecRequestBodyAccess On\n\
         SecDefaultAction \"phase:1,log,auditlog,pass\"\nSecDefaultAction \"phase:2,log,auditlog,pass\"\n\
         SecAction \"id:900990,phase:1,pass,nolog,setvar:tx.crs_setup_version=4251\"\n",
    )
    .expect("write config");
    let out = waf_test(&["--config", &config.to_string_lossy()], SQLI);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("942100"), "{text}");
    assert!(
        text.contains("action: block (stopped by rule 949110 with status 403)"),
        "{text}"
    );
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let out = waf_test(&["-o", "json"], "this is not http\r\nno colon here\r\n\r\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid HTTP/1.1 request"), "{err}");

    let out = waf_test(&["--rules", "/nonexistent-crs", "-o", "json"], BENIGN);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rules /nonexistent-crs"));

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.conf");
    std::fs::write(
        &config,
        "SecRuleEngine On\nSecRule ARGS \"@nosuchop x\" \"id:1,pass\"\n",
    )
    .expect("write");
    let out = waf_test(&["--config", &config.to_string_lossy()], BENIGN);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:2") && err.contains("nosuchop"),
        "{err}"
    );
}
