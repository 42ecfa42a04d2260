//! The certificate authority: a self-signed root or a root/intermediate you bring, issuing
//! X.509-SVIDs from CSRs exactly per the SPIFFE X509-SVID specification.
//!
//! Defaults, and why:
//! - leaf TTL [`DEFAULT_LEAF_TTL`] (24 h, DESIGN.md §3), capped by the CA's maximum
//!   ([`DEFAULT_MAX_LEAF_TTL`], 7 days unless configured) and never past the notAfter of any
//!   certificate in the CA chain;
//! - leaf notBefore is `now` minus [`CLOCK_SKEW_BACKDATE`] (1 minute) so that a peer whose
//!   clock is slightly behind accepts a fresh SVID, but never before the chain's notBefore;
//! - a generated root is ECDSA P-256, valid [`ROOT_VALIDITY`] (10 years), with a random
//!   128-bit serial and the URI SAN `spiffe://<trust-domain>`.
//!
//! An issued chain is the leaf followed by the CA's intermediates, *without* the root: the
//! X509-SVID specification lets the SVID carry intermediates, and the root travels in the
//! trust bundle (`bundle.pem`), which is what peers verify against.

mod checks;
mod csr;
mod describe;
mod error;
mod store;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SerialNumber,
};
use rustls_pki_types::{CertificateDer, UnixTime};

pub use csr::KeyAndCsr;
pub(crate) use describe::hex as hex_lower;
pub use describe::{CertSummary, describe, format_duration, rfc3339, sha256_fingerprint};
pub use error::CaError;
pub use store::{
    Activation, BUNDLE_FILE, CA_CERT_FILE, CA_KEY_FILE, CaDir, CaSettings, METADATA_FILE, NEXT_DIR,
    RETIRED_DIR, SVID_BUNDLE_FILE, SVID_CERT_FILE, SVID_KEY_FILE, write_private_file,
    write_public_file, write_svid_files,
};

use crate::bundle::{TrustBundle, der_to_pem, parse_certificates, pem_encode};
use crate::spiffe::{SpiffeId, TrustDomain};

/// Leaf lifetime when the caller does not ask for one.
pub const DEFAULT_LEAF_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest leaf lifetime a CA grants unless configured otherwise: short-lived by default.
pub const DEFAULT_MAX_LEAF_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Lifetime of a root made by [`CertificateAuthority::init`] (10 years of 365 days).
pub const ROOT_VALIDITY: Duration = Duration::from_secs(3650 * 24 * 3600);
/// How far before `now` a new certificate's notBefore is set, for peers with slow clocks.
pub const CLOCK_SKEW_BACKDATE: Duration = Duration::from_secs(60);

/// Why an SVID's lifetime is shorter than requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TtlCap {
    /// The request exceeded the CA's maximum leaf TTL.
    MaxLeafTtl,
    /// The CA chain expires first; the leaf ends with it.
    IssuerExpiry,
}

/// A signed X.509-SVID.
#[derive(Debug, Clone)]
pub struct IssuedSvid {
    id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
    ttl_cap: Option<TtlCap>,
}

impl IssuedSvid {
    /// The SPIFFE ID in the leaf's only URI SAN.
    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// Leaf first, then the CA's intermediates; never the root (that is in the bundle).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain as PEM, leaf first: the contents of `cert.pem`.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| der_to_pem(c)).collect()
    }

    /// Serial number, lower-case hex of the DER INTEGER contents.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Start of validity (backdated for clock skew).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Why the lifetime is shorter than requested, if it is.
    pub fn ttl_cap(&self) -> Option<TtlCap> {
        self.ttl_cap
    }
}

/// A CA that signs X.509-SVIDs for one trust domain.
#[derive(Debug)]
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, then its issuers up to and including the root (as in `ca.pem`).
    chain: Vec<CertificateDer<'static>>,
    subject: String,
    bundle: TrustBundle,
    not_before: SystemTime,
    not_after: SystemTime,
    max_leaf_ttl: Duration,
}

impl CertificateAuthority {
    /// Creates a self-signed ECDSA P-256 root for `trust_domain`, valid 10 years from `now`,
    /// granting leaves of at most [`DEFAULT_MAX_LEAF_TTL`].
    pub fn init(trust_domain: &TrustDomain, now: SystemTime) -> Result<Self, CaError> {
        Self::init_with_max_ttl(trust_domain, now, DEFAULT_MAX_LEAF_TTL)
    }

