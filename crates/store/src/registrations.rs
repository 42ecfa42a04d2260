//! Proxy registrations: where each workload's inbound endpoints are, kept across
//! control-plane restarts (docs/control-plane.md, "Guarantees").

use serde::{Deserialize, Serialize};

use crate::tables::{DbResult, REGISTRATIONS};
use crate::tokens::put_json;
use crate::{Store, StoreError};

/// One proxy's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// `namespace/workload@address[,address…]`, stable across proxy restarts.
    pub instance: String,
    /// `namespace/name` of the workload.
    pub workload: String,
    /// The SPIFFE ID the proxy authenticated with.
    pub identity: String,
    /// Inbound endpoints: `(port, address, protocol)`.
    pub inbound: Vec<(u16, String, String)>,
    /// When it was last heard from (seconds since the Unix epoch).
    pub last_seen_unix: u64,
    /// Whether its watch stream was open when this was written.
    pub connected: bool,
    /// Its certificate's expiry (seconds since the Unix epoch), as it reported it.
    #[serde(default)]
    pub cert_expiry_unix: Option<i64>,
}

impl Store {
    /// Stores (or replaces) a registration.
    pub fn put_registration(&self, reg: &Registration) -> Result<(), StoreError> {
        let path = &self.path;
        let txn = self.db.begin_write().db(path)?;
        {
            let mut table = txn.open_table(REGISTRATIONS).db(path)?;
            put_json(&mut table, "registrations", &reg.instance, reg, path)?;
        }
        txn.commit().db(path)
    }

    /// Every registration, sorted by instance.
    pub fn registrations(&self) -> Result<Vec<Registration>, StoreError> {
        // The table is keyed by instance, so it already iterates in order.
        self.read_all(REGISTRATIONS, "registrations")
    }

    /// Forgets a registration; forgetting an unknown instance is not an error.
    pub fn remove_registration(&self, instance: &str) -> Result<(), StoreError> {
        let path = &self.path;
        let txn = self.db.begin_write().db(path)?;
        txn.open_table(REGISTRATIONS)
            .db(path)?
            .remove(instance)
            .db(path)?;
        txn.commit().db(path)
    }
}
