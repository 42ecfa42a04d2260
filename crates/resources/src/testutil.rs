//! Helpers shared by the unit tests of the loader and the validator.

use crate::ResourceSet;
use crate::error::{Diagnostic, DiagnosticKind, LoadError};
use crate::load::{Format, Loader};

/// Loads `text` as one batch.
pub(crate) fn load(text: &str, origin: &str) -> Result<ResourceSet, LoadError> {
    let mut loader = Loader::new();
    let _ = loader.add_str(text, origin, Format::Auto);
    loader.finish()
}

/// The diagnostics of a batch that must fail.
pub(crate) fn diagnostics(text: &str, origin: &str) -> Vec<Diagnostic> {
    match load(text, origin) {
        Ok(set) => panic!(
            "expected {origin} to fail, but it loaded {} resources",
            set.len()
        ),
        Err(e) => e.diagnostics().to_vec(),
    }
}

/// The single diagnostic of a batch that must fail with exactly one.
pub(crate) fn only(text: &str, origin: &str) -> Diagnostic {
    let mut all = diagnostics(text, origin);
    assert_eq!(all.len(), 1, "expected one diagnostic, got {all:#?}");
    all.remove(0)
}

/// What a diagnostic must say.
pub(crate) struct Expect<'a> {
    pub(crate) kind: DiagnosticKind,
    pub(crate) file: &'a str,
    pub(crate) document: usize,
    pub(crate) line: usize,
    pub(crate) object: Option<&'a str>,
    pub(crate) field: &'a str,
    pub(crate) message: &'a str,
}

/// Asserts every part of `d`, and that its one-line rendering carries all of them in order.
pub(crate) fn check(d: &Diagnostic, want: Expect<'_>) {
    let shown = d.to_string();
    assert_eq!(d.kind, want.kind, "{shown}");
    assert_eq!(d.origin, want.file, "{shown}");
    assert_eq!(d.document, Some(want.document), "{shown}");
    assert_eq!(d.line, Some(want.line), "{shown}");
    assert_eq!(d.object.as_deref(), want.object, "{shown}");
    let field = d
        .field
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(field, want.field, "{shown}");
    assert!(
        d.message.contains(want.message),
        "message {:?} lacks {:?}",
        d.message,
        want.message
    );
    let mut prefix = format!(
        "{}: document {} (line {}): ",
        want.file, want.document, want.line
    );
    if let Some(object) = want.object {
        prefix.push_str(&format!("{object}: "));
    }
    if !want.field.is_empty() {
        prefix.push_str(&format!("{}: ", want.field));
    }
    assert!(
        shown.starts_with(&prefix),
        "{shown:?} does not start with {prefix:?}"
    );
}

/// A NetworkPolicy document `np` in namespace `ns` with `spec` (indented by two spaces).
pub(crate) fn network_policy(spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: np\n  \
         namespace: ns\nspec:\n{spec}"
    )
}

/// An AuthorizationPolicy document `ap` in namespace `ns` with `spec` (indented by two spaces).
pub(crate) fn authorization_policy(spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ap\n  \
         namespace: ns\nspec:\n{spec}"
    )
}
