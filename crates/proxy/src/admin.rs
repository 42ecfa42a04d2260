//! The admin listener: loopback-only HTTP/1.1 for operators and scrapers.
//!
//! | path | method | answer |
//! |---|---|---|
//! | `/metrics` | GET | Prometheus metrics (OpenMetrics text) |
//! | `/ready` | GET | 200 when a snapshot is in force, the SVID is valid, the data path serves and (when [`AdminState::apps`] is set) every inbound port's app accepts connections; else 503 with the reason. `/ready?skip=app` leaves the apps out (what a launcher waits for before starting the app) |
//! | `/live` | GET | 200 while the process runs |
//! | `/config` | GET | the snapshot in force and certificate details as JSON (never key material); under a control plane also its connection state (`control`) |
//! | `/logging` | GET | the current log filter |
//! | `/logging?level=FILTER` | POST, PUT | replaces the log filter (`debug`, `info,bulkhead_proxy=trace`, ...) |
//!
//! The listener refuses to serve on anything but a loopback address: `/logging` changes
//! the process, and `/config` describes the mesh around it.

mod config_json;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::control::ControlStatus;
use crate::metrics::Metrics;
use crate::reload::ReloadStatus;
use crate::snapshot::Snapshot;

/// The handle `bulkhead proxy` gets from wrapping its `EnvFilter` in a
/// `tracing_subscriber::reload::Layer` directly on the registry.
pub type LogFilterHandle = reload::Handle<EnvFilter, Registry>;

/// Admin connections served at once; more wait to be accepted, so a misbehaving scraper
/// cannot take the control thread's memory.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// `/metrics` content type: what prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    /// The snapshot in force.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The proxy's metrics.
    pub metrics: Arc<Metrics>,
    /// Runtime log filter control; `/logging` answers 503 without it.
    pub log_filter: Option<LogFilterHandle>,
    /// Reload outcomes, shown in `/config` (standalone mode).
    pub reload_status: Option<watch::Receiver<ReloadStatus>>,
    /// The control plane connection, shown in `/config` (controlled mode).
    pub control_status: Option<watch::Receiver<ControlStatus>>,
    /// Whether the data path is serving (its listeners are bound); `/ready` also waits
    /// for this when given.
    pub serving: Option<watch::Receiver<bool>>,
    /// When given, `/ready` also requires the apps behind the inbound ports to accept
    /// connections (probed at most once per [`APP_PROBE_PERIOD`], the answer cached).
    pub apps: Option<Arc<AppProbe>>,
}

impl AdminState {
    /// State with just snapshots and metrics.
    pub fn new(snapshots: watch::Receiver<Arc<Snapshot>>, metrics: Arc<Metrics>) -> AdminState {
        AdminState {
            snapshots,
            metrics,
            log_filter: None,
            reload_status: None,
            control_status: None,
            serving: None,
            apps: None,
        }
    }
}

/// How often at most `/ready` probes the apps; answers in between reuse the last probe.
pub const APP_PROBE_PERIOD: Duration = Duration::from_secs(1);
/// How long one probe waits for an app to accept a connection.
const APP_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The readiness probe of the apps behind the inbound ports: a TCP connect to each
/// `forwardTo` address, at most once per [`APP_PROBE_PERIOD`]; concurrent `/ready` calls
/// share one probe.
#[derive(Debug, Default)]
pub struct AppProbe {
    /// When the last probe ran and its finding (`None`: every app accepted).
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Option<String>)>>,
}

impl AppProbe {
    /// `None` when every address in `apps` accepts a connection, else why not; probes
    /// only when the cached answer is older than [`APP_PROBE_PERIOD`].
    pub async fn check(&self, apps: &[SocketAddr]) -> Option<String> {
        let mut last = self.last.lock().await;
        let now = tokio::time::Instant::now();
        if let Some((at, finding)) = last.as_ref()
            && now.duration_since(*at) < APP_PROBE_PERIOD
        {
            return finding.clone();
        }
        let mut finding = None;
        for app in apps {
            let connect = tokio::net::TcpStream::connect(app);
            match tokio::time::timeout(APP_CONNECT_TIMEOUT, connect).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => finding = Some(format!("the app at {app} refuses connections: {e}")),
                Err(_) => {
                    finding = Some(format!(
                        "the app at {app} did not accept a connection within {}ms",
                        APP_CONNECT_TIMEOUT.as_millis()
                    ));
                }
            }
            if finding.is_some() {
                break;
            }
        }
        *last = Some((now, finding.clone()));
        finding
    }
}

