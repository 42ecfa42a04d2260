//! The crate's error type.

use crate::parse::ParseError;
use crate::parse::ast::Location;

/// Errors from loading or compiling rules; each names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WafError {
    /// A file could not be read or a directive could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A directive parsed but cannot be compiled (unknown operator, bad regex, …).
    #[error("{at}: {message}")]
    Compile {
        /// Where the directive starts.
        at: Location,
        /// What is wrong and what was expected.
        message: String,
    },
}
