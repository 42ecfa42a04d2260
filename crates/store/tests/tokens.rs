//! Operator tokens and join tokens.

mod common;

use std::time::{Duration, SystemTime};

use bulkhead_api::rest::Role;
use bulkhead_identity::SpiffeId;
use bulkhead_store::{Authenticated, JoinTokenRefusal, RevokedToken, StoreError};
use common::store;

#[test]
fn operator_tokens() {
    let (_dir, store) = store();
    let (info, secret) = store
        .create_token("ci", Role::Editor, "token:admin")
        .unwrap();
    assert!(
        info.id.starts_with("tok_") && info.id.len() == 20,
        "{}",
        info.id
    );
    assert!(secret.starts_with("bht_") && secret.len() == 68);
    assert!(
        secret[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(info.role, Role::Editor);

    assert_eq!(
        store.authenticate(&secret).unwrap(),
        Authenticated::Valid(info.clone())
    );
    let mut wrong = secret.clone();
    wrong.replace_range(10..11, if &secret[10..11] == "0" { "1" } else { "0" });
    assert_eq!(store.authenticate(&wrong).unwrap(), Authenticated::Unknown);
    for malformed in [
        "",
        "bht_",
        "bht_XYZ",
        &secret.to_uppercase(),
        &format!("{secret}0"),
        &secret.replace("bht_", "bhj_"),
    ] {
        assert_eq!(
            store.authenticate(malformed).unwrap(),
            Authenticated::Malformed,
            "{malformed}"
        );
    }

    let err = store
        .create_token("ci", Role::Viewer, "token:admin")
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Duplicate(n) if n == "ci"),
        "{err}"
    );
    assert!(matches!(
        store.create_token(" ", Role::Viewer, "a"),
        Err(StoreError::Invalid(_))
    ));

    let RevokedToken::Token(revoked) = store.revoke_token(&info.id, "token:admin").unwrap() else {
        panic!("expected an operator token");
    };
    assert!(revoked.revoked.is_some());
    assert_eq!(
        store.authenticate(&secret).unwrap(),
        Authenticated::Revoked(revoked.clone())
    );
    // Revoking again changes nothing; the name is free again.
    assert!(
        matches!(store.revoke_token(&info.id, "a").unwrap(), RevokedToken::Token(t) if t == revoked)
    );
    let (second, _) = store
        .create_token("ci", Role::Viewer, "token:admin")
        .unwrap();

    let err = store.revoke_token("tok_0000000000000000", "a").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(matches!(
        store.revoke_token("nonsense", "a"),
        Err(StoreError::NotFound(_))
    ));

    let listed = store.list_tokens().unwrap();
    assert_eq!(listed, [revoked, second]);
    let audit: Vec<_> = store
        .audit(0, 10)
        .unwrap()
        .into_iter()
        .map(|r| (r.verb, r.revision))
        .collect();
    assert_eq!(
        audit,
        [
            ("token.create".into(), 0),
            ("token.revoke".into(), 0),
            ("token.create".into(), 0)
        ]
    );
}

fn web() -> SpiffeId {
    SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap()
}

fn refusal(err: StoreError) -> JoinTokenRefusal {
    match err {
        StoreError::JoinToken(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn join_tokens_are_spent() {
    let (_dir, store) = store();
    let now = SystemTime::now();
    let (info, secret) = store
        .create_join_token(&web(), Duration::from_secs(3600), 2, "token:admin", now)
        .unwrap();
    assert!(info.id.starts_with("jt_") && info.id.len() == 19);
    assert!(secret.starts_with("bhj_"));
    assert_eq!((info.uses, info.max_uses), (0, 2));
    assert_eq!(info.identity, web().to_string());

    assert_eq!(store.redeem_join_token(&secret, now).unwrap(), web());
    assert_eq!(store.redeem_join_token(&secret, now).unwrap(), web());
    let r = refusal(store.redeem_join_token(&secret, now).unwrap_err());
    assert_eq!(
        r,
        JoinTokenRefusal::UsedUp {
            id: info.id.clone(),
            uses: 2,
            max_uses: 2
        }
    );
    assert!(r.to_string().contains("used up"));
    assert_eq!(store.list_join_tokens().unwrap()[0].uses, 2);
}

#[test]
fn join_token_refusals() {
    let (_dir, store) = store();
    let now = SystemTime::now();
    let (_, expiring) = store
        .create_join_token(&web(), Duration::from_secs(60), 1, "a", now)
        .unwrap();
    let (revoked, revoked_secret) = store
        .create_join_token(&web(), Duration::from_secs(60), 1, "a", now)
        .unwrap();

    let later = now + Duration::from_secs(61);
    let r = refusal(store.redeem_join_token(&expiring, later).unwrap_err());
    assert!(matches!(r, JoinTokenRefusal::Expired { .. }), "{r}");
    assert_eq!(
        store.list_join_tokens().unwrap()[0].uses,
        0,
        "a refusal spends nothing"
    );

    let RevokedToken::JoinToken(info) = store.revoke_token(&revoked.id, "a").unwrap() else {
        panic!("expected a join token");
    };
    assert!(info.revoked.is_some());
    let r = refusal(store.redeem_join_token(&revoked_secret, now).unwrap_err());
    assert!(matches!(r, JoinTokenRefusal::Revoked { .. }), "{r}");

    let unknown = format!("bhj_{}", "0".repeat(64));
    assert_eq!(
        refusal(store.redeem_join_token(&unknown, now).unwrap_err()),
        JoinTokenRefusal::Unknown
    );
    assert_eq!(
        refusal(store.redeem_join_token("bhj_nope", now).unwrap_err()),
        JoinTokenRefusal::Malformed
    );

    let td = SpiffeId::parse("spiffe://cluster.local").unwrap();
    let err = store
        .create_join_token(&td, Duration::from_secs(60), 1, "a", now)
        .unwrap_err();
    assert!(matches!(err, StoreError::JoinTokenParams(_)), "{err}");
    assert!(
        store
            .create_join_token(&web(), Duration::ZERO, 1, "a", now)
            .is_err()
    );

    let listed = store.list_join_tokens().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, revoked.id);
    let verbs: Vec<_> = store
        .audit(0, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.verb)
        .collect();
    assert_eq!(
        verbs,
        ["jointoken.create", "jointoken.create", "jointoken.revoke"]
    );
}
