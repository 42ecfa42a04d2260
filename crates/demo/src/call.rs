//! `bulkhead-demo call`: a bounded HTTP client. It sends `count` requests, `interval`
//! apart, over one kept-alive connection (reconnecting when the server closed it), and
//! prints each response's status and body as it arrives:
//!
//! ```text
//! $ bulkhead-demo call --url http://127.0.0.1:9001/admin
//! GET /admin -> 403 Forbidden (1.2 ms)
//!   access denied by authorization policy
//!   request id: 0b8e4c1d-...
//! ```
//!
//! A request that gets no response (refused, reset, timed out) prints `-> error: ...`.
//! The call succeeds when every request got a response, with the `expect`ed status if one
//! is given.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Largest response body read; a larger one counts as an error.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// What to send, how often, and what counts as success.
#[derive(Debug, Clone)]
pub struct Call {
    /// `http://host:port/path?query`.
    pub url: Uri,
    /// The request method.
    pub method: Method,
    /// Extra request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How many requests (at least 1).
    pub count: u32,
    /// The pause between requests.
    pub interval: Duration,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1.
    pub http2: bool,
    /// Each request's deadline: connecting, sending and reading the whole response.
    pub timeout: Duration,
    /// The status every response must have for the call to succeed.
    pub expect: Option<StatusCode>,
    /// Print only response bodies, nothing else.
    pub raw: bool,
}

impl Call {
    /// One GET of `url`, 10 s timeout, printing status and body.
    pub fn get(url: Uri) -> Call {
        Call {
            url,
            method: Method::GET,
            headers: Vec::new(),
            count: 1,
            interval: Duration::from_secs(1),
            http2: false,
            timeout: Duration::from_secs(10),
            expect: None,
            raw: false,
        }
    }
}

