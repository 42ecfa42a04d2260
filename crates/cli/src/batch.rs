//! The request body of `apply`, `delete -f` and `diff`: the files named by `-f`, read as
//! `bulkhead policy` reads them, validated locally with the same strict loader the server
//! uses (so errors name file, document, line and field before anything is sent), then
//! sent as the files' own documents in one YAML stream: one request, one atomic batch.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use bulkhead_resources::{Format, Loader};
use serde_json::Value;

use crate::client::{Exit, Failure};

/// The media type of a batch.
pub(crate) const CONTENT_TYPE: &str = "application/yaml";

/// Reads, validates and concatenates every file under `paths` (exit 3 when invalid).
pub(crate) fn read_batch(paths: &[PathBuf]) -> Result<String, Failure> {
    let mut problems = Vec::new();
    let files = expand(paths, &mut problems);
    let mut loader = Loader::new();
    let mut body = String::new();
    for file in &files {
        let origin = file.display().to_string();
        let text = match fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{origin}: cannot read: {e}"));
                continue;
            }
        };
        // Problems are kept by the loader and all reported by `finish`.
        let _ = loader.add_str(&text, &origin, Format::Auto);
        append_documents(&mut body, &text, &origin);
    }
    let invalid = |problems: Vec<String>| {
        Failure::new(Exit::Refused, "invalid resources; nothing was sent").with_details(problems)
    };
    match loader.finish() {
        Err(e) => {
            problems.extend(e.to_string().lines().map(str::to_owned));
            Err(invalid(problems))
        }
        Ok(_) if !problems.is_empty() => Err(invalid(problems)),
        Ok(set) if set.is_empty() => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let message = format!("no resources found in {}", names.join(", "));
            Err(Failure::new(Exit::Refused, message))
        }
        Ok(_) => Ok(body),
    }
}

/// Appends the documents of one file, each after a `---` line. YAML goes as written;
/// JSON (one object, or an array of them) goes one object per document, since a JSON
/// array would be a single YAML sequence document.
fn append_documents(body: &mut String, text: &str, origin: &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !is_json(origin, text) {
        body.push_str("---\n");
        body.push_str(text);
        if !text.ends_with('\n') {
            body.push('\n');
        }
        return;
    }
    // A file that does not parse was reported by the loader; nothing will be sent.
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let documents = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for document in documents {
        body.push_str("---\n");
        body.push_str(&document.to_string());
        body.push('\n');
    }
}

/// The loader's rule: by extension, else JSON when the text starts with `{` or `[`.
fn is_json(origin: &str, text: &str) -> bool {
    let ext = Path::new(origin)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with(['{', '[']),
    }
}

/// The files `paths` name, as [`Loader::add_path`] reads them: a file as given, a
/// directory recursively in sorted order taking `*.yaml`, `*.yml` and `*.json` and
/// skipping names that start with `.`.
fn expand(paths: &[PathBuf], problems: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => walk(path, &mut files, problems, &mut visited),
            Ok(_) => files.push(path.clone()),
            Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
        }
    }
    files
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<String>,
    visited: &mut HashSet<PathBuf>,
) {
    let cannot = |problems: &mut Vec<String>, path: &Path, e: std::io::Error| {
        problems.push(format!("{}: cannot read: {e}", path.display()));
    };
    // Symbolic links may point back up the tree; each real directory is read once.
    match fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real) {
                return;
            }
        }
        Err(e) => return cannot(problems, dir, e),
    }
    let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => return cannot(problems, dir, e),
    };
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, files, problems, visited),
            Ok(_) if is_resource_file(&path) => files.push(path),
            Ok(_) => {}
            Err(e) => cannot(problems, &path, e),
        }
    }
}

fn is_resource_file(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str());
    ext.is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  \
        name: deny\n  namespace: shop\nspec:\n  podSelector: {}\n";

    fn reload(body: &str) -> usize {
        let mut loader = Loader::new();
        loader.add_str(body, "request", Format::Yaml).unwrap();
        loader.finish().unwrap().network_policies.len()
    }

    #[test]
    fn yaml_and_json_files_become_one_yaml_stream_the_loader_accepts() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), POLICY).unwrap();
        let json = r#"[{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
            "metadata":{"name":"j1","namespace":"shop"},"spec":{"podSelector":{}}},
            {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
            "metadata":{"name":"j2","namespace":"shop"},"spec":{"podSelector":{}}}]"#;
        fs::write(dir.path().join("b.json"), json).unwrap();
        fs::write(dir.path().join(".hidden.yaml"), "not: [valid").unwrap();
        fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let body = read_batch(&[dir.path().to_owned()]).unwrap();
        assert_eq!(body.matches("---\n").count(), 3, "{body}");
        assert_eq!(reload(&body), 3);
    }

    #[test]
    fn invalid_files_are_refused_locally_naming_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        fs::write(&file, POLICY.replace("podSelector", "podSelectr")).unwrap();
        let failure = read_batch(std::slice::from_ref(&file)).unwrap_err();
        assert_eq!(failure.exit, Exit::Refused);
        assert_eq!(failure.message, "invalid resources; nothing was sent");
        let detail = &failure.details[0];
        assert!(detail.starts_with(&format!("{}: document 1 (line 7)", file.display())));
        assert!(detail.contains("spec.podSelectr"), "{detail}");
    }

    #[test]
    fn missing_paths_and_empty_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let failure = read_batch(std::slice::from_ref(&missing)).unwrap_err();
        assert!(failure.details[0].contains("nope.yaml: cannot read"));
        let failure = read_batch(&[dir.path().to_owned()]).unwrap_err();
        assert!(failure.message.starts_with("no resources found in"));
        assert_eq!(failure.exit, Exit::Refused);
    }
}
