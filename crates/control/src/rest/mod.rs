//! The operator REST API (`/api/v1/...`, docs/control-plane.md): one module per kind of
//! work. Every handler authenticates through [`auth::Caller`] and fails with
//! [`crate::ApiError`], which the one mapping in `error.rs` turns into a JSON error body.

pub mod admin;
pub mod auth;
pub mod kinds;
pub mod read;
pub mod selector;
pub mod watch;
pub mod write;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};

use crate::state::Shared;

/// The REST routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/metrics", get(admin::metrics))
        .route("/api/v1/status", get(admin::status))
        .route("/api/v1/apply", post(write::apply))
        .route("/api/v1/delete", post(write::delete_documents))
        .route("/api/v1/diff", post(write::diff))
        .route("/api/v1/resources", get(read::list))
        .route(
            "/api/v1/resources/{kind}/{name}",
            get(read::get_one).delete(write::delete_one),
        )
        .route("/api/v1/watch", get(watch::watch))
        .route("/api/v1/audit", get(admin::audit))
        .route(
            "/api/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(admin::revoke_token))
        .route("/api/v1/jointokens", post(admin::create_join_token))
        .route("/api/v1/proxies", get(admin::proxies))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), count))
        .with_state(shared)
}

/// Counts every REST request by route template (never the raw path).
async fn count(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let response = next.run(request).await;
    shared
        .metrics
        .api_request(&route, method, response.status().as_u16());
    response
}