    /// [`init`](Self::init) with another maximum leaf TTL.
    pub fn init_with_max_ttl(
        trust_domain: &TrustDomain,
        now: SystemTime,
        max_leaf_ttl: Duration,
    ) -> Result<Self, CaError> {
        let now = whole_seconds(now);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::generate("an ECDSA P-256 key", e))?;
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = (now - CLOCK_SKEW_BACKDATE).into();
        params.not_after = (now + ROOT_VALIDITY).into();
        params.distinguished_name = root_name(trust_domain, &serial);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![csr::uri_san(&trust_domain.id())?];
        let cert = params
            .self_signed(&key)
            .map_err(|e| CaError::generate("the root certificate", e))?;
        let key_pem = pem_encode("PRIVATE KEY", key.serialized_der());
        let source = Source {
            chain: vec![cert.der().clone()],
            chain_origin: "generated root",
            key_pem: key_pem.as_bytes(),
            key_origin: "generated key",
        };
        Self::assemble(source, trust_domain, now, max_leaf_ttl, true)
    }

    /// Brings your own CA: `cert_chain_pem` holds the CA certificate first, then each issuer
    /// up to a self-signed root; `key_pem` the CA's unencrypted ECDSA P-256 key (PKCS#8 or
    /// SEC1). Refuses a chain that is not a CA, whose key does not match, that is not valid
    /// now or not long enough to cover one `max_leaf_ttl` leaf, whose path length forbids
    /// issuing, or that names another trust domain.
    pub fn from_pem(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        trust_domain: &TrustDomain,
        now: SystemTime,
        max_leaf_ttl: Duration,
    ) -> Result<Self, CaError> {
        let source = Source {
            chain: parse_certificates(cert_chain_pem, "CA certificate chain")?,
            chain_origin: "CA certificate chain",
            key_pem,
            key_origin: "CA key",
        };
        Self::assemble(source, trust_domain, whole_seconds(now), max_leaf_ttl, true)
    }

    /// [`from_pem`](Self::from_pem) reading two files, whose paths errors then name.
    pub fn from_files(
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
        trust_domain: &TrustDomain,
        now: SystemTime,
        max_leaf_ttl: Duration,
    ) -> Result<Self, CaError> {
        let chain_pem = std::fs::read(cert_path).map_err(|e| CaError::io(cert_path, e))?;
        let key_pem = std::fs::read(key_path).map_err(|e| CaError::io(key_path, e))?;
        let (chain_origin, key_origin) = (cert_path.display(), key_path.display());
        let (chain_origin, key_origin) = (chain_origin.to_string(), key_origin.to_string());
        let source = Source {
            chain: parse_certificates(&chain_pem, &chain_origin)?,
            chain_origin: &chain_origin,
            key_pem: &key_pem,
            key_origin: &key_origin,
        };
        Self::assemble(source, trust_domain, whole_seconds(now), max_leaf_ttl, true)
    }

    /// Runs every check, builds the issuer, and proves it with a test SVID.
    /// `cover`: require the chain to outlive one maximum-TTL leaf issued now (at import;
    /// a CA loaded from disk near its end keeps issuing, with leaves capped at its expiry).
    fn assemble(
        source: Source<'_>,
        trust_domain: &TrustDomain,
        now: SystemTime,
        max_leaf_ttl: Duration,
        cover: bool,
    ) -> Result<Self, CaError> {
        if max_leaf_ttl.is_zero() {
            return Err(CaError::ZeroTtl);
        }
        let checked = checks::check(&checks::Input {
            chain: &source.chain,
            chain_origin: source.chain_origin,
            key_pem: source.key_pem,
            key_origin: source.key_origin,
            trust_domain,
            now,
            cover: cover.then_some(max_leaf_ttl),
        })?;
        let subject = describe::subject_of(&describe::parse(&source.chain[0], "", 1)?);
        let issuer = Issuer::from_ca_cert_der(&source.chain[0], checked.key).map_err(|_| {
            CaError::IssuerNameUnsupported {
                subject: subject.clone(),
            }
        })?;
        let root = source.chain[source.chain.len() - 1].clone();
        let ca = CertificateAuthority {
            trust_domain: trust_domain.clone(),
            issuer,
            chain: source.chain,
            subject,
            bundle: TrustBundle::new(trust_domain.clone(), vec![root]),
            not_before: checked.not_before,
            not_after: checked.not_after,
            max_leaf_ttl,
        };
        ca.self_check(now)?;
        Ok(ca)
    }

    /// Issues a short test leaf for the CA's own key and verifies it with webpki against the
    /// root: catches name re-encoding, chain and constraint problems the explicit checks miss.
    fn self_check(&self, now: SystemTime) -> Result<(), CaError> {
        let id = SpiffeId::parse(&format!(
            "spiffe://{}/bulkhead/ca-self-check",
            self.trust_domain
        ))
        .map_err(|e| CaError::generate("the self-check ID", e))?;
        let not_after = (now + Duration::from_secs(60)).min(self.not_after);
        let (leaf, _) = self.sign_leaf(&id, self.issuer.key(), self.not_before, not_after)?;
        let issued = describe::parse(&leaf, "self-check leaf", 1)?;
        let ca = describe::parse(&self.chain[0], "CA certificate", 1)?;
        if issued.issuer().as_raw() != ca.subject().as_raw() {
            return Err(CaError::IssuerNameUnsupported {
                subject: self.subject.clone(),
            });
        }
        let fail = |e: webpki::Error| CaError::SelfCheck {
            reason: format!("{e:?}"),
        };
        let anchors = [webpki::anchor_from_trusted_cert(self.root()).map_err(fail)?];
        let ee = webpki::EndEntityCert::try_from(&leaf).map_err(fail)?;
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &self.chain[..self.chain.len() - 1],
            UnixTime::since_unix_epoch(since_epoch),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(fail)?;
        Ok(())
    }

    /// Issues an X.509-SVID for the key in `csr_der` after verifying the CSR's signature and
    /// that it asks for exactly `authorized`, the ID the requester has proven it may hold.
    /// `ttl` defaults to 24 h and is capped as the module documentation describes.
    pub fn issue(
        &self,
        csr_der: &[u8],
        authorized: &SpiffeId,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> Result<IssuedSvid, CaError> {
        self.check_id(authorized)?;
        let key = csr::verify(csr_der, authorized)?;
        let now = whole_seconds(now);
        let (not_before, not_after, ttl_cap) = self.leaf_window(ttl, now)?;
        let (leaf, serial) = self.sign_leaf(authorized, &key, not_before, not_after)?;
        let mut chain = Vec::with_capacity(self.chain.len());
        chain.push(leaf);
        chain.extend_from_slice(&self.chain[..self.chain.len() - 1]);
        Ok(IssuedSvid {
            id: authorized.clone(),
            chain,
            serial,
            not_before,
            not_after,
            ttl_cap,
        })
    }

    /// Generates an ECDSA P-256 key here, builds a CSR for `id` and issues it (what
    /// `bulkhead cert issue` does); the key is returned with the SVID.
    pub fn issue_with_new_key(
        &self,
        id: &SpiffeId,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> Result<(IssuedSvid, KeyAndCsr), CaError> {
        self.check_id(id)?;
        let key = KeyAndCsr::generate(id)?;
        let svid = self.issue(key.csr_der(), id, ttl, now)?;
        Ok((svid, key))
    }

    /// The ID must be in this trust domain and name a workload (have a path).
    fn check_id(&self, id: &SpiffeId) -> Result<(), CaError> {
        if id.trust_domain_name() != self.trust_domain.as_str() {
            return Err(CaError::WrongTrustDomain {
                id: id.to_string(),
                expected: self.trust_domain.to_string(),
            });
        }
        if id.path().is_empty() {
            return Err(CaError::IdWithoutPath {
                id: id.to_string(),
                td: self.trust_domain.to_string(),
            });
        }
        Ok(())
    }

    /// `(notBefore, notAfter, cap)` for a leaf requested at `now`.
    fn leaf_window(
        &self,
        ttl: Option<Duration>,
        now: SystemTime,
    ) -> Result<(SystemTime, SystemTime, Option<TtlCap>), CaError> {
        let requested = ttl.unwrap_or(DEFAULT_LEAF_TTL);
        if requested.is_zero() {
            return Err(CaError::ZeroTtl);
        }
        if now < self.not_before {
            return Err(CaError::NotYetValid {
                certificate: format!("the CA chain of {}", self.subject),
                not_before: rfc3339(self.not_before),
                now: rfc3339(now),
            });
        }
        if now >= self.not_after {
            return Err(CaError::Expired {
                certificate: format!("the CA chain of {}", self.subject),
                not_after: rfc3339(self.not_after),
                now: rfc3339(now),
            });
        }
        let mut cap = None;
        let mut lifetime = requested;
        if lifetime > self.max_leaf_ttl {
            lifetime = self.max_leaf_ttl;
            cap = Some(TtlCap::MaxLeafTtl);
        }
        let mut not_after = now + lifetime;
        if not_after > self.not_after {
            not_after = self.not_after;
            cap = Some(TtlCap::IssuerExpiry);
        }
        let not_before = now
            .checked_sub(CLOCK_SKEW_BACKDATE)
            .unwrap_or(now)
            .max(self.not_before);
        Ok((not_before, not_after, cap))
    }

    /// Signs a leaf: one URI SAN, CA:false, digitalSignature (critical), serverAuth +
    /// clientAuth, random serial. Returns the DER and the serial as text.
    fn sign_leaf(
        &self,
        id: &SpiffeId,
        key: &impl PublicKeyData,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<(CertificateDer<'static>, String), CaError> {
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        // A non-empty subject keeps the SAN extension non-critical, as most SVIDs have it.
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Bulkhead");
        params.distinguished_name = name;
        params.subject_alt_names = vec![csr::uri_san(id)?];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(key, &self.issuer)
            .map_err(|e| CaError::generate("the SVID", e))?;
        Ok((cert.der().clone(), serial_text(&serial)))
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate that signs SVIDs.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The CA certificate, then its issuers up to and including the root.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The root this CA chains to (the CA certificate itself when self-signed).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.chain[self.chain.len() - 1]
    }

    /// The CA certificate's subject, as errors print it.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The trust bundle: this CA's root, plus any other roots in `bundle.pem` when loaded.
    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    /// The earliest notAfter in the chain: no SVID outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The longest leaf lifetime this CA grants.
    pub fn max_leaf_ttl(&self) -> Duration {
        self.max_leaf_ttl
    }

    /// The chain as PEM (the contents of `ca.pem`).
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| der_to_pem(c)).collect()
    }

    /// The signing key as PKCS#8 PEM (the contents of `ca-key.pem`).
    fn key_pem(&self) -> String {
        pem_encode("PRIVATE KEY", self.issuer.key().serialized_der())
    }
}

