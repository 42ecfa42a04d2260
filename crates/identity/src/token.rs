//! Join tokens: the bootstrap credential a proxy presents to the CA to get its first SVID.
//!
//! A token is 256 random bits shown to the operator once, as `bhj_` followed by 64
//! lower-case hex characters (the prefix lets secret scanners and people recognise it).
//! The control plane keeps only a [`JoinTokenRecord`]: the SHA-256 of the token, the one
//! workload identity (namespace + service account) it buys, its expiry, and how many times
//! it may still be used. The record serializes with serde; the secret never does.
//!
//! [`redeem`] compares in constant time and checks the secret *before* expiry and use
//! count, so a caller without the secret learns nothing about the token's state.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::ca::{hex_lower, rfc3339};
use crate::spiffe::SpiffeId;

/// What every join token starts with.
pub const TOKEN_PREFIX: &str = "bhj_";
/// Random bytes in a token (256 bits).
const SECRET_BYTES: usize = 32;
/// Length of a token as text.
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 2 * SECRET_BYTES;

/// Why a join token could not be made or redeemed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The presented token is well-formed but is not this record's token.
    #[error("join token does not match")]
    Mismatch,
    /// The presented text is not shaped like a join token at all.
    #[error("malformed join token: expected `bhj_` followed by 64 lower-case hex characters")]
    Malformed,
    /// The token's lifetime is over.
    #[error("join token expired at {expired_at}")]
    Expired {
        /// Its expiry, RFC 3339.
        expired_at: String,
    },
    /// The token has been used as often as it may be.
    #[error("join token already used {uses} of {max_uses} times")]
    UsedUp {
        /// Uses so far.
        uses: u32,
        /// Uses allowed.
        max_uses: u32,
    },
    /// Tokens are bound to one mesh workload identity.
    #[error(
        "{id} is not a workload identity; a join token is bound to \
         spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
    )]
    NotAWorkload {
        /// The ID given.
        id: String,
    },
    /// Zero TTL or zero uses.
    #[error("a join token needs a TTL greater than zero and at least one use")]
    InvalidLimits,
    /// The system random number generator failed.
    #[error("could not generate a join token: the system random number generator failed")]
    Random,
}

/// The secret, shown to the operator once. `Debug` does not print it.
pub struct JoinToken {
    secret: String,
}

impl JoinToken {
    /// The token text (`bhj_…`) to hand to the proxy's operator.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinToken({TOKEN_PREFIX}[redacted])")
    }
}

/// What the control plane stores about a token: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinTokenRecord {
    /// SHA-256 of the token text, lower-case hex: also the key to look the record up by.
    sha256: String,
    /// The identity the token buys.
    #[serde(with = "spiffe_id_text")]
    id: SpiffeId,
    /// Seconds since the Unix epoch.
    created_at: u64,
    /// Seconds since the Unix epoch; the token is refused from this instant on.
    expires_at: u64,
    max_uses: u32,
    uses: u32,
}

/// Makes a token for the workload `id`, valid for `ttl` from `now` and at most `max_uses`
/// redemptions; returns the secret (show it once) and the record (store it).
pub fn generate(
    id: &SpiffeId,
    ttl: Duration,
    max_uses: u32,
    now: SystemTime,
) -> Result<(JoinToken, JoinTokenRecord), TokenError> {
    if id.workload().is_none() {
        return Err(TokenError::NotAWorkload { id: id.to_string() });
    }
    if ttl.is_zero() || max_uses == 0 {
        return Err(TokenError::InvalidLimits);
    }
    let mut random = [0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| TokenError::Random)?;
    let secret = format!("{TOKEN_PREFIX}{}", hex_lower(&random));
    let created_at = unix_seconds(now);
    let record = JoinTokenRecord {
        sha256: hash_text(&secret),
        id: id.clone(),
        created_at,
        expires_at: created_at.saturating_add(ttl.as_secs().max(1)),
        max_uses,
        uses: 0,
    };
    Ok((JoinToken { secret }, record))
}

/// The lookup key of a presented token (the SHA-256 the record stores), after checking its
/// shape; a store finds the record by this, then calls [`redeem`].
pub fn lookup_key(presented: &str) -> Result<String, TokenError> {
    check_shape(presented)?;
    Ok(hash_text(presented))
}

/// Spends one use of `record` if `presented` is its token, it has not expired at `now`
/// and uses remain; returns the identity it buys. Failed attempts do not count as uses.
pub fn redeem(
    record: &mut JoinTokenRecord,
    presented: &str,
    now: SystemTime,
) -> Result<SpiffeId, TokenError> {
    check_shape(presented)?;
    let presented_hash = hash_text(presented);
    verify_slices_are_equal(presented_hash.as_bytes(), record.sha256.as_bytes())
        .map_err(|_| TokenError::Mismatch)?;
    if unix_seconds(now) >= record.expires_at {
        return Err(TokenError::Expired {
            expired_at: rfc3339(record.expires_at()),
        });
    }
    if record.uses >= record.max_uses {
        return Err(TokenError::UsedUp {
            uses: record.uses,
            max_uses: record.max_uses,
        });
    }
    record.uses += 1;
    Ok(record.id.clone())
}

impl JoinTokenRecord {
    /// The identity the token buys.
    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    /// SHA-256 of the token, lower-case hex (the lookup key).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When the token was made.
    pub fn created_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.created_at)
    }

    /// From this instant on the token is refused.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires_at)
    }

    /// Redemptions allowed in total.
    pub fn max_uses(&self) -> u32 {
        self.max_uses
    }

    /// Redemptions so far.
    pub fn uses(&self) -> u32 {
        self.uses
    }

    /// Whether the token can no longer be redeemed at `now` (so a store may delete it).
    pub fn is_spent(&self, now: SystemTime) -> bool {
        self.uses >= self.max_uses || unix_seconds(now) >= self.expires_at
    }
}

fn check_shape(presented: &str) -> Result<(), TokenError> {
    let well_formed = presented.len() == TOKEN_LEN
        && presented.starts_with(TOKEN_PREFIX)
        && presented[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if well_formed {
        Ok(())
    } else {
        Err(TokenError::Malformed)
    }
}

fn hash_text(token: &str) -> String {
    hex_lower(digest(&SHA256, token.as_bytes()).as_ref())
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Serde for a SPIFFE ID as its URI text, validated again on the way in.
mod spiffe_id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::spiffe::SpiffeId;

    pub(super) fn serialize<S: Serializer>(id: &SpiffeId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SpiffeId, D::Error> {
        let text = String::deserialize(d)?;
        SpiffeId::parse(&text).map_err(serde::de::Error::custom)
    }
}
