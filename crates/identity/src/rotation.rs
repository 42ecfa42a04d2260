//! A workload's SVID source: the current certificate and key, handed to every new TLS
//! handshake, and a renewal task that replaces them before they expire.
//!
//! Renewal starts at [`RenewalConfig::renew_at`] of the lifetime (50 %) moved by up to
//! [`RenewalConfig::jitter`] of the lifetime either way (±10 %), so that workloads started
//! together do not all call the CA at the same moment. The lifetime counts from when the
//! certificate was installed (or its notBefore, if later) to its notAfter: issuers backdate
//! notBefore for clock skew, which for a one-minute certificate would put the renewal
//! point at once. Each attempt makes a fresh ECDSA
//! P-256 key, sends a CSR to the [`Signer`] and installs the returned chain; a failure is
//! retried with capped exponential backoff. Meanwhile the current certificate keeps being
//! served. From [`RenewalConfig::warn_remaining`] (20 %) of the lifetime left the source
//! logs warnings; once expired it reports not ready ([`SvidSource::is_ready`]) and keeps
//! retrying.
//!
//! Time: validity dates are read from the wall clock once, when a certificate is
//! installed, and turned into deadlines on tokio's monotonic clock; everything after that
//! (renewal, backoff, expiry) runs on tokio time, which tests pause and advance.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Error as TlsError, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::spiffe::SpiffeId;
use crate::svid::{SvidError, SvidInfo, inspect_leaf};
use crate::verify::provider;
use crate::x509::rfc3339 as format_time;

mod renew;

pub use renew::RenewalConfig;

/// A boxed, sendable future, so that [`Signer`] needs no async-trait machinery.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the CA did not sign a CSR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The CA could not be reached or did not answer; worth retrying.
    #[error("CA unavailable: {0}")]
    Unavailable(String),
    /// The CA answered and refused; retried all the same, as the refusal may be transient
    /// (e.g. a policy being updated).
    #[error("CA refused the request: {0}")]
    Rejected(String),
}

/// Whatever signs this workload's CSRs: the control plane's CA client, or a local CA.
pub trait Signer: Send + Sync {
    /// Signs a DER PKCS#10 CSR and returns the chain, leaf first.
    fn sign(
        &self,
        csr_der: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<CertificateDer<'static>>, SignError>>;
}

/// Why a certificate could not be installed or renewed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The chain is empty.
    #[error("empty certificate chain")]
    EmptyChain,
    /// The leaf is not an X.509-SVID.
    #[error("not an SVID: {0}")]
    NotAnSvid(#[from] SvidError),
    /// The certificate names another workload than this source serves.
    #[error("the certificate is for {presented}, but this source serves {expected}")]
    WrongId {
        /// The ID this source serves.
        expected: SpiffeId,
        /// The ID in the certificate.
        presented: SpiffeId,
    },
    /// The certificate has already expired.
    #[error("the certificate expired at {}", format_time(*.0))]
    Expired(SystemTime),
    /// The key cannot be loaded, or does not belong to the certificate.
    #[error("private key: {0}")]
    Key(TlsError),
    /// A key or CSR could not be generated.
    #[error("cannot generate key or CSR: {0}")]
    Csr(#[from] rcgen::Error),
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// How the current SVID stands, for readiness and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SvidState {
    /// More than the warning threshold of the lifetime remains.
    Valid,
    /// Still valid, but less than the warning threshold remains (renewal is overdue).
    ExpiringSoon,
    /// Past notAfter: peers will refuse it.
    Expired,
}

/// The installed certificate and its deadlines on tokio's clock.
struct Current {
    key: Arc<CertifiedKey>,
    info: Arc<SvidInfo>,
    starts_at: Instant,
    expires_at: Instant,
    lifetime: Duration,
}

/// The SVID of one workload, swappable while TLS configurations keep using it.
pub struct SvidSource {
    id: SpiffeId,
    current: RwLock<Arc<Current>>,
    changes: watch::Sender<Arc<SvidInfo>>,
}

impl SvidSource {
    /// A source serving `chain` (leaf first) with `key`; the leaf's SPIFFE ID becomes the
    /// identity this source will ever serve. An expired certificate is accepted here, so
    /// that a workload restarted after an outage can still start renewing.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<Self>, RotationError> {
        let current = load(chain, key)?;
        let (changes, _) = watch::channel(current.info.clone());
        Ok(Arc::new(SvidSource {
            id: current.info.id.clone(),
            current: RwLock::new(Arc::new(current)),
            changes,
        }))
    }

    /// The SPIFFE ID this source serves.
    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    /// Replaces the certificate and key: new handshakes use them at once, established
    /// connections are unaffected. Refuses another identity or an expired certificate.
    pub fn install(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), RotationError> {
        let next = load(chain, key)?;
        if next.info.id != self.id {
            return Err(RotationError::WrongId {
                expected: self.id.clone(),
                presented: next.info.id.clone(),
            });
        }
        if Instant::now() >= next.expires_at {
            return Err(RotationError::Expired(next.info.not_after));
        }
        let info = next.info.clone();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        self.changes.send_replace(info);
        Ok(())
    }

    /// The certificate chain and key handed to handshakes now.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.current().key.clone()
    }

