//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a subset")]

use bulkhead_store::{ObjectKey, Store, WriteOp};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A fresh store in a temporary directory (kept alive by the returned guard).
pub fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("data/store.redb")).expect("open store");
    (dir, store)
}

pub fn policy(namespace: &str, name: &str, action: &str) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"action": action},
    })
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

pub fn put(object: Value) -> WriteOp {
    WriteOp::Put {
        object,
        expected_version: None,
    }
}

pub fn put_at(object: Value, version: u64) -> WriteOp {
    WriteOp::Put {
        object,
        expected_version: Some(version),
    }
}

pub fn delete(key: &str) -> WriteOp {
    WriteOp::Delete {
        key: key.parse().expect("key"),
        expected_version: None,
    }
}

pub fn key(text: &str) -> ObjectKey {
    text.parse().expect("key")
}
