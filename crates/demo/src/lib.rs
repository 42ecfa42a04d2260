//! Tiny demo apps for Bulkhead's examples, in one binary (`bulkhead-demo`).
//!
//! - [`serve`]: an HTTP server (HTTP/1.1 and HTTP/2 on one port) that answers every
//!   request with a JSON [`serve::Reply`]: its name, the request's method and path, and
//!   the `x-bulkhead-peer-identity` header its sidecar set — so a caller can see which
//!   identity the mesh verified.
//! - [`call`]: a bounded HTTP client (`--count` requests, `--interval` apart) that prints
//!   each response's status and body, for scripts and READMEs.
//!
//! - [`bookstore`]: the apps of the bookstore example (`bookstore frontend`, `catalog`,
//!   `reviews`, `ratings`, `inventory`), configured by `PORT` and `UPSTREAM_<NAME>`
//!   environment variables — the contract with `bulkhead up` is in its docs.
//!
//! Each app is a module with a library API (tests run them in-process on `127.0.0.1:0`)
//! and a subcommand in `main.rs`.

pub mod bookstore;
pub mod call;
pub mod duration;
pub mod serve;

/// The header the inbound sidecar sets to the peer's verified SPIFFE ID.
pub const PEER_IDENTITY: &str = "x-bulkhead-peer-identity";

/// The request id header sidecars add when a request has none.
pub const REQUEST_ID: &str = "x-request-id";

/// Completes on SIGTERM or Ctrl-C.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