/// Where a chain and key come from, for error messages.
struct Source<'a> {
    chain: Vec<CertificateDer<'static>>,
    chain_origin: &'a str,
    key_pem: &'a [u8],
    key_origin: &'a str,
}

/// `O=Bulkhead, OU=<trust domain>, CN=Bulkhead root <serial prefix>`: the serial prefix
/// gives each root a distinct subject, so that old and new roots are told apart during a
/// rotation by tools that match issuers by name.
fn root_name(td: &TrustDomain, serial: &[u8]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Bulkhead");
    // X.520 bounds an OU at 64 characters; trust domains may be longer.
    let ou: String = td.as_str().chars().take(64).collect();
    name.push(DnType::OrganizationalUnitName, ou);
    name.push(
        DnType::CommonName,
        format!("Bulkhead root {}", describe::hex(&serial[..4])),
    );
    name
}

/// 128 random bits; RFC 5280 wants a positive, non-zero serial of at most 20 octets, which
/// DER encoding (a leading zero byte when the top bit is set) keeps.
fn random_serial() -> Result<[u8; 16], CaError> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|e| CaError::generate("a random serial", e))?;
    if serial == [0; 16] {
        serial[15] = 1;
    }
    Ok(serial)
}

/// The serial as `svid::inspect_leaf` and [`describe`] print it: the DER INTEGER contents
/// (a leading zero byte when the top bit is set), lower-case hex.
fn serial_text(serial: &[u8]) -> String {
    let trimmed: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
    let mut bytes = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.extend(trimmed);
    describe::hex(&bytes)
}

/// X.509 times have whole seconds; truncating first keeps reported times equal to the
/// certificate's.
fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
}

#[cfg(test)]
mod tests;
