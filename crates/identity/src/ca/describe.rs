//! Plain facts about certificates for people and for error messages: subjects, serials,
//! fingerprints, key types and RFC 3339 times.

use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;

use super::CaError;
pub use crate::x509::rfc3339;
pub(crate) use crate::x509::{hex, is_p256, key_type, system_time};

/// What an operator wants to know about a CA or root certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject distinguished name, e.g. `O=Bulkhead, OU=example.org, CN=Bulkhead root 1a2b3c4d`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lower-case hex of the DER INTEGER contents.
    pub serial: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// Key type, e.g. `ECDSA P-256`.
    pub key_type: String,
    /// Whether basicConstraints says CA:true.
    pub is_ca: bool,
}

/// Summarises one DER certificate.
pub fn describe(der: &CertificateDer<'_>) -> Result<CertSummary, CaError> {
    let cert = parse(der, "certificate", 1)?;
    Ok(CertSummary {
        subject: subject_of(&cert),
        issuer: name_or_empty(cert.issuer().to_string()),
        serial: hex(cert.raw_serial()),
        not_before: system_time(cert.validity().not_before.timestamp()),
        not_after: system_time(cert.validity().not_after.timestamp()),
        sha256: sha256_fingerprint(der),
        key_type: key_type(cert.public_key()),
        is_ca: cert.is_ca(),
    })
}

/// Parses DER, refusing trailing bytes; `index` counts from 1 for messages.
pub(crate) fn parse<'a>(
    der: &'a [u8],
    origin: &str,
    index: usize,
) -> Result<X509Certificate<'a>, CaError> {
    let fail = |message: String| CaError::Certificate {
        origin: origin.to_owned(),
        index,
        message,
    };
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// The subject as errors print it.
pub(crate) fn subject_of(cert: &X509Certificate<'_>) -> String {
    name_or_empty(cert.subject().to_string())
}

fn name_or_empty(name: String) -> String {
    if name.is_empty() {
        "(empty subject)".to_owned()
    } else {
        name
    }
}

/// SHA-256 of the DER, lower-case hex (what `openssl x509 -fingerprint -sha256` shows).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// A duration the way the CLI accepts it back: `7d`, `24h`, `30m`, `90s`, or `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}
