//! `bulkhead cert inspect FILE [--bundle FILE] [-o json]`: always prints what it found;
//! exits 0 only for a valid X.509-SVID chain (verified against `--bundle` when given).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use bulkhead_identity::bundle::parse_certificates;
use bulkhead_identity::ca::{self, CertSummary};
use bulkhead_identity::svid::{SvidInfo, inspect_leaf};
use bulkhead_identity::verify::{CLOCK_SKEW, verify_svid_chain};
use bulkhead_identity::{TrustBundle, TrustDomain};
use clap::Args;
use serde_json::json;

use super::{Output, print_json};

/// `cert inspect` flags.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// PEM file holding a certificate chain, leaf first (e.g. DIR/cert.pem).
    file: PathBuf,
    /// Trust bundle to verify the chain against (PEM roots, e.g. CA_DIR/bundle.pem).
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Trust domain of --bundle (default: the trust domain of the certificate's ID).
    #[arg(long, value_name = "TD", requires = "bundle")]
    trust_domain: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

/// What inspection found; `problem` is the first rule broken.
struct Report {
    certificates: usize,
    facts: Option<CertSummary>,
    svid: Option<SvidInfo>,
    /// `Some(true)` verified, `Some(false)` refused, `None` not attempted.
    verified: Option<bool>,
    problem: Option<String>,
}

/// Inspects the file; exit 0 only for a valid X.509-SVID chain.
pub(crate) fn run(args: &InspectArgs, now: SystemTime) -> Result<ExitCode> {
    let origin = args.file.display().to_string();
    let pem = std::fs::read(&args.file).with_context(|| format!("{origin}: cannot read"))?;
    let chain = parse_certificates(&pem, &origin)?;
    let mut report = Report {
        certificates: chain.len(),
        facts: ca::describe(&chain[0]).ok(),
        svid: None,
        verified: None,
        problem: None,
    };
    match inspect_leaf(&chain[0]) {
        Ok(info) => report.svid = Some(info),
        Err(e) => report.problem = Some(format!("not an X.509-SVID: {e}")),
    }
    if report.problem.is_none() {
        report.problem = match &args.bundle {
            Some(_) => verify(args, &chain, &mut report, now),
            None => check_validity(&chain, now),
        };
    }
    match args.output {
        Output::Json => print_json(&to_json(args, &report, now))?,
        Output::Text => print_text(args, &report, now),
    }
    Ok(if report.problem.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Path validation against the bundle, by the same code the proxies' TLS verifiers use.
fn verify(
    args: &InspectArgs,
    chain: &[rustls_pki_types::CertificateDer<'static>],
    report: &mut Report,
    now: SystemTime,
) -> Option<String> {
    let path = args.bundle.as_ref()?;
    let td = match (&args.trust_domain, &report.svid) {
        (Some(td), _) => match TrustDomain::new(td) {
            Ok(td) => td,
            Err(e) => return Some(format!("invalid --trust-domain `{td}`: {e}")),
        },
        (None, Some(info)) => info.id.trust_domain(),
        (None, None) => return None,
    };
    let bundle = match TrustBundle::read(td, path) {
        Ok(b) => b,
        Err(e) => return Some(format!("cannot use the bundle: {e}")),
    };
    let result = verify_svid_chain(chain, &bundle, now, None);
    report.verified = Some(result.is_ok());
    result.err().map(|e| e.to_string())
}

/// Without a bundle only time can be checked: every certificate of the file must be valid
/// now, with the verifiers' clock-skew allowance.
fn check_validity(
    chain: &[rustls_pki_types::CertificateDer<'static>],
    now: SystemTime,
) -> Option<String> {
    for (i, der) in chain.iter().enumerate() {
        let Ok(cert) = ca::describe(der) else {
            return Some(format!("certificate #{} is not valid X.509", i + 1));
        };
        if cert.not_after + CLOCK_SKEW < now {
            return Some(format!(
                "expired: certificate #{} ({}) was valid until {}",
                i + 1,
                cert.subject,
                ca::rfc3339(cert.not_after)
            ));
        }
        if cert.not_before > now + CLOCK_SKEW {
            return Some(format!(
                "not yet valid: certificate #{} ({}) is valid from {}",
                i + 1,
                cert.subject,
                ca::rfc3339(cert.not_before)
            ));
        }
    }
    None
}

/// `23h59m12s`, or `expired 2h ago`.
fn remaining(not_after: SystemTime, now: SystemTime) -> String {
    match not_after.duration_since(now) {
        Ok(left) => ca::format_duration(left),
        Err(e) => format!("expired {} ago", ca::format_duration(e.duration())),
    }
}

fn to_json(args: &InspectArgs, r: &Report, now: SystemTime) -> serde_json::Value {
    let facts = r.facts.as_ref();
    let remaining_seconds = facts.map(|f| match f.not_after.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    });
    json!({
        "file": args.file.display().to_string(),
        "certificates": r.certificates,
        "spiffe_id": r.svid.as_ref().map(|s| s.id.as_str()),
        "subject": facts.map(|f| &f.subject),
        "issuer": facts.map(|f| &f.issuer),
        "serial": facts.map(|f| &f.serial),
        "not_before": facts.map(|f| ca::rfc3339(f.not_before)),
        "not_after": facts.map(|f| ca::rfc3339(f.not_after)),
        "remaining_seconds": remaining_seconds,
        "key_type": facts.map(|f| &f.key_type),
        "bundle": args.bundle.as_ref().map(|b| b.display().to_string()),
        "verified": r.verified,
        "valid": r.problem.is_none(),
        "error": r.problem,
    })
}

fn print_text(args: &InspectArgs, r: &Report, now: SystemTime) {
    let line = |k: &str, v: &str| println!("{k:<11} {v}");
    line(
        "file",
        &format!(
            "{} ({} certificate(s))",
            args.file.display(),
            r.certificates
        ),
    );
    if let Some(info) = &r.svid {
        line("spiffe id", info.id.as_str());
    }
    if let Some(f) = &r.facts {
        line("subject", &f.subject);
        line("issuer", &f.issuer);
        line("serial", &f.serial);
        line("not before", &ca::rfc3339(f.not_before));
        line("not after", &ca::rfc3339(f.not_after));
        line("remaining", &remaining(f.not_after, now));
        line("key type", &f.key_type);
    }
    let bundle = match (&args.bundle, r.verified) {
        (None, _) => "none given: chain not verified against trust roots (pass --bundle)".into(),
        (Some(b), Some(true)) => format!("{}: verified", b.display()),
        (Some(b), Some(false)) => format!("{}: NOT verified", b.display()),
        (Some(b), None) => format!("{}: not checked", b.display()),
    };
    line("bundle", &bundle);
    match &r.problem {
        None => line("result", "valid X.509-SVID"),
        Some(p) => line("result", &format!("INVALID: {p}")),
    }
}
