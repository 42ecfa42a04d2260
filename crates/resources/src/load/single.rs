//! Decoding one object of a kind the loader does not hold in a [`crate::ResourceSet`] (such
//! as the sidecar's `ProxyConfig`), through the same parser, field paths and line finding
//! as resources, so that its errors read exactly like resource errors.

use serde::de::DeserializeOwned;
use serde_norway::Value;

use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, LoadError};
use crate::field::{FieldError, FieldPath};
use crate::load::Format;
use crate::load::decode::{parse_value, typed};
use crate::load::kinds::{header, require_name};
use crate::load::locate::line_of;
use crate::load::source::{Document, documents};

/// Decodes the single `kind` object (`apiVersion` `api_version`) in `text`; `origin` names
/// the text in errors (a file path picks YAML or JSON by extension). See
/// [`decode_single_with`].
pub fn decode_single<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    api_version: &str,
    kind: &str,
) -> Result<T, LoadError> {
    decode_single_with(text, origin, api_version, kind, |_: &T| Vec::new())
}

/// Decodes the single `kind` object in `text` strictly (unknown fields and wrong types are
/// errors), then runs `validate` on it; each [`FieldError`] it returns becomes a diagnostic
/// located at the field's line. Errors look like the loader's:
/// `proxy.yaml: document 1 (line 9): ProxyConfig/shop/web: spec.inbound[0].port: ...`.
pub fn decode_single_with<T, F>(
    text: &str,
    origin: &str,
    api_version: &str,
    kind: &str,
    validate: F,
) -> Result<T, LoadError>
where
    T: DeserializeOwned,
    F: FnOnce(&T) -> Vec<FieldError>,
{
    let syntax = Format::Auto.resolve(origin, text);
    let docs = documents(text, syntax).map_err(|e| {
        let mut d = Diagnostic::for_origin(DiagnosticKind::Syntax, origin, e.message);
        d.line = e.line;
        invalid(d)
    })?;
    let doc = match docs.as_slice() {
        [doc] => doc,
        _ => {
            let message = format!("expected exactly one {kind} document, found {}", docs.len());
            return Err(invalid(Diagnostic::for_origin(
                DiagnosticKind::Schema,
                origin,
                message,
            )));
        }
    };
    let value = parse_value(doc).map_err(|(line, message)| {
        invalid(Diagnostic {
            kind: DiagnosticKind::Syntax,
            origin: origin.to_owned(),
            document: Some(doc.index),
            line: Some(line.unwrap_or(doc.start_line)),
            object: None,
            field: None,
            message,
        })
    })?;
    let located = Located {
        origin,
        doc,
        value: &value,
    };
    let root = FieldPath::root();
    let object = check_header(&value, api_version, kind)
        .map_err(|e| located.error(DiagnosticKind::Schema, None, e))?;
    let decoded: T = require_name(&value, &root)
        .and_then(|()| typed::<T>(&value, &root))
        .map_err(|e| located.error(DiagnosticKind::Schema, object.clone(), e))?;
    let problems = validate(&decoded);
    if problems.is_empty() {
        return Ok(decoded);
    }
    let mut all = Diagnostics::default();
    for problem in problems {
        all.push(located.diagnostic(DiagnosticKind::Invalid, object.clone(), problem));
    }
    Err(LoadError::Invalid(all))
}

fn invalid(diagnostic: Diagnostic) -> LoadError {
    let mut all = Diagnostics::default();
    all.push(diagnostic);
    LoadError::Invalid(all)
}

/// Checks `apiVersion` and `kind` and returns the object's `Kind/namespace/name`.
fn check_header(
    value: &Value,
    api_version: &str,
    kind: &str,
) -> Result<Option<String>, FieldError> {
    let root = FieldPath::root();
    let found = header(value, &root)?;
    if found.kind != kind {
        return Err(FieldError::new(
            root.key("kind"),
            format!("expected `{kind}`, found `{}`", found.kind),
        ));
    }
    if found.api_version != api_version {
        return Err(FieldError::new(
            root.key("apiVersion"),
            format!(
                "kind `{kind}` does not exist in apiVersion `{}`; expected `{api_version}`",
                found.api_version
            ),
        ));
    }
    let name = found.name.filter(|n| !n.is_empty());
    let namespace = found.namespace.unwrap_or("default");
    Ok(name.map(|name| format!("{kind}/{namespace}/{name}")))
}

/// One parsed document, for turning field errors into located diagnostics.
struct Located<'a, 'd> {
    origin: &'a str,
    doc: &'a Document<'d>,
    value: &'a Value,
}

impl Located<'_, '_> {
    fn diagnostic(
        &self,
        kind: DiagnosticKind,
        object: Option<String>,
        e: FieldError,
    ) -> Diagnostic {
        let line = line_of(self.doc, self.value, &e.path).unwrap_or(self.doc.start_line);
        Diagnostic {
            kind,
            origin: self.origin.to_owned(),
            document: Some(self.doc.index),
            line: Some(line),
            object,
            field: Some(e.path),
            message: e.message,
        }
    }

    fn error(&self, kind: DiagnosticKind, object: Option<String>, e: FieldError) -> LoadError {
        invalid(self.diagnostic(kind, object, e))
    }
}

#[cfg(test)]
mod tests;
