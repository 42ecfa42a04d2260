//! Health, metrics, status, audit log, tokens and proxies.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use bulkhead_api::rest::{
    AuditList, ControlStatus, CreateJoinToken, CreateToken, CreatedJoinToken, CreatedToken,
    ProxyList, ProxyStatus, Role, TokenList,
};
use bulkhead_store::RevokedToken;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::rest::auth::Caller;
use crate::state::Shared;

/// Default join-token lifetime.
const JOIN_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Audit records per page by default, and at most.
const AUDIT_PAGE: usize = 100;
const AUDIT_PAGE_MAX: usize = 1000;

/// `GET /healthz` (no authentication).
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /metrics`.
pub async fn metrics(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&shared, Role::Viewer, "read metrics")?;
    Ok((
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    ))
}

/// `GET /api/v1/status`.
pub async fn status(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<ControlStatus>, ApiError> {
    caller.require(&shared, Role::Viewer, "read status")?;
    let proxies = all_proxies(&shared)?;
    Ok(Json(ControlStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        revision: shared.store.revision()?,
        objects: shared.store.count()?,
        uptime_seconds: shared.started.elapsed().as_secs(),
        trust_domain: shared.trust_domain.to_string(),
        ca_expiry: crate::rfc3339(shared.ca.not_after()),
        proxies_connected: proxies.iter().filter(|p| p.connected).count() as u64,
        proxies_known: proxies.len() as u64,
    }))
}

/// Query parameters of the audit log.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Records after this sequence number.
    #[serde(default)]
    pub since: u64,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// `GET /api/v1/audit`.
pub async fn audit(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    caller.require(&shared, Role::Viewer, "read the audit log")?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE).min(AUDIT_PAGE_MAX);
    Ok(Json(AuditList {
        items: shared.store.audit(query.since, limit)?,
    }))
}

/// `GET /api/v1/tokens`.
pub async fn list_tokens(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<TokenList>, ApiError> {
    caller.require(&shared, Role::Admin, "list tokens")?;
    Ok(Json(TokenList {
        tokens: shared.store.list_tokens()?,
        join_tokens: shared.store.list_join_tokens()?,
    }))
}

/// `POST /api/v1/tokens`.
pub async fn create_token(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Json(body): Json<CreateToken>,
) -> Result<Json<CreatedToken>, ApiError> {
    caller.require(&shared, Role::Admin, "create tokens")?;
    if body.name.trim().is_empty() {
        return Err(ApiError::invalid("name: expected a non-empty label"));
    }
    let (token, secret) = shared
        .store
        .create_token(&body.name, body.role, &caller.actor())?;
    tracing::info!(actor = %caller.actor(), token = %token.id, role = token.role.as_str(), "token created");
    Ok(Json(CreatedToken { token, secret }))
}

/// `DELETE /api/v1/tokens/{id}`.
pub async fn revoke_token(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&shared, Role::Admin, "revoke tokens")?;
    let revoked = shared.store.revoke_token(&id, &caller.actor())?;
    tracing::info!(actor = %caller.actor(), token = %id, "token revoked");
    Ok(Json(match revoked {
        RevokedToken::Token(t) => json!({"token": t}),
        RevokedToken::JoinToken(t) => json!({"joinToken": t}),
    }))
}

/// `POST /api/v1/jointokens`.
pub async fn create_join_token(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Json(body): Json<CreateJoinToken>,
) -> Result<Json<CreatedJoinToken>, ApiError> {
    caller.require(&shared, Role::Admin, "create join tokens")?;
    let id = shared.spiffe_id(&body.namespace, &body.service_account)?;
    let ttl = body.ttl_seconds.map_or(JOIN_TOKEN_TTL, Duration::from_secs);
    let uses = body.max_uses.unwrap_or(1);
    let (token, secret) =
        shared
            .store
            .create_join_token(&id, ttl, uses, &caller.actor(), SystemTime::now())?;
    tracing::info!(actor = %caller.actor(), token = %token.id, identity = %id, "join token created");
    Ok(Json(CreatedJoinToken { token, secret }))
}

/// `GET /api/v1/proxies`.
pub async fn proxies(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Json<ProxyList>, ApiError> {
    caller.require(&shared, Role::Viewer, "list proxies")?;
    Ok(Json(ProxyList {
        items: all_proxies(&shared)?,
    }))
}

/// Live proxies, plus the stored registrations of proxies not seen since this start.
fn all_proxies(shared: &Shared) -> Result<Vec<ProxyStatus>, ApiError> {
    let mut items = shared.proxies();
    for reg in shared.store.registrations()? {
        if items.iter().any(|p| p.instance == reg.instance) {
            continue;
        }
        let at = |secs: u64| crate::rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        items.push(ProxyStatus {
            instance: reg.instance,
            workload: reg.workload,
            identity: reg.identity,
            connected: false,
            applied_version: 0,
            sent_version: 0,
            last_nack: None,
            last_seen: at(reg.last_seen_unix),
            cert_expiry: reg
                .cert_expiry_unix
                .and_then(|s| u64::try_from(s).ok())
                .map(at),
            inbound: reg
                .inbound
                .iter()
                .map(|(port, addr, _)| format!("{port}={addr}"))
                .collect(),
        });
    }
    items.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(items)
}
