//! The one place that turns denies and errors into what the client sees: an HTTP
//! response (403 for a policy deny, 502/503/504 for upstream failures, each with the
//! request id and a reason), a gRPC status for gRPC requests (which expect HTTP 200 with
//! `grpc-status` in the headers, as Envoy answers them), or, for TCP, a closed connection.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::error::ProxyError;
use crate::forward::headers::{PROXY_ERROR, REQUEST_ID};
use crate::forward::http::Verdict;
use crate::forward::{Body, BoxIo, full};

/// How long a refused TCP connection gets to flush its close (TLS close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The response to a request denied by policy: 403 naming the deciding layer and the
/// request id. The policy itself is named in the access log line with the same request
/// id, not told to the caller (which may be an attacker probing the policy).
pub(crate) fn denied(verdict: &Verdict, request_id: &HeaderValue, grpc: bool) -> Response<Body> {
    let layer = verdict.layer.map_or("policy", |l| l.as_str());
    let id = request_id.to_str().unwrap_or("-");
    let message = format!("access denied by {layer} policy; request id: {id}");
    if grpc {
        return grpc_status(GRPC_PERMISSION_DENIED, &message, request_id, None);
    }
    build(
        StatusCode::FORBIDDEN,
        request_id,
        None,
        format!("{message}\n"),
    )
}

/// The response to a request the web application firewall refused (or whose response it
/// refused): the firewall's status (403, 413 for a body over its limit, or a rule's own
/// status) and the request id. The rules that matched are in the access log line with the
/// same request id, not told to the caller.
pub(crate) fn waf_refused(
    status: StatusCode,
    request_id: &HeaderValue,
    grpc: bool,
) -> Response<Body> {
    let id = request_id.to_str().unwrap_or("-");
    let what = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "request body larger than the web application firewall inspects"
        }
        _ => "request blocked by the web application firewall",
    };
    let message = format!("{what}; request id: {id}");
    if grpc {
        return grpc_status(GRPC_PERMISSION_DENIED, &message, request_id, None);
    }
    build(status, request_id, None, format!("{message}\n"))
}

/// Names the full circuit breaker on a fast 503 (`x-bulkhead-overflow: max_requests`).
pub(crate) const OVERFLOW: &str = "x-bulkhead-overflow";

/// The response to a request the proxy could not carry.
pub(crate) fn error(err: &ProxyError, request_id: &HeaderValue, grpc: bool) -> Response<Body> {
    let mut resp = error_response(err, request_id, grpc);
    if let ProxyError::Overflow { limit } = err {
        resp.headers_mut()
            .insert(OVERFLOW, HeaderValue::from_static(limit.as_str()));
    }
    resp
}

fn error_response(err: &ProxyError, request_id: &HeaderValue, grpc: bool) -> Response<Body> {
    let status = status(err);
    let id = request_id.to_str().unwrap_or("-");
    let message = format!("{status}: {err}");
    if grpc {
        let message = format!("{message}; request id: {id}");
        let code = match status {
            StatusCode::GATEWAY_TIMEOUT => GRPC_DEADLINE_EXCEEDED,
            StatusCode::INTERNAL_SERVER_ERROR => GRPC_INTERNAL,
            _ => GRPC_UNAVAILABLE,
        };
        return grpc_status(code, &message, request_id, Some(err.kind()));
    }
    let body = format!("{message}\nrequest id: {id}\n");
    build(status, request_id, Some(err.kind()), body)
}

/// Whether a request is gRPC (`content-type: application/grpc…`), whose clients read the
/// outcome from `grpc-status` rather than from the HTTP status.
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

const GRPC_INTERNAL: u8 = 13;
const GRPC_UNAVAILABLE: u8 = 14;
const GRPC_DEADLINE_EXCEEDED: u8 = 4;
const GRPC_PERMISSION_DENIED: u8 = 7;

/// A trailers-only gRPC response: HTTP 200, the status and a percent-encoded message in
/// the headers, no body.
fn grpc_status(
    code: u8,
    message: &str,
    request_id: &HeaderValue,
    kind: Option<&'static str>,
) -> Response<Body> {
    let mut resp = Response::new(full(String::new()));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", v);
    }
    headers.insert(REQUEST_ID, request_id.clone());
    if let Some(kind) = kind {
        headers.insert(PROXY_ERROR, HeaderValue::from_static(kind));
    }
    resp
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` as is, every other byte as
/// `%XX`.
fn percent_encode(message: &str) -> String {
    use std::fmt::Write;
    message
        .bytes()
        .fold(String::with_capacity(message.len()), |mut out, b| {
            if (0x20..=0x7e).contains(&b) && b != b'%' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}

/// The status for an error: 503 when no upstream could be reached (nothing was sent, a
/// retry elsewhere may work), 504 for a connect timeout, 502 when the upstream misbehaved.
pub(crate) fn status(err: &ProxyError) -> StatusCode {
    match err {
        ProxyError::NoEndpoints { .. }
        | ProxyError::ListenerRemoved(_)
        | ProxyError::Connect { .. }
        | ProxyError::Overflow { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ProxyError::ConnectTimeout { .. } | ProxyError::Timeout { .. } => {
            StatusCode::GATEWAY_TIMEOUT
        }
        ProxyError::Handshake { .. } | ProxyError::Upstream { .. } | ProxyError::Upgrade(_) => {
            StatusCode::BAD_GATEWAY
        }
        ProxyError::Bind { .. } | ProxyError::TlsConfig(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn build(
    status: StatusCode,
    request_id: &HeaderValue,
    kind: Option<&'static str>,
    body: String,
) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(REQUEST_ID, request_id.clone());
    if let Some(kind) = kind {
        headers.insert(PROXY_ERROR, HeaderValue::from_static(kind));
    }
    resp
}

/// Closes a TCP connection that was denied or could not be forwarded: a clean shutdown
/// (with TLS, a close_notify) so the peer reads EOF, bounded in time.
pub(crate) async fn close(mut io: BoxIo) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, io.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("denied; 100% sure"), "denied; 100%25 sure");
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn grpc_requests_are_recognised_by_content_type() {
        let mut h = http::HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_grpc(&h));
    }
}
