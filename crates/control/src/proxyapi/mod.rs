//! The proxy API (`bulkhead.proxy.v1.ProxyApi`, docs/control-plane.md "Proxy API"):
//! [`certify`] issues SVIDs for join tokens and renewals, [`watch`] streams each proxy its
//! snapshot, [`register`] turns a `Subscribe` into a checked subscription and a stored
//! registration, and [`snapshot`] builds the per-proxy snapshot from the mesh view.
//!
//! The caller (the listener) puts a [`PeerInfo`] into every request's extensions: the
//! verified client certificate's SPIFFE ID is the proxy's only credential besides a join
//! token.

mod certify;
pub mod register;
pub mod snapshot;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bulkhead_api::proxy::proxy_api_server::{ProxyApi, ProxyApiServer};
use bulkhead_api::proxy::{CertifyRequest, CertifyResponse, Snapshot, WatchRequest};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub use register::{collect_registrations, spawn_registration_gc};

use crate::mesh::MeshView;
use crate::server::PeerInfo;
use crate::state::Shared;

/// The proxy API service; cheap to clone (all state is shared).
#[derive(Debug, Clone)]
pub struct ProxyApiService {
    shared: Arc<Shared>,
    /// Makes one stream build a new mesh view while the others wait without holding a
    /// thread (the build itself runs on the blocking pool).
    view_lock: Arc<tokio::sync::Mutex<()>>,
    /// The stream that currently owns each instance: when a proxy reconnects before its
    /// old stream is noticed dead, the old stream's end must not mark it disconnected.
    owners: Arc<Mutex<HashMap<String, u64>>>,
    next_stream: Arc<AtomicU64>,
}

/// The gRPC server for the proxy API over `shared`.
pub fn service(shared: Arc<Shared>) -> ProxyApiServer<ProxyApiService> {
    ProxyApiServer::new(ProxyApiService::new(shared))
}

impl ProxyApiService {
    /// The service over `shared`.
    pub fn new(shared: Arc<Shared>) -> ProxyApiService {
        ProxyApiService {
            shared,
            view_lock: Arc::new(tokio::sync::Mutex::new(())),
            owners: Arc::new(Mutex::new(HashMap::new())),
            next_stream: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The mesh view for the latest change, building it off the runtime threads.
    async fn view(&self) -> Result<Arc<MeshView>, Status> {
        if let Some(view) = self.shared.cached_view() {
            return Ok(view);
        }
        let _building = self.view_lock.lock().await;
        if let Some(view) = self.shared.cached_view() {
            return Ok(view);
        }
        let shared = Arc::clone(&self.shared);
        let built = self.shared.heavy(move || shared.view()).await?;
        built.map_err(|e| {
            tracing::error!(error = %e, "cannot build the mesh view");
            Status::from(e)
        })
    }

    /// Makes a new stream the owner of `instance`; returns the stream's id.
    fn claim(&self, instance: &str) -> u64 {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.insert(instance.to_owned(), id);
        id
    }

    /// Gives up ownership of `instance`; false when a newer stream owns it.
    fn release(&self, instance: &str, stream: u64) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if owners.get(instance) == Some(&stream) {
            owners.remove(instance);
            true
        } else {
            false
        }
    }
}

/// The verified peer of a request, when the listener recorded one.
fn peer<T>(request: &Request<T>) -> Option<PeerInfo> {
    request.extensions().get::<PeerInfo>().cloned()
}

#[tonic::async_trait]
impl ProxyApi for ProxyApiService {
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        certify::certify(&self.shared, request).await
    }

    type WatchStream = ReceiverStream<Result<Snapshot, Status>>;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        watch::watch(self, request).await
    }
}
