//! Property tests: protocol detection on arbitrary first bytes, and hop-by-hop header
//! stripping on arbitrary header sets.

use std::time::Duration;

use bulkhead_proxy::detect::{Classified, H2_PREFACE, Protocol, Rewind, classify, detect};
use bulkhead_proxy::forward::headers::{HOP_BY_HOP, strip_hop_by_hop};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

proptest! {
    #[test]
    fn never_panics_and_decides_within_the_preface_length(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let verdict = classify(&bytes);
        if bytes.len() >= H2_PREFACE.len() {
            prop_assert!(matches!(verdict, Classified::Known(_)));
        }
    }

    #[test]
    fn a_decision_never_changes_with_more_bytes(
        bytes in prop::collection::vec(any::<u8>(), 1..40),
        more in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        if let Classified::Known(p) = classify(&bytes) {
            let mut longer = bytes.clone();
            longer.extend_from_slice(&more);
            prop_assert_eq!(classify(&longer), Classified::Known(p));
        }
    }

    #[test]
    fn h2_preface_is_http2(rest in prop::collection::vec(any::<u8>(), 0..32), cut in 1..24usize) {
        prop_assert_eq!(classify(&H2_PREFACE[..cut]), Classified::NeedMore);
        let mut bytes = H2_PREFACE.to_vec();
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(classify(&bytes), Classified::Known(Protocol::Http2));
    }

    #[test]
    fn method_then_space_is_http1(m in 0..METHODS.len(), target in "[ -~]{0,40}") {
        let line = format!("{} {target}", METHODS[m]);
        prop_assert_eq!(classify(line.as_bytes()), Classified::Known(Protocol::Http1));
        for cut in 1..=METHODS[m].len() {
            prop_assert_eq!(classify(&line.as_bytes()[..cut]), Classified::NeedMore);
        }
    }

    #[test]
    fn client_hello_is_tls(rest in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![0x16, 0x03];
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(classify(&bytes), Classified::Known(Protocol::Tls));
    }

    #[test]
    fn other_first_bytes_are_tcp(first in any::<u8>(), rest in prop::collection::vec(any::<u8>(), 0..32)) {
        prop_assume!(!b"GHPDCOT\x16".contains(&first));
        let mut bytes = vec![first];
        bytes.extend_from_slice(&rest);
        prop_assert_eq!(classify(&bytes), Classified::Known(Protocol::Tcp));
    }

    #[test]
    fn detection_over_any_chunking_matches_and_loses_nothing(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 1..48),
            "(GET|POST|PRI) [ -~]{0,30}".prop_map(String::into_bytes),
            Just(H2_PREFACE.to_vec()),
        ],
        chunk in 1..8usize,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let (mut tx, mut rx) = tokio::io::duplex(1024);
            let sent = bytes.clone();
            let writer = tokio::spawn(async move {
                for part in sent.chunks(chunk) {
                    tx.write_all(part).await.unwrap();
                    tokio::task::yield_now().await;
                }
                // Dropping the writer ends the stream: short inputs decide on EOF.
            });
            let (found, prefix) = detect(&mut rx, Duration::from_secs(5)).await.unwrap();
            writer.await.unwrap();
            let expected = match classify(&bytes) {
                Classified::Known(p) => p,
                Classified::NeedMore => Protocol::Tcp,
            };
            prop_assert_eq!(found, expected);
            let mut all = Vec::new();
            Rewind::new(prefix, rx).read_to_end(&mut all).await.unwrap();
            prop_assert_eq!(all, bytes.clone());
            Ok(())
        })?;
    }
}

/// Header names the stripping test draws from: hop-by-hop ones, end-to-end ones, and
/// custom ones that `Connection` may name.
fn name_pool() -> Vec<&'static str> {
    vec![
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "traceparent",
        "x-request-id",
        "content-type",
        "x-a",
        "x-b",
        "x-c",
        "authorization",
    ]
}

proptest! {
    #[test]
    fn hop_by_hop_headers_are_stripped_and_others_kept(
        headers in prop::collection::vec((0..16usize, "[a-z0-9 ,;=]{0,12}"), 0..24),
        named in prop::collection::vec(0..16usize, 0..4),
        te_trailers in any::<bool>(),
    ) {
        let pool = name_pool();
        let mut map = HeaderMap::new();
        for (i, value) in &headers {
            map.append(HeaderName::from_static(pool[*i]), HeaderValue::from_str(value).unwrap());
        }
        let connection: Vec<&str> = named.iter().map(|i| pool[*i]).collect();
        if !connection.is_empty() {
            map.append("connection", HeaderValue::from_str(&connection.join(", ")).unwrap());
        }
        if te_trailers {
            map.append("te", HeaderValue::from_static("deflate, trailers"));
        }
        let before = map.clone();
        let had_trailers = before.get_all("te").iter().any(|v| {
            v.to_str().unwrap().split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
        strip_hop_by_hop(&mut map);
        for hop in &HOP_BY_HOP {
            if *hop == "te" && had_trailers {
                prop_assert_eq!(map.get_all("te").iter().collect::<Vec<_>>(), vec!["trailers"]);
            } else {
                prop_assert!(!map.contains_key(hop), "{} kept", hop);
            }
        }
        let dropped = |n: &HeaderName| HOP_BY_HOP.contains(n)
            || before.get_all("connection").iter().any(|v| {
                v.to_str().unwrap().split(',').any(|t| t.trim().eq_ignore_ascii_case(n.as_str()))
            });
        for name in before.keys() {
            if dropped(name) {
                if name != "te" {
                    prop_assert!(!map.contains_key(name), "{} kept", name);
                }
            } else {
                let kept: Vec<_> = map.get_all(name).iter().collect();
                let was: Vec<_> = before.get_all(name).iter().collect();
                prop_assert_eq!(kept, was, "{} changed", name);
            }
        }
    }
}
