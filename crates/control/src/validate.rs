//! Server-side validation of writes: a request body becomes JSON objects only after the
//! strict loader accepts every document, and a batch is stored only if the whole store as
//! it would be afterwards still loads and compiles. Both checks are the ones the CLI runs
//! (`bulkhead policy check`), so a file that passes locally passes here.

use std::collections::BTreeMap;

use bulkhead_policy::{Engine, Options};
use bulkhead_resources::{Format, LoadError, Loader};
use bulkhead_store::{ObjectKey, StoredObject};
use serde_json::Value;

use crate::ROOT_NAMESPACE;
use crate::error::ApiError;

/// What clients call the body in error messages.
const ORIGIN: &str = "request body";

/// One document of a write request.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its key.
    pub key: ObjectKey,
    /// The object as sent (with `metadata.namespace` filled in for namespaced kinds).
    pub object: Value,
    /// `metadata.resourceVersion` as sent, for optimistic concurrency.
    pub expected_version: Option<u64>,
}

/// Parses and validates a request body: every document must load with the strict loader
/// (typed, unknown fields refused, values checked); errors name document, line and field.
pub fn parse_body(body: &str, format: Format) -> Result<Vec<Document>, ApiError> {
    let mut loader = Loader::new();
    // `finish` reports every problem, including the ones `add_str` saw.
    let _ = loader.add_str(body, ORIGIN, format);
    loader
        .finish()
        .map_err(|e| load_error("the request's resources are invalid", &e))?;
    let mut docs = Vec::new();
    for (index, value) in raw_documents(body, format)?.into_iter().enumerate() {
        docs.push(document(value, index + 1)?);
    }
    if docs.is_empty() {
        return Err(ApiError::invalid("the request body holds no resources"));
    }
    Ok(docs)
}

/// Checks that the store with `changes` applied (a `None` object deletes) loads and
/// compiles as one resource set.
pub fn check_store(
    stored: &[StoredObject],
    changes: &[(ObjectKey, Option<&Value>)],
    trust_domain: &str,
) -> Result<(), ApiError> {
    let mut all: BTreeMap<&ObjectKey, &Value> =
        stored.iter().map(|o| (&o.key, &o.object)).collect();
    for (key, object) in changes {
        match object {
            Some(object) => all.insert(key, object),
            None => all.remove(key),
        };
    }
    let mut loader = Loader::new();
    for (key, object) in &all {
        let _ = loader.add_str(&object.to_string(), &format!("store: {key}"), Format::Json);
    }
    let set = loader
        .finish()
        .map_err(|e| load_error("the store would not be consistent after this change", &e))?;
    let options = Options {
        trust_domain: trust_domain.to_owned(),
        trust_domain_aliases: Vec::new(),
        root_namespace: ROOT_NAMESPACE.to_owned(),
    };
    Engine::compile(&set, options).map_err(|e| ApiError::Invalid {
        message: "the policies would not compile after this change".into(),
        details: vec![e.to_string()],
    })?;
    Ok(())
}

fn load_error(message: &str, e: &LoadError) -> ApiError {
    let mut details: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
    if details.is_empty() {
        details.push(e.to_string());
    }
    ApiError::Invalid {
        message: message.to_owned(),
        details,
    }
}

/// The body's documents as JSON values, `List`s and JSON arrays flattened, empty YAML
/// documents skipped (as the loader does).
fn raw_documents(body: &str, format: Format) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let top: Vec<Value> = match format {
        Format::Json => vec![
            serde_json::from_str(body).map_err(|e| ApiError::invalid(format!("{ORIGIN}: {e}")))?,
        ],
        _ => {
            let mut docs = Vec::new();
            for doc in serde_norway::Deserializer::from_str(body) {
                let value: Value = serde::Deserialize::deserialize(doc)
                    .map_err(|e| ApiError::invalid(format!("{ORIGIN}: {e}")))?;
                docs.push(value);
            }
            docs
        }
    };
    for value in top {
        flatten(value, &mut out);
    }
    Ok(out)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
        Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            if let Some(Value::Array(items)) = map.get("items") {
                items.iter().cloned().for_each(|v| flatten(v, out));
            }
        }
        other => out.push(other),
    }
}

fn document(mut object: Value, index: usize) -> Result<Document, ApiError> {
    let key = ObjectKey::of_object(&object)
        .map_err(|e| ApiError::invalid(format!("{ORIGIN}: document {index}: {e}")))?;
    let metadata = object.get_mut("metadata").and_then(Value::as_object_mut);
    let mut expected_version = None;
    if let Some(metadata) = metadata {
        if let Some(namespace) = &key.namespace {
            metadata.insert("namespace".into(), Value::String(namespace.clone()));
        }
        expected_version = match metadata.get("resourceVersion") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_version(v).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{ORIGIN}: document {index}: {key}: metadata.resourceVersion: expected a \
                     decimal number as `bulkhead get` shows it, found {v}"
                ))
            })?),
        };
    }
    Ok(Document {
        key,
        object,
        expected_version,
    })
}

/// A resourceVersion as a string (`"12"`, as stored) or a number.
pub fn parse_version(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_batch_with_list_and_versions() {
        let body = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
            apiVersion: v1\nkind: List\nitems:\n- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {name: deny, namespace: shop, resourceVersion: \"7\"}\n  spec: {action: DENY, rules: [{}]}\n";
        let docs = parse_body(body, Format::Yaml).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].key.to_string(), "Namespace/shop");
        assert_eq!(docs[1].expected_version, Some(7));
    }

    #[test]
    fn invalid_field_is_named() {
        let body = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {action: MAYBE}\n";
        let err = parse_body(body, Format::Yaml).unwrap_err();
        let ApiError::Invalid { details, .. } = err else {
            panic!("{err:?}")
        };
        assert!(details[0].contains("spec.action"), "{details:?}");
        assert!(details[0].contains("request body"), "{details:?}");
    }

    #[test]
    fn default_namespace_is_written() {
        let body = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"api"},"spec":{"selector":{"app":"api"},"ports":[{"port":80}]}}"#;
        let docs = parse_body(body, Format::Json).unwrap();
        assert_eq!(docs[0].object["metadata"]["namespace"], "default");
    }

    #[test]
    fn bad_resource_version_is_refused() {
        let body =
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, resourceVersion: abc}\n";
        let err = parse_body(body, Format::Yaml).unwrap_err();
        assert!(err.to_string().contains("resourceVersion"), "{err}");
    }
}
