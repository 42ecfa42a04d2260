//! Resource writes and reads: revisions, resourceVersions, concurrency, dry runs.

mod common;

use bulkhead_api::rest::{Change, EventType};
use bulkhead_store::{ObjectKey, StoreError, WriteOp};
use common::{delete, key, namespace, policy, put, put_at, store};
use serde_json::json;

#[test]
fn create_update_unchanged_delete() {
    let (_dir, store) = store();
    assert_eq!(store.revision().unwrap(), 0);

    let out = store
        .write(vec![put(policy("shop", "deny", "DENY"))], "token:ci", false)
        .unwrap();
    assert_eq!(out.revision, 1);
    assert_eq!(out.results[0].change, Change::Created);
    assert_eq!(out.results[0].resource_version, 1);
    let stored = store
        .get(&key("AuthorizationPolicy/shop/deny"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.resource_version, 1);
    assert_eq!(stored.object["metadata"]["resourceVersion"], json!("1"));
    let created = stored.object["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");

    let out = store
        .write(vec![put(policy("shop", "deny", "DENY"))], "token:ci", false)
        .unwrap();
    assert_eq!(out.results[0].change, Change::Unchanged);
    assert_eq!(out.results[0].resource_version, 1);
    assert!(out.results[0].diff.is_empty());
    assert!(out.events.is_empty());
    assert_eq!(store.revision().unwrap(), 1);

    let out = store
        .write(
            vec![put(policy("shop", "deny", "ALLOW"))],
            "token:ci",
            false,
        )
        .unwrap();
    assert_eq!(out.results[0].change, Change::Updated);
    assert_eq!(out.revision, 2);
    let stored = store
        .get(&key("AuthorizationPolicy/shop/deny"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.object["metadata"]["resourceVersion"], json!("2"));
    assert_eq!(
        stored.object["metadata"]["creationTimestamp"],
        json!(created)
    );
    assert_eq!(stored.object["spec"]["action"], json!("ALLOW"));

    let out = store
        .write(
            vec![delete("AuthorizationPolicy/shop/deny")],
            "token:ci",
            false,
        )
        .unwrap();
    assert_eq!(out.results[0].change, Change::Deleted);
    assert_eq!(out.results[0].resource_version, 2);
    assert_eq!(out.revision, 3);
    assert_eq!(out.events[0].event_type, EventType::Deleted);
    assert_eq!(out.events[0].object["spec"]["action"], json!("ALLOW"));
    assert!(
        store
            .get(&key("AuthorizationPolicy/shop/deny"))
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count().unwrap(), 0);
}

#[test]
fn server_fields_are_ignored_and_namespace_defaults() {
    let (_dir, store) = store();
    let mut object = policy("default", "p", "DENY");
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let out = store.write(vec![put(object.clone())], "a", false).unwrap();
    assert_eq!(out.results[0].key, key("AuthorizationPolicy/default/p"));
    assert_eq!(
        out.results[0].after.as_ref().unwrap()["metadata"]["namespace"],
        json!("default")
    );

    // Written out explicitly, or with stale server fields, it is the same object.
    let mut again = policy("default", "p", "DENY");
    again["metadata"]["resourceVersion"] = json!("77");
    again["metadata"]["uid"] = json!("abc");
    again["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    let out = store.write(vec![put(again.clone())], "a", false).unwrap();
    assert_eq!(out.results[0].change, Change::Unchanged);
    let out = store
        .write(vec![put(policy("default", "p", "DENY"))], "a", false)
        .unwrap();
    assert_eq!(out.results[0].change, Change::Unchanged);

    // A batch naming one object twice is refused, naming the second mention.
    let out = store.write(vec![put(again), put(object)], "a", false);
    assert!(
        matches!(out, Err(StoreError::Invalid(ref m)) if m.contains("object 1")),
        "{out:?}"
    );
}

#[test]
fn invalid_objects_name_the_op() {
    let (_dir, store) = store();
    let ops = vec![
        put(namespace("shop")),
        put(json!({"kind": "Service", "metadata": {}})),
    ];
    let err = store.write(ops, "a", false).unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("object 1") && m.contains("metadata.name")),
        "{err}"
    );
    let err = store
        .write(vec![put(json!({"metadata": {"name": "x"}}))], "a", false)
        .unwrap_err();
    assert!(err.to_string().contains("object 0"), "{err}");
    assert_eq!(store.revision().unwrap(), 0);
}

#[test]
fn list_filters_and_sorts() {
    let (_dir, store) = store();
    let ops = vec![
        put(policy("shop", "b", "DENY")),
        put(namespace("shop")),
        put(policy("bank", "z", "DENY")),
        put(policy("shop", "a", "DENY")),
        put(namespace("bank")),
        put(json!({"kind": "Service", "metadata": {"name": "web", "namespace": "shop"}})),
    ];
    store.write(ops, "a", false).unwrap();
    let names = |items: Vec<bulkhead_store::StoredObject>| {
        items
            .into_iter()
            .map(|o| o.key.to_string())
            .collect::<Vec<_>>()
    };
    let (revision, all) = store.list(None, None).unwrap();
    assert_eq!(revision, 6);
    assert_eq!(
        names(all),
        [
            "AuthorizationPolicy/bank/z",
            "AuthorizationPolicy/shop/a",
            "AuthorizationPolicy/shop/b",
            "Namespace/bank",
            "Namespace/shop",
            "Service/shop/web",
        ]
    );
    let (_, policies) = store.list(Some("AuthorizationPolicy"), None).unwrap();
    assert_eq!(policies.len(), 3);
    let (_, shop) = store.list(None, Some("shop")).unwrap();
    assert_eq!(
        names(shop),
        [
            "AuthorizationPolicy/shop/a",
            "AuthorizationPolicy/shop/b",
            "Service/shop/web"
        ]
    );
    let (_, namespaces) = store.list(Some("Namespace"), None).unwrap();
    assert_eq!(names(namespaces), ["Namespace/bank", "Namespace/shop"]);
    let (_, none) = store.list(Some("Namespac"), None).unwrap();
    assert!(none.is_empty());
    assert_eq!(store.count().unwrap(), 6);
}

#[test]
fn stale_version_rejects_the_whole_batch() {
    let (_dir, store) = store();
    store
        .write(
            vec![
                put(policy("shop", "deny", "DENY")),
                put(policy("shop", "b", "DENY")),
            ],
            "a",
            false,
        )
        .unwrap();
    store
        .write(vec![put(policy("shop", "deny", "ALLOW"))], "a", false)
        .unwrap();
    let before = store.list(None, None).unwrap();

    let ops = vec![
        put(policy("shop", "new", "DENY")),
        put_at(policy("shop", "deny", "AUDIT"), 1),
        put_at(policy("shop", "b", "AUDIT"), 0),
    ];
    let err = store.write(ops, "a", false).unwrap_err();
    let StoreError::Conflict { conflicts } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        conflicts,
        &[
            "AuthorizationPolicy/shop/deny: stored resourceVersion 3, request has 1".to_owned(),
            "AuthorizationPolicy/shop/b: stored resourceVersion 2, request has 0 (create only)"
                .to_owned(),
        ]
    );
    assert_eq!(store.list(None, None).unwrap(), before);
    assert_eq!(store.audit(0, 100).unwrap().len(), 3);

    // The right version, and 0 for a new object, go through.
    let ops = vec![
        put_at(policy("shop", "deny", "AUDIT"), 3),
        put_at(policy("shop", "c", "DENY"), 0),
    ];
    let out = store.write(ops, "a", false).unwrap();
    assert_eq!(out.revision, 5);
    let err = store
        .write(vec![put_at(policy("shop", "c", "ALLOW"), 0)], "a", false)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = store
        .write(
            vec![WriteOp::Delete {
                key: key("AuthorizationPolicy/shop/c"),
                expected_version: Some(4),
            }],
            "a",
            false,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stored resourceVersion 5, request has 4"),
        "{err}"
    );
}

