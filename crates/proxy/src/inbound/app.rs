//! The client to the app behind an inbound port: pooled keep-alive HTTP/1.1 connections,
//! or one multiplexed HTTP/2 connection, per app address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::error::ProxyError;
use crate::forward::pool::H2Pool;
use crate::forward::server::Version;
use crate::forward::{Body, BoxIo, dial};

type Idle = Arc<Mutex<HashMap<SocketAddr, Vec<SendRequest<Body>>>>>;

/// Connections to local apps.
pub(crate) struct AppClient {
    idle: Idle,
    h2: H2Pool<SocketAddr>,
    max_idle: usize,
}

impl AppClient {
    /// A client keeping at most `max_idle` idle HTTP/1.1 connections per app.
    pub(crate) fn new(max_idle: usize) -> Self {
        AppClient {
            idle: Idle::default(),
            h2: H2Pool::new(),
            max_idle,
        }
    }

    /// Sends `req` (already shaped for `version`) to the app at `addr`.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        version: Version,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        match version {
            Version::Http2 => {
                let connect = || async move {
                    let io: BoxIo = Box::new(dial(addr, timeout).await?);
                    Ok(io)
                };
                self.h2.send(&addr, addr, connect, req).await
            }
            Version::Http1 => self.send_h1(addr, req, timeout).await,
        }
    }

    async fn send_h1(
        &self,
        addr: SocketAddr,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        let upstream = |source| ProxyError::Upstream { addr, source };
        let mut sender = match self.take_idle(addr) {
            Some(sender) => sender,
            None => handshake(addr, timeout).await?,
        };
        let resp = match sender.try_send_request(req).await {
            Ok(resp) => resp,
            // The idle connection was closed by the app before the request went out:
            // nothing was sent, so a fresh connection may carry it.
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    sender = handshake(addr, timeout).await?;
                    sender.send_request(req).await.map_err(upstream)?
                }
                None => return Err(upstream(e.into_error())),
            },
        };
        self.release(addr, sender);
        Ok(resp)
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(&addr)?;
        while let Some(sender) = list.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Returns the connection to the idle list once its response has been read.
    fn release(&self, addr: SocketAddr, mut sender: SendRequest<Body>) {
        let idle = Arc::clone(&self.idle);
        let max = self.max_idle;
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            let list = idle.entry(addr).or_default();
            if list.len() < max {
                list.push(sender);
            }
        });
    }
}

async fn handshake(addr: SocketAddr, timeout: Duration) -> Result<SendRequest<Body>, ProxyError> {
    let tcp = dial(addr, timeout).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    // Outside any request span: the connection outlives the request that opened it.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, %addr, "app connection closed");
        }
    });
    Ok(sender)
}
