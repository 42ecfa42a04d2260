//! Trust bundles: the root certificates a trust domain's SVIDs chain to.
//!
//! A bundle holds several roots at once so that a root can be rotated without a flag day:
//! add the new root everywhere, re-issue SVIDs from it, then drop the old root.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::spiffe::TrustDomain;

/// Errors reading or changing a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM text holds something other than certificates, or is malformed.
    #[error("{origin}: malformed PEM: {message}")]
    Pem {
        /// Where the text came from.
        origin: String,
        /// What went wrong.
        message: String,
    },
    /// The PEM text holds no certificate at all.
    #[error("{origin}: no CERTIFICATE block found; expected PEM-encoded root certificates")]
    Empty {
        /// Where the text came from.
        origin: String,
    },
    /// Removing the last root would leave nothing to trust.
    #[error("refusing to remove the last root of the bundle")]
    LastRoot,
}

/// The roots of one trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustBundle {
    trust_domain: TrustDomain,
    roots: Vec<CertificateDer<'static>>,
}

impl TrustBundle {
    /// A bundle with the given roots (duplicates dropped, order kept).
    pub fn new(trust_domain: TrustDomain, roots: Vec<CertificateDer<'static>>) -> Self {
        let mut bundle = TrustBundle {
            trust_domain,
            roots: Vec::with_capacity(roots.len()),
        };
        for r in roots {
            bundle.add(r);
        }
        bundle
    }

    /// Parses every CERTIFICATE block of PEM text; `origin` names the source in errors.
    pub fn from_pem(
        trust_domain: TrustDomain,
        pem: &[u8],
        origin: &str,
    ) -> Result<Self, BundleError> {
        let roots = parse_certificates(pem, origin)?;
        Ok(TrustBundle::new(trust_domain, roots))
    }

    /// Reads a PEM bundle file.
    pub fn read(trust_domain: TrustDomain, path: &Path) -> Result<Self, BundleError> {
        let pem = std::fs::read(path).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        TrustBundle::from_pem(trust_domain, &pem, &path.display().to_string())
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The roots, oldest first.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// Adds a root unless it is already present; returns whether it was added.
    pub fn add(&mut self, root: CertificateDer<'static>) -> bool {
        if self.roots.contains(&root) {
            return false;
        }
        self.roots.push(root);
        true
    }

    /// Removes a root; the last root cannot be removed.
    pub fn remove(&mut self, root: &CertificateDer<'_>) -> Result<bool, BundleError> {
        let Some(i) = self.roots.iter().position(|r| r.as_ref() == root.as_ref()) else {
            return Ok(false);
        };
        if self.roots.len() == 1 {
            return Err(BundleError::LastRoot);
        }
        self.roots.remove(i);
        Ok(true)
    }

    /// The bundle as PEM text.
    pub fn to_pem(&self) -> String {
        self.roots.iter().map(|r| der_to_pem(r)).collect()
    }
}

/// Parses every CERTIFICATE block of PEM text, refusing other block types and empty input.
pub fn parse_certificates(
    pem: &[u8],
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, BundleError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BundleError::Pem {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(BundleError::Empty {
            origin: origin.to_owned(),
        });
    }
    Ok(certs)
}

/// PEM-encodes one certificate.
pub fn der_to_pem(der: &CertificateDer<'_>) -> String {
    pem_encode("CERTIFICATE", der.as_ref())
}

/// One PEM block (64-character lines, LF endings).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(n: u8) -> CertificateDer<'static> {
        CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, n])
    }

    #[test]
    fn add_remove_and_round_trip() {
        let td = TrustDomain::new("td").unwrap();
        let mut b = TrustBundle::new(td.clone(), vec![cert(1), cert(1)]);
        assert_eq!(b.roots().len(), 1);
        assert!(b.add(cert(2)));
        assert!(!b.add(cert(2)));
        let pem = b.to_pem();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
        let again = TrustBundle::from_pem(td, pem.as_bytes(), "test").unwrap();
        assert_eq!(again, b);
        assert!(b.remove(&cert(1)).unwrap());
        assert!(!b.remove(&cert(1)).unwrap());
        assert!(matches!(b.remove(&cert(2)), Err(BundleError::LastRoot)));
    }

    #[test]
    fn bad_pem_is_named() {
        let td = TrustDomain::new("td").unwrap();
        let err = TrustBundle::from_pem(td.clone(), b"hello", "x.pem").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.pem: no CERTIFICATE block found; expected PEM-encoded root certificates"
        );
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = TrustBundle::from_pem(td, broken, "y.pem").unwrap_err();
        assert!(err.to_string().starts_with("y.pem: malformed PEM"), "{err}");
    }
}
