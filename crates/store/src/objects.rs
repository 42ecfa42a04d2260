//! Resources: reads, and batched writes with optimistic concurrency (docs/control-plane.md,
//! "Writes").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use bulkhead_api::rest::{Change, EventType};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use serde_json::Value;

use crate::log::{self, AuditEntry};
use crate::render;
use crate::tables::{self, AUDIT, COUNTERS, DbResult, EVENTS, OBJECTS, REVISION};
use crate::util::rfc3339;
use crate::{Event, ObjectKey, Store, StoreError};

/// A stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Its key.
    pub key: ObjectKey,
    /// The revision of its last change (also in `metadata.resourceVersion`).
    pub resource_version: u64,
    /// The object, with `metadata.resourceVersion` and `metadata.creationTimestamp` set.
    pub object: Value,
}

/// One operation of a write batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create or update an object (`apiVersion`, `kind`, `metadata`, …); its key comes
    /// from `kind`, `metadata.namespace` and `metadata.name`.
    Put {
        /// The object.
        object: Value,
        /// Write only if the stored object has this resourceVersion (0: does not exist).
        expected_version: Option<u64>,
    },
    /// Delete an object.
    Delete {
        /// Which.
        key: ObjectKey,
        /// Delete only if the stored object has this resourceVersion.
        expected_version: Option<u64>,
    },
}

/// What a write did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// The store revision after the write.
    pub revision: u64,
    /// One entry per op, in order.
    pub results: Vec<Outcome>,
    /// One event per changed object, in revision order.
    pub events: Vec<Event>,
}

/// What a write did to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The object.
    pub key: ObjectKey,
    /// Created, updated, unchanged or deleted.
    pub change: Change,
    /// Its resourceVersion after the change (the previous one for deletes and unchanged).
    pub resource_version: u64,
    /// The stored object before the write.
    pub before: Option<Value>,
    /// The stored object after the write.
    pub after: Option<Value>,
    /// Unified YAML diff of `before` against `after` (empty when unchanged).
    pub diff: String,
}

/// A validated op: its key and, for puts, the normalized object.
struct Prepared {
    key: ObjectKey,
    object: Option<Value>,
    expected_version: Option<u64>,
}

impl Store {
    /// The store revision: the number of changes ever committed.
    pub fn revision(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let counters = txn.open_table(COUNTERS).db(&self.path)?;
        tables::counter(&counters, REVISION, &self.path)
    }

