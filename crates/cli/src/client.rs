//! The HTTPS client of the operator REST API: one HTTP/1.1 connection per request over
//! rustls (TLS 1.3 or 1.2), the server verified against the context's CA, a bearer token on
//! every request. Every failure is a [`Failure`] that carries the exit code scripts see.

use std::fmt;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_api::rest::ErrorBody;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig};
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::context::Target;

/// How long each step (connect, TLS handshake, request and response) may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The exit codes of the control-plane commands, documented in docs/cli.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// `diff` found differences.
    Differences = 1,
    /// Bad flags, or no usable context: nothing was sent.
    Usage = 2,
    /// The request was refused: invalid input (found locally or by the server), not
    /// found, conflict, gone, unsupported media type.
    Refused = 3,
    /// Authentication or authorization failed (401, 403).
    Auth = 4,
    /// The server could not be reached, TLS failed, or the server failed (5xx).
    Unavailable = 5,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// The exit class of an HTTP error status.
pub(crate) fn exit_for_status(status: u16) -> Exit {
    match status {
        401 | 403 => Exit::Auth,
        400..=499 => Exit::Refused,
        // 5xx, and answers a REST client does not expect at all (1xx, 3xx).
        _ => Exit::Unavailable,
    }
}

/// A failed command: a message, one line per detail, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) exit: Exit,
    /// One sentence.
    pub(crate) message: String,
    /// Further lines (the server's details, validation errors).
    pub(crate) details: Vec<String>,
}

impl Failure {
    /// A failure without details.
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Bad flags or configuration (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::new(Exit::Usage, message)
    }

