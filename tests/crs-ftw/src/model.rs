//! The go-ftw test file format (schema v2, as read by go-ftw 2.1.0).
//!
//! Field names, defaults and the post-load fix-ups (sorted headers, `stop_magic`,
//! `log_contains`) follow go-ftw's `test/defaults.go` and `test/types.go`. Unknown fields are
//! ignored, as go-yaml does.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A YAML scalar read as text, whatever its YAML type (`Content-Length: 0` is an integer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// One go-ftw YAML file as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FtwFile {
    /// The rule under test (0 when absent: then taken from the file name).
    #[serde(default)]
    pub rule_id: u32,
    /// The tests.
    #[serde(default)]
    pub tests: Vec<RawTest>,
}

/// One test as written.
#[derive(Debug, Clone, Deserialize)]
pub struct RawTest {
    /// The test number; go-ftw numbers tests from 1 when it is absent or 0.
    #[serde(default)]
    pub test_id: u32,
    /// Free-text description.
    #[serde(default)]
    pub desc: Option<String>,
    /// The stages, all of which must pass.
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// One request and what is expected of it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stage {
    /// What to send.
    #[serde(default)]
    pub input: Input,
    /// What to expect.
    #[serde(default)]
    pub output: Output,
}

/// One header of `ordered_headers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HeaderTuple {
    /// Header name, sent as written.
    #[serde(default)]
    pub name: String,
    /// Header value, sent as written.
    #[serde(default)]
    pub value: Scalar,
}

/// The `input` block of a stage.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Input {
    /// Destination address (default `localhost`).
    pub dest_addr: Option<String>,
    /// Destination port (default 80).
    pub port: Option<u16>,
    /// `http` or `https` (default `http`).
    pub protocol: Option<String>,
    /// Request target, sent raw (default `/`).
    pub uri: Option<Scalar>,
    /// Method (default `GET`).
    pub method: Option<Scalar>,
    /// Protocol version as on the wire (default `HTTP/1.1`).
    pub version: Option<Scalar>,
    /// Headers by name; go-ftw sends them sorted by name.
    pub headers: Option<BTreeMap<String, Scalar>>,
    /// Headers in order, duplicates allowed; wins over `headers`.
    pub ordered_headers: Option<Vec<HeaderTuple>>,
    /// Body text (a Go template).
    pub data: Option<Scalar>,
    /// Body as base64.
    pub encoded_data: Option<String>,
    /// The complete raw request as base64, sent verbatim.
    pub encoded_request: Option<String>,
    /// Whether go-ftw adds and fixes headers (default true).
    pub autocomplete_headers: Option<bool>,
    /// Legacy inverse of `autocomplete_headers`.
    pub stop_magic: Option<bool>,
    /// Not used by the request builder.
    pub save_cookie: Option<bool>,
    /// Not used by the request builder.
    pub follow_redirect: Option<bool>,
    /// Not used by the request builder.
    pub virtual_host_mode: Option<bool>,
}

impl Input {
    /// The method, `GET` when absent.
    pub fn method(&self) -> &str {
        self.method.as_ref().map_or("GET", |s| s.0.as_str())
    }

    /// The request target, `/` when absent.
    pub fn uri(&self) -> &str {
        self.uri.as_ref().map_or("/", |s| s.0.as_str())
    }

    /// The version, `HTTP/1.1` when absent (an explicit empty string stays empty).
    pub fn version(&self) -> &str {
        self.version.as_ref().map_or("HTTP/1.1", |s| s.0.as_str())
    }

    /// The effective autocomplete setting: `autocomplete_headers`, else `!stop_magic`, else true.
    pub fn autocomplete(&self) -> bool {
        match (self.autocomplete_headers, self.stop_magic) {
            (Some(value), _) => value,
            (None, Some(stop)) => !stop,
            (None, None) => true,
        }
    }

    /// Headers in sending order: `ordered_headers` as given, else `headers` sorted by name.
    pub fn header_list(&self) -> Vec<(String, String)> {
        if let Some(ordered) = &self.ordered_headers {
            return ordered
                .iter()
                .map(|h| (h.name.clone(), h.value.0.clone()))
                .collect();
        }
        // BTreeMap<String, _> iterates in byte order, which is Go's sort.Strings order.
        self.headers
            .iter()
            .flatten()
            .map(|(name, value)| (name.clone(), value.0.clone()))
            .collect()
    }
}

/// The `output` block of a stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Output {
    /// Expected HTTP status (0 or absent: not checked).
    #[serde(default)]
    pub status: u16,
    /// Text the raw response must contain.
    #[serde(default)]
    pub response_contains: String,
    /// Legacy: becomes `log.match_regex` when that and `expect_ids` are empty.
    #[serde(default)]
    pub log_contains: String,
    /// Legacy: becomes `log.no_match_regex` when that and `no_expect_ids` are empty.
    #[serde(default)]
    pub no_log_contains: String,
    /// Expectations on the WAF log lines of the request.
    #[serde(default)]
    pub log: LogExpect,
    /// The request must fail at the transport level.
    #[serde(default)]
    pub expect_error: Option<bool>,
    /// Retry the stage once on failure.
    #[serde(default)]
    pub retry_once: Option<bool>,
    /// Exactly one rule may be logged.
    #[serde(default)]
    pub isolated: bool,
}

/// The `output.log` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LogExpect {
    /// Every one of these ids must be logged.
    #[serde(default)]
    pub expect_ids: Vec<u32>,
    /// None of these ids may be logged.
    #[serde(default)]
    pub no_expect_ids: Vec<u32>,
    /// A Go regexp that must match at least one log line.
    #[serde(default)]
    pub match_regex: String,
    /// A Go regexp that must match no log line.
    #[serde(default)]
    pub no_match_regex: String,
}

impl Output {
    /// Applies go-ftw's post-load fix-up of the legacy `log_contains` fields.
    pub fn normalized(mut self) -> Output {
        if !self.log_contains.is_empty()
            && self.log.expect_ids.is_empty()
            && self.log.match_regex.is_empty()
        {
            self.log.match_regex = std::mem::take(&mut self.log_contains);
        }
        if !self.no_log_contains.is_empty()
            && self.log.no_expect_ids.is_empty()
            && self.log.no_match_regex.is_empty()
        {
            self.log.no_match_regex = std::mem::take(&mut self.no_log_contains);
        }
        self
    }
}
