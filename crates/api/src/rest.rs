//! JSON bodies of the operator REST API (`/api/v1/...`, docs/control-plane.md lists the
//! routes). Field names are camelCase on the wire; times are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An operator token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: resources, watch, audit, proxies, status, metrics.
    Viewer,
    /// Viewer, plus apply and delete resources.
    Editor,
    /// Everything, including tokens.
    Admin,
}

impl Role {
    /// The role as written in tokens and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`, expected one of `admin`, `editor`, `viewer`"
            )),
        }
    }
}

/// What a write did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The object did not exist.
    Created,
    /// The object existed with other content.
    Updated,
    /// The object existed with the same content; nothing was written.
    Unchanged,
    /// The object was removed.
    Deleted,
}

/// One object's outcome in an apply, delete or diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    /// Kind, e.g. `AuthorizationPolicy`.
    pub kind: String,
    /// Namespace; absent for Namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What happened (or, for dry runs and diffs, what would happen).
    pub change: Change,
    /// The object's resourceVersion after the change (the previous one for deletes and
    /// unchanged objects; 0 in dry runs of creations).
    pub resource_version: u64,
    /// Unified diff of the stored object (`---`) against the new one (`+++`), as YAML.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// Response of `POST /api/v1/apply`, `POST /api/v1/delete` and `POST /api/v1/diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResponse {
    /// The store revision after the write (unchanged for dry runs and diffs).
    pub revision: u64,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// One entry per object in the request, in request order.
    pub results: Vec<ObjectResult>,
}

/// Response of `GET /api/v1/resources` (a list) or of a single-object GET (`items` of one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectList {
    /// The store revision the list was read at (watch from here to follow changes).
    pub revision: u64,
    /// Stored objects, sorted by kind, namespace, name; `metadata.resourceVersion` set.
    pub items: Vec<Value>,
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// An object was created.
    Added,
    /// An object was updated.
    Modified,
    /// An object was deleted (`object` is its last state).
    Deleted,
}

/// One line of `GET /api/v1/watch` (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The store revision of the change.
    pub revision: u64,
    /// The object (after the change; before it for deletes).
    pub object: Value,
}

/// One audit log record: a change, or a token operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who: `token:<name>` (`<id>`), or `control-plane` for the server's own changes.
    pub actor: String,
    /// `create`, `update`, `delete`, `token.create`, `token.revoke`, `jointoken.create`,
    /// `jointoken.revoke`.
    pub verb: String,
    /// The object, as `Kind/namespace/name` (`Kind/name` for Namespaces), or the token.
    pub object: String,
    /// The store revision of a resource change; 0 for token operations.
    pub revision: u64,
    /// Unified YAML diff of the change (empty for token operations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// Response of `GET /api/v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    /// Records in `seq` order.
    pub items: Vec<AuditRecord>,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    /// A label for people (`ci`, `alice`); unique among live tokens.
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// An operator token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Stable identifier (`tok_` + 16 hex), used to revoke.
    pub id: String,
    /// The label.
    pub name: String,
    /// The role.
    pub role: Role,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// Response of `POST /api/v1/tokens`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The stored part.
    pub token: TokenInfo,
    /// `bht_` + 64 hex; the server keeps only its SHA-256.
    pub secret: String,
}

/// Body of `POST /api/v1/jointokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJoinToken {
    /// Namespace of the identity the token buys.
    pub namespace: String,
    /// Service account of the identity the token buys.
    pub service_account: String,
    /// Lifetime in seconds (default 3600).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// How many certificates it may buy (default 1).
    #[serde(default)]
    pub max_uses: Option<u32>,
}

/// A join token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenInfo {
    /// Stable identifier (`jt_` + 16 hex), used to revoke.
    pub id: String,
    /// The SPIFFE ID it buys.
    pub identity: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it expires (RFC 3339).
    pub expires: String,
    /// Certificates bought with it so far.
    pub uses: u32,
    /// Certificates it may buy in all.
    pub max_uses: u32,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// Response of `POST /api/v1/jointokens`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedJoinToken {
    /// The stored part.
    pub token: JoinTokenInfo,
    /// `bhj_` + 64 hex.
    pub secret: String,
}

/// Response of `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenList {
    /// Operator tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
    /// Join tokens, oldest first.
    pub join_tokens: Vec<JoinTokenInfo>,
}

/// One proxy as the control plane knows it (`GET /api/v1/proxies`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// `namespace/workload@address[,address…]`: the workload and the inbound addresses the
    /// proxy registered; stable across proxy restarts.
    pub instance: String,
    /// `namespace/name` of the workload.
    pub workload: String,
    /// The SPIFFE ID it authenticated with.
    pub identity: String,
    /// Whether its watch stream is open now.
    pub connected: bool,
    /// The snapshot version it last ACKed (0: none yet).
    pub applied_version: u64,
    /// The snapshot version last sent to it.
    pub sent_version: u64,
    /// The reason of its last NACK, if the last verdict was a NACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_nack: Option<String>,
    /// Last time it was heard from (RFC 3339).
    pub last_seen: String,
    /// Its certificate's expiry (RFC 3339), as it reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry: Option<String>,
    /// Its registered inbound endpoints (`port=address`).
    pub inbound: Vec<String>,
}

/// Response of `GET /api/v1/proxies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyList {
    /// Sorted by instance.
    pub items: Vec<ProxyStatus>,
}

/// Response of `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlStatus {
    /// The server's version.
    pub version: String,
    /// The current store revision.
    pub revision: u64,
    /// Stored resource objects.
    pub objects: u64,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// The mesh's trust domain.
    pub trust_domain: String,
    /// When the CA certificate expires (RFC 3339).
    pub ca_expiry: String,
    /// Proxies with an open watch stream.
    pub proxies_connected: u64,
    /// Proxies known (connected or registered before).
    pub proxies_known: u64,
}

/// Every error response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// HTTP status code.
    pub status: u16,
    /// Machine-readable reason: `Invalid`, `Conflict`, `NotFound`, `Unauthenticated`,
    /// `Forbidden`, `Gone`, `UnsupportedMediaType`, `Internal`.
    pub reason: String,
    /// One sentence for people.
    pub message: String,
    /// One line per problem (validation errors name file, document, line and field path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}
