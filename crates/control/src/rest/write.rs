//! Writes: apply, delete (by documents or by name) and diff. Each request is one batch:
//! parsed and validated, checked against the whole store as it would be, then committed
//! in one store transaction; the proxies hear of it right after the commit.

use std::sync::{Arc, PoisonError};

use axum::Json;
use axum::extract::{Path, Query, State};
use bulkhead_api::rest::{ObjectResult, Role, WriteResponse};
use bulkhead_resources::Format;
use bulkhead_store::{ObjectKey, WriteOp, WriteOutcome};
use http::HeaderMap;
use serde::Deserialize;

use crate::error::ApiError;
use crate::rest::auth::Caller;
use crate::rest::kinds;
use crate::state::Shared;
use crate::validate::{self, Document};

/// Query parameters of writes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteQuery {
    /// Check and report, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Query parameters of `DELETE /api/v1/resources/{kind}/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteQuery {
    /// The namespace (`default` when absent).
    pub namespace: Option<String>,
    /// Delete only if the stored object has this version.
    pub resource_version: Option<u64>,
    /// Check and report, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/apply`.
pub async fn apply(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<WriteQuery>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<WriteResponse>, ApiError> {
    caller.require(&shared, Role::Editor, "apply")?;
    let docs = validate::parse_body(&body, body_format(&headers)?)?;
    apply_documents(shared, docs, &caller.actor(), query.dry_run)
        .await
        .map(Json)
}

/// Applies validated documents (see [`validate::parse_body`]) as one batch, exactly as
/// `POST /api/v1/apply` does: the store as it would be afterwards is checked, then
/// everything is written in one transaction (audited as `actor`) and the proxies hear of
/// it. Used by the REST handler and by `bulkhead up`'s embedded control plane.
pub async fn apply_documents(
    shared: Arc<Shared>,
    docs: Vec<Document>,
    actor: &str,
    dry_run: bool,
) -> Result<WriteResponse, ApiError> {
    let ops = put_ops(&docs);
    let changes = docs.into_iter().map(|d| (d.key, Some(d.object))).collect();
    commit(shared, actor.to_owned(), ops, changes, dry_run, false).await
}

/// `POST /api/v1/diff`: what apply would do, with diffs.
pub async fn diff(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    headers: HeaderMap,
    body: String,
) -> Result<Json<WriteResponse>, ApiError> {
    caller.require(&shared, Role::Viewer, "diff")?;
    let docs = validate::parse_body(&body, body_format(&headers)?)?;
    let ops = put_ops(&docs);
    commit(shared, caller.actor(), ops, Vec::new(), true, true)
        .await
        .map(Json)
}

/// `POST /api/v1/delete`: deletes the objects the documents name.
pub async fn delete_documents(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<WriteQuery>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<WriteResponse>, ApiError> {
    caller.require(&shared, Role::Editor, "delete")?;
    let docs: Vec<Document> = validate::parse_body(&body, body_format(&headers)?)?;
    let ops = docs
        .iter()
        .map(|d| WriteOp::Delete {
            key: d.key.clone(),
            expected_version: d.expected_version,
        })
        .collect();
    let changes = docs.into_iter().map(|d| (d.key, None)).collect();
    commit(shared, caller.actor(), ops, changes, query.dry_run, false)
        .await
        .map(Json)
}

/// `DELETE /api/v1/resources/{kind}/{name}`.
pub async fn delete_one(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<WriteResponse>, ApiError> {
    caller.require(&shared, Role::Editor, "delete")?;
    let kind = kinds::canonical(&kind)?;
    let namespace =
        kinds::namespaced(kind).then(|| query.namespace.as_deref().unwrap_or("default"));
    let key = ObjectKey::new(kind, namespace, name);
    let ops = vec![WriteOp::Delete {
        key: key.clone(),
        expected_version: query.resource_version,
    }];
    commit(
        shared,
        caller.actor(),
        ops,
        vec![(key, None)],
        query.dry_run,
        false,
    )
    .await
    .map(Json)
}

/// Validates the store as it would be after `changes` (unless this is a diff), writes,
/// and announces the committed change.
async fn commit(
    shared: Arc<Shared>,
    actor: String,
    ops: Vec<WriteOp>,
    changes: Vec<(ObjectKey, Option<serde_json::Value>)>,
    dry_run: bool,
    keep_diffs: bool,
) -> Result<WriteResponse, ApiError> {
    let logged_actor = actor.clone();
    let task_shared = Arc::clone(&shared);
    let outcome = shared
        .heavy(move || -> Result<WriteOutcome, ApiError> {
            let shared = task_shared;
            let _serialized = shared.writes.lock().unwrap_or_else(PoisonError::into_inner);
            if !changes.is_empty() {
                let (_, stored) = shared.store.list(None, None)?;
                let borrowed: Vec<_> = changes
                    .iter()
                    .map(|(k, o)| (k.clone(), o.as_ref()))
                    .collect();
                validate::check_store(&stored, &borrowed, shared.trust_domain.as_str())?;
            }
            Ok(shared.store.write(ops, &actor, dry_run)?)
        })
        .await??;
    let revision = outcome.revision;
    let results = outcome
        .results
        .into_iter()
        .map(|o| ObjectResult {
            kind: o.key.kind,
            namespace: o.key.namespace,
            name: o.key.name,
            change: o.change,
            resource_version: o.resource_version,
            diff: if keep_diffs || dry_run {
                o.diff
            } else {
                String::new()
            },
        })
        .collect();
    if !dry_run && !outcome.events.is_empty() {
        tracing::info!(actor = %logged_actor, revision, changes = outcome.events.len(), "resources written");
        shared.committed(revision, outcome.events);
    }
    Ok(WriteResponse {
        revision,
        dry_run,
        results,
    })
}

/// One create-or-update per document.
fn put_ops(docs: &[Document]) -> Vec<WriteOp> {
    docs.iter()
        .map(|d| WriteOp::Put {
            object: d.object.clone(),
            expected_version: d.expected_version,
        })
        .collect()
}

/// The body's syntax from `Content-Type`: JSON, or YAML (also the default: YAML reads JSON).
fn body_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(Format::Yaml);
    };
    let mime = value.to_str().unwrap_or_default();
    let mime = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" | "text/plain"
        | "" => Ok(Format::Yaml),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{other}`: expected application/yaml or application/json"
        ))),
    }
}
