//! What the bookstore's HTTP apps share: a server that logs one line per request to
//! standard error, JSON and text answers, and a small GET client for upstreams that
//! relays their error answers (status, body, request id) unchanged.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::REQUEST_ID;

/// An app's answer.
pub type Reply = Response<Full<Bytes>>;

/// How long an upstream gets to answer a whole request.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest upstream answer or request body read.
pub const MAX_BODY: usize = 1024 * 1024;

/// The header sidecars name their errors in.
pub const PROXY_ERROR: &str = "x-bulkhead-error";

/// Serves HTTP/1.1 (and HTTP/2 with prior knowledge) on `listener` until `shutdown`
/// completes, answering each request with `handler` and logging it to standard error as
/// `<app>: <METHOD> <path> -> <status> (<ms> ms) [id <request id>]`.
pub async fn serve<H, F>(
    listener: TcpListener,
    app: &str,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let app: Arc<str> = app.into();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(connection(tcp, app.clone(), handler.clone()));
                }
                Err(e) => {
                    // Mostly EMFILE: let connections close instead of spinning.
                    eprintln!("{app}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

async fn connection<H, F>(tcp: TcpStream, app: Arc<str>, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let _ = tcp.set_nodelay(true);
    let handler = Arc::new(handler);
    let service = service_fn(move |req: Request<Incoming>| {
        let (app, handler) = (app.clone(), handler.clone());
        async move {
            let start = Instant::now();
            let line = format!("{} {}", req.method(), req.uri().path());
            let id = header(req.headers(), REQUEST_ID);
            let resp = handler(req).await;
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            let id = id.map(|id| format!(" id {id}")).unwrap_or_default();
            eprintln!(
                "{app}: {line} -> {} ({ms:.1} ms){id}",
                resp.status().as_u16()
            );
            Ok::<_, Infallible>(resp)
        }
    });
    // Errors here are the client's (reset, malformed request); nothing to add.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

/// A header's value as text, if present and printable.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `value` as a JSON answer with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    with_type(status, body, "application/json")
}

/// A `text/plain` answer with `status`; a newline is added when missing.
pub fn text(status: StatusCode, message: impl Into<String>) -> Reply {
    let mut body = message.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    with_type(status, body.into_bytes(), "text/plain; charset=utf-8")
}

fn with_type(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The `<id>` of a path `<prefix><id>`, when it is one non-empty segment.
pub fn path_id<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// An upstream's whole answer.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Fetched {
    /// The same answer, to relay to our own client: status, body, content type, request
    /// id and `x-bulkhead-error` (so a sidecar's 403 reaches the user as that 403).
    pub fn relay(&self) -> Reply {
        let mut resp = Response::new(Full::new(self.body.clone()));
        *resp.status_mut() = self.status;
        for name in [CONTENT_TYPE.as_str(), REQUEST_ID, PROXY_ERROR] {
            if let Some(v) = self.headers.get(name) {
                resp.headers_mut()
                    .insert(HeaderName::from_static(name), v.clone());
            }
        }
        resp
    }

    /// `<status>: <first line of the body>`, for error fields.
    pub fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        match body.lines().next().map(str::trim) {
            Some(line) if !line.is_empty() => format!("{}: {line}", self.status),
            _ => self.status.to_string(),
        }
    }
}

/// Why an upstream gave no answer.
#[derive(Debug)]
pub enum FetchError {
    /// Connecting failed (nothing listens, or the sidecar refused).
    Connect(io::Error),
    /// The connection broke before a whole answer arrived.
    Http(String),
    /// No whole answer within [`UPSTREAM_TIMEOUT`].
    Timeout,
}

impl FetchError {
    /// The status to answer our own client: 503 when the upstream could not be reached,
    /// 504 on a timeout, 502 when it broke off.
    pub fn status(&self) -> StatusCode {
        match self {
            FetchError::Connect(_) => StatusCode::SERVICE_UNAVAILABLE,
            FetchError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            FetchError::Http(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Http(e) => write!(f, "{e}"),
            FetchError::Timeout => write!(f, "no answer within {UPSTREAM_TIMEOUT:?}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// `GET http://<addr><path>` on a fresh connection, passing `request_id` on, within
/// [`UPSTREAM_TIMEOUT`].
pub async fn get(
    addr: &str,
    path: &str,
    request_id: Option<&HeaderValue>,
) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(UPSTREAM_TIMEOUT, fetch(addr, path, request_id)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout),
    }
}

async fn fetch(
    addr: &str,
    path: &str,
    request_id: Option<&HeaderValue>,
) -> Result<Fetched, FetchError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(FetchError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let http = |e: hyper::Error| FetchError::Http(e.to_string());
    let (mut sender, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(http)?;
    tokio::spawn(conn);
    let mut req = Request::get(path)
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Http(e.to_string()))?;
    if let Ok(host) = HeaderValue::from_str(addr) {
        req.headers_mut().insert(HOST, host);
    }
    if let Some(id) = request_id {
        req.headers_mut().insert(REQUEST_ID, id.clone());
    }
    let resp = sender.send_request(req).await.map_err(http)?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| FetchError::Http(format!("answer body: {e}")))?
        .to_bytes();
    Ok(Fetched {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub async fn read_body(body: Incoming) -> Result<Bytes, String> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| e.to_string())
}
