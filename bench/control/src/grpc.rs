//! The simulated proxies' transport: tonic over TCP + TLS 1.3 (ALPN `h2`), the server
//! verified against the API CA, optionally presenting an SVID as client certificate. The
//! same construction as the sidecar's own connector (`crates/proxy/src/control/connect.rs`,
//! which is crate-private), without keep-alives: the benchmark's streams are short-lived.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bulkhead_api::proxy::proxy_api_client::ProxyApiClient;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

/// How long TCP connect + TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client certificate: the SVID chain (leaf first) and its key.
pub(crate) struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

/// Connects to the proxy API at `addr`; one connection per call, as a sidecar does.
pub(crate) async fn connect(
    addr: SocketAddr,
    roots: &Arc<RootCertStore>,
    identity: Option<Identity>,
) -> Result<ProxyApiClient<Channel>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(Arc::clone(roots));
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnect {
        addr,
        tls: TlsConnector::from(Arc::new(config)),
    };
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector(connector)
        .await
        .with_context(|| format!("cannot connect to the proxy API at {addr}"))?;
    Ok(ProxyApiClient::new(channel))
}

/// A tower connector: TCP, then TLS.
#[derive(Clone)]
struct TlsConnect {
    addr: SocketAddr,
    tls: TlsConnector,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl Service<Uri> for TlsConnect {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let connect = async {
                let tcp = TcpStream::connect(this.addr).await?;
                tcp.set_nodelay(true)?;
                let name = ServerName::IpAddress(this.addr.ip().into());
                this.tls.connect(name, tcp).await
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS connect timed out"))??;
            Ok(TokioIo::new(stream))
        })
    }
}
