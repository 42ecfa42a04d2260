//! HTTP upgrades (WebSocket and others): the request goes on a dedicated HTTP/1.1
//! connection, and once both sides have switched protocols the two raw streams are
//! spliced together.

use std::net::SocketAddr;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use super::{Body, BoxIo, tcp};
use crate::error::ProxyError;

/// Sends `req` on a fresh HTTP/1.1 connection over `io` that is allowed to upgrade.
pub(crate) async fn send(
    io: BoxIo,
    addr: SocketAddr,
    req: Request<Body>,
) -> Result<Response<Incoming>, ProxyError> {
    let upstream = |source| ProxyError::Upstream { addr, source };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(upstream)?;
    tokio::spawn(
        async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upgrade connection failed");
            }
        }
        .in_current_span(),
    );
    sender.send_request(req).await.map_err(upstream)
}

/// Splices the downstream and upstream connections once both have switched protocols;
/// runs in its own task so that the 101 response can be sent first.
pub(crate) fn bridge(downstream: OnUpgrade, upstream: OnUpgrade) {
    tokio::spawn(
        async move {
            match tokio::join!(downstream, upstream) {
                (Ok(down), Ok(up)) => {
                    let (sent, received) =
                        tcp::splice(Box::new(TokioIo::new(down)), Box::new(TokioIo::new(up))).await;
                    tracing::debug!(sent, received, "upgraded stream closed");
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                }
            }
        }
        .in_current_span(),
    );
}
