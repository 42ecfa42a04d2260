//! Verifying X.509-SVID chains against a trust bundle, and the rustls glue around it.
//!
//! A chain is accepted when, in this order:
//! 1. the leaf is an X.509-SVID ([`crate::svid`]'s rules: one URI SAN holding a SPIFFE ID,
//!    not a CA, keyUsage fit for a leaf);
//! 2. its SPIFFE ID is in the bundle's trust domain;
//! 3. rustls-webpki builds a path from the leaf through the presented intermediates to one
//!    of the bundle's roots, valid at `now` (within [`CLOCK_SKEW`]), for the TLS usage;
//! 4. the ID equals the expected one, when the caller named one.
//!
//! The leaf is read before the path is built (as go-spiffe does) so that a certificate
//! from another trust domain is reported as exactly that rather than as "unknown issuer";
//! nothing is accepted before step 3 has passed, so the order changes only the message.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{ExtendedKeyUsageValidator, KeyPurposeIdIter};

use crate::bundle::TrustBundle;
use crate::spiffe::{SpiffeId, TrustDomain};
use crate::svid::{self, SvidError};
use crate::x509::rfc3339 as format_time;

mod tls;

pub(crate) use tls::provider;

pub use tls::{
    SpiffeClientCertVerifier, SpiffeServerCertVerifier, client_config, peer_id, server_config,
    verify_error,
};

/// How far apart two clocks may be: a certificate that became valid up to this long in the
/// future, or expired up to this long ago, is still accepted. Freshly issued SVIDs are used
/// within seconds, so a peer whose clock runs slightly behind the CA's must not fail them.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The TLS role a certificate is checked for (its extended key usage, when present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Usage {
    /// A server's certificate: `id-kp-serverAuth`.
    ServerAuth,
    /// A client's certificate: `id-kp-clientAuth`.
    ClientAuth,
    /// Either role (for inspection outside a handshake).
    Any,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Usage::ServerAuth => "TLS server authentication (serverAuth)",
            Usage::ClientAuth => "TLS client authentication (clientAuth)",
            Usage::Any => "TLS authentication (serverAuth or clientAuth)",
        })
    }
}

/// Why a certificate chain was refused, in terms an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The peer presented no certificate.
    #[error("no certificate presented")]
    EmptyChain,
    /// The leaf breaks an X509-SVID rule.
    #[error("not an SVID: {0}")]
    NotAnSvid(#[from] SvidError),
    /// The SPIFFE ID belongs to another trust domain than the bundle.
    #[error(
        "wrong trust domain: the certificate is for {id}, in trust domain {presented}, \
         but the trust bundle is for {expected}"
    )]
    WrongTrustDomain {
        /// The presented SPIFFE ID.
        id: SpiffeId,
        /// Its trust domain.
        presented: TrustDomain,
        /// The bundle's trust domain.
        expected: TrustDomain,
    },
    /// No path from the leaf to any root of the bundle.
    #[error(
        "unknown issuer: the certificate for {id} does not chain to any root in the trust \
         bundle for {trust_domain} (issued by another CA, or an intermediate is missing)"
    )]
    UnknownIssuer {
        /// The presented SPIFFE ID.
        id: SpiffeId,
        /// The bundle's trust domain.
        trust_domain: TrustDomain,
    },
    /// A certificate of the chain has expired.
    #[error(
        "expired: the certificate was valid until {} but it is now {} \
         (allowing {}s of clock skew)",
        format_time(*.not_after), format_time(*.now), CLOCK_SKEW.as_secs()
    )]
    Expired {
        /// The end of the certificate's validity.
        not_after: SystemTime,
        /// The time of the check.
        now: SystemTime,
    },
    /// A certificate of the chain is not valid yet.
    #[error(
        "not yet valid: the certificate is valid from {} but it is now {} \
         (allowing {}s of clock skew; check the clocks of this host and of the CA)",
        format_time(*.not_before), format_time(*.now), CLOCK_SKEW.as_secs()
    )]
    NotYetValid {
        /// The start of the certificate's validity.
        not_before: SystemTime,
        /// The time of the check.
        now: SystemTime,
    },
    /// A signature in the chain does not verify with its issuer's key.
    #[error(
        "bad signature: the certificate names a CA of the trust bundle as its issuer but was \
         not signed by its key (a different CA with the same name, e.g. another cluster's \
         root, or a tampered certificate)"
    )]
    BadSignature,
    /// The certificate's extended key usage does not allow this TLS role.
    #[error("wrong usage: the certificate's extendedKeyUsage does not allow {0}")]
    WrongUsage(Usage),
    /// A signature algorithm or key type this verifier does not support.
    #[error("unsupported signature algorithm or key type in the certificate chain")]
    UnsupportedAlgorithm,
    /// The ID is valid but not the one the caller requires.
    #[error("wrong identity: expected {expected}, but the peer presented {presented}")]
    WrongIdentity {
        /// The required SPIFFE ID.
        expected: SpiffeId,
        /// The presented SPIFFE ID.
        presented: SpiffeId,
    },
    /// Another path-validation failure (constraints, malformed intermediates, ...).
    #[error("invalid certificate chain: {0}")]
    InvalidChain(String),
    /// A root of the trust bundle cannot serve as a trust anchor.
    #[error("trust bundle root #{index} is not a usable certificate: {reason}")]
    BadRoot {
        /// Position of the root in the bundle, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Verifies an X.509-SVID chain (leaf first) against `bundle` at `now`, for either TLS
/// role, and returns the leaf's SPIFFE ID; `expected`, when given, must match it exactly.
pub fn verify_svid_chain(
    chain: &[CertificateDer<'_>],
    bundle: &TrustBundle,
    now: SystemTime,
    expected: Option<&SpiffeId>,
) -> Result<SpiffeId, VerifyError> {
    verify_svid_chain_for(chain, bundle, now, expected, Usage::Any)
}

/// [`verify_svid_chain`] for one TLS role.
pub fn verify_svid_chain_for(
    chain: &[CertificateDer<'_>],
    bundle: &TrustBundle,
    now: SystemTime,
    expected: Option<&SpiffeId>,
    usage: Usage,
) -> Result<SpiffeId, VerifyError> {
    let (leaf, intermediates) = chain.split_first().ok_or(VerifyError::EmptyChain)?;
    let anchors = trust_anchors(bundle)?;
    let check = Check {
        anchors: &anchors,
        trust_domain: bundle.trust_domain(),
        algorithms: tls::algorithms().all,
        usage,
    };
    check.verify(leaf, intermediates, now, expected)
}

/// One verification's fixed inputs: what to trust and for which role.
pub(crate) struct Check<'a> {
    pub(crate) anchors: &'a [TrustAnchor<'a>],
    pub(crate) trust_domain: &'a TrustDomain,
    pub(crate) algorithms: &'a [&'a dyn SignatureVerificationAlgorithm],
    pub(crate) usage: Usage,
}

