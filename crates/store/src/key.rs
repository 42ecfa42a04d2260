//! Object keys: kind, namespace and name.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// The one cluster-scoped kind: its objects have no namespace.
pub const NAMESPACE_KIND: &str = "Namespace";
/// The namespace of a namespaced object that names none (as Kubernetes does).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Identifies a stored object. Sorts by kind, then namespace, then name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Kind, e.g. `AuthorizationPolicy`.
    pub kind: String,
    /// Namespace; `None` for Namespaces.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// A key from its parts.
    pub fn new(kind: impl Into<String>, namespace: Option<&str>, name: impl Into<String>) -> Self {
        ObjectKey {
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    /// The key of a resource document: its `kind`, `metadata.namespace` (`default` when
    /// absent, none for Namespaces) and `metadata.name`.
    pub fn of_object(object: &Value) -> Result<ObjectKey, String> {
        let kind = non_empty_str(object.get("kind")).ok_or("expected a string `kind`")?;
        let metadata = object.get("metadata").ok_or("expected `metadata`")?;
        let name = non_empty_str(metadata.get("name")).ok_or("expected `metadata.name`")?;
        let namespace = if kind == NAMESPACE_KIND {
            None
        } else {
            match metadata.get("namespace") {
                None | Some(Value::Null) => Some(DEFAULT_NAMESPACE),
                Some(ns) => Some(
                    non_empty_str(Some(ns)).ok_or("expected `metadata.namespace` to be a name")?,
                ),
            }
        };
        check_part(kind, "kind")?;
        check_part(name, "metadata.name")?;
        if let Some(ns) = namespace {
            check_part(ns, "metadata.namespace")?;
        }
        Ok(ObjectKey::new(kind, namespace, name))
    }

    /// The key as a redb tuple key; the empty namespace stands for none (names are never
    /// empty, and it sorts first as `None` does).
    pub(crate) fn as_tuple(&self) -> (&str, &str, &str) {
        (
            &self.kind,
            self.namespace.as_deref().unwrap_or(""),
            &self.name,
        )
    }

    pub(crate) fn from_tuple((kind, namespace, name): (&str, &str, &str)) -> Self {
        let namespace = (!namespace.is_empty()).then_some(namespace);
        ObjectKey::new(kind, namespace, name)
    }
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

// `/` would make the Display form ambiguous.
fn check_part(part: &str, field: &str) -> Result<(), String> {
    if part.contains('/') {
        Err(format!("expected `{field}` without `/`, got `{part}`"))
    } else {
        Ok(())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl FromStr for ObjectKey {
    type Err = String;

    /// Parses `Kind/namespace/name` or `Kind/name`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "expected `Kind/namespace/name` or `Kind/name`, got `{s}`"
            ));
        }
        match parts.as_slice() {
            [kind, name] => Ok(ObjectKey::new(*kind, None, *name)),
            [kind, ns, name] => Ok(ObjectKey::new(*kind, Some(ns), *name)),
            _ => Err(format!(
                "expected `Kind/namespace/name` or `Kind/name`, got `{s}`"
            )),
        }
    }
}
