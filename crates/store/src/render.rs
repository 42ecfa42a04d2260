//! What counts as an object's content, and the unified YAML diffs of changes.

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::key::{NAMESPACE_KIND, ObjectKey};

/// Metadata the server sets: ignored when comparing objects and left out of diffs.
const SERVER_FIELDS: [&str; 6] = [
    "resourceVersion",
    "creationTimestamp",
    "uid",
    "generation",
    "managedFields",
    "selfLink",
];

/// `object` without the server-set metadata fields.
pub(crate) fn content(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_FIELDS {
            metadata.remove(field);
        }
    }
    object
}

/// An incoming object as it will be compared and stored: server fields dropped, and the
/// `default` namespace written out so that leaving it out and writing it compare equal.
pub(crate) fn normalize(object: &Value, key: &ObjectKey) -> Value {
    let mut object = content(object);
    if key.kind != NAMESPACE_KIND
        && let (Some(ns), Some(metadata)) = (
            &key.namespace,
            object.get_mut("metadata").and_then(Value::as_object_mut),
        )
        && metadata.get("namespace").is_none_or(Value::is_null)
    {
        metadata.insert("namespace".to_owned(), Value::String(ns.clone()));
    }
    object
}

/// `object` with the server fields of its new revision.
pub(crate) fn stamp(mut object: Value, resource_version: u64, created: &str) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        set(metadata, "resourceVersion", resource_version.to_string());
        set(metadata, "creationTimestamp", created.to_owned());
    }
    object
}

fn set(metadata: &mut Map<String, Value>, field: &str, value: String) {
    metadata.insert(field.to_owned(), Value::String(value));
}

/// `metadata.creationTimestamp` of a stored object.
pub(crate) fn creation_timestamp(object: &Value) -> Option<&str> {
    object.get("metadata")?.get("creationTimestamp")?.as_str()
}

/// Unified diff of the YAML renderings of `before` (stored at `before_version`, 0 when
/// absent) and `after`, server fields left out.
pub(crate) fn yaml_diff(
    key: &ObjectKey,
    before_version: u64,
    before: Option<&Value>,
    after: Option<&Value>,
) -> String {
    let old = before.map(|v| yaml(&content(v))).unwrap_or_default();
    let new = after.map(|v| yaml(&content(v))).unwrap_or_default();
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .header(
            &format!("{key} (resourceVersion {before_version})"),
            &key.to_string(),
        )
        .to_string()
}

fn yaml(value: &Value) -> String {
    // JSON values always render as YAML; pretty JSON (also valid YAML) is only a fallback.
    serde_norway::to_string(value)
        .or_else(|_| serde_json::to_string_pretty(value).map(|s| s + "\n"))
        .unwrap_or_default()
}
