//! A control plane on 127.0.0.1:0 in a temporary directory, and a small HTTPS client.

#![allow(dead_code, unreachable_pub, reason = "shared by several test binaries")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bulkhead_control::{Bootstrap, Options, Server, Shared};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

/// A running control plane.
pub struct ControlPlane {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub admin: Option<String>,
    pub shared: Arc<Shared>,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ControlPlane {
    /// Starts a control plane over `data_dir` (created on first start).
    pub async fn start(data_dir: &Path) -> Result<ControlPlane> {
        Self::start_on(data_dir, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a control plane listening on `listen`.
    pub async fn start_on(data_dir: &Path, listen: SocketAddr) -> Result<ControlPlane> {
        let options = Options::new(data_dir);
        let boot = Bootstrap::open(&options)?;
        let config = boot.tls.server_config(boot.shared.bundle.clone())?;
        let server = Server::bind(Arc::clone(&boot.shared), config, listen).await?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Ok(ControlPlane {
            addr,
            ca_pem: boot.tls.ca_pem.clone(),
            admin: boot.admin_token,
            shared: boot.shared,
            data_dir: data_dir.to_owned(),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// A client with `token`.
    pub fn client(&self, token: &str) -> Client {
        Client {
            addr: self.addr,
            ca_pem: self.ca_pem.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// A client with the admin token of the first start.
    pub fn admin(&self) -> Client {
        self.client(
            self.admin
                .as_deref()
                .expect("first start prints an admin token"),
        )
    }
}

/// A one-request-per-connection HTTPS client (HTTP/1.1).
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub token: Option<String>,
}

/// A response: status and JSON body (or `Value::String` of a non-JSON body).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Client {
    /// Sends a request.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Result<Reply> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(self.addr).await.context("connect")?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
            .await
            .context("TLS handshake")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let (content_type, body) = body.unwrap_or(("application/json", ""));
        let req = req
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body.to_owned())))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Reply { status, body, text })
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None).await
    }

    /// POST a YAML body.
    pub async fn post_yaml(&self, path: &str, yaml: &str) -> Result<Reply> {
        self.send(Method::POST, path, Some(("application/yaml", yaml)))
            .await
    }

    /// POST a JSON value.
    pub async fn post_json(&self, path: &str, json: &Value) -> Result<Reply> {
        self.send(
            Method::POST,
            path,
            Some(("application/json", &json.to_string())),
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<Reply> {
        self.send(Method::DELETE, path, None).await
    }
}

impl Client {
    /// Opens a watch and returns the first `n` lines (bounded by a 10 s timeout).
    pub async fn watch_lines(
        &self,
        path: &str,
        n: usize,
        ready: oneshot::Sender<()>,
    ) -> Result<Vec<Value>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(self.addr).await?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
            .await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(path)
            .header("host", "127.0.0.1")
            .header(
                "authorization",
                format!("Bearer {}", self.token.as_deref().unwrap_or_default()),
            )
            .body(Full::new(Bytes::new()))?;
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(
            resp.status() == StatusCode::OK,
            "watch answered {}",
            resp.status()
        );
        let _ = ready.send(());
        let mut body = resp.into_body();
        let mut buffer = String::new();
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while lines.len() < n {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .context("watch timed out")?
                .context("watch ended")??;
            if let Ok(data) = frame.into_data() {
                buffer.push_str(&String::from_utf8_lossy(&data));
                while let Some(i) = buffer.find('\n') {
                    let line: String = buffer.drain(..=i).collect();
                    lines.push(serde_json::from_str(line.trim())?);
                }
            }
        }
        Ok(lines)
    }
}

/// Shared state and the proxy API service over a fresh store and CA, without a listener.
pub struct Env {
    _dir: tempfile::TempDir,
    pub shared: Arc<Shared>,
    pub svc: bulkhead_control::proxyapi::ProxyApiService,
}

/// A fresh [`Env`] for trust domain `cluster.local`.
pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(bulkhead_store::Store::open(&dir.path().join("store.redb")).unwrap());
    let td = bulkhead_identity::TrustDomain::new("cluster.local").unwrap();
    let ca = bulkhead_identity::ca::CertificateAuthority::init(&td, std::time::SystemTime::now())
        .unwrap();
    let bundle = ca.bundle().clone();
    let shared = Shared::new(store, ca, bundle).unwrap();
    let svc = bulkhead_control::proxyapi::ProxyApiService::new(Arc::clone(&shared));
    Env {
        _dir: dir,
        shared,
        svc,
    }
}

/// `spiffe://cluster.local/ns/shop/sa/<sa>`.
pub fn id(sa: &str) -> bulkhead_identity::SpiffeId {
    bulkhead_identity::SpiffeId::parse(&format!("spiffe://cluster.local/ns/shop/sa/{sa}")).unwrap()
}
