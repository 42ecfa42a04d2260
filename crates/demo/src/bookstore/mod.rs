//! The apps of the bookstore example (`examples/bookstore/`), as `bulkhead-demo bookstore
//! <app>` subcommands:
//!
//! | app | speaks | upstreams | what it does |
//! |---|---|---|---|
//! | [`frontend`] | HTTP/1.1 | `CATALOG`, `REVIEWS` | the JSON API (and a text index) users curl |
//! | [`catalog`] | gRPC (`bookstore.v1.Catalog`) | `INVENTORY` | the books; `GetBook` asks the inventory for stock |
//! | [`reviews`] `--version v1\|v2` | HTTP/1.1 | `RATINGS` (v2 only) | reviews of a book; v2 adds its rating |
//! | [`ratings`] | HTTP/1.1 | — | a book's stars, and which instance answered |
//! | [`inventory`] | TCP line protocol | — | stock counts, `STOCK` and `RESERVE` |
//!
//! # The contract with `bulkhead up`
//!
//! `bulkhead up` starts each app with its environment; every app reads:
//!
//! - **`PORT`**: the app listens on `127.0.0.1:$PORT`. A `--listen ADDR` flag overrides
//!   it (then `PORT` is not needed).
//! - **`UPSTREAM_<NAME>`** = `host:port` for each upstream, where `NAME` is the upstream
//!   Service's name upper-cased with `-` turned into `_` ([`upstream_var`]): e.g.
//!   `UPSTREAM_CATALOG=127.0.0.1:19001`. The app connects to that address in plaintext:
//!   it is the local sidecar's outbound listener, which does the mTLS.
//!
//! A missing or malformed variable makes the app exit with status 2 and a message that
//! names the variable. Apps print `<app> listening on <addr>` to standard output once
//! bound, log one compact line per request to standard error, and stop on SIGTERM or
//! Ctrl-C. An unreachable upstream never crashes an app: it answers a clear error (a 503
//! naming the upstream, a gRPC `UNAVAILABLE`, or — reviews v2 — a degraded answer) and
//! tries again on the next request.

pub mod catalog;
pub mod cli;
pub mod frontend;
pub mod inventory;
pub mod ratings;
pub mod reviews;
pub mod web;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

/// The generated `bookstore.v1` messages, client and server (`proto/bookstore.proto`).
pub mod pb {
    tonic::include_proto!("bookstore.v1");
}

/// The variable holding the port to listen on.
pub const PORT: &str = "PORT";

/// A missing or malformed environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    /// The variable's name.
    pub var: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "environment variable {}: {}", self.var, self.problem)
    }
}

impl std::error::Error for EnvError {}

/// The variable naming the address of upstream Service `service`: `reviews` →
/// `UPSTREAM_REVIEWS`, `book-catalog` → `UPSTREAM_BOOK_CATALOG`.
pub fn upstream_var(service: &str) -> String {
    format!(
        "UPSTREAM_{}",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// Where to listen: `flag` (`--listen`) if given, else `127.0.0.1:$PORT`.
pub fn listen_addr(
    flag: Option<SocketAddr>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, EnvError> {
    if let Some(addr) = flag {
        return Ok(addr);
    }
    let err = |problem: String| EnvError {
        var: PORT.to_owned(),
        problem,
    };
    let value = lookup(PORT).ok_or_else(|| err("not set (the port to listen on)".into()))?;
    let port: u16 = value
        .trim()
        .parse()
        .map_err(|_| err(format!("`{value}` is not a port number")))?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// The `host:port` of upstream Service `service`, from [`upstream_var`]`(service)`.
pub fn upstream(
    service: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    let var = upstream_var(service);
    let Some(value) = lookup(&var) else {
        return Err(EnvError {
            var,
            problem: format!("not set (the {service} upstream's host:port)"),
        });
    };
    let value = value.trim().to_owned();
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(value),
        _ => Err(EnvError {
            var,
            problem: format!("`{value}` is not host:port"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn upstream_variables_are_upper_case_with_underscores() {
        assert_eq!(upstream_var("catalog"), "UPSTREAM_CATALOG");
        assert_eq!(upstream_var("book-reviews"), "UPSTREAM_BOOK_REVIEWS");
    }

    #[test]
    fn the_listen_flag_overrides_port() {
        let flag: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(listen_addr(Some(flag), env(&[])), Ok(flag));
        assert_eq!(
            listen_addr(None, env(&[("PORT", "8080")])),
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        let missing = listen_addr(None, env(&[])).unwrap_err();
        assert!(missing.to_string().contains("PORT"), "{missing}");
        assert!(listen_addr(None, env(&[("PORT", "http")])).is_err());
    }

    #[test]
    fn upstreams_are_host_port() {
        let ok = env(&[("UPSTREAM_CATALOG", "127.0.0.1:19001")]);
        assert_eq!(upstream("catalog", ok).unwrap(), "127.0.0.1:19001");
        let missing = upstream("catalog", env(&[])).unwrap_err();
        assert_eq!(missing.var, "UPSTREAM_CATALOG");
        for bad in ["catalog", ":80", "host:http", "host:99999"] {
            assert!(upstream("catalog", env(&[("UPSTREAM_CATALOG", bad)])).is_err());
        }
    }
}
