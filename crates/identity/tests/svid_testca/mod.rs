//! A small certificate authority for tests: roots, intermediates and leaves of any shape,
//! made with rcgen, so every bad-certificate class is built on the spot.

// Each test binary uses a different part of this helper.
#![allow(dead_code)]

use std::time::Duration;

use bulkhead_identity::{TrustBundle, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivateKeyDer};
use time::OffsetDateTime;

/// A CA: its certificate, key, and the certificates between it and its root.
pub(crate) struct TestCa {
    pub(crate) td: TrustDomain,
    pub(crate) cert: CertificateDer<'static>,
    /// The root this CA chains to (itself for a root).
    pub(crate) root: CertificateDer<'static>,
    /// This CA's certificate and those above it, excluding the root (empty for a root).
    pub(crate) chain: Vec<CertificateDer<'static>>,
    params: CertificateParams,
    key: KeyPair,
}

/// A leaf certificate chain and its private key.
pub(crate) struct Leaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Clone for Leaf {
    fn clone(&self) -> Self {
        Leaf {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The shape of a leaf to issue.
#[derive(Clone)]
pub(crate) struct LeafSpec {
    pub(crate) sans: Vec<SanType>,
    pub(crate) is_ca: IsCa,
    pub(crate) key_usages: Vec<KeyUsagePurpose>,
    pub(crate) ekus: Vec<ExtendedKeyUsagePurpose>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

impl LeafSpec {
    /// The X509-SVID leaf profile for `uri`, valid from a minute ago for an hour.
    pub(crate) fn svid(uri: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            sans: vec![uri_san(uri)],
            is_ca: IsCa::ExplicitNoCa,
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            ekus: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before: now - time::Duration::minutes(1),
            not_after: now + time::Duration::hours(1),
        }
    }

    /// The same with an extra DNS SAN.
    pub(crate) fn with_dns(mut self, name: &str) -> Self {
        self.sans
            .push(SanType::DnsName(name.try_into().expect("DNS name")));
        self
    }

    /// The same with another validity period, relative to now.
    pub(crate) fn valid(mut self, from: time::Duration, to: time::Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + from;
        self.not_after = now + to;
        self
    }
}

/// A URI SAN (any string rcgen accepts as IA5).
pub(crate) fn uri_san(uri: &str) -> SanType {
    SanType::URI(uri.try_into().expect("IA5 URI"))
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

fn ca_params(td: &str, name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, td);
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    params.subject_alt_names = vec![uri_san(&format!("spiffe://{td}"))];
    params
}

impl TestCa {
    /// A self-signed root for trust domain `td`.
    pub(crate) fn root(td: &str) -> Self {
        TestCa::root_named(td, "test root")
    }

    /// A self-signed root with the given common name.
    pub(crate) fn root_named(td: &str, common_name: &str) -> Self {
        let params = ca_params(td, common_name);
        let key = new_key();
        let cert = params.self_signed(&key).expect("self-signed root");
        TestCa {
            td: TrustDomain::new(td).expect("trust domain"),
            cert: cert.der().clone(),
            root: cert.der().clone(),
            chain: Vec::new(),
            params,
            key,
        }
    }

    /// An intermediate CA signed by this one.
    pub(crate) fn intermediate(&self) -> Self {
        self.subordinate(ca_params(self.td.as_str(), "test intermediate"))
    }

    /// A would-be issuer whose certificate is an ordinary leaf (CA:false) signed by this CA.
    pub(crate) fn leaf_issuer(&self) -> Self {
        let mut params = ca_params(self.td.as_str(), "not a CA");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.subordinate(params)
    }

    fn subordinate(&self, params: CertificateParams) -> Self {
        let key = new_key();
        let cert = params.signed_by(&key, &self.issuer()).expect("subordinate");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        TestCa {
            td: self.td.clone(),
            cert: cert.der().clone(),
            root: self.root.clone(),
            chain,
            params,
            key,
        }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// The trust bundle holding this CA's root.
    pub(crate) fn bundle(&self) -> TrustBundle {
        TrustBundle::new(self.td.clone(), vec![self.root.clone()])
    }

    /// `spiffe://<td><path>`.
    pub(crate) fn id(&self, path: &str) -> String {
        format!("spiffe://{}{path}", self.td)
    }

    /// Issues a leaf of any shape; the chain holds the leaf and the intermediates.
    pub(crate) fn issue(&self, spec: &LeafSpec) -> Leaf {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = spec.sans.clone();
        params.is_ca = spec.is_ca;
        params.key_usages = spec.key_usages.clone();
        params.extended_key_usages = spec.ekus.clone();
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let key = new_key();
        let cert = params.signed_by(&key, &self.issuer()).expect("leaf");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Leaf {
            chain,
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// A standard SVID for `spiffe://<td><path>`.
    pub(crate) fn svid(&self, path: &str) -> Leaf {
        self.issue(&LeafSpec::svid(&self.id(path)))
    }

    /// Signs a CSR with the SVID profile, valid from now for `ttl`; chain leaf first.
    pub(crate) fn sign_csr(&self, csr_der: &[u8], ttl: Duration) -> Vec<CertificateDer<'static>> {
        let csr =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .expect("valid CSR");
        let now = OffsetDateTime::now_utc();
        let mut spec = LeafSpec {
            sans: csr.params.subject_alt_names.clone(),
            ..LeafSpec::svid("spiffe://placeholder")
        };
        spec.not_before = now;
        spec.not_after = now + ttl;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = spec.sans;
        params.is_ca = spec.is_ca;
        params.key_usages = spec.key_usages;
        params.extended_key_usages = spec.ekus;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer())
            .expect("signed CSR");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        chain
    }
}
