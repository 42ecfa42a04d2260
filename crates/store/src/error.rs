//! The store's one error type.

use std::path::PathBuf;

use bulkhead_identity::token::TokenError;

/// Everything that can go wrong in the store.
///
/// Errors about the file itself name it; errors about a request (conflicts, unknown
/// objects, refused tokens) do not, because their messages go back to API clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file or its directory could not be created or opened.
    #[error("cannot open store {}: {source}", path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file exists but is not a readable redb database.
    #[error(
        "store {} is not a readable Bulkhead store: {detail}; expected a redb database written \
         by `bulkhead control` (restore it from a backup, or move it away to start a new store)",
        path.display()
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The file was written by a version of Bulkhead with another schema.
    #[error(
        "store {} has schema version {found}, but this version of Bulkhead reads schema \
         version {expected}",
        path.display()
    )]
    Incompatible {
        /// The store file.
        path: PathBuf,
        /// The schema version in the file.
        found: String,
        /// The schema version this build reads.
        expected: String,
    },
    /// Another process has the file open.
    #[error(
        "store {} is in use by another process; expected exclusive access (is another \
         `bulkhead control` running with the same data directory?)",
        path.display()
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// redb failed while reading or writing.
    #[error("store {}: database error: {source}", path.display())]
    Database {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        source: Box<redb::Error>,
    },
    /// A stored record does not decode.
    #[error(
        "store {}: record `{key}` in table `{table}` does not decode ({detail}); expected \
         JSON as this version writes it",
        path.display()
    )]
    Record {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What was wrong.
        detail: String,
    },
    /// A write request is malformed (an op without kind or name, a key touched twice).
    #[error("invalid write: {0}")]
    Invalid(String),
    /// Optimistic concurrency failed: the whole batch was rejected.
    #[error("stale resourceVersion, nothing was written: {}", conflicts.join("; "))]
    Conflict {
        /// One line per stale object.
        conflicts: Vec<String>,
    },
    /// The object or token does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A live token already has this name.
    #[error(
        "a live token named `{0}` already exists; expected a unique name (revoke the old \
         token first)"
    )]
    Duplicate(String),
    /// A watch asked for history that was trimmed.
    #[error(
        "revision {requested} is older than the retained history (changes after revision \
         {oldest}); list again and watch from the list's revision"
    )]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision that can still be watched from.
        oldest: u64,
    },
    /// A join token was refused.
    #[error("join token refused: {0}")]
    JoinToken(JoinTokenRefusal),
    /// A join token could not be made (not a workload identity, zero TTL or uses).
    #[error("cannot create join token: {0}")]
    JoinTokenParams(TokenError),
    /// The system random number generator failed.
    #[error("cannot create token: the system random number generator failed")]
    Random,
}

/// Why a join token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinTokenRefusal {
    /// Not shaped like a join token.
    #[error("malformed: expected `bhj_` followed by 64 lower-case hex characters")]
    Malformed,
    /// No such token.
    #[error("unknown token")]
    Unknown,
    /// The token was revoked.
    #[error("token {id} was revoked at {revoked}")]
    Revoked {
        /// Its id.
        id: String,
        /// When (RFC 3339).
        revoked: String,
    },
    /// The token's lifetime is over.
    #[error("token {id} expired at {expired_at}")]
    Expired {
        /// Its id.
        id: String,
        /// Its expiry (RFC 3339).
        expired_at: String,
    },
    /// Every use was spent.
    #[error("token {id} is used up ({uses} of {max_uses} uses)")]
    UsedUp {
        /// Its id.
        id: String,
        /// Uses so far.
        uses: u32,
        /// Uses allowed.
        max_uses: u32,
    },
}
