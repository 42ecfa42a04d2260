//! The SecLang parser: directives with continuation lines, quoting and `Include`.
//!
//! Parsing runs in layers, one module each: `lines` joins continuation lines and drops
//! comments, `words` splits a directive into its (unquoted) arguments, `directive`
//! dispatches on the directive name and uses `variables`, `operator` and `actions`
//! for the parts of a rule. This module follows `Include` and reports errors with the file
//! and line of the directive.

pub mod ast;

mod actions;
mod directive;
mod glob;
mod lines;
mod operator;
mod variables;
mod words;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod include_tests;
#[cfg(test)]
mod roundtrip_tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ast::{Located, Location};
use directive::Parsed;

/// A parse error that names the file, line and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text of a directive is malformed.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the directive starts.
        at: Location,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A file named by `Include` (or matched by its pattern) cannot be read.
    #[error("{at}: cannot read {path}: {source}")]
    Include {
        /// Where the `Include` directive is.
        at: Location,
        /// The file or pattern that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file given to [`parse_file`] cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Parses one file, following `Include` (paths relative to the including file's directory;
/// glob patterns like `rules/*.conf` expand to the matching files in sorted order; an
/// include cycle is an error).
pub fn parse_file(path: &Path) -> Result<Vec<Located>, ParseError> {
    let read_error = |source| ParseError::Read {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let canonical = path.canonicalize().map_err(read_error)?;
    let mut loader = Loader {
        open: vec![canonical],
        out: Vec::new(),
    };
    loader.parse_text(&label_of(path), &text, parent_dir(path))?;
    Ok(loader.out)
}

/// Parses text under a label (used in errors) with `base_dir` for relative Includes.
pub fn parse_str(label: &str, text: &str, base_dir: &Path) -> Result<Vec<Located>, ParseError> {
    let mut loader = Loader {
        open: Vec::new(),
        out: Vec::new(),
    };
    loader.parse_text(&Arc::from(label), text, base_dir)?;
    Ok(loader.out)
}

/// The state of one parse: the files being read (for cycle detection) and the output.
struct Loader {
    /// Canonical paths of the files whose parse is in progress, outermost first.
    open: Vec<PathBuf>,
    /// The directives so far, includes expanded in place.
    out: Vec<Located>,
}

impl Loader {
    /// Parses the directives of one text, following its includes.
    fn parse_text(
        &mut self,
        file: &Arc<str>,
        text: &str,
        base_dir: &Path,
    ) -> Result<(), ParseError> {
        for line in lines::logical_lines(text) {
            let at = Location {
                file: Arc::clone(file),
                line: line.line,
            };
            let parsed = words::split_words(&line.text).and_then(directive::build);
            match parsed {
                Ok(Parsed::Directive(directive)) => self.out.push(Located { at, directive }),
                Ok(Parsed::Include(pattern)) => self.include(&at, base_dir, &pattern)?,
                Err(message) => return Err(ParseError::Syntax { at, message }),
            }
        }
        Ok(())
    }

    /// Parses the files an `Include` names, in sorted order.
    fn include(&mut self, at: &Location, base_dir: &Path, pattern: &str) -> Result<(), ParseError> {
        let full = base_dir.join(pattern);
        let include_error = |path: &Path, source| ParseError::Include {
            at: at.clone(),
            path: path.to_owned(),
            source,
        };
        let files = if glob::has_wildcards(pattern) {
            glob::expand(&full).map_err(|e| include_error(&full, e))?
        } else {
            vec![full]
        };
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| include_error(&path, e))?;
            let canonical = path.canonicalize().map_err(|e| include_error(&path, e))?;
            if self.open.contains(&canonical) {
                return Err(self.cycle(at, &canonical));
            }
            self.open.push(canonical);
            self.parse_text(&label_of(&path), &text, parent_dir(&path))?;
            self.open.pop();
        }
        Ok(())
    }

    /// The error for an `Include` of a file that is already being parsed.
    fn cycle(&self, at: &Location, again: &Path) -> ParseError {
        let mut chain: Vec<String> = self
            .open
            .iter()
            .skip_while(|p| p.as_path() != again)
            .map(|p| p.display().to_string())
            .collect();
        chain.push(again.display().to_string());
        let message = format!("include cycle: {}", chain.join(" includes "));
        ParseError::Syntax {
            at: at.clone(),
            message,
        }
    }
}

/// The label of a file in locations: its path as given.
fn label_of(path: &Path) -> Arc<str> {
    Arc::from(path.display().to_string())
}

/// The directory relative includes of `path` are resolved against.
fn parent_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}
