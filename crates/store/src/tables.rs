//! Table layout and the small helpers every part of the store uses to read and write it.
//!
//! Records are JSON (serde_json) so a store can be inspected with generic redb tools;
//! counters are plain integers.

use std::fmt::Display;
use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// Strings: the schema version, the trust domain, flags the control plane keeps.
pub(crate) const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");
/// The revision, the last audit sequence number, token serial numbers.
pub(crate) const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// Resources by (kind, namespace or "", name): the stored object as JSON.
pub(crate) const OBJECTS: TableDefinition<'_, (&str, &str, &str), &[u8]> =
    TableDefinition::new("objects");
/// Watch events by revision (the last `event_limit` of them).
pub(crate) const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
/// Audit records by sequence number.
pub(crate) const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// Operator tokens by id.
pub(crate) const TOKENS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("tokens");
/// SHA-256 (hex) of an operator token to its id.
pub(crate) const TOKEN_HASHES: TableDefinition<'_, &str, &str> =
    TableDefinition::new("token_hashes");
/// Join tokens by id.
pub(crate) const JOIN_TOKENS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("join_tokens");
/// SHA-256 (hex) of a join token to its id.
pub(crate) const JOIN_TOKEN_HASHES: TableDefinition<'_, &str, &str> =
    TableDefinition::new("join_token_hashes");
/// Proxy registrations by instance.
pub(crate) const REGISTRATIONS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("registrations");

/// Counter names.
pub(crate) const REVISION: &str = "revision";
pub(crate) const AUDIT_SEQ: &str = "audit_seq";
pub(crate) const TOKEN_SERIAL: &str = "token_serial";

/// Turns any redb error into a [`StoreError::Database`] naming the file.
pub(crate) trait DbResult<T> {
    fn db(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> DbResult<T> for Result<T, E> {
    fn db(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database {
            path: path.to_owned(),
            source: Box::new(e.into()),
        })
    }
}

/// Decodes a JSON record, naming table and key when it does not decode.
pub(crate) fn decode<T: DeserializeOwned>(
    path: &Path,
    table: &'static str,
    key: &dyn Display,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Record {
        path: path.to_owned(),
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// Encodes a record as JSON.
pub(crate) fn encode<T: Serialize>(
    path: &Path,
    table: &'static str,
    key: &dyn Display,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Record {
        path: path.to_owned(),
        table,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

/// A counter's value (0 when never set).
pub(crate) fn counter(
    table: &impl ReadableTable<&'static str, u64>,
    name: &str,
    path: &Path,
) -> Result<u64, StoreError> {
    Ok(table.get(name).db(path)?.map(|v| v.value()).unwrap_or(0))
}
