//! Request hygiene: hop-by-hop headers, request ids, and the headers sidecars set.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The request id header, added when missing and echoed on responses the proxy makes.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The verified SPIFFE ID of the peer, set by the inbound sidecar for the app. Always
/// overwritten (or removed for plaintext peers): a value from outside is never passed on.
pub const PEER_IDENTITY: HeaderName = HeaderName::from_static("x-bulkhead-peer-identity");
/// Set by the outbound sidecar on an HTTP/1 request carried over HTTP/2, so the inbound
/// sidecar speaks HTTP/1.1 to its app. Sidecar-to-sidecar only; removed everywhere else.
pub const ORIG_PROTO: HeaderName = HeaderName::from_static("x-bulkhead-orig-proto");
/// The value of [`ORIG_PROTO`] for HTTP/1.1.
pub const ORIG_PROTO_HTTP1: HeaderValue = HeaderValue::from_static("http/1.1");
/// On responses the proxy generates: a short reason (`connect`, `no-endpoints`, ...).
pub const PROXY_ERROR: HeaderName = HeaderName::from_static("x-bulkhead-error");
/// W3C trace context; passed through unchanged (listed so that nobody strips it).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Headers that describe one hop, never the end-to-end message (RFC 9110 §7.6.1, plus
/// the de-facto `keep-alive`, `proxy-connection` and the proxy authentication pair).
pub const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers and every header `Connection` names. `TE: trailers` is
/// kept (as exactly that): it tells the next hop the client accepts trailers, which gRPC
/// needs end to end.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// True for an HTTP/1 request asking to switch protocols (`Connection: upgrade` and an
/// `Upgrade` header), e.g. a WebSocket handshake.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// [`strip_hop_by_hop`], then restores `Connection: upgrade` and `Upgrade` on a request
/// or 101 response that switches protocols: those two are exactly what the next hop
/// must see for the upgrade to continue.
pub fn strip_keeping_upgrade(headers: &mut HeaderMap, upgrade: bool) {
    let protocol = upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(headers);
    if let Some(protocol) = protocol {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

/// The request's `x-request-id`, generating one when missing or empty.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    match headers.get(&REQUEST_ID) {
        Some(v) if !v.is_empty() && v.len() <= 128 => v.clone(),
        _ => {
            let id = new_request_id();
            headers.insert(REQUEST_ID, id.clone());
            id
        }
    }
}

/// A fresh request id shaped like a random UUID: unique in this process (a counter) and
/// unpredictable across processes (hashed with a per-process random key). Not a secret.
pub fn new_request_id() -> HeaderValue {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = key.hash_one((n, 0u8));
    let lo = key.hash_one((n, 1u8));
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0x0fff,
        0x8000 | (lo >> 48) & 0x3fff,
        lo & 0xffff_ffff_ffff
    );
    // Only hex digits and dashes: always a valid header value.
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("0"))
}

/// Sets (or, for a plaintext peer, removes) the verified peer identity for the app.
pub fn set_peer_identity(headers: &mut HeaderMap, peer: Option<&str>) {
    headers.remove(&PEER_IDENTITY);
    if let Some(value) = peer.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert(PEER_IDENTITY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_connection_named_and_keeps_te_trailers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-foo"));
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
        h.insert(TRACEPARENT, HeaderValue::from_static("00-abc-def-01"));
        strip_hop_by_hop(&mut h);
        assert!(!h.contains_key("x-foo"));
        assert!(!h.contains_key(header::CONNECTION));
        assert_eq!(h[header::TE], "trailers");
        assert_eq!(h[TRACEPARENT], "00-abc-def-01");
    }

    #[test]
    fn request_ids_are_distinct_and_kept() {
        let mut h = HeaderMap::new();
        let a = ensure_request_id(&mut h);
        assert_eq!(ensure_request_id(&mut h), a);
        assert_ne!(new_request_id(), new_request_id());
        assert_eq!(a.len(), 36);
    }
}
