//! X.509-SVID leaf rules: what makes a certificate an SVID, and what it says.
//!
//! The SPIFFE X509-SVID specification requires of a leaf: exactly one URI SAN holding a
//! valid SPIFFE ID, `CA:false` (or no basicConstraints at all), and, when keyUsage is
//! present, `digitalSignature` without `keyCertSign` or `cRLSign`. [`inspect_leaf`]
//! enforces exactly those rules and reports the first one broken; path validation and
//! the trust domain are [`crate::verify`]'s job.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;

use crate::x509::{hex, key_type, system_time};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::spiffe::{SpiffeId, SpiffeIdError};

/// What an X.509-SVID leaf says about itself (nothing here is verified against a bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvidInfo {
    /// The SPIFFE ID from the single URI SAN.
    pub id: SpiffeId,
    /// The serial number as lower-case hex without separators.
    pub serial: String,
    /// The issuer's distinguished name, RFC 4514 style (`CN=..., O=...`).
    pub issuer: String,
    /// The subject's distinguished name (often empty for SVIDs).
    pub subject: String,
    /// Start of the validity period.
    pub not_before: SystemTime,
    /// End of the validity period.
    pub not_after: SystemTime,
    /// The public key type, e.g. `ECDSA P-256` or `RSA 2048`.
    pub key_type: String,
}

/// Why a certificate is not an X.509-SVID leaf; each variant names the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// The bytes are not a DER X.509 certificate, or an extension is malformed.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// SANs are present but none is a URI (typically a DNS-only web certificate).
    #[error("no URI SAN: a DNS-only certificate is not an SVID")]
    NoUriSan,
    /// No subjectAltName extension at all.
    #[error("no URI SAN: the certificate has no subject alternative names, so it is not an SVID")]
    NoSan,
    /// More than one URI SAN; an SVID has exactly one.
    #[error("{} URI SANs ({}): an SVID has exactly one", .0.len(), .0.join(", "))]
    MultipleUriSans(Vec<String>),
    /// The URI SAN is not a valid SPIFFE ID.
    #[error("URI SAN {uri:?} is not a valid SPIFFE ID: {source}")]
    InvalidId {
        /// The URI as found in the certificate.
        uri: String,
        /// The SPIFFE-ID rule it breaks.
        source: SpiffeIdError,
    },
    /// basicConstraints says CA:true.
    #[error("leaf is a CA certificate (basicConstraints CA:true); an SVID leaf must be CA:false")]
    LeafIsCa,
    /// keyUsage is present without digitalSignature.
    #[error("keyUsage lacks digitalSignature, which an SVID leaf must have")]
    NoDigitalSignature,
    /// keyUsage includes keyCertSign.
    #[error("keyUsage includes keyCertSign, which an SVID leaf must not have")]
    KeyCertSign,
    /// keyUsage includes cRLSign.
    #[error("keyUsage includes cRLSign, which an SVID leaf must not have")]
    CrlSign,
}

/// Parses a leaf certificate and checks the X509-SVID leaf rules.
pub fn inspect_leaf(der: &CertificateDer<'_>) -> Result<SvidInfo, SvidError> {
    let cert = parse(der)?;
    let id = check_leaf(&cert)?;
    let validity = cert.validity();
    Ok(SvidInfo {
        id,
        serial: hex(cert.raw_serial()),
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        not_before: system_time(validity.not_before.timestamp()),
        not_after: system_time(validity.not_after.timestamp()),
        key_type: key_type(cert.public_key()),
    })
}

/// The leaf rules alone, without formatting names: the per-handshake path.
pub(crate) fn leaf_id(der: &CertificateDer<'_>) -> Result<SpiffeId, SvidError> {
    check_leaf(&parse(der)?)
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, SvidError> {
    let (rest, cert) =
        X509Certificate::from_der(der.as_ref()).map_err(|e| SvidError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SvidError::Malformed(
            "trailing bytes after the certificate".into(),
        ));
    }
    Ok(cert)
}

fn check_leaf(cert: &X509Certificate<'_>) -> Result<SpiffeId, SvidError> {
    // x509-parser keeps a badly encoded extension as `ParseError` instead of failing the
    // whole certificate; an SVID must not be judged on half-read extensions.
    if let Some(err) = cert
        .extensions()
        .iter()
        .find_map(|e| e.parsed_extension().error())
    {
        return Err(SvidError::Malformed(format!("bad extension: {err}")));
    }
    let id = spiffe_id_of(cert)?;
    check_leaf_constraints(cert)?;
    Ok(id)
}

/// The SPIFFE ID in the single URI SAN.
fn spiffe_id_of(cert: &X509Certificate<'_>) -> Result<SpiffeId, SvidError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| SvidError::Malformed(format!("subjectAltName: {e}")))?
        .ok_or(SvidError::NoSan)?;
    let uris: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(SvidError::NoUriSan),
        [uri] => SpiffeId::parse(uri).map_err(|source| SvidError::InvalidId {
            uri: (*uri).to_owned(),
            source,
        }),
        many => Err(SvidError::MultipleUriSans(
            many.iter().map(|u| (*u).to_owned()).collect(),
        )),
    }
}

/// basicConstraints and keyUsage as the X509-SVID specification requires for a leaf.
fn check_leaf_constraints(cert: &X509Certificate<'_>) -> Result<(), SvidError> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| SvidError::Malformed(format!("basicConstraints: {e}")))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err(SvidError::LeafIsCa);
    }
    let ku = cert
        .key_usage()
        .map_err(|e| SvidError::Malformed(format!("keyUsage: {e}")))?;
    if let Some(ku) = ku {
        let ku = ku.value;
        // keyCertSign first: a leaf that can sign certificates is the graver fault.
        if ku.key_cert_sign() {
            return Err(SvidError::KeyCertSign);
        }
        if ku.crl_sign() {
            return Err(SvidError::CrlSign);
        }
        if !ku.digital_signature() {
            return Err(SvidError::NoDigitalSignature);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
