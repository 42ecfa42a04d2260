//! Load errors: one [`Diagnostic`] per problem, collected into a [`LoadError`].

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::field::FieldPath;

/// At most this many diagnostics are kept per batch; a broken directory should produce a
/// readable screenful, not thousands of lines. The rest are counted.
pub const MAX_DIAGNOSTICS: usize = 50;

/// What class of problem a [`Diagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// A file or directory could not be read.
    Io,
    /// The text is not valid YAML or JSON.
    Syntax,
    /// The document does not fit the resource schema: unknown kind or field, wrong type,
    /// invalid enum value, missing required field.
    Schema,
    /// The resource parsed but breaks a semantic rule (Kubernetes/Istio validation).
    Invalid,
    /// Two documents define the same object.
    Duplicate,
}

/// One problem, located as precisely as the loader knows.
///
/// Displays as `<file>: document <n> (line <l>): <Kind>/<ns>/<name>: <field.path>: <message>`,
/// leaving out the parts that are not known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Class of problem.
    pub kind: DiagnosticKind,
    /// The file (or the origin given to [`crate::Loader::add_str`]).
    pub origin: String,
    /// 1-based index of the document in its file.
    pub document: Option<usize>,
    /// 1-based line in the file: of the offending field when known, else of the document.
    pub line: Option<usize>,
    /// `Kind/namespace/name` of the object, when its metadata could be read.
    pub object: Option<String>,
    /// Path of the offending field inside the document.
    pub field: Option<FieldPath>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic that only knows its file (I/O errors, whole-file problems).
    pub fn for_origin(kind: DiagnosticKind, origin: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            origin: origin.to_owned(),
            document: None,
            line: None,
            object: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        match (self.document, self.line) {
            (Some(doc), Some(line)) => write!(f, ": document {doc} (line {line})")?,
            (Some(doc), None) => write!(f, ": document {doc}")?,
            (None, Some(line)) => write!(f, ": line {line}")?,
            (None, None) => {}
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        if let Some(field) = self.field.as_ref().filter(|p| !p.is_root()) {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A capped list of diagnostics, displayed one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    omitted: usize,
}

impl Diagnostics {
    /// The kept diagnostics, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// The kept diagnostics as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Number of kept diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing went wrong.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.omitted == 0
    }

    /// How many diagnostics were dropped past [`MAX_DIAGNOSTICS`].
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// True when further diagnostics will only be counted.
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= MAX_DIAGNOSTICS
    }

    /// Counts a diagnostic that would not be kept anyway, without building it.
    pub(crate) fn count_omitted(&mut self) {
        self.omitted += 1;
    }

    /// Adds one diagnostic, or counts it when the cap is reached.
    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        if self.items.len() < MAX_DIAGNOSTICS {
            self.items.push(diagnostic);
        } else {
            self.omitted += 1;
        }
    }

    /// Adds every diagnostic of `other`, keeping its omitted count.
    pub(crate) fn append(&mut self, other: &Diagnostics) {
        for diagnostic in &other.items {
            self.push(diagnostic.clone());
        }
        self.omitted += other.omitted;
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        if self.omitted > 0 {
            write!(
                f,
                "\n... and {} more error(s) not shown (at most {MAX_DIAGNOSTICS} are reported)",
                self.omitted
            )?;
        }
        Ok(())
    }
}

/// Why a file, a string or a batch of resources could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory given to [`crate::Loader::add_path`] could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Documents that do not parse or resources that fail validation (one line each).
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl LoadError {
    /// Every diagnostic this error carries (an I/O error carries none).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Io { .. } => &[],
            LoadError::Invalid(d) => d.as_slice(),
        }
    }

    /// True when a path could not be read.
    pub fn is_io(&self) -> bool {
        matches!(self, LoadError::Io { .. })
    }
}
