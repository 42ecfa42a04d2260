//! CSR → signed X.509-SVID issuance.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, ensure};
use bulkhead_identity::ca::CertificateAuthority;
use bulkhead_identity::verify::verify_svid_chain;
use bulkhead_identity::{SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    SanType, SerialNumber,
};
use rustls_pki_types::CertificateSigningRequestDer;

use crate::rate;

/// Distinct workloads whose CSRs are cycled through (keys are made by workloads, not by
/// the CA, so key generation is outside the timed loop).
const WORKLOADS: usize = 64;

/// Issuance rates per round.
pub(crate) struct Issuance {
    /// `CertificateAuthority::issue`: CSR proof-of-possession check, identity check, sign.
    pub(crate) ca_per_s: Vec<f64>,
    /// rcgen alone: parse and check the CSR, sign the same leaf profile.
    pub(crate) rcgen_per_s: Vec<f64>,
}

pub(crate) fn run(round: Duration, rounds: usize) -> Result<Issuance> {
    let td = TrustDomain::new("bench.local")?;
    let ca = CertificateAuthority::init(&td, SystemTime::now()).context("CA init")?;
    let csrs = (0..WORKLOADS)
        .map(|i| workload_csr(&td, i))
        .collect::<Result<Vec<_>>>()?;

    // Sanity: what is timed really produces SVIDs that verify.
    let (id, csr) = &csrs[0];
    let svid = ca.issue(csr, id, None, SystemTime::now())?;
    let verified = verify_svid_chain(svid.chain(), ca.bundle(), SystemTime::now(), Some(id))?;
    ensure!(verified == *id, "issued SVID verifies as {verified}");

    let rcgen_ca = RcgenCa::new()?;
    let mut out = Issuance {
        ca_per_s: Vec::new(),
        rcgen_per_s: Vec::new(),
    };
    let mut next = 0usize;
    for _ in 0..rounds {
        out.ca_per_s.push(rate(round, || {
            let (id, csr) = &csrs[next % WORKLOADS];
            next += 1;
            ca.issue(csr, id, None, SystemTime::now())?;
            Ok(())
        })?);
        out.rcgen_per_s.push(rate(round, || {
            let (_, csr) = &csrs[next % WORKLOADS];
            next += 1;
            rcgen_ca.sign(csr, next as u64)
        })?);
    }
    Ok(out)
}

fn workload_csr(td: &TrustDomain, i: usize) -> Result<(SpiffeId, Vec<u8>)> {
    let id = SpiffeId::for_workload(td, "bench", &format!("w{i}"))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    let csr = params.serialize_request(&key)?.der().to_vec();
    Ok((id, csr))
}

/// A bare rcgen CA signing the X509-SVID leaf profile.
struct RcgenCa {
    issuer: Issuer<'static, KeyPair>,
}

impl RcgenCa {
    fn new() -> Result<Self> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        Ok(RcgenCa {
            issuer: Issuer::new(params, key),
        })
    }

    /// One URI SAN, CA:false, KU digitalSignature, EKU serverAuth + clientAuth, 24 h.
    fn sign(&self, csr_der: &[u8], serial: u64) -> Result<()> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(
            csr_der,
        ))?;
        let sans = csr.params.subject_alt_names;
        ensure!(
            matches!(sans.as_slice(), [SanType::URI(_)]),
            "CSR must ask for exactly one URI SAN"
        );
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::hours(24);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(())
    }
}
