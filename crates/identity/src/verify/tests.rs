//! Unit tests for the bundle handle and conversions; chains and handshakes are tested
//! with real certificates under `tests/`.

use super::*;
use crate::spiffe::TrustDomain;

fn td() -> TrustDomain {
    TrustDomain::new("example.test").unwrap()
}

#[test]
fn a_root_that_is_not_a_certificate_is_named_by_position() {
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let err = BundleHandle::new(TrustBundle::new(td(), vec![junk])).unwrap_err();
    assert!(
        matches!(err, VerifyError::BadRoot { index: 0, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("trust bundle root #0 is not a usable certificate")
    );
}

#[test]
fn verifying_against_a_broken_bundle_fails_closed() {
    let junk = CertificateDer::from(vec![0x30, 0x00]);
    let bundle = TrustBundle::new(td(), vec![junk.clone()]);
    let err = verify_svid_chain(&[junk], &bundle, SystemTime::now(), None).unwrap_err();
    assert!(matches!(err, VerifyError::BadRoot { .. }), "{err}");
}

#[test]
fn an_empty_chain_is_named() {
    let bundle = TrustBundle::new(td(), vec![]);
    let err = verify_svid_chain(&[], &bundle, SystemTime::now(), None).unwrap_err();
    assert_eq!(err, VerifyError::EmptyChain);
}

#[test]
fn times_round_trip_through_webpki_seconds() {
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(system_time(unix_time(t)), t);
    // Before the epoch clamps to it rather than panicking.
    assert_eq!(
        system_time(unix_time(UNIX_EPOCH - Duration::from_secs(5))),
        UNIX_EPOCH
    );
}

#[test]
fn usages_read_as_tls_roles() {
    assert_eq!(
        Usage::ClientAuth.to_string(),
        "TLS client authentication (clientAuth)"
    );
}
