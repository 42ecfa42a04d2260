//! Command-line front end of Bulkhead.
use std::process::ExitCode;

/// Entry point used by the `bulkhead` binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