    /// One object.
    pub fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        let objects = txn.open_table(OBJECTS).db(&self.path)?;
        read_object(&objects, key, &self.path)
    }

    /// The revision and the objects of `kind` in `namespace` (each filter optional; a
    /// namespace filter leaves out Namespaces), sorted by key, from one snapshot.
    pub fn list(
        &self,
        kind: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<(u64, Vec<StoredObject>), StoreError> {
        let path = &self.path;
        let txn = self.db.begin_read().db(path)?;
        let revision = tables::counter(&txn.open_table(COUNTERS).db(path)?, REVISION, path)?;
        let objects = txn.open_table(OBJECTS).db(path)?;
        let range = match kind {
            Some(kind) => objects.range((kind, "", "")..).db(path)?,
            None => objects.iter().db(path)?,
        };
        let mut items = Vec::new();
        for item in range {
            let (k, v) = item.db(path)?;
            let key = ObjectKey::from_tuple(k.value());
            if kind.is_some_and(|kind| kind != key.kind) {
                break;
            }
            if namespace.is_some_and(|ns| key.namespace.as_deref() != Some(ns)) {
                continue;
            }
            items.push(decode_object(key, v.value(), path)?);
        }
        Ok((revision, items))
    }

    /// How many objects are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().db(&self.path)?;
        txn.open_table(OBJECTS).db(&self.path)?.len().db(&self.path)
    }

    /// Applies `ops` in one transaction: all of them, or (on any error, or when `dry_run`)
    /// none. Each changed object gets the next revision, an event and an audit record.
    pub fn write(
        &self,
        ops: Vec<WriteOp>,
        actor: &str,
        dry_run: bool,
    ) -> Result<WriteOutcome, StoreError> {
        let prepared = prepare(ops)?;
        let txn = self.db.begin_write().db(&self.path)?;
        let outcome = self.write_in(&txn, &prepared, actor, dry_run)?;
        if dry_run {
            txn.abort().db(&self.path)?;
        } else {
            txn.commit().db(&self.path)?;
        }
        Ok(outcome)
    }

    fn write_in(
        &self,
        txn: &WriteTransaction,
        prepared: &[Prepared],
        actor: &str,
        dry_run: bool,
    ) -> Result<WriteOutcome, StoreError> {
        let path = &self.path;
        let mut objects = txn.open_table(OBJECTS).db(path)?;
        let mut counters = txn.open_table(COUNTERS).db(path)?;
        let stored = prepared
            .iter()
            .map(|p| read_object(&objects, &p.key, path))
            .collect::<Result<Vec<_>, _>>()?;
        check_versions(prepared, &stored)?;

        let mut revision = tables::counter(&counters, REVISION, path)?;
        let now = rfc3339(SystemTime::now());
        let mut results = Vec::with_capacity(prepared.len());
        let mut events = Vec::new();
        for (op, old) in prepared.iter().zip(stored) {
            let (outcome, event) = plan(op, old, &mut revision, &now);
            results.push(outcome);
            events.extend(event);
        }
        if !dry_run && !events.is_empty() {
            let mut event_table = txn.open_table(EVENTS).db(path)?;
            let mut audit = txn.open_table(AUDIT).db(path)?;
            for (outcome, event) in results
                .iter()
                .filter(|o| o.change != Change::Unchanged)
                .zip(&events)
            {
                apply(&mut objects, outcome, path)?;
                log::append_event(&mut event_table, path, event)?;
                let entry = AuditEntry {
                    actor,
                    verb: verb(outcome.change),
                    object: &outcome.key.to_string(),
                    revision: event.revision,
                    diff: outcome.diff.clone(),
                };
                log::append_audit_record(&mut audit, &mut counters, path, entry)?;
            }
            log::trim_events(&mut event_table, self.event_limit, path)?;
            counters.insert(REVISION, revision).db(path)?;
        }
        Ok(WriteOutcome {
            revision,
            results,
            events,
        })
    }
}

/// Derives keys and rejects ops without kind or name, or touching a key twice.
fn prepare(ops: Vec<WriteOp>) -> Result<Vec<Prepared>, StoreError> {
    let mut seen: BTreeMap<ObjectKey, usize> = BTreeMap::new();
    let mut prepared = Vec::with_capacity(ops.len());
    for (index, op) in ops.into_iter().enumerate() {
        let (key, object, expected_version) = match op {
            WriteOp::Put {
                object,
                expected_version,
            } => {
                let key = ObjectKey::of_object(&object)
                    .map_err(|e| StoreError::Invalid(format!("object {index}: {e}")))?;
                let object = render::normalize(&object, &key);
                (key, Some(object), expected_version)
            }
            WriteOp::Delete {
                key,
                expected_version,
            } => {
                if key.kind.is_empty() || key.name.is_empty() {
                    let msg = format!("object {index}: expected a kind and a name to delete");
                    return Err(StoreError::Invalid(msg));
                }
                (key, None, expected_version)
            }
        };
        if let Some(first) = seen.insert(key.clone(), index) {
            return Err(StoreError::Invalid(format!(
                "object {index}: {key} is also object {first}; expected each object once per request"
            )));
        }
        prepared.push(Prepared {
            key,
            object,
            expected_version,
        });
    }
    Ok(prepared)
}

