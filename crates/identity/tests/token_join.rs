//! Join tokens: format, hashing, binding, expiry and use limits with a controlled clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulkhead_identity::SpiffeId;
use bulkhead_identity::token::{self, JoinTokenRecord, TOKEN_PREFIX, TokenError};

const HOUR: Duration = Duration::from_secs(3600);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn web() -> SpiffeId {
    SpiffeId::parse("spiffe://example.org/ns/shop/sa/web").unwrap()
}

#[test]
fn a_token_is_256_random_bits_behind_a_prefix_and_stored_only_as_a_hash() {
    let (secret, record) = token::generate(&web(), HOUR, 1, t0()).unwrap();
    let text = secret.expose_secret();
    assert!(text.starts_with(TOKEN_PREFIX));
    assert_eq!(text.len(), TOKEN_PREFIX.len() + 64);
    assert!(
        text[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(format!("{secret:?}"), "JoinToken(bhj_[redacted])");
    let json = serde_json::to_string(&record).unwrap();
    assert!(
        !json.contains(&text[4..]),
        "the secret must never be stored: {json}"
    );
    assert!(
        json.contains(r#""id":"spiffe://example.org/ns/shop/sa/web""#),
        "{json}"
    );
    assert_eq!(record.sha256(), token::lookup_key(text).unwrap());
    assert_eq!(record.sha256().len(), 64);
    let again: JoinTokenRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(again, record);
    let (other, _) = token::generate(&web(), HOUR, 1, t0()).unwrap();
    assert_ne!(other.expose_secret(), text);
}

#[test]
fn redeem_spends_uses_until_none_remain() {
    let (secret, mut record) = token::generate(&web(), HOUR, 2, t0()).unwrap();
    let s = secret.expose_secret();
    assert_eq!(token::redeem(&mut record, s, t0()).unwrap(), web());
    assert!(!record.is_spent(t0()));
    assert_eq!(
        token::redeem(&mut record, s, t0() + HOUR / 2).unwrap(),
        web()
    );
    assert_eq!(record.uses(), 2);
    assert!(record.is_spent(t0()));
    assert_eq!(
        token::redeem(&mut record, s, t0()),
        Err(TokenError::UsedUp {
            uses: 2,
            max_uses: 2
        })
    );
    assert_eq!(record.uses(), 2, "a refused attempt is not a use");
}

#[test]
fn redeem_refuses_expired_tokens_at_the_expiry_instant() {
    let (secret, mut record) = token::generate(&web(), HOUR, 5, t0()).unwrap();
    let s = secret.expose_secret();
    token::redeem(&mut record, s, t0() + HOUR - Duration::from_secs(1)).unwrap();
    let err = token::redeem(&mut record, s, t0() + HOUR).unwrap_err();
    assert_eq!(
        err.to_string(),
        "join token expired at 2030-01-01T01:00:00Z"
    );
    assert!(record.is_spent(t0() + HOUR));
    assert_eq!(record.expires_at(), t0() + HOUR);
    assert_eq!(record.created_at(), t0());
}

#[test]
fn a_wrong_token_learns_nothing_about_the_record() {
    let (_, mut record) = token::generate(&web(), HOUR, 1, t0()).unwrap();
    let (other, _) = token::generate(&web(), HOUR, 1, t0()).unwrap();
    // Even against an expired, used-up record, a wrong token only hears "does not match".
    let late = t0() + 10 * HOUR;
    let err = token::redeem(&mut record, other.expose_secret(), late).unwrap_err();
    assert_eq!(err, TokenError::Mismatch);
    assert_eq!(err.to_string(), "join token does not match");
    for bad in ["", "bhj_", "bhk_00", &format!("bhj_{}", "A".repeat(64))] {
        let err = token::redeem(&mut record, bad, t0()).unwrap_err();
        assert_eq!(err, TokenError::Malformed, "{bad:?}");
        assert_eq!(token::lookup_key(bad), Err(TokenError::Malformed));
    }
    assert_eq!(record.uses(), 0);
}

#[test]
fn tokens_are_bound_to_a_workload_and_need_limits() {
    let bare = SpiffeId::parse("spiffe://example.org/db").unwrap();
    let err = token::generate(&bare, HOUR, 1, t0()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spiffe://example.org/db is not a workload identity; a join token is bound to \
         spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
    );
    assert_eq!(
        token::generate(&web(), Duration::ZERO, 1, t0()).unwrap_err(),
        TokenError::InvalidLimits
    );
    assert_eq!(
        token::generate(&web(), HOUR, 0, t0()).unwrap_err(),
        TokenError::InvalidLimits
    );
}

#[test]
fn stored_records_reject_unknown_fields_and_invalid_ids() {
    let (_, record) = token::generate(&web(), HOUR, 1, t0()).unwrap();
    let mut value = serde_json::to_value(&record).unwrap();
    value["id"] = "SPIFFE://example.org/ns/a/sa/b".into();
    let err = serde_json::from_value::<JoinTokenRecord>(value.clone()).unwrap_err();
    assert!(
        err.to_string().contains("scheme must be lower-case"),
        "{err}"
    );
    value["id"] = web().as_str().into();
    value["secret"] = "x".into();
    assert!(serde_json::from_value::<JoinTokenRecord>(value).is_err());
}
