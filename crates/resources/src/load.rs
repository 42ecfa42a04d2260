//! The strict loader: YAML/JSON files and strings in, a validated [`ResourceSet`] out.
//!
//! A batch is all-or-nothing: [`Loader::finish`] returns every resource or every problem
//! (up to [`crate::error::MAX_DIAGNOSTICS`]), never a partial set. Each problem is one
//! line naming the file, the document (1-based, counted as the YAML parser counts them:
//! empty and comments-only documents are skipped but keep their number; each element of a
//! top-level JSON array is a document), the line (of the offending field when known, else
//! of the document), the object, the field path and what was expected:
//!
//! ```text
//! policies.yaml: document 3 (line 20): NetworkPolicy/shop/web: spec.ingress[0].ports[0].endPort: endPort (70) must not be less than port (80)
//! policies.yaml: document 1 (line 5): AuthorizationPolicy/shop/api: spec.action: unknown variant `FOO`, expected one of `ALLOW`, `DENY`, `AUDIT`, `CUSTOM`
//! ```
//!
//! Parts that are not known are left out (no object name when `metadata.name` is missing,
//! no field for a YAML syntax error). See [`Diagnostic`].

mod decode;
mod kinds;
mod locate;
mod single;
mod source;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use single::{decode_single, decode_single_with};
pub use source::Format;

use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, LoadError};
use crate::kinds::core::Namespace;
use crate::{NAMESPACE_NAME_LABEL, Resource, ResourceSet};
use decode::{Decoded, decode_document};

/// Where a loaded resource came from, for reports that name two places.
#[derive(Debug, Clone)]
struct Origin {
    file: String,
    document: usize,
    line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {} (line {})",
            self.file, self.document, self.line
        )
    }
}

#[derive(Debug)]
struct Entry {
    resource: Resource,
    origin: Origin,
}

/// Collects resources from files and strings into one batch, then validates the batch.
///
/// Every `add_*` call parses and validates its input at once and returns that input's
/// problems; the problems are also remembered, so that [`Loader::finish`] fails when any
/// input failed, even if the caller went on after an error.
#[derive(Debug, Default)]
pub struct Loader {
    entries: Vec<Entry>,
    failures: Diagnostics,
}

impl Loader {
    /// An empty batch.
    pub fn new() -> Self {
        Loader::default()
    }

    /// Adds a file (any extension, format by extension or content) or a directory (read
    /// recursively in sorted order, taking `*.yaml`, `*.yml` and `*.json`, skipping names
    /// that start with `.`, such as editor files and Kubernetes' `..data` mount links).
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        let metadata = fs::metadata(path).map_err(|e| self.io_failure(path, e))?;
        if !metadata.is_dir() {
            let text = fs::read_to_string(path).map_err(|e| self.io_failure(path, e))?;
            return self.add_str(&text, &path.display().to_string(), Format::Auto);
        }
        let mut found = Diagnostics::default();
        let mut files = Vec::new();
        collect_files(path, &mut files, &mut found, &mut HashSet::new());
        for file in files {
            match fs::read_to_string(&file) {
                Ok(text) => {
                    let problems = self.load_text(&text, &file.display().to_string(), Format::Auto);
                    found.append(&problems);
                }
                Err(e) => found.push(io_diagnostic(&file, &e)),
            }
        }
        self.settle(found)
    }

    /// Adds the documents of `text`; `origin` is the name errors give the text.
    pub fn add_str(&mut self, text: &str, origin: &str, format: Format) -> Result<(), LoadError> {
        let found = self.load_text(text, origin, format);
        self.settle(found)
    }

    /// Checks the batch as a whole (duplicates), completes namespaces (declared ones get
    /// their `kubernetes.io/metadata.name` label, referenced but undeclared ones are
    /// created) and returns the set, or every problem of the batch.
    pub fn finish(self) -> Result<ResourceSet, LoadError> {
        let mut problems = self.failures;
        check_duplicates(&self.entries, &mut problems);
        check_traffic_targets(&self.entries, &mut problems);
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }
        Ok(assemble(self.entries))
    }

    /// Parses and validates `text`, keeping its resources only when it has no problems.
    fn load_text(&mut self, text: &str, origin: &str, format: Format) -> Diagnostics {
        let mut found = Diagnostics::default();
        let syntax = format.resolve(origin, text);
        let documents = match source::documents(text, syntax) {
            Ok(documents) => documents,
            Err(e) => {
                let mut diagnostic =
                    Diagnostic::for_origin(DiagnosticKind::Syntax, origin, e.message);
                diagnostic.line = e.line;
                found.push(diagnostic);
                return found;
            }
        };
        let mut decoded: Vec<Decoded> = Vec::new();
        for document in &documents {
            decode_document(origin, document, &mut decoded, &mut found);
        }
        if found.is_empty() {
            self.entries.extend(decoded.into_iter().map(|d| Entry {
                resource: d.resource,
                origin: Origin {
                    file: origin.to_owned(),
                    document: d.document,
                    line: d.line,
                },
            }));
        }
        found
    }

    /// Remembers `found` for [`Loader::finish`] and turns it into this call's result.
    fn settle(&mut self, found: Diagnostics) -> Result<(), LoadError> {
        if found.is_empty() {
            return Ok(());
        }
        self.failures.append(&found);
        Err(LoadError::Invalid(found))
    }

    fn io_failure(&mut self, path: &Path, source: io::Error) -> LoadError {
        self.failures.push(io_diagnostic(path, &source));
        LoadError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Loads every path (files or directories) as one batch.
pub fn load_paths(paths: &[PathBuf]) -> Result<ResourceSet, LoadError> {
    let mut loader = Loader::new();
    for path in paths {
        // Keep going: `finish` reports the problems of every path together.
        let _ = loader.add_path(path);
    }
    loader.finish()
}

fn io_diagnostic(path: &Path, e: &io::Error) -> Diagnostic {
    let origin = path.display().to_string();
    Diagnostic::for_origin(DiagnosticKind::Io, &origin, format!("cannot read: {e}"))
}

fn is_resource_file(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str());
    ext.is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// Appends the resource files under `dir` to `files`, depth first in sorted order.
fn collect_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    found: &mut Diagnostics,
    visited: &mut HashSet<PathBuf>,
) {
    // Symbolic links may point back up the tree; each real directory is read once.
    match fs::canonicalize(dir) {
        Ok(real) => {
            if !visited.insert(real) {
                return;
            }
        }
        Err(e) => return found.push(io_diagnostic(dir, &e)),
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return found.push(io_diagnostic(dir, &e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => found.push(io_diagnostic(dir, &e)),
        }
    }
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => collect_files(&path, files, found, visited),
            Ok(_) if is_resource_file(&path) => files.push(path),
            Ok(_) => {}
            Err(e) => found.push(io_diagnostic(&path, &e)),
        }
    }
}

