//! Turning one document into typed, validated resources, or into diagnostics.
//!
//! Each document is parsed into a [`Value`] first (syntax errors, located by the parser),
//! then its header picks the kind, then `serde_path_to_error` decodes the typed resource
//! from that value (schema errors, with the field path), then [`crate::validate`] checks
//! it (semantic errors). Decoding from the value rather than the text keeps messages free
//! of parser decoration, decodes `List` items the same way as top-level objects, and is
//! strict about scalar types (a YAML `8080` is not a string) as Kubernetes is. Lines for
//! schema and semantic errors come from [`line_of`].

use serde::de::DeserializeOwned;
use serde_norway::Value;

use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::field::{FieldError, FieldPath, Segment};
use crate::load::kinds::{KindInfo, Target, header, require_name, resolve, type_name};
use crate::load::locate::{child, line_of, untag};
use crate::load::source::{Document, Syntax, json_message};
use crate::validate::validate;
use crate::{
    AuthorizationPolicy, Namespace, NetworkPolicy, PeerAuthentication, Pod, Resource, Service,
    TrafficPolicy, WebApplicationFirewall, Workload,
};

/// A resource decoded from a document, with where it came from.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) resource: Resource,
    pub(crate) document: usize,
    pub(crate) line: usize,
}

/// Decodes every object of `doc`, pushing resources to `out` and problems to `diags`.
pub(crate) fn decode_document(
    origin: &str,
    doc: &Document<'_>,
    out: &mut Vec<Decoded>,
    diags: &mut Diagnostics,
) {
    let value = match parse_value(doc) {
        Ok(value) => value,
        Err((line, message)) => {
            return diags.push(Diagnostic {
                kind: DiagnosticKind::Syntax,
                origin: origin.to_owned(),
                document: Some(doc.index),
                line: Some(line.unwrap_or(doc.start_line)),
                object: None,
                field: None,
                message,
            });
        }
    };
    let mut ctx = Ctx {
        origin,
        doc,
        value: &value,
        out,
        diags,
    };
    ctx.node(&value, &FieldPath::root(), None);
}

/// The document as a YAML value, or the syntax error: its file line (when the parser
/// knows it) and message.
pub(crate) fn parse_value(doc: &Document<'_>) -> Result<Value, (Option<usize>, String)> {
    let mut value = match doc.syntax {
        Syntax::Yaml => serde_norway::from_str::<Value>(doc.text).map_err(|e| yaml_error(&e, doc)),
        Syntax::Json => serde_json::from_str::<Value>(doc.text).map_err(|e| {
            let line = (e.line() > 0).then(|| doc.first_line + e.line() - 1);
            (line, json_message(&e))
        }),
    }?;
    // YAML merge keys (`<<: *base`) are part of the YAML that people write by hand.
    value.apply_merge().map_err(|e| (None, e.to_string()))?;
    Ok(value)
}

/// The parser's message with its primary location removed (reported separately) and any
/// other line numbers made relative to the file.
fn yaml_error(e: &serde_norway::Error, doc: &Document<'_>) -> (Option<usize>, String) {
    let delta = doc.first_line - 1;
    let mut message = e.to_string();
    let line = e.location().map(|loc| {
        let primary = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(pos) = message.find(&primary) {
            message.replace_range(pos..pos + primary.len(), "");
        }
        loc.line() + delta
    });
    (line, shift_lines(&message, delta))
}

