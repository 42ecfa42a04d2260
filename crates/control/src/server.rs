//! The listener: TLS connections in; gRPC requests to the proxy API, everything else to
//! the REST router. Each connection's peer (address and verified client SVID) is put into
//! every request's extensions, where the proxy API reads it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bulkhead_identity::SpiffeId;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::state::Shared;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get at shutdown (watch streams are cut after this).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end of a connection; inserted into every request's extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The TCP peer address.
    pub addr: SocketAddr,
    /// The SPIFFE ID of the verified client certificate, when the client presented one.
    pub spiffe_id: Option<SpiffeId>,
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `listen` and builds the routes.
    pub async fn bind(
        shared: Arc<Shared>,
        tls: rustls::ServerConfig,
        listen: SocketAddr,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(listen).await?;
        let grpc = tonic::service::Routes::new(crate::proxyapi::service(Arc::clone(&shared)))
            .into_axum_router();
        let app = crate::rest::router(shared).merge(grpc);
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            app,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains for a bounded time.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, addr) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let app = self.app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %addr, "TLS handshake timed out");
                        return;
                    }
                };
                let peer = PeerInfo {
                    addr,
                    spiffe_id: bulkhead_identity::verify::peer_id(tls.get_ref().1),
                };
                let service =
                    tower::ServiceExt::map_request(app, move |mut req: http::Request<_>| {
                        req.extensions_mut().insert(peer.clone());
                        req
                    });
                let builder = auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(
                    TokioIo::new(tls),
                    TowerToHyperService::new(service),
                );
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(peer = %addr, error = %e, "connection ended with an error");
                }
            });
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::info!("connections still open after the drain period; closing them");
        }
    }
}
