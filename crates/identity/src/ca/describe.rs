//! Plain facts about certificates for people and for error messages: subjects, serials,
//! fingerprints, key types and RFC 3339 times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::CaError;

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

/// `ECDSA P-256`, `RSA 2048`, `Ed25519`, or the algorithm OID.
pub(crate) fn key_type(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => "ECDSA P-256".to_owned(),
            Some(c) if c == OID_NIST_EC_P384 => "ECDSA P-384".to_owned(),
            Some(c) if c == OID_NIST_EC_P521 => "ECDSA P-521".to_owned(),
            Some(c) => format!("ECDSA curve {c}"),
            None => "ECDSA (no named curve)".to_owned(),
        };
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
            _ => "RSA".to_owned(),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return "Ed25519".to_owned();
    }
    format!("key algorithm {alg}")
}

/// Whether the key is ECDSA on P-256, the only curve Bulkhead signs with.
pub(crate) fn is_p256(spki: &SubjectPublicKeyInfo<'_>) -> bool {
    spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|c| c == OID_EC_P256)
}

/// SHA-256 of the DER, lower-case hex (what `openssl x509 -fingerprint -sha256` shows).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Seconds since the epoch (possibly negative) as a `SystemTime`.
pub(crate) fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// `2025-01-31T12:00:00Z`: UTC, whole seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), so that the crate need
/// not depend on a date library's optional formatting feature.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
