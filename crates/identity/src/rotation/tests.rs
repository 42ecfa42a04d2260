//! Unit tests for CSR generation; the renewal task is tested on paused time in
//! `tests/rotation_timers.rs`.

use super::*;

#[test]
fn the_csr_asks_for_exactly_the_workload_id_with_proof_of_possession() {
    let id = SpiffeId::parse("spiffe://example.test/ns/shop/sa/web").unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = csr_for(&id, &key).unwrap();
    let csr = rcgen::CertificateSigningRequestParams::from_der(&der.as_slice().into()).unwrap();
    assert_eq!(
        csr.params.subject_alt_names,
        vec![SanType::URI(id.as_str().try_into().unwrap())]
    );
    assert_eq!(csr.params.distinguished_name.iter().count(), 0);
    assert_eq!(csr.public_key.algorithm(), &PKCS_ECDSA_P256_SHA256);
}

#[test]
fn an_empty_chain_is_refused() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let err =
        SvidSource::new(vec![], PrivateKeyDer::Pkcs8(key.serialize_der().into())).unwrap_err();
    assert!(matches!(err, RotationError::EmptyChain), "{err}");
}