impl Check<'_> {
    /// Steps 1–4 of the module documentation.
    pub(crate) fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: SystemTime,
        expected: Option<&SpiffeId>,
    ) -> Result<SpiffeId, VerifyError> {
        let id = svid::leaf_id(leaf)?;
        if id.trust_domain_name() != self.trust_domain.as_str() {
            return Err(VerifyError::WrongTrustDomain {
                presented: id.trust_domain(),
                expected: self.trust_domain.clone(),
                id,
            });
        }
        self.validate_path(leaf, intermediates, now)
            .map_err(|e| self.explain(e, &id, now))?;
        match expected {
            Some(want) if *want != id => Err(VerifyError::WrongIdentity {
                expected: want.clone(),
                presented: id,
            }),
            _ => Ok(id),
        }
    }

    /// Path validation at `now`; a validity failure within [`CLOCK_SKEW`] is retried at
    /// the edge of the allowance, so the skew widens the window in both directions.
    fn validate_path(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: SystemTime,
    ) -> Result<(), webpki::Error> {
        let ee = webpki::EndEntityCert::try_from(leaf)?;
        let at = |t: SystemTime| {
            ee.verify_for_usage(
                self.algorithms,
                self.anchors,
                intermediates,
                unix_time(t),
                Eku(self.usage),
                None,
                None,
            )
            .map(|_| ())
        };
        let first = at(now);
        let retry_at = match &first {
            Err(webpki::Error::CertNotValidYet { not_before, .. })
                if system_time(*not_before) <= now + CLOCK_SKEW =>
            {
                now + CLOCK_SKEW
            }
            Err(webpki::Error::CertExpired { not_after, .. })
                if system_time(*not_after) + CLOCK_SKEW >= now =>
            {
                now - CLOCK_SKEW
            }
            _ => return first,
        };
        // When even the shifted check fails, the failure at the real time is the one to
        // report.
        at(retry_at).or(first)
    }

    /// Turns a webpki error into the operator-facing reason.
    // The deprecated context-free variants are matched so that no webpki path falls
    // through to the generic message.
    #[allow(deprecated)]
    fn explain(&self, e: webpki::Error, id: &SpiffeId, now: SystemTime) -> VerifyError {
        use webpki::Error as E;
        match e {
            E::UnknownIssuer => VerifyError::UnknownIssuer {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            },
            E::CertExpired { not_after, .. } => VerifyError::Expired {
                not_after: system_time(not_after),
                now,
            },
            E::CertNotValidYet { not_before, .. } => VerifyError::NotYetValid {
                not_before: system_time(not_before),
                now,
            },
            E::InvalidSignatureForPublicKey => VerifyError::BadSignature,
            E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
                VerifyError::WrongUsage(self.usage)
            }
            E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                VerifyError::UnsupportedAlgorithm
            }
            E::CaUsedAsEndEntity => VerifyError::NotAnSvid(SvidError::LeafIsCa),
            E::EndEntityUsedAsCa => {
                VerifyError::InvalidChain("an intermediate certificate is not a CA".into())
            }
            E::PathLenConstraintViolated => VerifyError::InvalidChain(
                "an issuing CA's path length constraint forbids this chain".into(),
            ),
            E::NameConstraintViolation => VerifyError::InvalidChain(
                "an issuing CA's name constraints forbid this identity".into(),
            ),
            other => VerifyError::InvalidChain(format!("{other:?}")),
        }
    }
}

