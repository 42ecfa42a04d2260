//! The control plane's embedded ACID store: one redb file holding the resources, their
//! revision counter and watch events, the audit log, operator and join tokens, proxy
//! registrations and a few settings (docs/control-plane.md, "Writes", "Audit log",
//! "Tokens and roles").
//!
//! The API is synchronous and every call is one short redb transaction, so async callers
//! can use it directly (or through `spawn_blocking` for large batches). A change, its
//! event and its audit record always commit together.

mod error;
mod key;
mod log;
mod objects;
mod registrations;
mod render;
mod tables;
mod tokens;
mod util;

use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, WriteTransaction,
};

pub use error::{JoinTokenRefusal, StoreError};
pub use key::{DEFAULT_NAMESPACE, NAMESPACE_KIND, ObjectKey};
pub use objects::{Outcome, StoredObject, WriteOp, WriteOutcome};
pub use registrations::Registration;
pub use tokens::{Authenticated, OPERATOR_TOKEN_PREFIX, RevokedToken};

use tables::{DbResult, META};

/// A watch event as stored and as `GET /api/v1/watch` sends it.
pub type Event = bulkhead_api::rest::WatchEvent;

/// The schema this build reads and writes; a store with another one is refused.
pub const SCHEMA_VERSION: &str = "1";
/// The meta key holding the schema version.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";
/// How many events the store keeps for watchers (docs: "the last 10,000 changes").
pub const EVENT_LIMIT: u64 = 10_000;
/// redb's page cache; the store is small, so the 1 GiB default would only waste memory.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The store. `Send + Sync`: share it behind an `Arc`.
pub struct Store {
    db: Database,
    path: PathBuf,
    event_limit: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("event_limit", &self.event_limit)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) when missing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::with_event_limit(path, EVENT_LIMIT)
    }

    /// [`Store::open`], keeping only the last `event_limit` events (at least one).
    pub fn with_event_limit(path: &Path, event_limit: u64) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        // Verifying every page on open turns outside damage into an error instead of the
        // panic redb may hit when it trusts a damaged file.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| open_error(path, existed, e))?;
        let store = Store {
            db,
            path: path.to_owned(),
            event_limit: event_limit.max(1),
        };
        store.init_schema()?;
        Ok(store)
    }

    /// Creates the tables of a new store, or checks the schema version of an old one.
    fn init_schema(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let txn = self.db.begin_write().db(path)?;
        let is_new = txn.list_tables().db(path)?.next().is_none();
        if is_new {
            create_tables(&txn, path)?;
            txn.open_table(META)
                .db(path)?
                .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                .db(path)?;
            return txn.commit().db(path);
        }
        let found = txn
            .open_table(META)
            .db(path)?
            .get(SCHEMA_VERSION_KEY)
            .db(path)?
            .map(|v| v.value().to_owned());
        match found {
            Some(found) if found == SCHEMA_VERSION => {}
            Some(found) => {
                return Err(StoreError::Incompatible {
                    path: path.clone(),
                    found,
                    expected: SCHEMA_VERSION.to_owned(),
                });
            }
            None => {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    detail: "a redb database without a Bulkhead schema version".to_owned(),
                });
            }
        }
        // Tables added in later releases of the same schema appear here.
        create_tables(&txn, path)?;
        txn.commit().db(path)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A setting (e.g. the trust domain), if set.
    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let meta = txn.open_table(META).db(&self.path)?;
        Ok(meta.get(key).db(&self.path)?.map(|v| v.value().to_owned()))
    }

    /// Sets a setting.
    pub fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().db(&self.path)?;
        txn.open_table(META)
            .db(&self.path)?
            .insert(key, value)
            .db(&self.path)?;
        txn.commit().db(&self.path)
    }
}

fn create_tables(txn: &WriteTransaction, path: &Path) -> Result<(), StoreError> {
    use tables::*;
    txn.open_table(META).db(path)?;
    txn.open_table(COUNTERS).db(path)?;
    txn.open_table(OBJECTS).db(path)?;
    txn.open_table(EVENTS).db(path)?;
    txn.open_table(AUDIT).db(path)?;
    txn.open_table(TOKENS).db(path)?;
    txn.open_table(TOKEN_HASHES).db(path)?;
    txn.open_table(JOIN_TOKENS).db(path)?;
    txn.open_table(JOIN_TOKEN_HASHES).db(path)?;
    txn.open_table(REGISTRATIONS).db(path)?;
    Ok(())
}

/// Sorts redb's open failures into the errors operators can act on.
fn open_error(path: &Path, existed: bool, e: DatabaseError) -> StoreError {
    let path = path.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path },
        DatabaseError::UpgradeRequired(version) => StoreError::Incompatible {
            path,
            found: format!("redb file format {version}"),
            expected: "the file format of redb 4".to_owned(),
        },
        DatabaseError::RepairAborted => StoreError::Corrupt {
            path,
            detail: "the repair after an unclean shutdown did not finish".to_owned(),
        },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Corrupt { path, detail }
        }
        DatabaseError::Storage(StorageError::Io(source)) if existed && is_format_error(&source) => {
            StoreError::Corrupt {
                path,
                detail: source.to_string(),
            }
        }
        DatabaseError::Storage(StorageError::Io(source)) => StoreError::Io { path, source },
        other => StoreError::Database {
            path,
            source: Box::new(other.into()),
        },
    }
}

// A file shorter than redb's header reads as an early EOF rather than as corruption.
fn is_format_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
    )
}