/// The identity of an object: kind, namespace (none for namespaces), name.
fn identity(resource: &Resource) -> (&'static str, Option<&str>, &str) {
    let meta = resource.metadata();
    let namespace = match resource {
        Resource::Namespace(_) => None,
        _ => Some(meta.namespace_or_default()),
    };
    (resource.kind(), namespace, meta.name.as_str())
}

fn check_duplicates(entries: &[Entry], problems: &mut Diagnostics) {
    let mut seen: HashMap<(&str, Option<&str>, &str), &Origin> = HashMap::new();
    for entry in entries {
        let key = identity(&entry.resource);
        match seen.get(&key) {
            Some(first) => problems.push(Diagnostic {
                kind: DiagnosticKind::Duplicate,
                origin: entry.origin.file.clone(),
                document: Some(entry.origin.document),
                line: Some(entry.origin.line),
                object: Some(entry.resource.display_name()),
                field: None,
                message: format!("duplicate object: already defined at {first}"),
            }),
            None => {
                seen.insert(key, &entry.origin);
            }
        }
    }
}

/// At most one TrafficPolicy per Service: a second one is reported at its `spec.service`,
/// naming the first.
fn check_traffic_targets(entries: &[Entry], problems: &mut Diagnostics) {
    let mut seen: HashMap<(&str, &str), (String, &Origin)> = HashMap::new();
    for entry in entries {
        let Resource::TrafficPolicy(tp) = &entry.resource else {
            continue;
        };
        let namespace = tp.metadata.namespace_or_default();
        let key = (namespace, tp.spec.service.as_str());
        match seen.get(&key) {
            Some((first, origin)) => problems.push(Diagnostic {
                kind: DiagnosticKind::Duplicate,
                origin: entry.origin.file.clone(),
                document: Some(entry.origin.document),
                line: Some(entry.origin.line),
                object: Some(entry.resource.display_name()),
                field: Some(crate::FieldPath::root().key("spec").key("service")),
                message: format!(
                    "Service `{}` in namespace `{namespace}` already has a TrafficPolicy: \
                     {first} (at {origin}); a Service takes at most one",
                    tp.spec.service
                ),
            }),
            None => {
                seen.insert(key, (entry.resource.display_name(), &entry.origin));
            }
        }
    }
}

/// Builds the set, completing namespaces as Kubernetes would.
fn assemble(entries: Vec<Entry>) -> ResourceSet {
    let mut set = ResourceSet::default();
    let mut referenced = BTreeSet::new();
    for entry in entries {
        if !matches!(entry.resource, Resource::Namespace(_)) {
            let namespace = entry.resource.metadata().namespace_or_default();
            referenced.insert(namespace.to_owned());
        }
        set.push(entry.resource);
    }
    for namespace in &mut set.namespaces {
        let name = namespace.metadata.name.clone();
        namespace
            .metadata
            .labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert(name);
    }
    let declared: HashSet<String> = set
        .namespaces
        .iter()
        .map(|n| n.metadata.name.clone())
        .collect();
    for name in referenced.iter().filter(|n| !declared.contains(*n)) {
        set.namespaces.push(Namespace::implicit(name));
    }
    set
}
