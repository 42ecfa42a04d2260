use super::{AppProbe, percent_decode, query_param};

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

#[tokio::test]
async fn the_app_probe_finds_a_refusing_app_and_caches_its_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    let probe = AppProbe::default();
    assert_eq!(probe.check(&[app]).await, None);
    drop(listener);
    // Within the probe period the cached answer stands...
    assert_eq!(probe.check(&[app]).await, None);
    // ...after it the app is probed again.
    tokio::time::pause();
    tokio::time::advance(super::APP_PROBE_PERIOD).await;
    tokio::time::resume();
    let finding = probe.check(&[app]).await.expect("the closed port is found");
    assert!(
        finding.starts_with(&format!("the app at {app} refuses connections")),
        "{finding}"
    );
}
