//! The transaction API: the stages of one HTTP exchange, as libmodsecurity's C API has them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::compile::RuleSet;
use super::rule::{AllowScope, BodyProcessor, EngineMode, TagRules};
use super::state::{Data, atoi};
use super::vars::{Exclusion, Scalar};
use crate::parse::ast::IdRange;

/// A rule that matched, with what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// The rule id.
    pub id: u32,
    /// The phase it ran in.
    pub phase: u8,
    /// Whether it is logged (what ModSecurity writes to the error log).
    pub logged: bool,
    /// The macro-expanded `msg` (empty for `nolog` rules, whose text is not expanded).
    pub msg: String,
    /// The macro-expanded `logdata` (empty for `nolog` rules).
    pub data: String,
    /// `severity`, 0–7.
    pub severity: Option<u8>,
    /// `tag`s.
    pub tags: Arc<[String]>,
    /// The last matched variable, e.g. `ARGS:id` (empty for `nolog` rules, like `msg`).
    pub matched_var_name: String,
    /// Its (transformed) value (empty for `nolog` rules).
    pub matched_value: Vec<u8>,
    /// Whether the rule's disruptive action stops the transaction (deny, drop, redirect),
    /// whether or not the engine mode enforces it.
    pub disruptive: bool,
}

/// Why and how a transaction was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The rule that stopped it (0 for engine limits).
    pub rule_id: u32,
    /// The phase in which it stopped.
    pub phase: u8,
    /// The rule's message.
    pub message: String,
    /// The location of a `redirect`.
    pub redirect: Option<String>,
}

/// Transformation results by (value address, length, chain id); None: unchanged.
pub(crate) type TransformCache =
    HashMap<(usize, usize, u32), Option<Vec<u8>>, BuildHasherDefault<KeyHasher>>;

/// A multiply-rotate hasher for the cache's integer keys: SipHash's flood resistance is
/// not needed for addresses chosen by our own allocator, and it cost a tenth of a GET.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// Which rules a runtime target removal applies to.
#[derive(Debug, Clone)]
pub(crate) enum TargetRemoval {
    Ids(Vec<IdRange>),
    Tag(TagRules),
}

/// One HTTP transaction run through a [`RuleSet`].
#[derive(Debug)]
pub struct Transaction {
    pub(crate) rules: Arc<RuleSet>,
    pub(crate) data: Data,
    pub(crate) mode: EngineMode,
    pub(crate) body_processor: Option<BodyProcessor>,
    pub(crate) body_access: bool,
    pub(crate) force_body_variable: bool,
    pub(crate) request_body: Vec<u8>,
    pub(crate) request_body_truncated: bool,
    pub(crate) response_body: Vec<u8>,
    pub(crate) inspect_response_body: bool,
    pub(crate) removed_ids: Vec<IdRange>,
    pub(crate) removed_tags: Vec<TagRules>,
    pub(crate) removed_targets: Vec<(TargetRemoval, Arc<Exclusion>)>,
    pub(crate) matches: Vec<RuleMatch>,
    pub(crate) intervention: Option<Intervention>,
    pub(crate) allow: Option<AllowScope>,
    /// Transformation results of stable values, shared by the rules of every phase.
    pub(crate) transform_cache: RefCell<TransformCache>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Transaction {
    /// Starts a transaction.
    pub fn new(rules: Arc<RuleSet>) -> Transaction {
        let mut data = Data::new();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        data.set(
            Scalar::UniqueId,
            format!(
                "{:x}{:06x}",
                nanos,
                NEXT_ID.fetch_add(1, Ordering::Relaxed) & 0xff_ffff
            ),
        );
        let settings = rules.settings();
        Transaction {
            mode: settings.engine,
            body_access: settings.request_body_access,
            rules,
            data,
            body_processor: None,
            force_body_variable: false,
            request_body: Vec::new(),
            request_body_truncated: false,
            response_body: Vec::new(),
            inspect_response_body: false,
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            matches: Vec::with_capacity(128),
            intervention: None,
            allow: None,
            transform_cache: RefCell::new(TransformCache::default()),
        }
    }

    /// Records the connection's addresses (REMOTE_ADDR, SERVER_PORT, …).
    pub fn process_connection(
        &mut self,
        client: IpAddr,
        client_port: u16,
        server: IpAddr,
        server_port: u16,
    ) {
        self.data.set(Scalar::RemoteAddr, client.to_string());
        self.data.set(Scalar::RemotePort, client_port.to_string());
        self.data.set(Scalar::ServerAddr, server.to_string());
        self.data.set(Scalar::ServerPort, server_port.to_string());
    }

    /// Records the request line: the raw URI, the method and the version without `HTTP/`.
    pub fn process_uri(&mut self, uri: &[u8], method: &[u8], http_version: &[u8]) {
        super::uri::process_uri(self, uri, method, http_version);
    }

    /// Adds one request header.
    pub fn add_request_header(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-type") {
            let lower = value.to_ascii_lowercase();
            let processor = if lower.starts_with(b"multipart/form-data") {
                Some(BodyProcessor::Multipart)
            } else if lower.starts_with(b"application/x-www-form-urlencoded") {
                Some(BodyProcessor::UrlEncoded)
            } else {
                None
            };
            if let Some(p) = processor {
                self.body_processor = Some(p);
                self.data.set(Scalar::ReqbodyProcessor, p.name());
            }
        }
        if name.eq_ignore_ascii_case(b"cookie") {
            self.data.cookies.extend(crate::body::parse_cookies(value));
        }
        if name.eq_ignore_ascii_case(b"host") {
            self.data.set(Scalar::ServerName, value.to_vec());
        }
        self.data
            .request_headers
            .push((name.to_vec(), value.to_vec()));
    }

