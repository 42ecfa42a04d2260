//! The one place that turns denies and errors into what the client sees: an HTTP
//! response (403 for a policy deny, 502/503/504 for upstream failures, each with the
//! request id and a reason) or, for TCP, a closed connection.

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
pub(crate) fn denied(verdict: &Verdict, request_id: &HeaderValue) -> Response<Body> {
    let layer = verdict.layer.map_or("policy", |l| l.as_str());
    let id = request_id.to_str().unwrap_or("-");
    let body = format!("access denied by {layer} policy\nrequest id: {id}\n");
    build(StatusCode::FORBIDDEN, request_id, None, body)
}

/// The response to a request the proxy could not carry.
pub(crate) fn error(err: &ProxyError, request_id: &HeaderValue) -> Response<Body> {
    let status = status(err);
    let id = request_id.to_str().unwrap_or("-");
    let body = format!("{status}: {err}\nrequest id: {id}\n");
    build(status, request_id, Some(err.kind()), body)
}

/// The status for an error: 503 when no upstream could be reached (nothing was sent, a
/// retry elsewhere may work), 504 for a connect timeout, 502 when the upstream misbehaved.
pub(crate) fn status(err: &ProxyError) -> StatusCode {
    match err {
        ProxyError::NoEndpoints { .. }
        | ProxyError::ListenerRemoved(_)
        | ProxyError::Connect { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ProxyError::ConnectTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
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
