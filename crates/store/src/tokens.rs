//! Operator tokens (`bht_…`) and join tokens (`bhj_…`): only their SHA-256 is stored,
//! indexed so a presented token is found by its hash and then compared in constant time.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use bulkhead_api::rest::{JoinTokenInfo, Role, TokenInfo};
use bulkhead_identity::SpiffeId;
use bulkhead_identity::token::{self, JoinTokenRecord, TokenError};
use redb::{ReadableDatabase, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::log::{self, AuditEntry};
use crate::tables::{
    self, AUDIT, COUNTERS, DbResult, JOIN_TOKEN_HASHES, JOIN_TOKENS, TOKEN_HASHES, TOKEN_SERIAL,
    TOKENS,
};
use crate::util::{hex_lower, random_bytes, rfc3339, sha256_hex};
use crate::{JoinTokenRefusal, Store, StoreError};

/// What every operator token starts with.
pub const OPERATOR_TOKEN_PREFIX: &str = "bht_";
const TOKEN_ID_PREFIX: &str = "tok_";
const JOIN_TOKEN_ID_PREFIX: &str = "jt_";
/// Random bytes in a token secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Random bytes in a token id (16 hex characters).
const ID_BYTES: usize = 8;

/// The result of checking a presented operator token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// A live token.
    Valid(TokenInfo),
    /// A token that was revoked.
    Revoked(TokenInfo),
    /// Well-formed, but no such token.
    Unknown,
    /// Not shaped like an operator token.
    Malformed,
}

/// What [`Store::revoke_token`] revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedToken {
    /// An operator token.
    Token(TokenInfo),
    /// A join token.
    JoinToken(JoinTokenInfo),
}

/// An operator token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    /// Creation order, for listing oldest first.
    serial: u64,
    sha256: String,
    info: TokenInfo,
}

/// A join token as stored: the identity crate's record plus what the control plane adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinTokenEntry {
    serial: u64,
    id: String,
    record: JoinTokenRecord,
    revoked: Option<String>,
}

impl JoinTokenEntry {
    fn info(&self) -> JoinTokenInfo {
        JoinTokenInfo {
            id: self.id.clone(),
            identity: self.record.id().to_string(),
            created: rfc3339(self.record.created_at()),
            expires: rfc3339(self.record.expires_at()),
            uses: self.record.uses(),
            max_uses: self.record.max_uses(),
            revoked: self.revoked.clone(),
        }
    }
}

