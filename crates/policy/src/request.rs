//! What the engine decides on: a connection or request from a source to a destination.

use std::net::IpAddr;

use bulkhead_resources::{Labels, Protocol};

/// Index of a Pod or Workload in a compiled [`crate::Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointId(pub(crate) u32);

/// The side that opens the connection.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A known Pod or Workload (its IP, labels and mTLS identity are used).
    Endpoint(EndpointId),
    /// A peer described by what is seen of it on the wire.
    Raw(RawPeer<'a>),
}

/// A peer that is not (or not known to be) a declared Pod or Workload.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawPeer<'a> {
    /// Source address.
    pub ip: Option<IpAddr>,
    /// Namespace, when the peer is an in-cluster pod not declared in the resources.
    pub namespace: Option<&'a str>,
    /// Labels of such a pod.
    pub labels: Option<&'a Labels>,
    /// mTLS principal (`td/ns/x/sa/y`); `None` means plaintext.
    pub principal: Option<&'a str>,
    /// Original client address (`remote.ip`); defaults to `ip`.
    pub remote_ip: Option<IpAddr>,
}

/// The side that accepts the connection.
#[derive(Debug, Clone, Copy)]
pub enum Destination {
    /// A known Pod or Workload.
    Endpoint(EndpointId),
    /// An address outside the mesh: only the source's egress applies.
    External(IpAddr),
}

/// One connection (L4) or request (L7) to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who connects.
    pub source: Source<'a>,
    /// Who is connected to.
    pub destination: Destination,
    /// The destination's target port.
    pub port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// HTTP attributes; `None` for a plain connection.
    pub http: Option<&'a HttpRequest>,
    /// The request's validated JWT, if any.
    pub jwt: Option<&'a Jwt>,
    /// TLS server name of the connection.
    pub sni: Option<&'a str>,
}

/// HTTP request attributes.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Raw request path (normalized by the engine before matching).
    pub path: String,
    /// `Host` / `:authority`.
    pub host: Option<String>,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// The value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A JWT already validated by the mesh.
#[derive(Debug, Clone, Default)]
pub struct Jwt {
    /// Issuer.
    pub iss: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Audiences.
    pub aud: Vec<String>,
    /// Authorized presenter.
    pub azp: Option<String>,
    /// Other claims (strings, lists of strings, nested objects).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Jwt {
    /// `iss/sub`, Istio's request principal.
    pub fn principal(&self) -> Option<String> {
        Some(format!("{}/{}", self.iss.as_deref()?, self.sub.as_deref()?))
    }

    /// The string values of the claim at `path` (`["groups"]`, `["a","b"]` for nested):
    /// one for a string claim, each element for a list. Top-level `iss`, `sub`, `aud` and
    /// `azp` are claims too.
    pub(crate) fn claim_values(&self, path: &[String]) -> Vec<&str> {
        let (first, rest) = match path.split_first() {
            Some(p) => p,
            None => return Vec::new(),
        };
        let mut value = match self.claims.get(first.as_str()) {
            Some(v) => v,
            None => return self.standard_claim(first, rest),
        };
        for key in rest {
            match value.get(key.as_str()) {
                Some(v) => value = v,
                None => return Vec::new(),
            }
        }
        match value {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    fn standard_claim(&self, name: &str, rest: &[String]) -> Vec<&str> {
        if !rest.is_empty() {
            return Vec::new();
        }
        match name {
            "iss" => self.iss.as_deref().into_iter().collect(),
            "sub" => self.sub.as_deref().into_iter().collect(),
            "azp" => self.azp.as_deref().into_iter().collect(),
            "aud" => self.aud.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The authorized presenter, from `azp` or the `azp` claim.
    pub(crate) fn presenter(&self) -> Option<&str> {
        self.azp
            .as_deref()
            .or_else(|| self.claims.get("azp").and_then(|v| v.as_str()))
    }
}