/// The usage as webpki's EKU check; a private wrapper keeps webpki out of the public API.
struct Eku(Usage);

impl ExtendedKeyUsageValidator for Eku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self.0 {
            Usage::ServerAuth => webpki::KeyUsage::server_auth().validate(iter),
            Usage::ClientAuth => webpki::KeyUsage::client_auth().validate(iter),
            Usage::Any => {
                let mut present = Vec::new();
                for id in iter {
                    let oid = id?.to_decoded_oid();
                    if oid == webpki::KeyUsage::SERVER_AUTH_REPR
                        || oid == webpki::KeyUsage::CLIENT_AUTH_REPR
                    {
                        return Ok(());
                    }
                    present.push(oid);
                }
                if present.is_empty() {
                    // No extendedKeyUsage extension: RFC 5280 allows any use.
                    return Ok(());
                }
                Err(webpki::Error::RequiredEkuNotFoundContext(
                    webpki::RequiredEkuNotFoundContext {
                        required: webpki::KeyUsage::server_auth(),
                        present,
                    },
                ))
            }
        }
    }
}

/// The bundle's roots as webpki trust anchors.
pub(crate) fn trust_anchors(
    bundle: &TrustBundle,
) -> Result<Vec<TrustAnchor<'static>>, VerifyError> {
    bundle
        .roots()
        .iter()
        .enumerate()
        .map(|(index, root)| {
            webpki::anchor_from_trusted_cert(root)
                .map(|a| a.to_owned())
                .map_err(|e| VerifyError::BadRoot {
                    index,
                    reason: format!("{e:?}"),
                })
        })
        .collect()
}

/// A bundle prepared for verification: the roots parsed once, not per handshake.
pub(crate) struct Prepared {
    pub(crate) bundle: Arc<TrustBundle>,
    pub(crate) anchors: Vec<TrustAnchor<'static>>,
}

/// A shared, swappable trust bundle: verifiers read it at every handshake, so a
/// [`BundleHandle::replace`] or [`BundleHandle::update`] applies to the next handshake
/// while handshakes in flight finish with the bundle they started with.
#[derive(Clone)]
pub struct BundleHandle {
    inner: Arc<RwLock<Arc<Prepared>>>,
}

impl BundleHandle {
    /// A handle holding `bundle`; fails when a root cannot be a trust anchor.
    pub fn new(bundle: TrustBundle) -> Result<Self, VerifyError> {
        Ok(BundleHandle {
            inner: Arc::new(RwLock::new(Arc::new(prepare(bundle)?))),
        })
    }

    /// The bundle in force now.
    pub fn current(&self) -> Arc<TrustBundle> {
        self.prepared().bundle.clone()
    }

    /// Replaces the bundle; on error the old one stays in force.
    pub fn replace(&self, bundle: TrustBundle) -> Result<(), VerifyError> {
        let prepared = Arc::new(prepare(bundle)?);
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = prepared;
        Ok(())
    }

    /// Changes a copy of the bundle with `change` (e.g. add or remove a root) and puts it in
    /// force; concurrent updates are serialized so none is lost.
    pub fn update<R>(&self, change: impl FnOnce(&mut TrustBundle) -> R) -> Result<R, VerifyError> {
        let mut slot = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut bundle = TrustBundle::clone(&slot.bundle);
        let result = change(&mut bundle);
        *slot = Arc::new(prepare(bundle)?);
        Ok(result)
    }

    pub(crate) fn prepared(&self) -> Arc<Prepared> {
        // The lock only guards an `Arc` swap, which cannot be left half-done, so a
        // poisoned lock still holds a consistent value.
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for BundleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.prepared();
        f.debug_struct("BundleHandle")
            .field("trust_domain", &p.bundle.trust_domain().as_str())
            .field("roots", &p.bundle.roots().len())
            .finish()
    }
}

fn prepare(bundle: TrustBundle) -> Result<Prepared, VerifyError> {
    let anchors = trust_anchors(&bundle)?;
    Ok(Prepared {
        bundle: Arc::new(bundle),
        anchors,
    })
}

pub(crate) fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

pub(crate) fn system_time(t: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.as_secs())
}

#[cfg(test)]
mod tests;