impl Store {
    /// Creates an operator token; returns it and its secret (`bht_` + 64 hex), which is
    /// not stored and cannot be shown again.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        actor: &str,
    ) -> Result<(TokenInfo, String), StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid(
                "expected a non-empty token name".to_owned(),
            ));
        }
        let path = &self.path;
        let secret = format!(
            "{OPERATOR_TOKEN_PREFIX}{}",
            hex_lower(&random_bytes::<SECRET_BYTES>()?)
        );
        let txn = self.db.begin_write().db(path)?;
        let info = {
            let mut tokens = txn.open_table(TOKENS).db(path)?;
            for item in tokens.iter().db(path)? {
                let (k, v) = item.db(path)?;
                let record: TokenRecord = tables::decode(path, "tokens", &k.value(), v.value())?;
                if record.info.name == name && record.info.revoked.is_none() {
                    return Err(StoreError::Duplicate(name.to_owned()));
                }
            }
            let id = new_id(&tokens, TOKEN_ID_PREFIX, path)?;
            let info = TokenInfo {
                id: id.clone(),
                name: name.to_owned(),
                role,
                created: rfc3339(SystemTime::now()),
                revoked: None,
            };
            let record = TokenRecord {
                serial: next_serial(&txn, path)?,
                sha256: sha256_hex(&secret),
                info: info.clone(),
            };
            put_json(&mut tokens, "tokens", &id, &record, path)?;
            let mut hashes = txn.open_table(TOKEN_HASHES).db(path)?;
            hashes
                .insert(record.sha256.as_str(), id.as_str())
                .db(path)?;
            info
        };
        audit_in(
            &txn,
            path,
            actor,
            "token.create",
            &format!("{} ({name})", info.id),
        )?;
        txn.commit().db(path)?;
        Ok((info, secret))
    }

    /// Checks a presented operator token.
    pub fn authenticate(&self, presented: &str) -> Result<Authenticated, StoreError> {
        if !is_operator_token(presented) {
            return Ok(Authenticated::Malformed);
        }
        let path = &self.path;
        let hash = sha256_hex(presented);
        let txn = self.db.begin_read().db(path)?;
        let hashes = txn.open_table(TOKEN_HASHES).db(path)?;
        let Some(id) = hashes
            .get(hash.as_str())
            .db(path)?
            .map(|v| v.value().to_owned())
        else {
            return Ok(Authenticated::Unknown);
        };
        let tokens = txn.open_table(TOKENS).db(path)?;
        let Some(bytes) = tokens.get(id.as_str()).db(path)? else {
            return Ok(Authenticated::Unknown);
        };
        let record: TokenRecord = tables::decode(path, "tokens", &id, bytes.value())?;
        // The index lookup already matched the hash; comparing the record's own copy in
        // constant time guards against a stale or tampered index entry without a timing leak.
        if verify_slices_are_equal(record.sha256.as_bytes(), hash.as_bytes()).is_err() {
            return Ok(Authenticated::Unknown);
        }
        Ok(match record.info.revoked {
            Some(_) => Authenticated::Revoked(record.info),
            None => Authenticated::Valid(record.info),
        })
    }

    /// Every operator token, revoked ones included, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut records: Vec<TokenRecord> = self.read_all(TOKENS, "tokens")?;
        records.sort_by_key(|r| r.serial);
        Ok(records.into_iter().map(|r| r.info).collect())
    }

    /// Revokes an operator (`tok_…`) or join (`jt_…`) token; revoking twice keeps the
    /// first revocation time and writes no second audit record.
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<RevokedToken, StoreError> {
        let path = &self.path;
        let txn = self.db.begin_write().db(path)?;
        let now = rfc3339(SystemTime::now());
        let revoked = if id.starts_with(TOKEN_ID_PREFIX) {
            let mut tokens = txn.open_table(TOKENS).db(path)?;
            let mut record: TokenRecord = get_json(&tokens, "tokens", id, path)?
                .ok_or_else(|| StoreError::NotFound(format!("token `{id}`")))?;
            if record.info.revoked.is_some() {
                return Ok(RevokedToken::Token(record.info));
            }
            record.info.revoked = Some(now);
            put_json(&mut tokens, "tokens", id, &record, path)?;
            let object = format!("{id} ({})", record.info.name);
            audit_in(&txn, path, actor, "token.revoke", &object)?;
            RevokedToken::Token(record.info)
        } else if id.starts_with(JOIN_TOKEN_ID_PREFIX) {
            let mut tokens = txn.open_table(JOIN_TOKENS).db(path)?;
            let mut entry: JoinTokenEntry = get_json(&tokens, "join_tokens", id, path)?
                .ok_or_else(|| StoreError::NotFound(format!("join token `{id}`")))?;
            if entry.revoked.is_some() {
                return Ok(RevokedToken::JoinToken(entry.info()));
            }
            entry.revoked = Some(now);
            put_json(&mut tokens, "join_tokens", id, &entry, path)?;
            let object = format!("{id} ({})", entry.record.id());
            audit_in(&txn, path, actor, "jointoken.revoke", &object)?;
            RevokedToken::JoinToken(entry.info())
        } else {
            return Err(StoreError::NotFound(format!(
                "token `{id}` (expected an id starting with `tok_` or `jt_`)"
            )));
        };
        txn.commit().db(path)?;
        Ok(revoked)
    }

    /// Creates a join token for the workload identity `id`; returns it and its secret.
    pub fn create_join_token(
        &self,
        id: &SpiffeId,
        ttl: Duration,
        max_uses: u32,
        actor: &str,
        now: SystemTime,
    ) -> Result<(JoinTokenInfo, String), StoreError> {
        let path = &self.path;
        let (secret, record) = token::generate(id, ttl, max_uses, now).map_err(|e| match e {
            TokenError::Random => StoreError::Random,
            other => StoreError::JoinTokenParams(other),
        })?;
        let txn = self.db.begin_write().db(path)?;
        let info = {
            let mut tokens = txn.open_table(JOIN_TOKENS).db(path)?;
            let token_id = new_id(&tokens, JOIN_TOKEN_ID_PREFIX, path)?;
            let entry = JoinTokenEntry {
                serial: next_serial(&txn, path)?,
                id: token_id.clone(),
                record,
                revoked: None,
            };
            put_json(&mut tokens, "join_tokens", &token_id, &entry, path)?;
            let mut hashes = txn.open_table(JOIN_TOKEN_HASHES).db(path)?;
            hashes
                .insert(entry.record.sha256(), token_id.as_str())
                .db(path)?;
            entry.info()
        };
        let object = format!("{} ({id})", info.id);
        audit_in(&txn, path, actor, "jointoken.create", &object)?;
        txn.commit().db(path)?;
        Ok((info, secret.expose_secret().to_owned()))
    }

    /// Spends one use of a join token and returns the identity it buys; a refused token
    /// is left as it was.
    pub fn redeem_join_token(
        &self,
        presented: &str,
        now: SystemTime,
    ) -> Result<SpiffeId, StoreError> {
        let path = &self.path;
        let refuse = |r| Err(StoreError::JoinToken(r));
        let Ok(hash) = token::lookup_key(presented) else {
            return refuse(JoinTokenRefusal::Malformed);
        };
        let txn = self.db.begin_write().db(path)?;
        let identity = {
            let hashes = txn.open_table(JOIN_TOKEN_HASHES).db(path)?;
            let Some(id) = hashes
                .get(hash.as_str())
                .db(path)?
                .map(|v| v.value().to_owned())
            else {
                return refuse(JoinTokenRefusal::Unknown);
            };
            let mut tokens = txn.open_table(JOIN_TOKENS).db(path)?;
            let Some(mut entry) = get_json::<JoinTokenEntry>(&tokens, "join_tokens", &id, path)?
            else {
                return refuse(JoinTokenRefusal::Unknown);
            };
            if let Some(revoked) = entry.revoked {
                return refuse(JoinTokenRefusal::Revoked { id, revoked });
            }
            let identity = token::redeem(&mut entry.record, presented, now)
                .or_else(|e| refuse(refusal(e, &id)))?;
            put_json(&mut tokens, "join_tokens", &id, &entry, path)?;
            identity
        };
        txn.commit().db(path)?;
        Ok(identity)
    }

    /// Every join token, revoked and spent ones included, oldest first.
    pub fn list_join_tokens(&self) -> Result<Vec<JoinTokenInfo>, StoreError> {
        let mut entries: Vec<JoinTokenEntry> = self.read_all(JOIN_TOKENS, "join_tokens")?;
        entries.sort_by_key(|e| e.serial);
        Ok(entries.iter().map(JoinTokenEntry::info).collect())
    }

    /// Every record of a `&str`-keyed JSON table.
    pub(crate) fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        table: redb::TableDefinition<'_, &str, &[u8]>,
        name: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let path = &self.path;
        let txn = self.db.begin_read().db(path)?;
        let table = txn.open_table(table).db(path)?;
        table
            .iter()
            .db(path)?
            .map(|item| {
                let (k, v) = item.db(path)?;
                tables::decode(path, name, &k.value(), v.value())
            })
            .collect()
    }
}

