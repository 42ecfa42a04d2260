//! Opening: persistence across reopen, corrupt files, schema versions.

mod common;

use std::time::{Duration, SystemTime};

use bulkhead_api::rest::Role;
use bulkhead_identity::SpiffeId;
use bulkhead_store::{Registration, SCHEMA_VERSION_KEY, Store, StoreError};
use common::{key, namespace, policy, put};

fn registration(instance: &str) -> Registration {
    Registration {
        instance: instance.to_owned(),
        workload: "shop/web".to_owned(),
        identity: "spiffe://cluster.local/ns/shop/sa/web".to_owned(),
        inbound: vec![(8080, "10.0.0.1:8080".to_owned(), "http".to_owned())],
        last_seen_unix: 1_700_000_000,
        connected: true,
        cert_expiry_unix: Some(1_700_003_600),
    }
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/store.redb");
    let secret;
    let join_secret;
    {
        let store = Store::open(&path).unwrap();
        store
            .write(
                vec![put(policy("shop", "deny", "DENY")), put(namespace("shop"))],
                "a",
                false,
            )
            .unwrap();
        store
            .write(vec![put(policy("shop", "deny", "ALLOW"))], "a", false)
            .unwrap();
        secret = store
            .create_token("admin", Role::Admin, "control-plane")
            .unwrap()
            .1;
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap();
        join_secret = store
            .create_join_token(&id, Duration::from_secs(3600), 2, "a", SystemTime::now())
            .unwrap()
            .1;
        store
            .put_registration(&registration("shop/web@10.0.0.1"))
            .unwrap();
        store
            .put_registration(&registration("shop/web@10.0.0.2"))
            .unwrap();
        store.remove_registration("shop/web@10.0.0.2").unwrap();
        store.remove_registration("never/registered").unwrap();
        store.put_meta("trust_domain", "cluster.local").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(store.revision().unwrap(), 3);
    assert_eq!(store.count().unwrap(), 2);
    let stored = store
        .get(&key("AuthorizationPolicy/shop/deny"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.resource_version, 3);
    assert_eq!(store.events_since(0).unwrap().len(), 3);
    assert_eq!(store.audit(0, 100).unwrap().len(), 5);
    assert!(
        matches!(store.authenticate(&secret).unwrap(), bulkhead_store::Authenticated::Valid(t) if t.name == "admin")
    );
    assert_eq!(store.list_join_tokens().unwrap().len(), 1);
    store
        .redeem_join_token(&join_secret, SystemTime::now())
        .unwrap();
    assert_eq!(
        store.registrations().unwrap(),
        [registration("shop/web@10.0.0.1")]
    );
    assert_eq!(
        store.get_meta("trust_domain").unwrap().as_deref(),
        Some("cluster.local")
    );
    assert_eq!(store.get_meta("missing").unwrap(), None);

    // The next change continues the sequences.
    let out = store
        .write(vec![put(namespace("bank"))], "a", false)
        .unwrap();
    assert_eq!(out.revision, 4);
    assert_eq!(store.audit(5, 10).unwrap()[0].seq, 6);
}

#[test]
fn a_file_that_is_not_a_store_is_corrupt_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for (name, garbage) in [
        ("short.redb", b"not a database".to_vec()),
        (
            "long.redb",
            (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect(),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &garbage).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{name}: {err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("expected a redb database"), "{message}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            garbage,
            "{name} must not be reset"
        );
    }
}

#[test]
fn a_damaged_store_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = Store::open(&path).unwrap();
        let many: Vec<_> = (0..200)
            .map(|i| put(policy("shop", &format!("p{i}"), "DENY")))
            .collect();
        store.write(many, "a", false).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    // Flip bytes past the header, where the tables' pages are.
    for b in &mut bytes[len / 4..len / 2] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn another_schema_version_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    Store::open(&path)
        .unwrap()
        .put_meta(SCHEMA_VERSION_KEY, "99")
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    let StoreError::Incompatible {
        found, expected, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (found.as_str(), expected.as_str()),
        ("99", bulkhead_store::SCHEMA_VERSION)
    );
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_second_open_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let _first = Store::open(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}
