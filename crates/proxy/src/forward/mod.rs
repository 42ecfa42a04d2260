//! Forwarding helpers shared by the inbound and outbound sides: the boxed stream and body
//! types at module seams, the wire contract between sidecars (ALPN), header hygiene,
//! HTTP version conversion, pooled HTTP/2 clients, upgrades and TCP copying.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::ProxyError;

pub(crate) mod body;
pub mod headers;
pub(crate) mod http;
pub(crate) mod pool;
pub(crate) mod server;
pub(crate) mod tcp;
pub(crate) mod upgrade;

/// Errors carried inside bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type of the data path: whatever flows in is boxed once at the seam, so
/// no generic body type leaks into services, pools or responses.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A byte stream: plain TCP, TLS, or either behind a detection [`crate::detect::Rewind`].
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The stream type at module seams (one vtable call per read/write buys short types and
/// one monomorphised copy of every HTTP and TCP path).
pub(crate) type BoxIo = Box<dyn Io>;

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose errors convert into [`BoxError`].
pub(crate) fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Opens a TCP connection (to the app or to an upstream sidecar) within `timeout`.
pub(crate) async fn dial(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ProxyError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Requests and small frames must not wait for Nagle's delayed ACK dance.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(source)) => Err(ProxyError::Connect { addr, source }),
        Err(_) => Err(ProxyError::ConnectTimeout { addr }),
    }
}

/// The ALPN protocol names one sidecar uses to tell the other what follows the handshake.
pub mod alpn {
    /// HTTP requests of the app (HTTP/1 and HTTP/2 alike), multiplexed over HTTP/2.
    pub const H2: &[u8] = b"h2";
    /// One HTTP/1.1 request that upgrades (WebSocket and others), on its own connection.
    pub const HTTP1: &[u8] = b"http/1.1";
    /// An opaque TCP stream.
    pub const TCP: &[u8] = b"bulkhead-tcp";
    /// What an inbound listener offers, in preference order.
    pub const ALL: [&[u8]; 3] = [H2, HTTP1, TCP];
}

/// A bounded label for a failed TLS handshake (metrics must not see error text).
pub(crate) fn handshake_failure_reason(err: &io::Error) -> &'static str {
    use bulkhead_identity::verify::{VerifyError, verify_error};
    if err.kind() == io::ErrorKind::TimedOut {
        return "timeout";
    }
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => "eof",
            _ => "io",
        };
    };
    match verify_error(tls) {
        Some(VerifyError::EmptyChain) => "no_certificate",
        Some(VerifyError::WrongIdentity { .. }) => "wrong_identity",
        Some(VerifyError::WrongTrustDomain { .. }) => "wrong_trust_domain",
        Some(VerifyError::UnknownIssuer { .. } | VerifyError::BadSignature) => "unknown_issuer",
        Some(VerifyError::Expired { .. } | VerifyError::NotYetValid { .. }) => "validity",
        Some(_) => "bad_certificate",
        None => match tls {
            rustls::Error::AlertReceived(_) => "alert_received",
            rustls::Error::NoCertificatesPresented => "no_certificate",
            rustls::Error::PeerIncompatible(_) => "incompatible",
            rustls::Error::NoApplicationProtocol => "alpn",
            _ => "protocol",
        },
    }
}