/// Fails on deletes of missing objects, then on every stale `expected_version` at once.
fn check_versions(
    prepared: &[Prepared],
    stored: &[Option<StoredObject>],
) -> Result<(), StoreError> {
    let missing: Vec<String> = prepared
        .iter()
        .zip(stored)
        .filter(|(p, s)| p.object.is_none() && s.is_none())
        .map(|(p, _)| p.key.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::NotFound(missing.join(", ")));
    }
    let conflicts: Vec<String> = prepared
        .iter()
        .zip(stored)
        .filter_map(|(p, s)| {
            let expected = p.expected_version?;
            let found = s.as_ref().map_or(0, |s| s.resource_version);
            (found != expected).then(|| match (found, expected) {
                (0, _) => format!(
                    "{}: not stored, request has resourceVersion {expected}",
                    p.key
                ),
                (_, 0) => format!(
                    "{}: stored resourceVersion {found}, request has 0 (create only)",
                    p.key
                ),
                _ => format!(
                    "{}: stored resourceVersion {found}, request has {expected}",
                    p.key
                ),
            })
        })
        .collect();
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Conflict { conflicts })
    }
}

/// The outcome of one op, and its event when it changes something.
fn plan(
    op: &Prepared,
    old: Option<StoredObject>,
    revision: &mut u64,
    now: &str,
) -> (Outcome, Option<Event>) {
    let key = op.key.clone();
    let old_version = old.as_ref().map_or(0, |o| o.resource_version);
    let before = old.map(|o| o.object);
    if let (Some(new), Some(stored)) = (&op.object, &before)
        && render::content(stored) == *new
    {
        let outcome = Outcome {
            key,
            change: Change::Unchanged,
            resource_version: old_version,
            before: before.clone(),
            after: before,
            diff: String::new(),
        };
        return (outcome, None);
    }
    *revision += 1;
    let after = op.object.as_ref().map(|new| {
        // An update keeps the creation time; only a stored object lacking one gets `now`.
        let created = before.as_ref().and_then(render::creation_timestamp);
        render::stamp(new.clone(), *revision, created.unwrap_or(now))
    });
    let (change, event_type, resource_version, event_object) = match (&before, &after) {
        (None, _) => (Change::Created, EventType::Added, *revision, &after),
        (Some(_), Some(_)) => (Change::Updated, EventType::Modified, *revision, &after),
        (Some(_), None) => (Change::Deleted, EventType::Deleted, old_version, &before),
    };
    let event = Event {
        event_type,
        revision: *revision,
        object: event_object.clone().unwrap_or_default(),
    };
    let diff = render::yaml_diff(&key, old_version, before.as_ref(), after.as_ref());
    let outcome = Outcome {
        key,
        change,
        resource_version,
        before,
        after,
        diff,
    };
    (outcome, Some(event))
}

fn apply(
    objects: &mut Table<'_, (&str, &str, &str), &[u8]>,
    outcome: &Outcome,
    path: &Path,
) -> Result<(), StoreError> {
    let key = outcome.key.as_tuple();
    match &outcome.after {
        Some(object) => {
            let bytes = tables::encode(path, "objects", &outcome.key, object)?;
            objects.insert(key, bytes.as_slice()).db(path)?;
        }
        None => {
            objects.remove(key).db(path)?;
        }
    }
    Ok(())
}

fn verb(change: Change) -> &'static str {
    match change {
        Change::Created => "create",
        Change::Deleted => "delete",
        _ => "update",
    }
}

fn read_object(
    objects: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    key: &ObjectKey,
    path: &Path,
) -> Result<Option<StoredObject>, StoreError> {
    match objects.get(key.as_tuple()).db(path)? {
        Some(bytes) => decode_object(key.clone(), bytes.value(), path).map(Some),
        None => Ok(None),
    }
}

fn decode_object(key: ObjectKey, bytes: &[u8], path: &Path) -> Result<StoredObject, StoreError> {
    let object: Value = tables::decode(path, "objects", &key, bytes)?;
    let resource_version = object
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Record {
            path: path.to_owned(),
            table: "objects",
            key: key.to_string(),
            detail: "expected `metadata.resourceVersion` as a decimal string".to_owned(),
        })?;
    Ok(StoredObject {
        key,
        resource_version,
        object,
    })
}
