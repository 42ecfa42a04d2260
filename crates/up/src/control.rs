//! The embedded control plane: the same bootstrap, server and write path as `bulkhead
//! control`, in this process, on an ephemeral loopback port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use bulkhead_api::rest::{Role, WriteResponse};
use bulkhead_control::validate::Document;
use bulkhead_control::{Bootstrap, Options, Server, Shared};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Layout;

/// How long join tokens stay valid (a restarted sidecar reuses its certificate).
const JOIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Uses per join token: one for the first start, the rest for retries and restarts that
/// lost their state directory.
const JOIN_TOKEN_USES: u32 = 5;
/// The actor `up` writes as in the audit log.
const ACTOR: &str = "bulkhead-up";

/// A running embedded control plane.
#[derive(Debug)]
pub struct Embedded {
    /// Shared state (store, CA).
    pub shared: Arc<Shared>,
    /// The API address.
    pub addr: SocketAddr,
    /// The API's CA certificate, PEM.
    pub ca_pem: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Embedded {
    /// Opens (or creates) the control plane's state and starts serving on 127.0.0.1:0;
    /// `svid_ttl` is the sidecars' certificate lifetime (`None`: the CA's default).
    pub async fn start(layout: &Layout, svid_ttl: Option<Duration>) -> Result<Embedded> {
        let mut options = Options::new(layout.control());
        options.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        options.svid_ttl = svid_ttl;
        let boot = Bootstrap::open(&options).map_err(|e| anyhow!("control plane: {e}"))?;
        let config = boot.tls.server_config(boot.shared.bundle.clone())?;
        let server = Server::bind(Arc::clone(&boot.shared), config, options.listen)
            .await
            .context("control plane listener")?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        bulkhead_control::proxyapi::spawn_registration_gc(
            Arc::clone(&boot.shared),
            options.registration_ttl,
        );
        Ok(Embedded {
            shared: boot.shared,
            addr,
            ca_pem: boot.tls.ca_pem.clone(),
            stop,
            task,
        })
    }

    /// Applies `docs` as one batch through the apply endpoint's validation and write.
    pub async fn apply(&self, docs: Vec<Document>) -> Result<WriteResponse> {
        bulkhead_control::rest::write::apply_documents(Arc::clone(&self.shared), docs, ACTOR, false)
            .await
            .map_err(|e| anyhow!("applying the resources: {e}"))
    }

    /// Creates an admin token for this run (for the CLI context); returns its secret.
    pub fn operator_token(&self) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!("up-{}-{}", std::process::id(), now.as_millis());
        let (_, secret) = self
            .shared
            .store
            .create_token(&name, Role::Admin, ACTOR)
            .context("creating the operator token")?;
        Ok(secret)
    }

    /// Creates a join token for `namespace`/`service_account`; returns its secret.
    pub fn join_token(&self, namespace: &str, service_account: &str) -> Result<String> {
        let id = self
            .shared
            .spiffe_id(namespace, service_account)
            .map_err(|e| anyhow!("{e}"))?;
        let (_, secret) = self
            .shared
            .store
            .create_join_token(
                &id,
                JOIN_TOKEN_TTL,
                JOIN_TOKEN_USES,
                ACTOR,
                SystemTime::now(),
            )
            .with_context(|| format!("creating a join token for {id}"))?;
        Ok(secret)
    }

    /// The SPIFFE ID of `namespace`/`service_account`.
    pub fn identity(&self, namespace: &str, service_account: &str) -> String {
        self.shared
            .spiffe_id(namespace, service_account)
            .map_or_else(|e| format!("({e})"), |id| id.to_string())
    }

    /// Stops serving (bounded drain).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