/// One response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its `x-request-id` header, if any.
    pub request_id: Option<String>,
    /// Its `x-bulkhead-error` header (why a sidecar could not carry the request), if any.
    pub proxy_error: Option<String>,
    /// Its body, lossily decoded as UTF-8.
    pub body: String,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum CallError {
    /// The URL is not `http://host:port/...` or does not resolve.
    Url(String),
    /// Connecting failed.
    Connect(io::Error),
    /// The connection failed before a whole response arrived.
    Http(hyper::Error),
    /// The response body was over [`MAX_BODY`] or broke off.
    Body(String),
    /// Nothing within the timeout.
    Timeout(Duration),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Url(e) => write!(f, "{e}"),
            CallError::Connect(e) => write!(f, "cannot connect: {e}"),
            CallError::Http(e) => write!(f, "{e}"),
            CallError::Body(e) => write!(f, "response body: {e}"),
            CallError::Timeout(t) => write!(f, "no response within {t:?}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Every request's outcome, in order.
pub type Outcomes = Vec<Result<Answer, CallError>>;

/// Whether `outcomes` make the call a success: all answered, with `expect`ed status.
pub fn succeeded(call: &Call, outcomes: &Outcomes) -> bool {
    outcomes.iter().all(|o| match (o, call.expect) {
        (Ok(a), Some(expect)) => a.status == expect,
        (Ok(_), None) => true,
        (Err(_), _) => false,
    })
}

/// Sends the requests of `call`, printing each outcome to `out` as it arrives.
pub async fn run(call: &Call, out: &mut impl Write) -> io::Result<Outcomes> {
    let mut conn: Option<Conn> = None;
    let mut outcomes = Vec::new();
    for i in 0..call.count.max(1) {
        if i > 0 {
            tokio::time::sleep(call.interval).await;
        }
        let outcome = match tokio::time::timeout(call.timeout, once(call, &mut conn)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Timeout(call.timeout)),
        };
        if outcome.is_err() {
            conn = None;
        }
        print(call, i, &outcome, out)?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn print(
    call: &Call,
    i: u32,
    outcome: &Result<Answer, CallError>,
    out: &mut impl Write,
) -> io::Result<()> {
    if call.raw {
        if let Ok(answer) = outcome {
            out.write_all(answer.body.as_bytes())?;
        }
        return out.flush();
    }
    if call.count > 1 {
        write!(out, "[{}/{}] ", i + 1, call.count)?;
    }
    let path = call.url.path_and_query().map_or("/", PathAndQuery::as_str);
    write!(out, "{} {path} -> ", call.method)?;
    match outcome {
        Ok(a) => {
            let ms = a.elapsed.as_secs_f64() * 1000.0;
            write!(out, "{} ({ms:.1} ms)", a.status)?;
            if let Some(kind) = &a.proxy_error {
                write!(out, " [x-bulkhead-error: {kind}]")?;
            }
            writeln!(out)?;
            for line in a.body.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        Err(e) => writeln!(out, "error: {e}")?,
    }
    out.flush()
}

/// A connection kept alive between requests.
enum Conn {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

async fn connect(call: &Call) -> Result<Conn, CallError> {
    let addr = resolve(&call.url).await?;
    let tcp = TcpStream::connect(addr).await.map_err(CallError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io = TokioIo::new(tcp);
    if call.http2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(CallError::Http)?;
        tokio::spawn(conn);
        Ok(Conn::Http2(sender))
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(CallError::Http)?;
        tokio::spawn(conn);
        Ok(Conn::Http1(sender))
    }
}

async fn resolve(url: &Uri) -> Result<SocketAddr, CallError> {
    if url.scheme() != Some(&Scheme::HTTP) {
        return Err(CallError::Url(format!(
            "`{url}`: only http:// URLs are supported"
        )));
    }
    let host = url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CallError::Url(format!("`{url}`: {e}")))?
        .next()
        .ok_or_else(|| CallError::Url(format!("`{url}`: no address")))
}

/// Sends one request, reusing `conn` when it is still open (and retrying once on a
/// fresh connection if the reused one had closed before the request went out).
async fn once(call: &Call, conn: &mut Option<Conn>) -> Result<Answer, CallError> {
    let start = Instant::now();
    let (mut c, reused) = match conn.take() {
        Some(c) => (c, true),
        None => (connect(call).await?, false),
    };
    let resp = match send(call, &mut c).await {
        Ok(resp) => resp,
        Err(Unsent(true, _)) if reused => {
            c = connect(call).await?;
            send(call, &mut c).await.map_err(|e| e.1)?
        }
        Err(e) => return Err(e.1),
    };
    *conn = Some(c);
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = header(crate::REQUEST_ID);
    let proxy_error = header("x-bulkhead-error");
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| CallError::Body(e.to_string()))?
        .to_bytes();
    Ok(Answer {
        status,
        request_id,
        proxy_error,
        body: String::from_utf8_lossy(&body).into_owned(),
        elapsed: start.elapsed(),
    })
}

/// A failed send: whether the request was never sent (so may be retried), and why.
struct Unsent(bool, CallError);

async fn send(
    call: &Call,
    conn: &mut Conn,
) -> Result<http::Response<hyper::body::Incoming>, Unsent> {
    let request = |h2: bool| {
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.method_mut() = call.method.clone();
        if h2 {
            *req.uri_mut() = call.url.clone();
        } else {
            let path = call.url.path_and_query().map_or("/", PathAndQuery::as_str);
            *req.uri_mut() = Uri::try_from(path).unwrap_or_default();
            if let Some(host) = call
                .url
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                req.headers_mut().insert(HOST, host);
            }
        }
        for (name, value) in &call.headers {
            req.headers_mut().append(name.clone(), value.clone());
        }
        req
    };
    let closed = |e: hyper::Error| Unsent(e.is_canceled() || e.is_closed(), CallError::Http(e));
    match conn {
        Conn::Http1(sender) => {
            sender.ready().await.map_err(closed)?;
            sender
                .try_send_request(request(false))
                .await
                .map_err(|mut e| {
                    let unsent = e.take_message().is_some();
                    Unsent(unsent, CallError::Http(e.into_error()))
                })
        }
        Conn::Http2(sender) => {
            sender.ready().await.map_err(closed)?;
            let sent = sender.send_request(request(true)).await;
            sent.map_err(|e| Unsent(false, CallError::Http(e)))
        }
    }
}
