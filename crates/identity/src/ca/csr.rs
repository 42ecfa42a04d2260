//! Certificate signing requests: making one (what a proxy does with its fresh key) and
//! checking one (what the CA does before it signs anything).
//!
//! The CA takes nothing from a CSR but its public key: the subject, the requested
//! extensions and the SANs are only compared with what the requester is authorized for,
//! and the leaf is built from the CA's own template.

use std::fmt;
use std::net::IpAddr;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use rcgen::{
    CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_SIG_ECDSA_WITH_SHA256, OID_X509_EXT_SUBJECT_ALT_NAME};
use x509_parser::prelude::FromDer;

use super::CaError;
use super::describe::{is_p256, key_type};
use crate::bundle::pem_encode;
use crate::spiffe::SpiffeId;

/// A fresh ECDSA P-256 key and a CSR asking for one SPIFFE ID, as a proxy makes them before
/// asking the CA; the key never leaves the process that made it.
pub struct KeyAndCsr {
    key: KeyPair,
    csr: Vec<u8>,
}

impl KeyAndCsr {
    /// Generates the key and a CSR whose only name is `id` (as a URI SAN; empty subject).
    pub fn generate(id: &SpiffeId) -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::generate("an ECDSA P-256 key", e))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![uri_san(id)?];
        let csr = params
            .serialize_request(&key)
            .map_err(|e| CaError::generate("a CSR", e))?;
        Ok(KeyAndCsr {
            key,
            csr: csr.der().to_vec(),
        })
    }

    /// The CSR, DER.
    pub fn csr_der(&self) -> &[u8] {
        &self.csr
    }

    /// The private key as a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn key_pem(&self) -> String {
        pem_encode("PRIVATE KEY", self.key.serialized_der())
    }

    /// The private key, PKCS#8 DER, for a rustls config.
    pub fn key_der(&self) -> PrivatePkcs8KeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der())
    }
}

impl fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("key", &"[redacted]")
            .field("csr_len", &self.csr.len())
            .finish()
    }
}

/// The SPIFFE ID as a URI SAN.
pub(super) fn uri_san(id: &SpiffeId) -> Result<SanType, CaError> {
    let uri = id
        .as_str()
        .try_into()
        .map_err(|e| CaError::generate("a URI SAN", e))?;
    Ok(SanType::URI(uri))
}

/// A P-256 public key (the uncompressed point) taken from a verified CSR.
pub(super) struct P256PublicKey(Vec<u8>);

impl PublicKeyData for P256PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// Parses the CSR, verifies its signature (proof of possession) and that it asks for exactly
/// `authorized` and nothing else; returns the key to certify.
pub(super) fn verify(der: &[u8], authorized: &SpiffeId) -> Result<P256PublicKey, CaError> {
    let malformed = |reason: String| CaError::MalformedCsr { reason };
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes", rest.len())));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    if !is_p256(spki) || csr.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
        return Err(CaError::UnsupportedCsrKey {
            found: format!(
                "key type {} and signature algorithm {}",
                key_type(spki),
                csr.signature_algorithm.algorithm
            ),
        });
    }
    let point = spki.subject_public_key.data.as_ref();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(info.raw, csr.signature_value.data.as_ref())
        .map_err(|_| CaError::CsrSignature)?;
    check_names(&requested_names(&csr)?, authorized)?;
    Ok(P256PublicKey(point.to_vec()))
}

/// Every SAN the CSR requests, across all extensionRequest attributes.
fn requested_names<'a>(
    csr: &'a X509CertificationRequest<'a>,
) -> Result<Vec<&'a GeneralName<'a>>, CaError> {
    let mut names = Vec::new();
    for attr in csr.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() else {
            continue;
        };
        for ext in &req.extensions {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => names.extend(&san.general_names),
                _ if ext.oid == OID_X509_EXT_SUBJECT_ALT_NAME => {
                    return Err(CaError::MalformedCsr {
                        reason: "unparsable subjectAltName extension".to_owned(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(names)
}

/// Exactly one name, a URI, equal to `authorized`.
fn check_names(names: &[&GeneralName<'_>], authorized: &SpiffeId) -> Result<(), CaError> {
    let authorized_str = authorized.to_string();
    if let Some(other) = names.iter().find(|n| !matches!(n, GeneralName::URI(_))) {
        return Err(CaError::CsrNonUriSan {
            name: describe_name(other),
            authorized: authorized_str,
        });
    }
    let uris: Vec<&str> = names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(CaError::CsrMissingId {
            authorized: authorized_str,
        }),
        [one] if *one == authorized.as_str() => Ok(()),
        [one] => Err(CaError::CsrWrongId {
            requested: (*one).to_owned(),
            authorized: authorized_str,
        }),
        many => Err(CaError::CsrMultipleIds {
            count: many.len(),
            found: many.join(", "),
            authorized: authorized_str,
        }),
    }
}

/// `DNS:web.example`, `IP:10.0.0.1`, `email:a@b`, or the kind of name.
fn describe_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match <[u8; 4]>::try_from(*b) {
            Ok(v4) => format!("IP:{}", IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*b) {
                Ok(v6) => format!("IP:{}", IpAddr::from(v6)),
                Err(_) => "a malformed IP address SAN".to_owned(),
            },
        },
        GeneralName::DirectoryName(n) => format!("dirName:{n}"),
        GeneralName::OtherName(oid, _) => format!("otherName:{oid}"),
        GeneralName::RegisteredID(oid) => format!("registeredID:{oid}"),
        _ => "a non-URI name".to_owned(),
    }
}
