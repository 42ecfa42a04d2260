//! The checks a CA certificate chain and key must pass before Bulkhead signs with them.
//!
//! Each check has its own error so that an operator bringing a corporate CA learns exactly
//! which rule their certificate breaks. A final self-check (issue a test leaf, verify it with
//! webpki against the chain's root) catches whatever these explicit checks do not model.

use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::CaError;
use super::describe::{
    format_duration, is_p256, key_type, parse, rfc3339, subject_of, system_time,
};
use crate::spiffe::{SpiffeId, TrustDomain};

/// What the checks establish about a chain that passes them.
pub(super) struct Checked {
    /// The CA's signing key, normalised to PKCS#8.
    pub(super) key: KeyPair,
    /// The latest notBefore in the chain: no leaf may start before it.
    pub(super) not_before: SystemTime,
    /// The earliest notAfter in the chain: no leaf may outlive it.
    pub(super) not_after: SystemTime,
}

/// The inputs of [`check`]: the chain (CA first, root last) and key, with their origins.
pub(super) struct Input<'a> {
    pub(super) chain: &'a [CertificateDer<'static>],
    pub(super) chain_origin: &'a str,
    pub(super) key_pem: &'a [u8],
    pub(super) key_origin: &'a str,
    pub(super) trust_domain: &'a TrustDomain,
    pub(super) now: SystemTime,
    /// When set, every chain certificate must outlive a leaf of this TTL issued now.
    pub(super) cover: Option<Duration>,
}

/// A parsed chain certificate and how messages name it.
struct Cert<'a> {
    x509: X509Certificate<'a>,
    /// `<origin>, certificate #<n> (<subject>)`.
    label: String,
}

/// Runs every explicit check, in the order an operator would fix them.
pub(super) fn check(input: &Input<'_>) -> Result<Checked, CaError> {
    let mut certs = Vec::with_capacity(input.chain.len());
    for (i, der) in input.chain.iter().enumerate() {
        let x509 = parse(der, input.chain_origin, i + 1)?;
        let label = format!(
            "{}, certificate #{} ({})",
            input.chain_origin,
            i + 1,
            subject_of(&x509)
        );
        certs.push(Cert { x509, label });
    }
    for (i, cert) in certs.iter().enumerate() {
        check_is_ca(cert, input.chain_origin, i + 1)?;
    }
    let ca = &certs[0];
    if !is_p256(ca.x509.public_key()) {
        return Err(CaError::UnsupportedKey {
            origin: ca.label.clone(),
            found: format!(
                "a certificate whose key is {}",
                key_type(ca.x509.public_key())
            ),
        });
    }
    let key = load_key(input.key_pem, input.key_origin)?;
    if key.public_key_raw() != ca.x509.public_key().subject_public_key.data.as_ref() {
        return Err(CaError::KeyMismatch {
            origin: input.key_origin.to_owned(),
            certificate: ca.label.clone(),
        });
    }
    let mut not_before = SystemTime::UNIX_EPOCH;
    let mut not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
    for cert in &certs {
        let (nb, na) = check_validity(cert, input.now, input.cover)?;
        not_before = not_before.max(nb);
        not_after = not_after.min(na);
        check_spiffe_sans(cert, input.trust_domain)?;
    }
    check_links(&certs, input.chain_origin)?;
    check_path_len(&certs)?;
    Ok(Checked {
        key,
        not_before,
        not_after,
    })
}

/// basicConstraints CA:true, and keyCertSign when keyUsage is present.
fn check_is_ca(cert: &Cert<'_>, origin: &str, index: usize) -> Result<(), CaError> {
    let malformed = |e: x509_parser::error::X509Error| CaError::Certificate {
        origin: origin.to_owned(),
        index,
        message: e.to_string(),
    };
    let bc = cert.x509.basic_constraints().map_err(malformed)?;
    if !bc.is_some_and(|bc| bc.value.ca) {
        return Err(CaError::NotACa {
            certificate: cert.label.clone(),
        });
    }
    let ku = cert.x509.key_usage().map_err(malformed)?;
    if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(CaError::NoKeyCertSign {
            certificate: cert.label.clone(),
        });
    }
    Ok(())
}

/// Reads an unencrypted ECDSA P-256 key from PKCS#8 or SEC1 PEM, as PKCS#8.
pub(super) fn load_key(pem_text: &[u8], origin: &str) -> Result<KeyPair, CaError> {
    let malformed = |message: String| CaError::MalformedKey {
        origin: origin.to_owned(),
        message,
    };
    let unsupported = |found: &str| CaError::UnsupportedKey {
        origin: origin.to_owned(),
        found: found.to_owned(),
    };
    let blocks = pem::parse_many(pem_text).map_err(|e| malformed(e.to_string()))?;
    // `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the key; skip it.
    let Some(block) = blocks.iter().find(|b| b.tag().ends_with("PRIVATE KEY")) else {
        return Err(malformed("no PRIVATE KEY block found".to_owned()));
    };
    let der = block.contents();
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => der.to_vec(),
        "EC PRIVATE KEY" => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                .and_then(|k| k.to_pkcs8v1().map_err(Into::into))
                .map_err(|_| unsupported("a SEC1 EC key that is not on P-256"))?
                .as_ref()
                .to_vec()
        }
        "ENCRYPTED PRIVATE KEY" => return Err(unsupported("an encrypted private key")),
        "RSA PRIVATE KEY" => return Err(unsupported("an RSA key")),
        other => return Err(unsupported(&format!("a `{other}` block"))),
    };
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
        &PKCS_ECDSA_P256_SHA256,
    )
    .map_err(|e| match KeyPair::try_from(pkcs8.as_slice()) {
        Ok(other) => unsupported(algorithm_name(other.algorithm())),
        Err(_) => malformed(e.to_string()),
    })
}

