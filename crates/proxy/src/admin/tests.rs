use super::{percent_decode, query_param};

#[test]
fn query_values_are_percent_decoded() {
    assert_eq!(
        query_param("level=debug", "level").as_deref(),
        Some("debug")
    );
    assert_eq!(
        query_param("x=1&level=info%2Cbulkhead_proxy%3Dtrace", "level").as_deref(),
        Some("info,bulkhead_proxy=trace")
    );
    assert_eq!(query_param("levels=debug", "level"), None);
    assert_eq!(query_param("level", "level").as_deref(), Some(""));
}

#[test]
fn malformed_escapes_are_kept_literally() {
    assert_eq!(percent_decode("a%2"), "a%2");
    assert_eq!(percent_decode("%zz+b"), "%zz b");
    assert_eq!(percent_decode("%41%42"), "AB");
    assert_eq!(percent_decode("%"), "%");
}
