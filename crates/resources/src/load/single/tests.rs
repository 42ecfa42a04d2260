use serde::Deserialize;

use super::{decode_single, decode_single_with};
use crate::field::{FieldError, FieldPath};
use crate::{DiagnosticKind, LoadError, ObjectMeta};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Thing {
    #[allow(dead_code, reason = "decoded to be checked, never read")]
    api_version: String,
    #[allow(dead_code, reason = "decoded to be checked, never read")]
    kind: String,
    metadata: ObjectMeta,
    spec: ThingSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ThingSpec {
    ports: Vec<u16>,
}

const OK: &str = "apiVersion: example.dev/v1\nkind: Thing\nmetadata:\n  name: t\n  namespace: ns\nspec:\n  ports:\n  - 80\n  - 81\n";

fn one(err: LoadError) -> String {
    let diagnostics = err.diagnostics();
    assert_eq!(diagnostics.len(), 1, "{err}");
    diagnostics[0].to_string()
}

fn decode(text: &str) -> Result<Thing, LoadError> {
    decode_single(text, "thing.yaml", "example.dev/v1", "Thing")
}

#[test]
fn a_valid_object_decodes() {
    let thing = decode(OK).unwrap();
    assert_eq!(thing.metadata.name, "t");
    assert_eq!(thing.spec.ports, [80, 81]);
}

#[test]
fn json_decodes_too() {
    let text = r#"{"apiVersion":"example.dev/v1","kind":"Thing","metadata":{"name":"t"},"spec":{"ports":[1]}}"#;
    let thing: Thing = decode_single(text, "thing.json", "example.dev/v1", "Thing").unwrap();
    assert_eq!(thing.spec.ports, [1]);
}

#[test]
fn schema_errors_name_file_line_object_and_field() {
    let text = OK.replace("  - 81\n", "  - 81\n  extra: 1\n");
    assert_eq!(
        one(decode(&text).unwrap_err()),
        "thing.yaml: document 1 (line 10): Thing/ns/t: spec.extra: unknown field `extra`, expected `ports`"
    );
    let text = OK.replace("  - 81", "  - eighty-one");
    let message = one(decode(&text).unwrap_err());
    assert!(
        message.starts_with("thing.yaml: document 1 (line 9): Thing/ns/t: spec.ports[1]: "),
        "{message}"
    );
    let text = OK.replace("spec:\n  ports:\n  - 80\n  - 81\n", "");
    assert_eq!(
        one(decode(&text).unwrap_err()),
        "thing.yaml: document 1 (line 1): Thing/ns/t: spec: required field is missing"
    );
}

#[test]
fn header_errors() {
    let text = OK.replace("kind: Thing", "kind: Other");
    assert_eq!(
        one(decode(&text).unwrap_err()),
        "thing.yaml: document 1 (line 2): kind: expected `Thing`, found `Other`"
    );
    let text = OK.replace("example.dev/v1", "example.dev/v2");
    assert_eq!(
        one(decode(&text).unwrap_err()),
        "thing.yaml: document 1 (line 1): apiVersion: kind `Thing` does not exist in apiVersion `example.dev/v2`; expected `example.dev/v1`"
    );
    let text = OK.replace("  name: t\n", "");
    let message = one(decode(&text).unwrap_err());
    assert!(
        message.contains("metadata.name: required field is missing"),
        "{message}"
    );
}

#[test]
fn syntax_errors_and_document_count() {
    let err = decode("apiVersion: [\n").unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Syntax);
    assert!(one(err).starts_with("thing.yaml: document 1 (line "));
    assert_eq!(
        one(decode(&format!("{OK}---\n{OK}")).unwrap_err()),
        "thing.yaml: expected exactly one Thing document, found 2"
    );
    assert_eq!(
        one(decode("# nothing\n").unwrap_err()),
        "thing.yaml: expected exactly one Thing document, found 0"
    );
}

#[test]
fn validation_errors_are_located_and_all_reported() {
    let err = decode_single_with(OK, "thing.yaml", "example.dev/v1", "Thing", |t: &Thing| {
        let ports = FieldPath::root().key("spec").key("ports");
        (0..t.spec.ports.len())
            .map(|i| FieldError::new(ports.index(i), "not allowed"))
            .collect()
    })
    .unwrap_err();
    let lines: Vec<String> = err.diagnostics().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "thing.yaml: document 1 (line 8): Thing/ns/t: spec.ports[0]: not allowed",
            "thing.yaml: document 1 (line 9): Thing/ns/t: spec.ports[1]: not allowed",
        ]
    );
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Invalid);
}
