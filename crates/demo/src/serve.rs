//! `bulkhead-demo serve`: an HTTP/1.1 and HTTP/2 (prior knowledge) server that answers
//! every request with a JSON [`Reply`] saying who it is and what it received, notably the
//! peer identity its sidecar verified.
//!
//! ```text
//! $ bulkhead-demo serve --listen 127.0.0.1:8081 --name api
//! api listening on 127.0.0.1:8081 (HTTP/1.1, HTTP/2)
//! api: GET /hello HTTP/1.1 from spiffe://example.org/ns/demo/sa/web
//! ```
//!
//! `--delay 50ms` holds every answer that long after the request body has been read (a
//! slow replica, for load-balancing demos and benchmarks).

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::{PEER_IDENTITY, REQUEST_ID};

/// What the server answers to every request, as one line of JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The server's `--name`.
    pub name: String,
    /// The request method.
    pub method: String,
    /// The request path and query.
    pub path: String,
    /// The HTTP version the request arrived in (`HTTP/1.1`, `HTTP/2.0`).
    pub version: String,
    /// The `x-bulkhead-peer-identity` header received (the caller's verified SPIFFE ID),
    /// `null` when absent.
    pub peer_identity: Option<String>,
    /// The `x-request-id` header received, `null` when absent.
    pub request_id: Option<String>,
    /// Request body bytes read.
    pub body_bytes: u64,
}

/// A bound server, not yet serving: read [`Server::local_addr`] (port 0 picks one), then
/// [`Server::serve`].
pub struct Server {
    listener: TcpListener,
    name: Arc<str>,
    delay: Duration,
}

impl Server {
    /// Binds `addr` for a server called `name`.
    pub async fn bind(addr: SocketAddr, name: &str) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addr).await?,
            name: name.into(),
            delay: Duration::ZERO,
        })
    }

    /// Holds every answer for `delay` after the request body has been read (zero, the
    /// default, answers at once).
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Server {
        self.delay = delay;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then closes every connection. One line per
    /// request goes to `log` (standard output for the binary; [`io::sink`] to silence).
    pub async fn serve<W>(self, log: W, shutdown: impl Future<Output = ()>)
    where
        W: Write + Send + 'static,
    {
        let log = Arc::new(std::sync::Mutex::new(log));
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        conns.spawn(connection(tcp, self.name.clone(), self.delay, log.clone()));
                    }
                    Err(e) => {
                        // Mostly EMFILE: let connections close instead of spinning.
                        eprintln!("{}: accept failed: {e}", self.name);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        conns.shutdown().await;
    }
}

type SharedLog<W> = Arc<std::sync::Mutex<W>>;

async fn connection<W: Write + Send + 'static>(
    tcp: TcpStream,
    name: Arc<str>,
    delay: Duration,
    log: SharedLog<W>,
) {
    let _ = tcp.set_nodelay(true);
    let service = service_fn(move |req| {
        let (name, log) = (name.clone(), log.clone());
        async move { Ok::<_, Infallible>(answer(&name, delay, req, &log).await) }
    });
    // Errors here are the client's (reset, malformed request): hyper answered what it
    // could; nothing to add for a demo app.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

async fn answer<W: Write>(
    name: &str,
    delay: Duration,
    req: Request<Incoming>,
    log: &SharedLog<W>,
) -> Response<Full<Bytes>> {
    let (parts, mut body) = req.into_parts();
    let mut body_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                body_bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            Err(_) => break,
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let reply = Reply {
        name: name.to_owned(),
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        version: format!("{:?}", parts.version),
        peer_identity: header(&parts.headers, PEER_IDENTITY),
        request_id: header(&parts.headers, REQUEST_ID),
        body_bytes,
    };
    if let Ok(mut log) = log.lock() {
        let from = reply
            .peer_identity
            .as_deref()
            .unwrap_or("an unidentified peer");
        let _ = writeln!(
            log,
            "{name}: {} {} {} from {from}",
            reply.method, reply.path, reply.version
        );
        let _ = log.flush();
    }
    let mut json = serde_json::to_vec(&reply).unwrap_or_default();
    json.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(json)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
