//! Reads: list with filters, get one object.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use bulkhead_api::rest::{ObjectList, Role};
use bulkhead_store::ObjectKey;
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::rest::auth::Caller;
use crate::rest::kinds;
use crate::rest::selector::Selector;
use crate::state::Shared;

/// Query parameters of `GET /api/v1/resources`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only objects whose labels match.
    pub label_selector: Option<String>,
}

/// Query parameters of a single-object GET.
#[derive(Debug, Default, Deserialize)]
pub struct GetQuery {
    /// The namespace (`default` when absent).
    pub namespace: Option<String>,
}

/// `GET /api/v1/resources`.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<ObjectList>, ApiError> {
    caller.require(&shared, Role::Viewer, "list")?;
    let kind = query.kind.as_deref().map(kinds::canonical).transpose()?;
    let selector = Selector::parse(query.label_selector.as_deref().unwrap_or_default())?;
    let namespace = query.namespace.clone();
    let store = Arc::clone(&shared.store);
    let (revision, objects) =
        tokio::task::spawn_blocking(move || store.list(kind, namespace.as_deref()))
            .await
            .map_err(|e| ApiError::Internal(format!("list task failed: {e}")))??;
    let items = objects
        .into_iter()
        .filter(|o| selector.matches(&labels(&o.object)))
        .map(|o| o.object)
        .collect();
    Ok(Json(ObjectList { revision, items }))
}

/// `GET /api/v1/resources/{kind}/{name}`.
pub async fn get_one(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<GetQuery>,
) -> Result<Json<ObjectList>, ApiError> {
    caller.require(&shared, Role::Viewer, "get")?;
    let kind = kinds::canonical(&kind)?;
    let namespace =
        kinds::namespaced(kind).then(|| query.namespace.as_deref().unwrap_or("default"));
    let key = ObjectKey::new(kind, namespace, name);
    let revision = shared.store.revision()?;
    match shared.store.get(&key)? {
        Some(object) => Ok(Json(ObjectList {
            revision,
            items: vec![object.object],
        })),
        None => Err(ApiError::NotFound(format!("{key} not found"))),
    }
}

/// An object's `metadata.labels`.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