#[test]
fn deleting_a_missing_object_is_not_found() {
    let (_dir, store) = store();
    store
        .write(vec![put(namespace("shop"))], "a", false)
        .unwrap();
    let err = store
        .write(
            vec![delete("Namespace/shop"), delete("Service/shop/web")],
            "a",
            false,
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m == "Service/shop/web"),
        "{err}"
    );
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn dry_run_reports_the_same_outcome_and_writes_nothing() {
    let (_dir, store) = store();
    store
        .write(vec![put(policy("shop", "deny", "DENY"))], "a", false)
        .unwrap();
    let ops = || {
        vec![
            put(policy("shop", "deny", "ALLOW")),
            put(namespace("shop")),
            delete("AuthorizationPolicy/shop/deny"),
        ]
    };
    let err = store.write(ops(), "a", true).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));

    let ops = || vec![put(policy("shop", "deny", "ALLOW")), put(namespace("shop"))];
    let dry = store.write(ops(), "a", true).unwrap();
    assert_eq!(store.revision().unwrap(), 1);
    assert_eq!(store.count().unwrap(), 1);
    assert_eq!(store.audit(0, 10).unwrap().len(), 1);
    assert!(store.events_since(1).unwrap().is_empty());

    let real = store.write(ops(), "a", false).unwrap();
    assert_eq!(dry.revision, real.revision);
    assert_eq!(dry.results.len(), real.results.len());
    for (d, r) in dry.results.iter().zip(&real.results) {
        assert_eq!(
            (&d.key, d.change, d.resource_version),
            (&r.key, r.change, r.resource_version)
        );
        assert_eq!(d.diff, r.diff);
        assert_eq!(d.before, r.before);
    }
    assert_eq!(dry.events.len(), 2);
    assert_eq!(store.events_since(1).unwrap().len(), 2);
}