/// Adds `delta` to every `line N` in a parser message.
fn shift_lines(message: &str, delta: usize) -> String {
    if delta == 0 {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(pos) = rest.find("line ") {
        let (before, after) = rest.split_at(pos + "line ".len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = after[..digits].parse::<usize>() {
            out.push_str(&(n + delta).to_string());
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The List an item sits in, for checking the item's kind.
#[derive(Clone, Copy)]
struct ListScope<'v> {
    list_kind: &'v str,
    item_kind: Option<&'static KindInfo>,
}

struct Ctx<'a, 'd> {
    origin: &'a str,
    doc: &'a Document<'d>,
    value: &'a Value,
    out: &'a mut Vec<Decoded>,
    diags: &'a mut Diagnostics,
}

impl Ctx<'_, '_> {
    fn report(&mut self, kind: DiagnosticKind, object: Option<String>, err: FieldError) {
        // Locating a field re-reads the document; not worth it for a diagnostic past the cap.
        if self.diags.is_full() {
            return self.diags.count_omitted();
        }
        let line = line_of(self.doc, self.value, &err.path).unwrap_or(self.doc.start_line);
        self.diags.push(Diagnostic {
            kind,
            origin: self.origin.to_owned(),
            document: Some(self.doc.index),
            line: Some(line),
            object,
            field: Some(err.path),
            message: err.message,
        });
    }

    /// Decodes the object at `at`: the document root, or an item of a List.
    fn node(&mut self, node: &Value, at: &FieldPath, scope: Option<ListScope<'_>>) {
        let schema = DiagnosticKind::Schema;
        let header = match header(node, at) {
            Ok(header) => header,
            Err(e) => return self.report(schema, None, e),
        };
        let target = match resolve(&header, at) {
            Ok(target) => target,
            Err(e) => return self.report(schema, None, e),
        };
        match (target, scope) {
            (Target::List(_), Some(_)) => {
                let e = FieldError::new(at.key("kind"), "a List cannot contain another List");
                self.report(schema, None, e);
            }
            (Target::List(item_kind), None) => {
                let scope = ListScope {
                    list_kind: header.kind,
                    item_kind,
                };
                self.list(node, at, scope);
            }
            (Target::One(info), scope) => {
                let object = header.object(info);
                let wanted = scope.and_then(|s| s.item_kind.map(|k| (s.list_kind, k.kind)));
                if let Some((list_kind, wanted)) = wanted.filter(|(_, k)| *k != info.kind) {
                    let message = format!(
                        "a {list_kind} can only hold {wanted} objects, found `{}`",
                        info.kind
                    );
                    return self.report(schema, object, FieldError::new(at.key("kind"), message));
                }
                self.object(node, at, info, object);
            }
        }
    }

    fn object(&mut self, node: &Value, at: &FieldPath, info: &KindInfo, object: Option<String>) {
        if let Err(e) = require_name(node, at) {
            return self.report(DiagnosticKind::Schema, object, e);
        }
        let resource = match typed_resource(info.kind, node, at) {
            Ok(resource) => resource,
            Err(e) => return self.report(DiagnosticKind::Schema, object, e),
        };
        let problems = validate(&resource);
        if problems.is_empty() {
            let line = line_of(self.doc, self.value, at).unwrap_or(self.doc.start_line);
            self.out.push(Decoded {
                resource,
                document: self.doc.index,
                line,
            });
        }
        for problem in problems {
            let e = FieldError::new(at.join(&problem.path), problem.message);
            self.report(DiagnosticKind::Invalid, object.clone(), e);
        }
    }

    fn list(&mut self, node: &Value, at: &FieldPath, scope: ListScope<'_>) {
        const FIELDS: [&str; 4] = ["apiVersion", "kind", "metadata", "items"];
        let schema = DiagnosticKind::Schema;
        if let Value::Mapping(map) = untag(node) {
            let unknown = map.keys().filter(|k| match untag(k) {
                Value::String(s) => !FIELDS.contains(&s.as_str()),
                _ => true,
            });
            let unknown: Vec<String> = unknown.map(key_display).collect();
            for key in unknown {
                let message = format!(
                    "unknown field `{key}`, expected one of `apiVersion`, `kind`, `metadata`, `items`"
                );
                self.report(schema, None, FieldError::new(at.key(&key), message));
            }
        }
        let path = at.key("items");
        match child(node, &Segment::Key("items".into())).map(untag) {
            None => {
                let message = "required field is missing; expected a sequence of resources";
                self.report(schema, None, FieldError::new(path, message));
            }
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.node(item, &path.index(i), Some(scope));
                }
            }
            Some(other) => {
                let message = format!(
                    "expected a sequence of resources, found {}",
                    type_name(other)
                );
                self.report(schema, None, FieldError::new(path, message));
            }
        }
    }
}

fn key_display(key: &Value) -> String {
    match untag(key) {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("<{}>", type_name(other)),
    }
}

fn typed_resource(kind: &str, node: &Value, at: &FieldPath) -> Result<Resource, FieldError> {
    Ok(match kind {
        "Namespace" => Resource::Namespace(typed::<Namespace>(node, at)?),
        "Pod" => Resource::Pod(typed::<Pod>(node, at)?),
        "Service" => Resource::Service(typed::<Service>(node, at)?),
        "Workload" => Resource::Workload(typed::<Workload>(node, at)?),
        "NetworkPolicy" => Resource::NetworkPolicy(typed::<NetworkPolicy>(node, at)?),
        "AuthorizationPolicy" => {
            Resource::AuthorizationPolicy(typed::<AuthorizationPolicy>(node, at)?)
        }
        "PeerAuthentication" => {
            Resource::PeerAuthentication(typed::<PeerAuthentication>(node, at)?)
        }
        "TrafficPolicy" => Resource::TrafficPolicy(typed::<TrafficPolicy>(node, at)?),
        "WebApplicationFirewall" => {
            Resource::WebApplicationFirewall(typed::<WebApplicationFirewall>(node, at)?)
        }
        other => unreachable!("kind `{other}` is in KINDS but has no decoder"),
    })
}

/// Decodes `T` from `node`, turning the first error into a [`FieldError`] under `at`.
pub(crate) fn typed<T: DeserializeOwned>(node: &Value, at: &FieldPath) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(node).map_err(|e| {
        let segments: Vec<Segment> = e
            .path()
            .iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
                serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Segment::Key(variant.clone()),
                serde_path_to_error::Segment::Unknown => Segment::Key("?".to_owned()),
            })
            .collect();
        let path = at.join(&FieldPath::from(segments));
        // serde_norway names its own enum representation when an enum field holds a
        // non-string; what the user must write is a string.
        let message = e.inner().to_string().replace(
            "a Value::Tagged enum",
            "a string (one of the allowed values)",
        );
        // "missing field `x`" is reported at the missing field itself, so that every
        // error names the field the user has to write.
        match missing_field(&message) {
            Some(field) => FieldError::new(path.key(field), "required field is missing"),
            None => FieldError::new(path, message),
        }
    })
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}
