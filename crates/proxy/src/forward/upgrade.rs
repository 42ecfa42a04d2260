//! HTTP upgrades (WebSocket and others): the request goes on a dedicated HTTP/1.1
//! connection, and once both sides have switched protocols the two raw streams are
//! spliced together.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use super::tcp::{self, TcpLog};
use super::{Body, BoxIo};
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

/// The two sides of an exchange whose response switches protocols; see [`switch`].
pub(crate) struct Switch {
    downstream: OnUpgrade,
    upstream: OnUpgrade,
}

/// The pending switch when `resp` (the upstream's answer to an upgrade request whose
/// downstream side is `downstream`) is a `101 Switching Protocols`.
pub(crate) fn switch(downstream: OnUpgrade, resp: &mut Response<Incoming>) -> Option<Switch> {
    (resp.status() == StatusCode::SWITCHING_PROTOCOLS).then(|| Switch {
        downstream,
        upstream: hyper::upgrade::on(resp),
    })
}

/// Splices the downstream and upstream connections once both have switched protocols,
/// closing them after `idle_timeout` without traffic, then writes `log` (kind `upgrade`)
/// with the stream's bytes and duration (from the switch to the close). Runs in its own
/// task so that the 101 response can be sent first.
pub(crate) fn bridge(switch: Switch, mut log: TcpLog, idle_timeout: Option<Duration>) {
    tokio::spawn(
        async move {
            match tokio::join!(switch.downstream, switch.upstream) {
                (Ok(down), Ok(up)) => {
                    log.start = Instant::now();
                    log.opened();
                    let down: BoxIo = Box::new(TokioIo::new(down));
                    let spliced = tcp::splice(down, Box::new(TokioIo::new(up)), idle_timeout).await;
                    log.closed(spliced);
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                }
            }
        }
        .in_current_span(),
    );
}
