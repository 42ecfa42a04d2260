//! The one place errors become responses: [`ApiError`] maps to an HTTP status with the
//! JSON `ErrorBody` for the REST API, and to a gRPC status for the proxy API.

use axum::Json;
use axum::response::{IntoResponse, Response};
use bulkhead_api::rest::{ErrorBody, ErrorDetail};
use bulkhead_store::StoreError;
use http::StatusCode;

/// Why an API request failed; each variant is one status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or its resources do not validate.
    #[error("{message}")]
    Invalid {
        /// One sentence.
        message: String,
        /// One line per problem (file, document, line, field path).
        details: Vec<String>,
    },
    /// No credential, or one that is unknown, malformed or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The object or token does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A stale `resourceVersion` (or a duplicate name).
    #[error("{message}")]
    Conflict {
        /// One sentence.
        message: String,
        /// One line per conflicting object.
        details: Vec<String>,
    },
    /// A watch asked for history that was compacted away.
    #[error("{0}")]
    Gone(String),
    /// The body is neither YAML nor JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Something on the server's side failed (the store, the CA).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// An `Invalid` error without details.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The HTTP status and the machine-readable reason.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "Invalid"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "Conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "Gone"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
        }
    }

    /// The JSON body of the error.
    pub fn body(&self) -> ErrorBody {
        let (status, reason) = self.status();
        let details = match self {
            ApiError::Invalid { details, .. } | ApiError::Conflict { details, .. } => {
                details.clone()
            }
            _ => Vec::new(),
        };
        let message = match self {
            ApiError::Invalid { message, .. } | ApiError::Conflict { message, .. } => {
                message.clone()
            }
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                status: status.as_u16(),
                reason: reason.to_owned(),
                message,
                details,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> tonic::Status {
        let message = match &e {
            ApiError::Invalid { message, details } | ApiError::Conflict { message, details }
                if !details.is_empty() =>
            {
                format!("{message}: {}", details.join("; "))
            }
            other => other.to_string(),
        };
        match e {
            ApiError::Invalid { .. } => tonic::Status::invalid_argument(message),
            ApiError::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            ApiError::Forbidden(_) => tonic::Status::permission_denied(message),
            ApiError::NotFound(_) => tonic::Status::not_found(message),
            ApiError::Conflict { .. } => tonic::Status::aborted(message),
            ApiError::Gone(_) => tonic::Status::out_of_range(message),
            ApiError::UnsupportedMediaType(_) => tonic::Status::invalid_argument(message),
            ApiError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict { conflicts } => ApiError::Conflict {
                message: "the request is based on stale objects; nothing was changed".into(),
                details: conflicts,
            },
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Compacted { requested, oldest } => ApiError::Gone(format!(
                "revision {requested} is older than the retained history (oldest {oldest}); \
                 list again and watch from the list's revision"
            )),
            StoreError::Invalid(message) => ApiError::invalid(message),
            StoreError::Duplicate(message) => ApiError::Conflict {
                message,
                details: Vec::new(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}