    /// What the current certificate says.
    pub fn info(&self) -> Arc<SvidInfo> {
        self.current().info.clone()
    }

    /// notAfter of the current certificate (the proxy exports it as a gauge).
    pub fn expiry(&self) -> SystemTime {
        self.current().info.not_after
    }

    /// Whether the current certificate is still valid; false once it has expired.
    pub fn is_ready(&self) -> bool {
        Instant::now() < self.current().expires_at
    }

    /// How the current certificate stands, given the warning threshold of `config`.
    pub fn state(&self, config: &RenewalConfig) -> SvidState {
        self.current().state(config)
    }

    /// A receiver that sees every installed certificate's details.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SvidInfo>> {
        self.changes.subscribe()
    }

    /// Starts the renewal task on the current tokio runtime; abort the handle to stop it.
    pub fn spawn_renewal(
        self: &Arc<Self>,
        signer: Arc<dyn Signer>,
        config: RenewalConfig,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move { renew::run(&this, signer.as_ref(), &config).await })
    }

    fn current(&self) -> Arc<Current> {
        // The lock only guards an `Arc` swap, which cannot be left half-done.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One renewal: fresh key, CSR, signature, install. Returns the new certificate.
    async fn renew_once(&self, signer: &dyn Signer) -> Result<Arc<SvidInfo>, RotationError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let csr = csr_for(&self.id, &key)?;
        let chain = signer.sign(csr).await?;
        let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        self.install(chain, key_der)?;
        Ok(self.info())
    }
}

impl Current {
    fn state(&self, config: &RenewalConfig) -> SvidState {
        let now = Instant::now();
        if now >= self.expires_at {
            SvidState::Expired
        } else if now >= self.warn_at(config) {
            SvidState::ExpiringSoon
        } else {
            SvidState::Valid
        }
    }

    fn warn_at(&self, config: &RenewalConfig) -> Instant {
        let margin = self.lifetime.mul_f64(config.warn_remaining.clamp(0.0, 1.0));
        self.expires_at
            .checked_sub(margin)
            .unwrap_or(self.starts_at)
    }

    fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }
}

impl fmt::Debug for SvidSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("SvidSource")
            .field("id", &self.id.as_str())
            .field("serial", &info.serial)
            .field("not_after", &format_time(info.not_after))
            .finish()
    }
}

impl ResolvesServerCert for SvidSource {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Served even once expired: the peer's refusal then names the expiry date, which
        // says more than an anonymous "no certificate"; readiness takes us out of service.
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for SvidSource {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Parses and checks a chain and key, and places its validity on tokio's clock.
fn load(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Current, RotationError> {
    let leaf = chain.first().ok_or(RotationError::EmptyChain)?;
    let info = inspect_leaf(leaf)?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(RotationError::Key)?;
    let now_wall = SystemTime::now();
    let now = Instant::now();
    let on_clock = |t: SystemTime| match t.duration_since(now_wall) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    };
    // The lifetime that counts for renewal starts when the certificate is installed, not at
    // its notBefore: issuers backdate notBefore for clock skew (this CA by a minute), which
    // for a short-lived certificate is a large part of its lifetime and would put the
    // renewal point at once. A certificate loaded late in its life (a restart) is renewed
    // at half of what is left.
    let starts_at = on_clock(info.not_before).max(now);
    let expires_at = on_clock(info.not_after);
    Ok(Current {
        key: Arc::new(key),
        starts_at,
        expires_at,
        lifetime: expires_at.saturating_duration_since(starts_at),
        info: Arc::new(info),
    })
}

/// A DER CSR asking for exactly `id`, signed with `key` (proof of possession).
fn csr_for(id: &SpiffeId, key: &KeyPair) -> Result<Vec<u8>, rcgen::Error> {
    let mut params = CertificateParams::default();
    // An SVID is named by its URI SAN alone; rcgen's placeholder CN would only confuse.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    Ok(params.serialize_request(key)?.der().to_vec())
}

#[cfg(test)]
mod tests;
