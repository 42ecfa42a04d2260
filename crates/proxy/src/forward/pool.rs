//! One shared HTTP/2 connection per key (an upstream sidecar with its expected identity,
//! or an HTTP/2 app): requests are multiplexed over it, and a closed connection is
//! replaced on the next request.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::server::{KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT};
use super::{Body, BoxIo};
use crate::error::ProxyError;

type Slot = Arc<tokio::sync::Mutex<Option<SendRequest<Body>>>>;

/// HTTP/2 connections by key.
pub(crate) struct H2Pool<K> {
    slots: Mutex<HashMap<K, Slot>>,
}

impl<K: Hash + Eq + Clone> H2Pool<K> {
    /// An empty pool.
    pub(crate) fn new() -> Self {
        H2Pool {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `req` to `key`'s connection, dialling with `connect` when there is none.
    pub(crate) async fn send<F, Fut>(
        &self,
        key: &K,
        addr: SocketAddr,
        connect: F,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, ProxyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<BoxIo, ProxyError>>,
    {
        let sender = self.sender(key, addr, &connect, false).await?;
        self.send_on(sender, key, addr, &connect, req).await
    }

    /// Sends `req` on `sender` (from [`H2Pool::sender`]); a request the connection
    /// refused unsent (it was closing) is retried once on a fresh connection.
    pub(crate) async fn send_on<F, Fut>(
        &self,
        mut sender: SendRequest<Body>,
        key: &K,
        addr: SocketAddr,
        connect: &F,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, ProxyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<BoxIo, ProxyError>>,
    {
        let upstream = |source| ProxyError::Upstream { addr, source };
        match sender.try_send_request(req).await {
            Ok(resp) => Ok(resp),
            Err(mut e) => match e.take_message() {
                Some(req) => {
                    let mut sender = self.sender(key, addr, connect, true).await?;
                    sender.send_request(req).await.map_err(upstream)
                }
                None => Err(upstream(e.into_error())),
            },
        }
    }

    /// Drops every connection whose key `keep` rejects (endpoints gone from the config).
    pub(crate) fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| keep(k));
    }

    /// A ready sender for `key`; `fresh` replaces the pooled one unconditionally.
    pub(crate) async fn sender<F, Fut>(
        &self,
        key: &K,
        addr: SocketAddr,
        connect: &F,
        fresh: bool,
    ) -> Result<SendRequest<Body>, ProxyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<BoxIo, ProxyError>>,
    {
        let slot = self.slot(key);
        // One dial per key at a time: requests arriving while it is under way share it.
        let mut guard = slot.lock().await;
        if let Some(sender) = guard.as_mut().filter(|s| !fresh && !s.is_closed())
            && sender.ready().await.is_ok()
        {
            return Ok(sender.clone());
        }
        let mut sender = handshake(connect().await?, addr).await?;
        sender
            .ready()
            .await
            .map_err(|source| ProxyError::Upstream { addr, source })?;
        *guard = Some(sender.clone());
        Ok(sender)
    }

    fn slot(&self, key: &K) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.clone()).or_default().clone()
    }
}

/// The HTTP/2 client handshake; the connection is driven by its own task.
async fn handshake(io: BoxIo, addr: SocketAddr) -> Result<SendRequest<Body>, ProxyError> {
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        // Pooled connections sit idle between requests; a dead one must be found by a
        // ping, not by the next request.
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    // Not in the current span: the connection outlives the request that opened it.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, %addr, "pooled HTTP/2 connection closed");
        }
    });
    Ok(sender)
}
