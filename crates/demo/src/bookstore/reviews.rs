//! `bulkhead-demo bookstore reviews --version v1|v2`: `GET /reviews/<id>` answers the
//! book's reviews as JSON:
//!
//! ```text
//! {"book": "1", "version": "v1", "reviews": [{"reviewer": "...", "text": "..."}]}
//! ```
//!
//! v2 also asks ratings (upstream `RATINGS`, `GET /ratings/<id>`) and adds
//! `"rating": {"stars": n, "instance": "<which ratings instance>"}`. When ratings cannot
//! answer (unreachable, an error status such as a sidecar's 403, bad JSON) v2 degrades
//! rather than fails: it answers the reviews without a rating, plus
//! `"ratings_error": "<status or reason>"`.

use std::future::Future;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::web::{self, Reply, path_id};
use crate::REQUEST_ID;

/// Which reviews app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// Reviews only.
    V1,
    /// Reviews with ratings from the ratings upstream at `host:port`.
    V2 {
        /// The ratings upstream's `host:port`.
        ratings: String,
    },
}

impl Version {
    fn name(&self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 { .. } => "v2",
        }
    }
}

/// A book's reviews: `(reviewer, text)`; none for an unknown book.
pub fn reviews_of(id: &str) -> &'static [(&'static str, &'static str)] {
    match id {
        "1" => &[
            ("ana", "A thought experiment that stays with you."),
            ("kofi", "Cold planet, warm book."),
        ],
        "2" => &[("mei", "Spice, sand and politics.")],
        "3" => &[
            ("lars", "Still sharper than the future it imagined."),
            ("ana", "Dense, fast, worth it."),
        ],
        "4" => &[("kofi", "An ambiguous utopia, as promised.")],
        "5" => &[("mei", "Pizza delivery was never this intense.")],
        _ => &[],
    }
}

/// Serves reviews `version` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, version: Version, shutdown: impl Future<Output = ()>) {
    let name = format!("reviews-{}", version.name());
    let version = Arc::new(version);
    let handler = move |req: Request<Incoming>| {
        let version = version.clone();
        async move { answer(&version, &req).await }
    };
    web::serve(listener, &name, handler, shutdown).await;
}

async fn answer(version: &Version, req: &Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if path == "/healthz" {
        return web::text(StatusCode::OK, "ok");
    }
    let Some(id) = path_id(path, "/reviews/") else {
        return web::text(
            StatusCode::NOT_FOUND,
            format!("no route for {path}; try GET /reviews/<id>"),
        );
    };
    if req.method() != Method::GET {
        return web::text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    let reviews: Vec<Value> = reviews_of(id)
        .iter()
        .map(|(reviewer, text)| json!({"reviewer": reviewer, "text": text}))
        .collect();
    let mut body = json!({"book": id, "version": version.name(), "reviews": reviews});
    if let Version::V2 { ratings } = version {
        let (key, value) = match rating(ratings, id, req.headers().get(REQUEST_ID)).await {
            Ok(rating) => ("rating", rating),
            Err(reason) => ("ratings_error", Value::String(reason)),
        };
        body[key] = value;
    }
    web::json(StatusCode::OK, &body)
}

/// `{"stars", "instance"}` from ratings, or why not.
async fn rating(
    ratings: &str,
    id: &str,
    request_id: Option<&HeaderValue>,
) -> Result<Value, String> {
    let fetched = web::get(ratings, &format!("/ratings/{id}"), request_id)
        .await
        .map_err(|e| format!("ratings unavailable: {e}"))?;
    if !fetched.status.is_success() {
        return Err(fetched.summary());
    }
    let answer: Value = serde_json::from_slice(&fetched.body)
        .map_err(|e| format!("ratings answered bad JSON: {e}"))?;
    match (&answer["stars"], &answer["instance"]) {
        (Value::Number(stars), instance) => Ok(json!({"stars": stars, "instance": instance})),
        _ => Err("ratings answered no stars".to_owned()),
    }
}
