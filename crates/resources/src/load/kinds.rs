//! The table of supported kinds and apiVersions, and the document header checks.

use serde_norway::Value;

use crate::field::{FieldError, FieldPath, Segment};
use crate::load::locate::{child, untag};

/// One supported kind.
#[derive(Debug)]
pub(crate) struct KindInfo {
    pub(crate) kind: &'static str,
    pub(crate) api_versions: &'static [&'static str],
    pub(crate) namespaced: bool,
}

const ISTIO_SECURITY: &[&str] = &["security.istio.io/v1", "security.istio.io/v1beta1"];

/// Every kind the loader accepts, with the apiVersions it exists in.
pub(crate) const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: "Namespace",
        api_versions: &["v1"],
        namespaced: false,
    },
    KindInfo {
        kind: "Pod",
        api_versions: &["v1"],
        namespaced: true,
    },
    KindInfo {
        kind: "Service",
        api_versions: &["v1"],
        namespaced: true,
    },
    KindInfo {
        kind: "Workload",
        api_versions: &["bulkhead.dev/v1alpha1"],
        namespaced: true,
    },
    KindInfo {
        kind: "NetworkPolicy",
        api_versions: &["networking.k8s.io/v1"],
        namespaced: true,
    },
    KindInfo {
        kind: "AuthorizationPolicy",
        api_versions: ISTIO_SECURITY,
        namespaced: true,
    },
    KindInfo {
        kind: "PeerAuthentication",
        api_versions: ISTIO_SECURITY,
        namespaced: true,
    },
    KindInfo {
        kind: "TrafficPolicy",
        api_versions: &["bulkhead.dev/v1alpha1"],
        namespaced: true,
    },
    KindInfo {
        kind: "WebApplicationFirewall",
        api_versions: &["bulkhead.dev/v1alpha1"],
        namespaced: true,
    },
];

/// What a document's `apiVersion`/`kind` resolve to.
#[derive(Debug)]
pub(crate) enum Target {
    /// A single resource.
    One(&'static KindInfo),
    /// `v1/List` (`None`) or `<Kind>List` (`Some`), holding `items`.
    List(Option<&'static KindInfo>),
}

/// The identifying fields of an object, read before its typed decoding so that every
/// later error can name the object.
#[derive(Debug)]
pub(crate) struct Header<'v> {
    pub(crate) api_version: &'v str,
    pub(crate) kind: &'v str,
    pub(crate) name: Option<&'v str>,
    pub(crate) namespace: Option<&'v str>,
}

impl Header<'_> {
    /// `Kind/namespace/name` (`Namespace/name`), when the name is known.
    pub(crate) fn object(&self, info: &KindInfo) -> Option<String> {
        let name = self.name.filter(|n| !n.is_empty())?;
        Some(if info.namespaced {
            let ns = self.namespace.unwrap_or("default");
            format!("{}/{ns}/{name}", info.kind)
        } else {
            format!("{}/{name}", info.kind)
        })
    }
}

/// Human name of a YAML node's type, for "expected X, found Y" messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match untag(value) {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn required_string<'v>(
    node: &'v Value,
    at: &FieldPath,
    key: &str,
    hint: &str,
) -> Result<&'v str, FieldError> {
    let path = at.key(key);
    match child(node, &Segment::Key(key.to_owned())).map(untag) {
        None => Err(FieldError::new(
            path,
            format!("required field is missing; expected {hint}"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FieldError::new(
            path,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

/// Reads `apiVersion`, `kind` and (leniently) `metadata.name` / `metadata.namespace`.
pub(crate) fn header<'v>(node: &'v Value, at: &FieldPath) -> Result<Header<'v>, FieldError> {
    if !matches!(untag(node), Value::Mapping(_)) {
        return Err(FieldError::new(
            at.clone(),
            format!(
                "expected a mapping with apiVersion, kind and metadata, found {}",
                type_name(node)
            ),
        ));
    }
    let api_version = required_string(node, at, "apiVersion", "e.g. `networking.k8s.io/v1`")?;
    let kind = required_string(node, at, "kind", "e.g. `NetworkPolicy`")?;
    let meta = child(node, &Segment::Key("metadata".into()));
    let text = |key: &str| match meta
        .and_then(|m| child(m, &Segment::Key(key.into())))
        .map(untag)
    {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    Ok(Header {
        api_version,
        kind,
        name: text("name"),
        namespace: text("namespace"),
    })
}

/// Checks that `metadata` is a mapping with a non-empty string `name`.
pub(crate) fn require_name(node: &Value, at: &FieldPath) -> Result<(), FieldError> {
    let path = at.key("metadata");
    let Some(meta) = child(node, &Segment::Key("metadata".into())) else {
        return Err(FieldError::new(
            path,
            "required field is missing; expected a mapping with at least `name`",
        ));
    };
    if !matches!(untag(meta), Value::Mapping(_)) {
        return Err(FieldError::new(
            path,
            format!("expected a mapping, found {}", type_name(meta)),
        ));
    }
    let name = required_string(meta, &path, "name", "the object's name")?;
    if name.is_empty() {
        return Err(FieldError::new(path.key("name"), "must not be empty"));
    }
    Ok(())
}

fn expected_versions(info: &KindInfo) -> String {
    let quoted: Vec<String> = info.api_versions.iter().map(|v| format!("`{v}`")).collect();
    quoted.join(" or ")
}

fn known_kinds() -> String {
    let mut list: Vec<String> = KINDS
        .iter()
        .map(|k| format!("{} ({})", k.kind, k.api_versions.join(", ")))
        .collect();
    list.push("List (v1) and <Kind>List wrappers of these".to_owned());
    list.join(", ")
}

fn wrong_version(kind: &str, api_version: &str, expected: String, at: &FieldPath) -> FieldError {
    FieldError::new(
        at.key("apiVersion"),
        format!("kind `{kind}` does not exist in apiVersion `{api_version}`; expected {expected}"),
    )
}

/// Resolves `apiVersion`/`kind` against [`KINDS`].
pub(crate) fn resolve(header: &Header<'_>, at: &FieldPath) -> Result<Target, FieldError> {
    let (kind, api_version) = (header.kind, header.api_version);
    if kind == "List" {
        return match api_version {
            "v1" => Ok(Target::List(None)),
            _ => Err(wrong_version(kind, api_version, "`v1`".into(), at)),
        };
    }
    let find = |name: &str| KINDS.iter().find(|k| k.kind == name);
    if let Some(info) = find(kind) {
        return match info.api_versions.contains(&api_version) {
            true => Ok(Target::One(info)),
            false => Err(wrong_version(
                kind,
                api_version,
                expected_versions(info),
                at,
            )),
        };
    }
    if let Some(info) = kind.strip_suffix("List").and_then(find) {
        return match info.api_versions.contains(&api_version) {
            true => Ok(Target::List(Some(info))),
            false => Err(wrong_version(
                kind,
                api_version,
                expected_versions(info),
                at,
            )),
        };
    }
    Err(FieldError::new(
        at.key("kind"),
        format!(
            "unknown kind `{kind}` (apiVersion `{api_version}`); expected one of: {}",
            known_kinds()
        ),
    ))
}
