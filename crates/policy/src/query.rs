//! The `bulkhead policy eval` query contract (DESIGN.md §4): one JSON object per line.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bulkhead_resources::{Labels, Protocol};
use serde::Deserialize;
use serde_json::Value;

use crate::engine::Engine;
use crate::request::{Destination, HttpRequest, Jwt, RawPeer, Request, Source};

/// A query that cannot be parsed or resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Not valid JSON, or a field has the wrong type or an unknown name.
    #[error("invalid query: {0}")]
    Json(#[from] serde_json::Error),
    /// A field has an invalid value.
    #[error("invalid query: `{field}`: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// `from`/`to` names a Pod or Workload that the resources do not declare.
    #[error("invalid query: `{field}`: no Pod or Workload named `{name}` in the resources")]
    UnknownEndpoint {
        /// `from` or `to`.
        field: &'static str,
        /// The `namespace/name` given.
        name: String,
    },
}

/// A peer as a query writes it: `"ns/name"` or an object.
#[derive(Debug, Clone)]
pub enum PeerSpec {
    /// A declared Pod or Workload.
    Named(String),
    /// A peer described by its attributes.
    Raw(RawSpec),
}

/// A raw peer object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// Namespace (makes the peer an in-cluster pod for selectors).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels of that pod.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// mTLS principal; absent means plaintext.
    #[serde(default)]
    pub principal: Option<String>,
    /// Original client address.
    #[serde(default)]
    pub remote_ip: Option<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default)]
    id: Value,
    from: Value,
    to: Value,
    port: u16,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    http: Option<WireHttp>,
    #[serde(default)]
    jwt: Option<WireJwt>,
    #[serde(default)]
    sni: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHttp {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireJwt {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
}

/// One parsed query, owning its data so that [`Query::request`] can borrow it.
#[derive(Debug, Clone)]
pub struct Query {
    /// Echoed back unchanged in the decision record.
    pub id: Value,
    /// Source.
    pub from: PeerSpec,
    /// Destination.
    pub to: PeerSpec,
    /// Destination port.
    pub port: u16,
    /// Transport protocol (TCP by default).
    pub protocol: Protocol,
    /// HTTP attributes (header names lower-cased).
    pub http: Option<HttpRequest>,
    /// Validated JWT.
    pub jwt: Option<Jwt>,
    /// TLS server name.
    pub sni: Option<String>,
}

impl Query {
    /// Parses one JSON line.
    pub fn parse(line: &str) -> Result<Query, QueryError> {
        Self::from_value(serde_json::from_str(line)?)
    }

    /// Converts an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Query, QueryError> {
        let w: Wire = serde_json::from_value(value)?;
        if w.port == 0 {
            return Err(QueryError::Field {
                field: "port",
                message: "expected a port number 1-65535".into(),
            });
        }
        Ok(Query {
            id: w.id,
            from: peer("from", w.from)?,
            to: peer("to", w.to)?,
            port: w.port,
            protocol: w.protocol,
            http: w.http.map(|h| HttpRequest {
                method: h.method.unwrap_or_else(|| "GET".into()),
                path: h.path.unwrap_or_else(|| "/".into()),
                host: h.host,
                headers: h
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            }),
            jwt: w.jwt.map(jwt).transpose()?,
            sni: w.sni,
        })
    }

    /// Resolves names against `engine` into a request to evaluate.
    pub fn request<'a>(&'a self, engine: &Engine) -> Result<Request<'a>, QueryError> {
        let source = match &self.from {
            PeerSpec::Named(name) => Source::Endpoint(lookup(engine, "from", name)?),
            PeerSpec::Raw(raw) => Source::Raw(RawPeer {
                ip: raw.ip,
                namespace: raw.namespace.as_deref(),
                labels: raw.labels.as_ref(),
                principal: raw.principal.as_deref(),
                remote_ip: raw.remote_ip,
            }),
        };
        let destination = match &self.to {
            PeerSpec::Named(name) => Destination::Endpoint(lookup(engine, "to", name)?),
            PeerSpec::Raw(RawSpec { ip: Some(ip), .. }) => match engine.endpoint_by_ip(*ip) {
                Some(id) => Destination::Endpoint(id),
                None => Destination::External(*ip),
            },
            PeerSpec::Raw(_) => {
                return Err(QueryError::Field {
                    field: "to",
                    message: "a raw destination needs an `ip`".into(),
                });
            }
        };
        Ok(Request {
            source,
            destination,
            port: self.port,
            protocol: self.protocol,
            http: self.http.as_ref(),
            jwt: self.jwt.as_ref(),
            sni: self.sni.as_deref(),
        })
    }
}

fn lookup(
    engine: &Engine,
    field: &'static str,
    name: &str,
) -> Result<crate::EndpointId, QueryError> {
    engine
        .endpoint(name)
        .ok_or_else(|| QueryError::UnknownEndpoint {
            field,
            name: name.to_owned(),
        })
}

fn peer(field: &'static str, v: Value) -> Result<PeerSpec, QueryError> {
    match v {
        Value::String(s) => match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(PeerSpec::Named(s))
            }
            _ => Err(QueryError::Field {
                field,
                message: format!("expected \"namespace/name\", got \"{s}\""),
            }),
        },
        Value::Object(_) => Ok(PeerSpec::Raw(serde_json::from_value(v).map_err(|e| {
            QueryError::Field {
                field,
                message: e.to_string(),
            }
        })?)),
        other => Err(QueryError::Field {
            field,
            message: format!("expected \"namespace/name\" or an object, got {other}"),
        }),
    }
}

fn jwt(w: WireJwt) -> Result<Jwt, QueryError> {
    let aud = match w.aud {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                other => Err(other),
            })
            .collect::<Result<_, _>>()
            .map_err(|other| QueryError::Field {
                field: "jwt.aud",
                message: format!("expected strings, got {other}"),
            })?,
        Some(other) => {
            return Err(QueryError::Field {
                field: "jwt.aud",
                message: format!("expected a string or a list of strings, got {other}"),
            });
        }
    };
    Ok(Jwt {
        iss: w.iss,
        sub: w.sub,
        aud,
        azp: w.azp,
        claims: w.claims,
    })
}
