//! Unit tests for the helpers; the leaf rules are exercised with real certificates in
//! `tests/svid_inspect.rs` and `tests/verify_bad_certs.rs`.

use super::*;

#[test]
fn times_format_as_utc_rfc3339() {
    let t = UNIX_EPOCH + Duration::from_secs(1_893_456_000 + 3_723);
    assert_eq!(format_time(t), "2030-01-01T01:02:03Z");
    assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
}

#[test]
fn asn1_times_before_the_epoch_convert() {
    let t = ASN1Time::from_timestamp(-86_400).unwrap();
    assert_eq!(system_time(t), UNIX_EPOCH - Duration::from_secs(86_400));
}

#[test]
fn serials_are_lower_case_hex_without_separators() {
    assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for bytes in [
        &b""[..],
        b"\x30",
        b"\x30\x03\x02\x01\x01",
        b"not DER at all",
    ] {
        let err = inspect_leaf(&CertificateDer::from(bytes)).unwrap_err();
        assert!(matches!(err, SvidError::Malformed(_)), "{err}");
    }
}