    /// Phase 1: request headers.
    pub fn process_request_headers(&mut self) -> Option<Intervention> {
        self.run_phase(1);
        self.intervention.clone()
    }

    /// Appends request body bytes (kept up to `SecRequestBodyLimit`).
    pub fn append_request_body(&mut self, data: &[u8]) {
        let limit = self.rules.settings().request_body_limit;
        let room = limit.saturating_sub(self.request_body.len());
        if data.len() > room {
            self.request_body_truncated = true;
        }
        self.request_body
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Phase 2: runs the body processor, then the request body rules.
    pub fn process_request_body(&mut self) -> Option<Intervention> {
        if self.intervention.is_none() {
            super::reqbody::process(self);
        }
        self.run_phase(2);
        self.intervention.clone()
    }

    /// Adds one response header.
    pub fn add_response_header(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-type") {
            self.data.set(Scalar::ResponseContentType, value.to_vec());
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            self.data.set(Scalar::ResponseContentLength, value.to_vec());
        }
        self.data
            .response_headers
            .push((name.to_vec(), value.to_vec()));
    }

    /// Phase 3: response status and headers.
    pub fn process_response_headers(
        &mut self,
        status: u16,
        http_version: &[u8],
    ) -> Option<Intervention> {
        self.data.set(Scalar::ResponseStatus, status.to_string());
        let mut proto = b"HTTP/".to_vec();
        proto.extend_from_slice(http_version);
        self.data.set(Scalar::ResponseProtocol, proto);
        let settings = self.rules.settings();
        let mime = self
            .data
            .get(Scalar::ResponseContentType)
            .map(mime_of)
            .unwrap_or_default();
        self.inspect_response_body = settings.response_body_access
            && settings
                .response_mime_types
                .iter()
                .any(|m| m.as_bytes() == mime.as_slice());
        self.run_phase(3);
        self.intervention.clone()
    }

    /// Appends response body bytes (kept when the MIME type is inspected, up to the limit).
    pub fn append_response_body(&mut self, data: &[u8]) {
        if !self.inspect_response_body {
            return;
        }
        let room = self
            .rules
            .settings()
            .response_body_limit
            .saturating_sub(self.response_body.len());
        self.response_body
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Phase 4: the response body.
    pub fn process_response_body(&mut self) -> Option<Intervention> {
        if self.inspect_response_body {
            let body = std::mem::take(&mut self.response_body);
            self.data.set(Scalar::ResponseBody, body);
        }
        self.run_phase(4);
        self.intervention.clone()
    }

    /// Phase 5: logging rules (correlation).
    pub fn process_logging(&mut self) {
        let stopped = self.intervention.take();
        self.run_phase(5);
        if stopped.is_some() {
            self.intervention = stopped;
        }
    }

    /// Every full rule match so far, in firing order (including `nolog` rules).
    pub fn matches(&self) -> &[RuleMatch] {
        &self.matches
    }

    /// Ids of logged matches, deduplicated, in firing order.
    pub fn logged_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for m in self.matches.iter().filter(|m| m.logged) {
            if !ids.contains(&m.id) {
                ids.push(m.id);
            }
        }
        ids
    }

    /// A TX variable by (case-insensitive) name.
    pub fn tx_var(&self, name: &str) -> Option<String> {
        self.data
            .tx
            .get(&name.to_ascii_lowercase())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// `tx.blocking_inbound_anomaly_score` (0 when unset).
    pub fn inbound_anomaly_score(&self) -> i64 {
        self.data
            .tx
            .get("blocking_inbound_anomaly_score")
            .map(|v| atoi(v))
            .unwrap_or(0)
    }

    /// `tx.blocking_outbound_anomaly_score` (0 when unset).
    pub fn outbound_anomaly_score(&self) -> i64 {
        self.data
            .tx
            .get("blocking_outbound_anomaly_score")
            .map(|v| atoi(v))
            .unwrap_or(0)
    }

    /// The intervention that stopped the transaction, if any.
    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// The engine mode in force (a rule may have changed it with `ctl:ruleEngine`).
    pub fn mode(&self) -> EngineMode {
        self.mode
    }

    /// The transaction's UNIQUE_ID.
    pub fn unique_id(&self) -> String {
        self.data
            .get(Scalar::UniqueId)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// The MIME type of a Content-Type value: before `;`, trimmed, lower-cased.
fn mime_of(v: &[u8]) -> Vec<u8> {
    let end = v.iter().position(|b| *b == b';').unwrap_or(v.len());
    v[..end].trim_ascii().to_ascii_lowercase()
}