/// Binds the admin listener, refusing a non-loopback address before any socket exists.
pub async fn bind_admin(addr: SocketAddr) -> io::Result<TcpListener> {
    check_loopback(addr)?;
    TcpListener::bind(addr).await
}

fn check_loopback(addr: SocketAddr) -> io::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("admin listener `{addr}` is not a loopback address; use 127.0.0.1 or ::1"),
    ))
}

/// Serves admin requests on `listener` until the future is dropped; fails at once when the
/// listener is not on a loopback address.
pub async fn serve_admin(listener: TcpListener, state: AdminState) -> io::Result<()> {
    check_loopback(listener.local_addr()?)?;
    let state = Arc::new(state);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return Ok(());
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: keep serving.
                tracing::warn!(error = %e, "admin accept failed");
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, &req).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, peer = %peer, "admin connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Routes one request.
async fn handle(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    match req.uri().path() {
        "/metrics" if read => reply(StatusCode::OK, OPENMETRICS, state.metrics.encode()),
        "/live" if read => text(StatusCode::OK, "live\n"),
        "/ready" if read => {
            let skip_app = req
                .uri()
                .query()
                .and_then(|q| query_param(q, "skip"))
                .is_some_and(|v| v == "app");
            ready(state, skip_app).await
        }
        "/config" if read => {
            let snapshot = state.snapshots.borrow().clone();
            let status = state.reload_status.as_ref().map(|s| s.borrow().clone());
            let control = state.control_status.as_ref().map(|s| s.borrow().clone());
            let upstreams = state.metrics.upstreams();
            let body = config_json::render(&snapshot, upstreams, status.as_ref(), control.as_ref());
            reply(StatusCode::OK, "application/json", body)
        }
        "/logging" if read => logging_get(state),
        "/logging" if method == Method::POST || method == Method::PUT => {
            logging_set(state, req.uri().query())
        }
        "/metrics" | "/live" | "/ready" | "/config" | "/logging" => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            let allow = if req.uri().path() == "/logging" {
                "GET, HEAD, POST, PUT"
            } else {
                "GET, HEAD"
            };
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /ready, /live, /config or /logging\n",
        ),
    }
}

async fn ready(state: &AdminState, skip_app: bool) -> Response<Full<Bytes>> {
    let snapshot = state.snapshots.borrow().clone();
    if !snapshot.svid.is_ready() {
        let expiry = crate::accesslog::rfc3339(snapshot.svid.expiry());
        let reason = format!(
            "not ready: the certificate for {} is not valid now (notAfter {expiry})\n",
            snapshot.identity
        );
        return text(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    if let Some(serving) = &state.serving
        && !*serving.borrow()
    {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the data path's listeners are not serving yet\n",
        );
    }
    if let Some(probe) = state.apps.as_ref().filter(|_| !skip_app) {
        let mut apps: Vec<SocketAddr> = snapshot.inbound.iter().map(|i| i.forward_to).collect();
        apps.sort_unstable();
        apps.dedup();
        if let Some(reason) = probe.check(&apps).await {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            );
        }
    }
    text(
        StatusCode::OK,
        format!("ready: config version {}\n", snapshot.version),
    )
}

fn logging_get(state: &AdminState) -> Response<Full<Bytes>> {
    let Some(handle) = &state.log_filter else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "runtime log level control is not available\n",
        );
    };
    match handle.with_current(|filter| filter.to_string()) {
        Ok(filter) => text(StatusCode::OK, format!("{filter}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn logging_set(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let Some(handle) = &state.log_filter else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "runtime log level control is not available\n",
        );
    };
    let Some(level) = query.and_then(|q| query_param(q, "level")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected ?level=FILTER, e.g. ?level=debug or ?level=info,bulkhead_proxy=trace\n",
        );
    };
    let filter = match EnvFilter::try_new(&level) {
        Ok(filter) => filter,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("invalid log filter `{level}`: {e}\n"),
            );
        }
    };
    match handle.reload(filter) {
        Ok(()) => {
            tracing::info!(filter = %level, "log filter changed through the admin listener");
            text(StatusCode::OK, format!("log filter set to `{level}`\n"))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The percent-decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some((h, l)), _) => {
                // Two hex digits are at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", body.into())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests;
