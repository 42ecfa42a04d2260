//! A minimal client of the operator REST API: HTTP/1.1 over rustls, the server verified
//! against the control plane's API CA, the admin token on every request. Like the CLI it
//! opens one connection per request; [`Rest::connect`] lets a measurement open the
//! connection before it starts the clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

/// How long connecting, and then one request and its answer, may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The trust anchors of the API CA (PEM).
pub(crate) fn roots(ca_pem: &[u8]) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.context("the API CA is not PEM")?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "no certificate in the API CA file");
    Ok(Arc::new(roots))
}

/// The REST client.
#[derive(Clone)]
pub(crate) struct Rest {
    addr: SocketAddr,
    authorization: String,
    tls: TlsConnector,
}

/// An open connection, ready for one request.
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    rest: Rest,
}

impl Rest {
    /// A client of the control plane at `addr`.
    pub(crate) fn new(addr: SocketAddr, token: &str, roots: Arc<RootCertStore>) -> Result<Rest> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Rest {
            addr,
            authorization: format!("Bearer {token}"),
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Opens a connection (TCP, TLS, HTTP/1.1).
    pub(crate) async fn connect(&self) -> Result<Connection> {
        let connect = async {
            let tcp = TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::IpAddress(self.addr.ip().into());
            let tls = self.tls.connect(name, tcp).await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            // Drives the connection; ends when the sender is dropped.
            tokio::spawn(conn);
            anyhow::Ok(sender)
        };
        let sender = timeout(TIMEOUT, connect)
            .await
            .context("connecting to the control plane timed out")?
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        Ok(Connection {
            sender,
            rest: self.clone(),
        })
    }

    /// `GET path`, the body as text.
    pub(crate) async fn get_text(&self, path: &str) -> Result<String> {
        let bytes = self.connect().await?.send(Method::GET, path, None).await?;
        Ok(String::from_utf8(bytes.to_vec())?)
    }

    /// `POST path` with a JSON body, the answer as JSON.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let body = Some(("application/json", Bytes::from(body.to_string())));
        let bytes = self.connect().await?.send(Method::POST, path, body).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `POST /api/v1/apply` with a YAML body; returns the new store revision.
    pub(crate) async fn apply(&self, yaml: String) -> Result<u64> {
        self.connect().await?.apply(yaml).await
    }
}

impl Connection {
    /// `POST /api/v1/apply` with a YAML body on this connection; returns the new store
    /// revision.
    pub(crate) async fn apply(self, yaml: String) -> Result<u64> {
        let body = Some(("application/yaml", Bytes::from(yaml)));
        let bytes = self.send(Method::POST, "/api/v1/apply", body).await?;
        let answer: Value = serde_json::from_slice(&bytes)?;
        answer["revision"]
            .as_u64()
            .context("the apply answer has no revision")
    }

    /// Sends one request; a non-2xx answer is an error carrying the body.
    async fn send(
        mut self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Bytes> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.rest.addr.to_string())
            .header(AUTHORIZATION, &self.rest.authorization);
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body))?;
        let exchange = async {
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, bytes))
        };
        let (status, bytes) = timeout(TIMEOUT, exchange)
            .await
            .with_context(|| format!("{path}: no answer within {TIMEOUT:?}"))??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text: String = text.chars().take(2000).collect();
            bail!("{path}: {status}: {text}");
        }
        Ok(bytes)
    }
}