#[test]
fn events_since_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = bulkhead_store::Store::with_event_limit(&dir.path().join("s.redb"), 3).unwrap();
    assert!(store.events_since(0).unwrap().is_empty());
    for i in 0..5 {
        store
            .write(
                vec![put(policy("shop", &format!("p{i}"), "DENY"))],
                "a",
                false,
            )
            .unwrap();
    }
    let events = store.events_since(2).unwrap();
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert!(events.iter().all(|e| e.event_type == EventType::Added));
    assert_eq!(events[0].object["metadata"]["name"], json!("p2"));
    assert!(store.events_since(5).unwrap().is_empty());
    assert!(store.events_since(9).unwrap().is_empty());
    let err = store.events_since(1).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Compacted {
                requested: 1,
                oldest: 2
            }
        ),
        "{err}"
    );

    store
        .write(vec![put(policy("shop", "p0", "ALLOW"))], "a", false)
        .unwrap();
    let events = store.events_since(4).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type, EventType::Modified);
    assert!(matches!(
        store.events_since(2),
        Err(StoreError::Compacted { oldest: 3, .. })
    ));
}

#[test]
fn audit_has_every_change_in_order_with_diffs() {
    let (_dir, store) = store();
    store
        .write(
            vec![put(policy("shop", "deny", "DENY")), put(namespace("shop"))],
            "token:ci",
            false,
        )
        .unwrap();
    store
        .write(vec![put(policy("shop", "deny", "DENY"))], "token:ci", false)
        .unwrap();
    store
        .write(
            vec![put(policy("shop", "deny", "ALLOW"))],
            "token:bob",
            false,
        )
        .unwrap();
    store
        .append_audit("token:admin", "token.create", "tok_1 (x)")
        .unwrap();
    store
        .write(vec![delete("Namespace/shop")], "token:ci", false)
        .unwrap();

    let audit = store.audit(0, 100).unwrap();
    assert_eq!(
        audit.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let verbs: Vec<_> = audit
        .iter()
        .map(|r| (r.verb.as_str(), r.object.as_str(), r.revision))
        .collect();
    assert_eq!(
        verbs,
        [
            ("create", "AuthorizationPolicy/shop/deny", 1),
            ("create", "Namespace/shop", 2),
            ("update", "AuthorizationPolicy/shop/deny", 3),
            ("token.create", "tok_1 (x)", 0),
            ("delete", "Namespace/shop", 4),
        ]
    );
    assert_eq!(audit[2].actor, "token:bob");
    let update = &audit[2].diff;
    assert!(update.starts_with("--- AuthorizationPolicy/shop/deny (resourceVersion 1)\n+++ AuthorizationPolicy/shop/deny\n"), "{update}");
    assert!(
        update.contains("-  action: DENY\n+  action: ALLOW\n"),
        "{update}"
    );
    assert!(
        !update.contains("resourceVersion:") && !update.contains("creationTimestamp"),
        "{update}"
    );
    assert!(
        audit[0]
            .diff
            .contains("--- AuthorizationPolicy/shop/deny (resourceVersion 0)")
    );
    assert!(audit[0].diff.contains("+kind: AuthorizationPolicy"));
    assert!(
        audit[4].diff.contains("-kind: Namespace"),
        "{}",
        audit[4].diff
    );
    assert!(audit[3].diff.is_empty());
    assert_eq!(store.audit(3, 1).unwrap()[0].seq, 4);
    assert!(store.audit(5, 10).unwrap().is_empty());
}

#[test]
fn object_key_display() {
    assert_eq!(
        ObjectKey::new("Namespace", None, "shop").to_string(),
        "Namespace/shop"
    );
    assert_eq!(
        ObjectKey::new("Service", Some("shop"), "web").to_string(),
        "Service/shop/web"
    );
    assert!("Service//web".parse::<ObjectKey>().is_err());
    assert!("Service".parse::<ObjectKey>().is_err());
    assert!("a/b/c/d".parse::<ObjectKey>().is_err());
    let err =
        ObjectKey::of_object(&json!({"kind": "Service", "metadata": {"name": "a/b"}})).unwrap_err();
    assert!(err.contains("without `/`"), "{err}");
    let ns = ObjectKey::of_object(
        &json!({"kind": "Namespace", "metadata": {"name": "x", "namespace": "y"}}),
    )
    .unwrap();
    assert_eq!(ns.namespace, None);
}
