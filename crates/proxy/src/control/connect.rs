//! The transport to the control plane: gRPC (tonic) over our own TLS 1.3 connector, so
//! that the server is verified against `spec.controlPlane.caFile` and, once the proxy has
//! an SVID, every new connection presents the SVID in force at that moment (the
//! [`SvidSource`] resolves the client certificate per handshake, so a renewed certificate
//! is used from the next connection on).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bulkhead_api::proxy::proxy_api_client::ProxyApiClient;
use bulkhead_identity::bundle::parse_certificates;
use bulkhead_identity::rotation::SvidSource;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use super::address::Address;
use super::error::{ControlError, with_causes};

/// How long the TCP connection and the TLS handshake may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on an idle connection find a control plane that vanished without closing
/// the connection (host gone, network partition) within about half a minute.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The control plane API client: its address and the CA its certificate must chain to.
#[derive(Debug)]
pub(crate) struct Client {
    address: Address,
    roots: Arc<RootCertStore>,
}

impl Client {
    /// A client for `address`, trusting the CA certificates in the PEM file `ca_file`.
    pub(crate) fn new(address: Address, ca_file: &Path) -> Result<Client, ControlError> {
        let fail = |message: String| ControlError::File {
            field: "caFile",
            path: ca_file.to_owned(),
            message,
        };
        let pem = std::fs::read(ca_file).map_err(|e| fail(format!("cannot read: {e}")))?;
        let certs = parse_certificates(&pem, "caFile").map_err(|e| fail(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(Client {
            address,
            roots: Arc::new(roots),
        })
    }

    /// `host:port`.
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// Connects (TCP, TLS, HTTP/2) and returns a client on that one connection;
    /// `identity` is presented as client certificate when given (everything but the
    /// join-token `Certify`).
    pub(crate) async fn connect(
        &self,
        identity: Option<Arc<SvidSource>>,
    ) -> Result<ProxyApiClient<Channel>, ControlError> {
        let connector = TlsConnect {
            address: self.address.clone(),
            server_name: self.address.server_name(),
            tls: TlsConnector::from(self.tls(identity)?),
        };
        // The scheme only shapes the request URIs: TLS is the connector's business.
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address))
            .map_err(|e| self.unreachable(&e))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|e| self.unreachable(&e))?;
        Ok(ProxyApiClient::new(channel))
    }

    /// A `ControlError::Unreachable` for this address.
    pub(crate) fn unreachable(&self, error: &dyn std::error::Error) -> ControlError {
        ControlError::Unreachable {
            address: self.address.to_string(),
            message: with_causes(error),
        }
    }

    /// A `ControlError` for a status the control plane answered `rpc` with.
    pub(crate) fn refused(&self, rpc: &'static str, status: &tonic::Status) -> ControlError {
        match status.code() {
            // Transport failures surface as these codes: not the control plane's verdict.
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                self.unreachable(status)
            }
            code => ControlError::Refused {
                address: self.address.to_string(),
                rpc,
                code,
                message: status.message().to_owned(),
            },
        }
    }

    fn tls(&self, identity: Option<Arc<SvidSource>>) -> Result<Arc<ClientConfig>, ControlError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| self.unreachable(&e))?
            .with_root_certificates(Arc::clone(&self.roots));
        let mut config = match identity {
            Some(svid) => builder.with_client_cert_resolver(svid),
            None => builder.with_no_client_auth(),
        };
        // The control plane serves REST and gRPC on one port and picks by ALPN.
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A tower connector: TCP to the control plane, then TLS.
#[derive(Clone)]
struct TlsConnect {
    address: Address,
    server_name: ServerName<'static>,
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
                let target = (this.address.host(), this.address.port());
                let tcp = TcpStream::connect(target).await?;
                tcp.set_nodelay(true)?;
                this.tls.connect(this.server_name.clone(), tcp).await
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS connect timed out"))??;
            Ok(TokioIo::new(stream))
        })
    }
}