    /// The same failure with these detail lines.
    pub(crate) fn with_details(mut self, details: impl IntoIterator<Item = String>) -> Self {
        self.details.extend(details);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for detail in &self.details {
            write!(f, "\n  {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// The exit code for a command's error: a [`Failure`]'s own, 1 for anything else (the
/// older commands' convention).
pub(crate) fn exit_code(error: &anyhow::Error) -> ExitCode {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(ExitCode::FAILURE, |f| f.exit.into())
}

/// Where the server is: parsed from an `https://HOST[:PORT][/PREFIX]` URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// Host name or IP address (IPv6 without brackets), for connecting.
    host: String,
    port: u16,
    /// `HOST:PORT` as written in the URL, for the `Host` header and messages.
    authority: String,
    /// Path prefix without a trailing `/` (empty unless behind a path-routing proxy).
    prefix: String,
    server_name: ServerName<'static>,
}

impl Endpoint {
    /// Parses a server URL; only `https` is accepted, the API carries bearer tokens.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("`{url}`: expected an https:// URL"));
        }
        if uri.query().is_some() {
            return Err(format!("`{url}`: a server URL has no query"));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{url}` has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|_| format!("`{url}`: `{host}` is not a valid host name"))?,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Endpoint {
            host,
            port,
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            server_name,
        })
    }

    /// `HOST:PORT`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }
}

/// A TLS client configuration that trusts exactly the certificates of `ca_pem`.
pub(crate) fn tls_config(ca_pem: &[u8], origin: &str) -> Result<Arc<ClientConfig>, Failure> {
    let bad = |why: String| Failure::usage(format!("{origin}: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate found (expected PEM)".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Failure::usage(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The server also speaks h2 for gRPC; this client is HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client of one control plane, for one command.
#[derive(Debug)]
pub(crate) struct Client {
    endpoint: Endpoint,
    /// Where the CA came from, for TLS error messages.
    ca_origin: String,
    tls: Arc<ClientConfig>,
    authorization: HeaderValue,
}

impl Client {
    /// A client for `target`; fails (exit 2) on a bad URL, CA or token.
    pub(crate) fn new(target: &Target) -> Result<Self, Failure> {
        let endpoint =
            Endpoint::parse(&target.server).map_err(|e| Failure::usage(format!("server {e}")))?;
        let tls = tls_config(&target.ca_pem, &target.ca_origin)?;
        let mut authorization = HeaderValue::try_from(format!("Bearer {}", target.token))
            .map_err(|_| Failure::usage("the token holds characters not allowed in a header"))?;
        authorization.set_sensitive(true);
        Ok(Client {
            endpoint,
            ca_origin: target.ca_origin.clone(),
            tls,
            authorization,
        })
    }

    /// `GET path`, decoding the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        decode(&self.send(Method::GET, path, None).await?)
    }

    /// `POST path` with a body of `content_type`, decoding the JSON answer.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<T, Failure> {
        let body = Some((content_type, Bytes::from(body)));
        decode(&self.send(Method::POST, path, body).await?)
    }

    /// `DELETE path`, returning the raw answer (some deletes answer with no body).
    pub(crate) async fn delete(&self, path: &str) -> Result<Bytes, Failure> {
        self.send(Method::DELETE, path, None).await
    }

    /// Sends one request on a new connection; a non-2xx answer becomes its [`Failure`].
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Bytes, Failure> {
        let request = self.request(method, path, body)?;
        let stream = self.connect().await?;
        let (status, bytes) = self.exchange(stream, request).await?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(error_from(status, &bytes))
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Request<Full<Bytes>>, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint.prefix))
            .header(HOST, self.endpoint.authority())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("bulkhead/", env!("CARGO_PKG_VERSION")));
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            .map_err(|e| Failure::usage(format!("cannot build the request for {path}: {e}")))
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>, Failure> {
        let at = self.endpoint.authority();
        let unavailable = |what: String| Failure::new(Exit::Unavailable, what);
        let tcp = timeout(
            TIMEOUT,
            TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port)),
        )
        .await
        .map_err(|_| unavailable(format!("cannot connect to {at}: timed out after 30s")))?
        .map_err(|e| unavailable(format!("cannot connect to {at}: {e}")))?;
        let connector = TlsConnector::from(Arc::clone(&self.tls));
        let handshake = connector.connect(self.endpoint.server_name.clone(), tcp);
        match timeout(TIMEOUT, handshake).await {
            Err(_) => Err(unavailable(format!(
                "TLS handshake with {at} failed: timed out after 30s"
            ))),
            Ok(Err(e)) => Err(self.tls_failure(&e)),
            Ok(Ok(stream)) => Ok(stream),
        }
    }

    /// A TLS failure, with a hint when the server's certificate was refused.
    fn tls_failure(&self, e: &std::io::Error) -> Failure {
        let at = self.endpoint.authority();
        let failure = Failure::new(
            Exit::Unavailable,
            format!("TLS handshake with {at} failed: {e}"),
        );
        let refused = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|r| match r {
                rustls::Error::InvalidCertificate(why) => Some(why),
                _ => None,
            });
        let hint = match refused {
            None => return failure,
            Some(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate does not name `{}`; connect by a name it holds, or \
                 add this one with `bulkhead control --san`",
                self.endpoint.host
            ),
            Some(_) => format!(
                "the server's certificate is not trusted by {}; use the control plane's API \
                 CA (tls/ca.pem in its data directory), or a context file written by \
                 `bulkhead control --context-out`",
                self.ca_origin
            ),
        };
        failure.with_details([hint])
    }

    async fn exchange(
        &self,
        stream: TlsStream<TcpStream>,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let at = self.endpoint.authority();
        let failed = |e: &dyn fmt::Display| {
            Failure::new(Exit::Unavailable, format!("request to {at} failed: {e}"))
        };
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| failed(&e))?;
            // Drives the connection; it ends when `sender` is dropped with this function.
            tokio::spawn(connection);
            let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| failed(&e))?;
            Ok((status, body.to_bytes()))
        };
        timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| failed(&"timed out after 30s"))?
    }
}

/// Decodes a 2xx answer; a body that does not fit is the server's fault (exit 5).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        Failure::new(
            Exit::Unavailable,
            format!("the server's answer is not what this CLI expects: {e}"),
        )
    })
}

/// The [`Failure`] for a non-2xx answer: the server's [`ErrorBody`] when it sent one.
pub(crate) fn error_from(status: StatusCode, body: &[u8]) -> Failure {
    let exit = exit_for_status(status.as_u16());
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => Failure::new(exit, error.message).with_details(error.details),
        Err(_) => {
            // Not the API's error shape (a proxy in between, say): show what came back.
            let text = String::from_utf8_lossy(body);
            let first = text.lines().next().unwrap_or("").trim();
            let snippet: String = first.chars().take(200).collect();
            let failure = Failure::new(exit, format!("the server answered {status}"));
            if snippet.is_empty() {
                failure
            } else {
                failure.with_details([snippet])
            }
        }
    }
}

/// `path?k=v&…` with the present values percent-encoded; absent ones are left out.
pub(crate) fn with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut out = path.to_owned();
    let mut first = true;
    for (key, value) in params {
        let Some(value) = value else { continue };
        out.push(if first { '?' } else { '&' });
        first = false;
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a value is safe
/// both as a query value and as a path segment.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
