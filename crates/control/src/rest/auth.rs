//! Operator authentication (bearer tokens) and authorization (roles).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use bulkhead_api::rest::{Role, TokenInfo};
use bulkhead_store::Authenticated;
use http::request::Parts;

use crate::error::ApiError;
use crate::state::Shared;

/// The authenticated caller of a REST request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token it presented.
    pub token: TokenInfo,
}

impl Caller {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        format!("token:{} ({})", self.token.name, self.token.id)
    }

    /// Refuses callers whose role is below `needed`.
    pub fn require(&self, shared: &Shared, needed: Role, action: &str) -> Result<(), ApiError> {
        if self.token.role >= needed {
            return Ok(());
        }
        shared.metrics.auth_failure("forbidden");
        tracing::warn!(
            token = %self.token.id,
            role = self.token.role.as_str(),
            needed = needed.as_str(),
            action,
            "request refused: role too weak"
        );
        Err(ApiError::Forbidden(format!(
            "{action} needs the `{}` role; token `{}` has `{}`",
            needed.as_str(),
            self.token.name,
            self.token.role.as_str()
        )))
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Caller, ApiError> {
        let route = parts.uri.path().to_owned();
        let refuse = |reason: &'static str, message: String| {
            shared.metrics.auth_failure(reason);
            tracing::warn!(reason, route = %route, "request refused: not authenticated");
            ApiError::Unauthenticated(message)
        };
        let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
            return Err(refuse(
                "missing",
                "missing `Authorization: Bearer <token>` header".into(),
            ));
        };
        let Some(presented) = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(refuse(
                "malformed",
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        };
        let store = Arc::clone(&shared.store);
        let presented = presented.trim().to_owned();
        let outcome = tokio::task::spawn_blocking(move || store.authenticate(&presented))
            .await
            .map_err(|e| ApiError::Internal(format!("authentication task failed: {e}")))??;
        match outcome {
            Authenticated::Valid(token) => Ok(Caller { token }),
            Authenticated::Revoked(token) => Err(refuse(
                "revoked",
                format!("token `{}` ({}) was revoked", token.name, token.id),
            )),
            Authenticated::Unknown => Err(refuse("unknown", "unknown token".into())),
            Authenticated::Malformed => Err(refuse(
                "malformed",
                "malformed token: expected `bht_` followed by 64 hex characters".into(),
            )),
        }
    }
}
