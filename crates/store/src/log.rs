//! The two logs: watch events (trimmed to the last `event_limit`) and the audit log
//! (append-only, never trimmed).

use std::path::Path;
use std::time::SystemTime;

use bulkhead_api::rest::AuditRecord;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table};

use crate::tables::{self, AUDIT, AUDIT_SEQ, COUNTERS, DbResult, EVENTS, REVISION};
use crate::util::rfc3339;
use crate::{Event, Store, StoreError};

/// The parts of an audit record its writer chooses.
pub(crate) struct AuditEntry<'a> {
    pub(crate) actor: &'a str,
    pub(crate) verb: &'a str,
    pub(crate) object: &'a str,
    pub(crate) revision: u64,
    pub(crate) diff: String,
}

/// Appends an audit record with the next sequence number.
pub(crate) fn append_audit_record(
    audit: &mut Table<'_, u64, &[u8]>,
    counters: &mut Table<'_, &str, u64>,
    path: &Path,
    entry: AuditEntry<'_>,
) -> Result<AuditRecord, StoreError> {
    let seq = tables::counter(counters, AUDIT_SEQ, path)? + 1;
    let record = AuditRecord {
        seq,
        time: rfc3339(SystemTime::now()),
        actor: entry.actor.to_owned(),
        verb: entry.verb.to_owned(),
        object: entry.object.to_owned(),
        revision: entry.revision,
        diff: entry.diff,
    };
    let bytes = tables::encode(path, "audit", &seq, &record)?;
    audit.insert(seq, bytes.as_slice()).db(path)?;
    counters.insert(AUDIT_SEQ, seq).db(path)?;
    Ok(record)
}

/// Appends an event under its revision.
pub(crate) fn append_event(
    events: &mut Table<'_, u64, &[u8]>,
    path: &Path,
    event: &Event,
) -> Result<(), StoreError> {
    let bytes = tables::encode(path, "events", &event.revision, event)?;
    events.insert(event.revision, bytes.as_slice()).db(path)?;
    Ok(())
}

/// Drops the oldest events beyond `limit`.
pub(crate) fn trim_events(
    events: &mut Table<'_, u64, &[u8]>,
    limit: u64,
    path: &Path,
) -> Result<(), StoreError> {
    let excess = events.len().db(path)?.saturating_sub(limit);
    for _ in 0..excess {
        events.pop_first().db(path)?;
    }
    Ok(())
}

impl Store {
    /// Every event after `revision`, oldest first; [`StoreError::Compacted`] when some of
    /// them were trimmed (list again, then watch from the list's revision).
    pub fn events_since(&self, revision: u64) -> Result<Vec<Event>, StoreError> {
        let path = &self.path;
        let txn = self.db.begin_read().db(path)?;
        let current = tables::counter(&txn.open_table(COUNTERS).db(path)?, REVISION, path)?;
        if revision >= current {
            return Ok(Vec::new());
        }
        let events = txn.open_table(EVENTS).db(path)?;
        let first = events.first().db(path)?.map(|(k, _)| k.value());
        // The oldest revision a watch can start from is the one before the oldest event.
        let oldest = first.map_or(current, |f| f - 1);
        if revision < oldest {
            return Err(StoreError::Compacted {
                requested: revision,
                oldest,
            });
        }
        events
            .range(revision + 1..)
            .db(path)?
            .map(|item| {
                let (k, v) = item.db(path)?;
                tables::decode(path, "events", &k.value(), v.value())
            })
            .collect()
    }

    /// Up to `limit` audit records with a sequence number above `since_seq`, in order.
    pub fn audit(&self, since_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let path = &self.path;
        let txn = self.db.begin_read().db(path)?;
        let audit = txn.open_table(AUDIT).db(path)?;
        audit
            .range(since_seq.saturating_add(1)..)
            .db(path)?
            .take(limit)
            .map(|item| {
                let (k, v) = item.db(path)?;
                tables::decode(path, "audit", &k.value(), v.value())
            })
            .collect()
    }

    /// Records an operation that is not a resource change (revision 0, no diff).
    pub fn append_audit(
        &self,
        actor: &str,
        verb: &str,
        object: &str,
    ) -> Result<AuditRecord, StoreError> {
        let path = &self.path;
        let txn = self.db.begin_write().db(path)?;
        let record = {
            let mut audit = txn.open_table(AUDIT).db(path)?;
            let mut counters = txn.open_table(COUNTERS).db(path)?;
            let entry = AuditEntry {
                actor,
                verb,
                object,
                revision: 0,
                diff: String::new(),
            };
            append_audit_record(&mut audit, &mut counters, path, entry)?
        };
        txn.commit().db(path)?;
        Ok(record)
    }
}