fn refusal(e: TokenError, id: &str) -> JoinTokenRefusal {
    let id = id.to_owned();
    match e {
        TokenError::Malformed => JoinTokenRefusal::Malformed,
        TokenError::Expired { expired_at } => JoinTokenRefusal::Expired { id, expired_at },
        TokenError::UsedUp { uses, max_uses } => JoinTokenRefusal::UsedUp { id, uses, max_uses },
        _ => JoinTokenRefusal::Unknown,
    }
}

fn is_operator_token(text: &str) -> bool {
    text.strip_prefix(OPERATOR_TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 2 * SECRET_BYTES && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A fresh random id with `prefix`, not yet used in `table`.
fn new_id(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    path: &Path,
) -> Result<String, StoreError> {
    loop {
        let id = format!("{prefix}{}", hex_lower(&random_bytes::<ID_BYTES>()?));
        if table.get(id.as_str()).db(path)?.is_none() {
            return Ok(id);
        }
    }
}

fn next_serial(txn: &WriteTransaction, path: &Path) -> Result<u64, StoreError> {
    let mut counters = txn.open_table(COUNTERS).db(path)?;
    let serial = tables::counter(&counters, TOKEN_SERIAL, path)? + 1;
    counters.insert(TOKEN_SERIAL, serial).db(path)?;
    Ok(serial)
}

fn audit_in(
    txn: &WriteTransaction,
    path: &Path,
    actor: &str,
    verb: &str,
    object: &str,
) -> Result<(), StoreError> {
    let mut audit = txn.open_table(AUDIT).db(path)?;
    let mut counters = txn.open_table(COUNTERS).db(path)?;
    let entry = AuditEntry {
        actor,
        verb,
        object,
        revision: 0,
        diff: String::new(),
    };
    log::append_audit_record(&mut audit, &mut counters, path, entry)?;
    Ok(())
}

fn get_json<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
    path: &Path,
) -> Result<Option<T>, StoreError> {
    match table.get(key).db(path)? {
        Some(bytes) => tables::decode(path, name, &key, bytes.value()).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn put_json<T: Serialize>(
    table: &mut Table<'_, &str, &[u8]>,
    name: &'static str,
    key: &str,
    value: &T,
    path: &Path,
) -> Result<(), StoreError> {
    let bytes = tables::encode(path, name, &key, value)?;
    table.insert(key, bytes.as_slice()).db(path)?;
    Ok(())
}
