//! `bulkhead-demo bookstore ratings`: `GET /ratings/<id>` answers
//! `{"book": "<id>", "stars": n, "instance": "<name>"}`, `n` in 1..=5 and fixed per
//! book. The example runs two instances; `instance` tells which one answered (from
//! `--instance`, else `$INSTANCE`, else `<hostname>:<port>`).

use std::future::Future;
use std::sync::Arc;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;

use super::web::{self, Reply, path_id};

/// A book's stars, 1 to 5: the same for every instance.
pub fn stars(id: &str) -> u8 {
    let sum = id.bytes().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    // Cannot fail: the remainder is below 5.
    u8::try_from(sum % 5).unwrap_or(0) + 1
}

/// The default instance name: `<hostname>:<port>`.
pub fn default_instance(port: u16) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{port}")
}

/// Serves ratings as instance `instance` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, instance: &str, shutdown: impl Future<Output = ()>) {
    let name = format!("ratings[{instance}]");
    let instance: Arc<str> = instance.into();
    let handler = move |req: Request<Incoming>| {
        let instance = instance.clone();
        async move { answer(&instance, &req) }
    };
    web::serve(listener, &name, handler, shutdown).await;
}

fn answer(instance: &str, req: &Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if path == "/healthz" {
        return web::text(StatusCode::OK, "ok");
    }
    let Some(id) = path_id(path, "/ratings/") else {
        return web::text(
            StatusCode::NOT_FOUND,
            format!("no route for {path}; try GET /ratings/<id>"),
        );
    };
    if req.method() != Method::GET {
        return web::text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    let body = json!({"book": id, "stars": stars(id), "instance": instance});
    web::json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_are_one_to_five_and_stable() {
        for id in ["1", "2", "3", "4", "5", "x", ""] {
            assert!((1..=5).contains(&stars(id)));
            assert_eq!(stars(id), stars(id));
        }
    }
}
