//! Unit tests for the helpers; the leaf rules are exercised with real certificates in
//! `tests/svid_inspect.rs` and `tests/verify_bad_certs.rs`.

use super::*;

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