fn algorithm_name(alg: &'static rcgen::SignatureAlgorithm) -> &'static str {
    if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        "an ECDSA P-384 key"
    } else if alg == &rcgen::PKCS_ED25519 {
        "an Ed25519 key"
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        "an RSA key"
    } else {
        "a key that is not ECDSA P-256"
    }
}

/// `[notBefore, notAfter]` contains `now`, and `now + cover` when asked.
fn check_validity(
    cert: &Cert<'_>,
    now: SystemTime,
    cover: Option<Duration>,
) -> Result<(SystemTime, SystemTime), CaError> {
    let nb = system_time(cert.x509.validity().not_before.timestamp());
    let na = system_time(cert.x509.validity().not_after.timestamp());
    if now < nb {
        return Err(CaError::NotYetValid {
            certificate: cert.label.clone(),
            not_before: rfc3339(nb),
            now: rfc3339(now),
        });
    }
    if now > na {
        return Err(CaError::Expired {
            certificate: cert.label.clone(),
            not_after: rfc3339(na),
            now: rfc3339(now),
        });
    }
    if let Some(ttl) = cover
        && now + ttl > na
    {
        return Err(CaError::ValidityTooShort {
            certificate: cert.label.clone(),
            not_after: rfc3339(na),
            max_ttl: format_duration(ttl),
            needed: rfc3339(now + ttl),
        });
    }
    Ok((nb, na))
}

/// A CA may name its trust domain in a `spiffe://` URI SAN, but no other trust domain.
fn check_spiffe_sans(cert: &Cert<'_>, td: &TrustDomain) -> Result<(), CaError> {
    let san = cert
        .x509
        .subject_alternative_name()
        .map_err(|e| CaError::Certificate {
            origin: cert.label.clone(),
            index: 1,
            message: e.to_string(),
        })?;
    let Some(san) = san else { return Ok(()) };
    for name in &san.value.general_names {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        let is_spiffe = uri
            .get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("spiffe://"));
        let ours = SpiffeId::parse(uri).is_ok_and(|id| id.trust_domain_name() == td.as_str());
        if is_spiffe && !ours {
            return Err(CaError::ForeignSpiffeId {
                certificate: cert.label.clone(),
                found: (*uri).to_owned(),
                expected: td.to_string(),
            });
        }
    }
    Ok(())
}

/// Each certificate is issued (name and signature) by the next; the last signs itself.
fn check_links(certs: &[Cert<'_>], origin: &str) -> Result<(), CaError> {
    for pair in certs.windows(2) {
        let (child, parent) = (&pair[0].x509, &pair[1].x509);
        let linked = child.issuer().as_raw() == parent.subject().as_raw()
            && child.verify_signature(Some(parent.public_key())).is_ok();
        if !linked {
            return Err(CaError::ChainBroken {
                certificate: pair[0].label.clone(),
                next: subject_of(parent),
            });
        }
    }
    let root = &certs[certs.len() - 1].x509;
    if !is_self_issued(root) || root.verify_signature(None).is_err() {
        return Err(CaError::NoRoot {
            origin: origin.to_owned(),
            subject: subject_of(root),
        });
    }
    Ok(())
}

fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == cert.subject().as_raw()
}

/// RFC 5280 §4.2.1.9: pathLenConstraint bounds the non-self-issued *intermediate* CA
/// certificates that may follow a certificate in a path; the end-entity is not counted.
/// So the signing CA's own pathLen (even 0) never stops it issuing SVIDs; what can forbid
/// issuing is an issuer above it whose pathLen is smaller than the number of CA
/// certificates the chain places below that issuer.
fn check_path_len(certs: &[Cert<'_>]) -> Result<(), CaError> {
    for (j, cert) in certs.iter().enumerate().skip(1) {
        let path_len = cert
            .x509
            .basic_constraints()
            .ok()
            .flatten()
            .and_then(|bc| bc.value.path_len_constraint);
        let Some(path_len) = path_len else { continue };
        let below = certs[..j]
            .iter()
            .filter(|c| !is_self_issued(&c.x509))
            .count();
        if below > path_len as usize {
            return Err(CaError::PathLenExceeded {
                certificate: cert.label.clone(),
                path_len,
                below,
            });
        }
    }
    Ok(())
}
