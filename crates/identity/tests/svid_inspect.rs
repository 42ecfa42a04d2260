//! `inspect_leaf`: what it reports about a valid SVID, and that every leaf rule is checked
//! without a trust bundle (the `bulkhead cert inspect` path).

mod svid_testca;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulkhead_identity::svid::{SvidError, inspect_leaf};
use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
use svid_testca::{LeafSpec, TestCa};

const ID: &str = "spiffe://example.test/ns/shop/sa/web";

#[test]
fn reports_id_serial_names_validity_and_key_type() {
    let ca = TestCa::root("example.test");
    let spec = LeafSpec {
        not_before: rcgen::date_time_ymd(2030, 1, 1),
        not_after: rcgen::date_time_ymd(2030, 1, 2),
        ..LeafSpec::svid(ID)
    };
    let leaf = ca.issue(&spec);
    let info = inspect_leaf(&leaf.chain[0]).unwrap();
    assert_eq!(info.id.as_str(), ID);
    assert_eq!(info.id.workload(), Some(("shop", "web")));
    assert!(!info.serial.is_empty());
    assert!(
        info.serial
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(info.issuer, "O=example.test, CN=test root");
    assert_eq!(info.subject, "");
    let jan_1_2030 = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    assert_eq!(info.not_before, jan_1_2030);
    assert_eq!(info.not_after, jan_1_2030 + Duration::from_secs(86_400));
    assert_eq!(info.key_type, "ECDSA P-256");
}

#[test]
fn an_expired_svid_is_still_an_svid() {
    // Validity is the verifier's business; inspection must still show what the file holds.
    let ca = TestCa::root("example.test");
    let leaf =
        ca.issue(&LeafSpec::svid(ID).valid(time::Duration::days(-3), time::Duration::days(-2)));
    let info = inspect_leaf(&leaf.chain[0]).unwrap();
    assert!(info.not_after < SystemTime::now());
}

#[test]
fn serials_differ_between_issuances() {
    let ca = TestCa::root("example.test");
    let a = inspect_leaf(&ca.svid("/a").chain[0]).unwrap();
    let b = inspect_leaf(&ca.svid("/a").chain[0]).unwrap();
    assert_ne!(a.serial, b.serial);
}

#[test]
fn a_ca_certificate_is_not_a_leaf() {
    let ca = TestCa::root("example.test");
    // The root itself carries spiffe://example.test and CA:true.
    assert_eq!(inspect_leaf(&ca.cert), Err(SvidError::LeafIsCa));
    let leaf = ca.issue(&LeafSpec {
        is_ca: IsCa::Ca(BasicConstraints::Constrained(0)),
        key_usages: vec![KeyUsagePurpose::DigitalSignature],
        ..LeafSpec::svid(ID)
    });
    assert_eq!(inspect_leaf(&leaf.chain[0]), Err(SvidError::LeafIsCa));
}

#[test]
fn trailing_bytes_are_malformed() {
    let ca = TestCa::root("example.test");
    let mut der = ca.svid("/a").chain[0].to_vec();
    der.push(0);
    let err = inspect_leaf(&der.into()).unwrap_err();
    assert!(matches!(err, SvidError::Malformed(_)), "{err}");
}
