use std::collections::HashMap;
use std::time::Duration;

use bulkhead_policy::Layer;

use super::{Direction, Metrics};

/// Parses OpenMetrics text into `series → value`, failing on any malformed line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "content after # EOF: {line}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ")
        {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("bulkhead_proxy_") || name.starts_with("bulkhead_waf_"),
            "bad metric name: {name}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert(series.to_owned(), value);
    }
    assert!(saw_eof, "missing # EOF");
    samples
}

#[test]
fn http_requests_are_counted_by_class_and_timed() {
    let metrics = Metrics::new();
    metrics.http_request(Direction::Inbound, 200, Duration::from_millis(2));
    metrics.http_request(Direction::Inbound, 204, Duration::from_millis(3));
    metrics.http_request(Direction::Outbound, 503, Duration::from_secs(20));
    metrics.http_request(Direction::Outbound, 42, Duration::ZERO);
    let s = parse(&metrics.encode());
    let get = |k: &str| s.get(k).copied().unwrap_or_else(|| panic!("missing {k}"));
    assert_eq!(
        get(r#"bulkhead_proxy_http_requests_total{direction="inbound",status_class="2xx"}"#),
        2.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_http_requests_total{direction="outbound",status_class="5xx"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_http_requests_total{direction="outbound",status_class="other"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_http_request_duration_seconds_count{direction="inbound"}"#),
        2.0
    );
    assert_eq!(
        get(
            r#"bulkhead_proxy_http_request_duration_seconds_bucket{le="0.0025",direction="inbound"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"bulkhead_proxy_http_request_duration_seconds_bucket{le="+Inf",direction="outbound"}"#
        ),
        2.0
    );
}

#[test]
fn tcp_connections_bytes_and_open_gauge() {
    let metrics = Metrics::new();
    metrics.tcp_opened(Direction::Outbound);
    metrics.tcp_opened(Direction::Outbound);
    metrics.tcp_closed(Direction::Outbound, 100, 2000, Duration::from_secs(1));
    metrics.tcp_idle_timeout(Direction::Outbound);
    let s = parse(&metrics.encode());
    let get = |k: &str| s[k];
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_connections_opened_total{direction="outbound"}"#),
        2.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_connections_closed_total{direction="outbound"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_open_connections{direction="outbound"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_received_bytes_total{direction="outbound"}"#),
        100.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_sent_bytes_total{direction="outbound"}"#),
        2000.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_open_connections{direction="inbound"}"#),
        0.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_connection_duration_seconds_count{direction="outbound"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_idle_timeouts_total{direction="outbound"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_tcp_idle_timeouts_total{direction="inbound"}"#),
        0.0
    );
}

#[test]
fn decisions_tls_failures_and_gauges() {
    let metrics = Metrics::new();
    metrics.decision(Layer::Authorization, false);
    metrics.decision(Layer::Authorization, true);
    metrics.decision(Layer::Network, false);
    metrics.tls_handshake_failure(Direction::Inbound, "unknown_ca");
    metrics.set_certificate_expiry(1_900_000_000);
    metrics.set_config_version(7);
    metrics.config_reload(false);
    metrics.access_log_dropped(3);
    let s = parse(&metrics.encode());
    let get = |k: &str| s[k];
    assert_eq!(
        get(r#"bulkhead_proxy_policy_decisions_total{layer="authorization",decision="deny"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_policy_decisions_total{layer="network",decision="deny"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_policy_decisions_total{layer="authentication",decision="allow"}"#),
        0.0
    );
    assert_eq!(
        get(
            r#"bulkhead_proxy_tls_handshake_failures_total{direction="inbound",reason="unknown_ca"}"#
        ),
        1.0
    );
    assert_eq!(
        get("bulkhead_proxy_certificate_expiry_timestamp_seconds"),
        1_900_000_000.0
    );
    assert_eq!(get("bulkhead_proxy_config_version"), 7.0);
    assert_eq!(
        get(r#"bulkhead_proxy_config_reloads_total{result="rejected"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_proxy_config_reloads_total{result="accepted"}"#),
        0.0
    );
    assert_eq!(get("bulkhead_proxy_access_log_dropped_lines_total"), 3.0);
}

#[test]
fn metrics_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Metrics>();
}

#[test]
fn waf_requests_and_matches_have_bounded_labels() {
    use crate::waf::WafAction;
    use bulkhead_resources::WafMode;
    let metrics = Metrics::new();
    metrics.waf_request(
        WafMode::Blocking,
        WafAction::Block,
        Duration::from_micros(300),
    );
    metrics.waf_request(
        WafMode::DetectionOnly,
        WafAction::Detect,
        Duration::from_micros(80),
    );
    metrics.waf_rule_match("942");
    metrics.waf_rule_match("942");
    metrics.waf_rule_match("not-a-family");
    let s = parse(&metrics.encode());
    let get = |k: &str| s.get(k).copied().unwrap_or_else(|| panic!("missing {k}"));
    assert_eq!(
        get(r#"bulkhead_waf_requests_total{mode="blocking",action="block"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_waf_requests_total{mode="detection_only",action="detect"}"#),
        1.0
    );
    assert_eq!(
        get(r#"bulkhead_waf_requests_total{mode="blocking",action="pass"}"#),
        0.0
    );
    assert_eq!(get(r#"bulkhead_waf_rule_matches_total{family="942"}"#), 2.0);
    assert_eq!(
        get(r#"bulkhead_waf_rule_matches_total{family="other"}"#),
        1.0
    );
    assert_eq!(get("bulkhead_waf_inspection_seconds_count"), 2.0);
    // The proxy's own names are unchanged by the second prefix.
    assert!(s.contains_key(
        r#"bulkhead_proxy_http_requests_total{direction="inbound",status_class="2xx"}"#
    ));
}
