//! End-to-end tests of `bulkhead cert`: the flags, files and exit codes of DESIGN.md §3
//! that scripts rely on, and the documented root rotation sequence, run against the real
//! binary in temporary directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const WEB: &str = "spiffe://example.org/ns/shop/sa/web";

/// A temporary working directory; commands are written as in a shell (no quoting needed).
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn run(&self, command: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bulkhead"))
            .args(command.split_whitespace())
            .current_dir(self.tmp.path())
            .output()
            .expect("spawn bulkhead")
    }

    /// Runs and requires exit 0; returns stdout.
    fn ok(&self, command: &str) -> String {
        let out = self.run(command);
        assert!(out.status.success(), "{command}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and requires exit 1; returns stdout and stderr.
    fn fails(&self, command: &str) -> String {
        let out = self.run(command);
        assert_eq!(out.status.code(), Some(1), "{command}:\n{}", text(&out));
        text(&out)
    }

    /// Whether `cert inspect CERT --bundle BUNDLE` exits 0.
    fn verifies(&self, cert: &str, bundle: &str) -> bool {
        let out = self.run(&format!("cert inspect {cert} --bundle {bundle}"));
        out.status.code() == Some(0)
    }

    fn mode(&self, rel: &str) -> u32 {
        let meta = std::fs::metadata(self.path(rel)).unwrap();
        meta.permissions().mode() & 0o777
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}

fn text(out: &Output) -> String {
    let (o, e) = (&out.stdout, &out.stderr);
    format!(
        "{}{}",
        String::from_utf8_lossy(o),
        String::from_utf8_lossy(e)
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(haystack.contains(needle), "{needle:?} not in\n{haystack}");
    }
}

#[test]
fn init_issue_inspect_writes_the_documented_files_and_verifies() {
    let sb = Sandbox::new();
    sb.ok("cert init --trust-domain example.org --out ca");
    for file in ["ca.pem", "ca-key.pem", "bundle.pem", "ca.json"] {
        assert!(sb.path("ca").join(file).is_file(), "{file}");
    }
    assert_eq!(sb.mode("ca/ca-key.pem"), 0o600);

    let issued = sb.ok(&format!("cert issue --ca ca --id {WEB} --out web --ttl 2h"));
    assert_contains(&issued, &[&format!("issued {WEB}"), "(in 2h)"]);
    assert_eq!(sb.mode("web/key.pem"), 0o600);
    assert!(
        sb.read("web/cert.pem")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        sb.read("web/key.pem")
            .contains("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(sb.read("web/bundle.pem"), sb.read("ca/bundle.pem"));

    let shown = sb.ok("cert inspect web/cert.pem --bundle ca/bundle.pem");
    assert_contains(
        &shown,
        &[
            &format!("spiffe id   {WEB}"),
            "key type    ECDSA P-256",
            "bundle      ca/bundle.pem: verified",
            "result      valid X.509-SVID",
        ],
    );
    let report = json(&sb.ok("cert inspect web/cert.pem --bundle ca/bundle.pem -o json"));
    assert_eq!(report["spiffe_id"], WEB);
    assert_eq!(report["valid"], true);
    assert_eq!(report["verified"], true);
    assert_eq!(report["key_type"], "ECDSA P-256");
    let remaining = report["remaining_seconds"].as_i64().unwrap();
    assert!((7000..=7200).contains(&remaining), "{remaining}");

    // Without --bundle nothing is verified, but a well-formed, current SVID passes.
    let report = json(&sb.ok("cert inspect web/cert.pem -o json"));
    assert_eq!(report["verified"], Value::Null);
    assert_eq!(report["valid"], true);
}

#[test]
fn inspect_fails_with_the_reason_for_a_foreign_bundle_or_a_non_svid() {
    let sb = Sandbox::new();
    sb.ok("cert init --trust-domain example.org --out ca");
    sb.ok("cert init --trust-domain example.org --out other");
    sb.ok(&format!("cert issue --ca ca --id {WEB} --out web"));

    let out = sb.fails("cert inspect web/cert.pem --bundle other/bundle.pem");
    assert_contains(
        &out,
        &[
            WEB, // it still prints what it found
            "bundle      other/bundle.pem: NOT verified",
            "result      INVALID: unknown issuer: the certificate for",
        ],
    );
    let report = json(&sb.fails("cert inspect web/cert.pem --bundle other/bundle.pem -o json"));
    assert_eq!(
        (&report["valid"], &report["verified"]),
        (&false.into(), &false.into())
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown issuer")
    );

    let td = "--trust-domain prod.example";
    let out = sb.fails(&format!(
        "cert inspect web/cert.pem --bundle ca/bundle.pem {td}"
    ));
    assert_contains(&out, &["INVALID: wrong trust domain"]);
    let out = sb.fails("cert inspect ca/ca.pem");
    assert_contains(
        &out,
        &["INVALID: not an X.509-SVID: leaf is a CA certificate"],
    );
    std::fs::write(sb.path("junk.pem"), "not a certificate\n").unwrap();
    let out = sb.fails("cert inspect junk.pem");
    assert_contains(&out, &["error: junk.pem: no CERTIFICATE block found"]);
}

#[test]
fn issue_refuses_invalid_ids_with_exit_code_1_and_the_reason() {
    let sb = Sandbox::new();
    sb.ok("cert init --trust-domain example.org --out ca");
    let cases = [
        (
            "spiffe://example.org:8443/ns/a/sa/b",
            "trust domain must not carry a port",
        ),
        (
            "SPIFFE://example.org/ns/a/sa/b",
            "scheme must be lower-case `spiffe://`",
        ),
        (
            "spiffe://example.org/ns/a/sa/b/",
            "path must not end with a slash",
        ),
        (
            "spiffe://example.org/ns/../sa/b",
            "path must not contain '.' or '..' segments",
        ),
        (
            "spiffe://Example.org/ns/a/sa/b",
            "trust domain may contain only a-z",
        ),
        (
            "spiffe://other.org/ns/a/sa/b",
            "is not in this CA's trust domain",
        ),
    ];
    for (id, reason) in cases {
        let out = sb.fails(&format!("cert issue --ca ca --id {id} --out x"));
        assert_contains(&out, &[reason]);
        assert!(
            !sb.path("x/key.pem").exists(),
            "{id}: nothing may be written"
        );
    }
    // The ID is judged before the CA directory is even read.
    let out = sb.fails("cert issue --ca missing --id spiffe://a:1/x --out x");
    assert_contains(
        &out,
        &["error: invalid SPIFFE ID `spiffe://a:1/x`: trust domain must not carry a port"],
    );
    let out = sb.fails(&format!("cert issue --ca missing --id {WEB} --out x"));
    assert_contains(
        &out,
        &["missing: not a Bulkhead CA directory (ca.json is missing)"],
    );
}

#[test]
fn init_brings_your_own_ca_and_refuses_a_mismatched_key() {
    let sb = Sandbox::new();
    sb.ok("cert init --trust-domain example.org --out corp");
    sb.ok("cert init --trust-domain example.org --out corp2");
    let init = "cert init --trust-domain example.org --out mesh";
    let out = sb.fails(&format!(
        "{init} --from-cert corp/ca.pem --from-key corp2/ca-key.pem"
    ));
    assert_contains(
        &out,
        &[
            "corp2/ca-key.pem: private key does not match the public key of corp/ca.pem, \
           certificate #1",
        ],
    );
    let other = "cert init --trust-domain other.org --out mesh";
    let out = sb.fails(&format!(
        "{other} --from-cert corp/ca.pem --from-key corp/ca-key.pem"
    ));
    assert_contains(
        &out,
        &["carries URI SAN spiffe://example.org, which is not an ID of trust domain other.org"],
    );
    let byo = "--from-cert corp/ca.pem --from-key corp/ca-key.pem";
    sb.ok(&format!("{init} --max-ttl 1d {byo}"));
    assert_eq!(sb.mode("mesh/ca-key.pem"), 0o600);
    let issued = sb.ok(&format!(
        "cert issue --ca mesh --id {WEB} --out web --ttl 3d -o json"
    ));
    assert_eq!(
        json(&issued)["ttl_capped"],
        "TTL capped to the CA's maximum of 1d"
    );
    sb.ok("cert inspect web/cert.pem --bundle corp/bundle.pem");
    assert_contains(&sb.fails(init), &["mesh: already holds a CA"]);
}

/// The documented rotation: stage (new root trusted, old CA signs), distribute, activate
/// (new CA signs, both roots trusted), re-issue, drop the old root.
#[test]
fn root_rotation_sequence_keeps_every_pair_of_workloads_verifying() {
    let sb = Sandbox::new();
    let issue = |sa: &str, out: &str| {
        sb.ok(&format!(
            "cert issue --ca ca --id spiffe://example.org/ns/shop/sa/{sa} --out {out}"
        ));
    };
    sb.ok("cert init --trust-domain example.org --out ca");
    issue("web", "web-old");

    // 1. Stage: the bundle gains the new root; SVIDs still come from the old one.
    let staged = sb.ok("cert init --rotate --ca ca");
    assert_contains(&staged, &["bulkhead cert init --rotate --activate --ca ca"]);
    assert_eq!(sb.mode("ca/next/ca-key.pem"), 0o600);
    let bundle = json(&sb.ok("cert bundle --ca ca -o json"));
    let roles: Vec<_> = bundle["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["role"])
        .collect();
    assert_eq!(roles, ["signing", "staged"]);
    // Distribution: re-issuing from the old CA hands out the two-root bundle.
    issue("web", "web");
    issue("api", "api");
    assert!(sb.verifies("web/cert.pem", "api/bundle.pem"));

    // 2. Activate: the new CA signs; old and new SVIDs verify against the two-root bundle.
    let activated = sb.ok("cert init --rotate --activate --ca ca");
    let retired = retired_ca_pem(&sb.path("ca/retired"));
    assert_contains(&activated, &[&format!("--remove ca/retired/{retired}")]);
    issue("db", "db");
    assert!(
        sb.verifies("db/cert.pem", "web/bundle.pem"),
        "new SVID, distributed bundle"
    );
    assert!(
        sb.verifies("web/cert.pem", "db/bundle.pem"),
        "old SVID, new bundle"
    );
    // Why distribution comes before activation: a bundle from before step 1 lacks the root.
    assert!(!sb.verifies("db/cert.pem", "web-old/bundle.pem"));
    issue("web", "web");
    issue("api", "api");

    // 3. Drop the old root once every SVID comes from the new one.
    let out = sb.fails("cert bundle --ca ca --remove ca/ca.pem");
    assert_contains(&out, &["the signing CA chains to it"]);
    let removed = sb.ok(&format!(
        "cert bundle --ca ca --remove ca/retired/{retired}"
    ));
    assert_contains(&removed, &["removed: ", "1 root(s) for example.org"]);
    issue("web", "web");
    assert!(sb.verifies("web/cert.pem", "ca/bundle.pem"));
    assert!(sb.verifies("db/cert.pem", "web/bundle.pem"));
    assert!(
        !sb.verifies("web-old/cert.pem", "ca/bundle.pem"),
        "old root is gone"
    );

    let out = sb.fails("cert init --rotate --activate --ca ca");
    assert_contains(&out, &["no rotation is staged"]);
    let readded = sb.ok(&format!("cert bundle --ca ca --add ca/retired/{retired}"));
    assert_contains(&readded, &["added: "]);
}

/// `<serial>/ca.pem` of the only retired CA.
fn retired_ca_pem(retired: &Path) -> String {
    let entries: Vec<_> = std::fs::read_dir(retired).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let serial = entries[0].as_ref().unwrap().file_name();
    format!("{}/ca.pem", serial.to_str().unwrap())
}

#[test]
fn bad_durations_are_usage_errors() {
    let sb = Sandbox::new();
    let out = sb.run(&format!("cert issue --ca ca --id {WEB} --out x --ttl 24"));
    assert_eq!(out.status.code(), Some(2));
    assert_contains(
        &text(&out),
        &["invalid duration `24`: expected e.g. 90s, 30m, 24h or 7d"],
    );
}
