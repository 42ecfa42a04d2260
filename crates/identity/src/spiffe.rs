//! SPIFFE IDs and trust domains, validated exactly as the SPIFFE-ID specification says.
//!
//! `spiffe://<trust-domain>/<path>`: lower-case `spiffe` scheme; a trust domain of
//! `[a-z0-9.-_]` only (so no port, userinfo or upper case); path segments of
//! `[A-Za-z0-9.-_]`, none empty, `.` or `..`; no trailing slash, query or fragment.
//! Bulkhead's mesh identities are `spiffe://<td>/ns/<namespace>/sa/<service-account>`.

use std::fmt;
use std::str::FromStr;

/// Longest trust domain the specification allows.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;
/// Longest SPIFFE ID (as a URI) the specification allows.
pub const MAX_ID_LEN: usize = 2048;

const SCHEME: &str = "spiffe://";

/// Why a string is not a valid SPIFFE ID or trust domain; each variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    #[error("SPIFFE ID is empty")]
    Empty,
    /// The scheme is missing or not exactly lower-case `spiffe://`.
    #[error("scheme must be lower-case `spiffe://`")]
    WrongScheme,
    /// Nothing between `spiffe://` and the path.
    #[error("trust domain is missing")]
    MissingTrustDomain,
    /// A trust domain character outside `[a-z0-9.-_]`.
    #[error("trust domain may contain only a-z, 0-9, '.', '-' and '_' (found {0:?})")]
    BadTrustDomainChar(char),
    /// A `:` after the trust domain: SPIFFE IDs carry no port.
    #[error("trust domain must not carry a port")]
    Port,
    /// An `@` in the authority: SPIFFE IDs carry no userinfo.
    #[error("trust domain must not carry userinfo")]
    UserInfo,
    /// The trust domain is longer than 255 bytes.
    #[error("trust domain is longer than {MAX_TRUST_DOMAIN_LEN} bytes")]
    TrustDomainTooLong,
    /// The whole ID is longer than 2048 bytes.
    #[error("SPIFFE ID is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    /// A path character outside `[A-Za-z0-9.-_]`.
    #[error("path segments may contain only A-Z, a-z, 0-9, '.', '-' and '_' (found {0:?})")]
    BadPathChar(char),
    /// A `?query` part.
    #[error("SPIFFE ID must not have a query")]
    Query,
    /// A `#fragment` part.
    #[error("SPIFFE ID must not have a fragment")]
    Fragment,
    /// Two slashes in a row.
    #[error("path must not contain empty segments")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("path must not contain '.' or '..' segments")]
    DotSegment,
    /// A slash at the end.
    #[error("path must not end with a slash")]
    TrailingSlash,
}

/// A validated trust domain name, e.g. `cluster.local`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates a bare trust domain name (no scheme).
    pub fn new(name: &str) -> Result<Self, SpiffeIdError> {
        check_trust_domain(name)?;
        Ok(TrustDomain(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `spiffe://<name>`, the ID of the trust domain itself.
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            uri: format!("{SCHEME}{}", self.0),
            td_len: self.0.len(),
        }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::new(s)
    }
}

/// A validated SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    uri: String,
    td_len: usize,
}

impl SpiffeId {
    /// Parses and validates `spiffe://td/path`.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        if s.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = s.strip_prefix(SCHEME).ok_or(SpiffeIdError::WrongScheme)?;
        let td_end = rest.find('/').unwrap_or(rest.len());
        let (td, path) = rest.split_at(td_end);
        check_trust_domain(td)?;
        check_path(path)?;
        Ok(SpiffeId {
            uri: s.to_owned(),
            td_len: td.len(),
        })
    }

    /// The Bulkhead mesh identity `spiffe://<td>/ns/<namespace>/sa/<service-account>`.
    pub fn for_workload(
        td: &TrustDomain,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, SpiffeIdError> {
        SpiffeId::parse(&format!("{SCHEME}{td}/ns/{namespace}/sa/{service_account}"))
    }

    /// The trust domain name.
    pub fn trust_domain_name(&self) -> &str {
        &self.uri[SCHEME.len()..SCHEME.len() + self.td_len]
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain(self.trust_domain_name().to_owned())
    }

    /// The path, including its leading slash (empty for a trust domain's own ID).
    pub fn path(&self) -> &str {
        &self.uri[SCHEME.len() + self.td_len..]
    }

    /// The full URI.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The ID without its scheme, as policies write principals (`td/ns/x/sa/y`).
    pub fn principal(&self) -> &str {
        &self.uri[SCHEME.len()..]
    }

    /// `(namespace, service account)` when the path is exactly `/ns/<ns>/sa/<sa>`.
    pub fn workload(&self) -> Option<(&str, &str)> {
        let mut parts = self.path().strip_prefix('/')?.split('/');
        match (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }

    /// The namespace of a mesh identity.
    pub fn namespace(&self) -> Option<&str> {
        self.workload().map(|(ns, _)| ns)
    }

    /// The service account of a mesh identity.
    pub fn service_account(&self) -> Option<&str> {
        self.workload().map(|(_, sa)| sa)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

fn check_trust_domain(td: &str) -> Result<(), SpiffeIdError> {
    if td.is_empty() {
        return Err(SpiffeIdError::MissingTrustDomain);
    }
    for c in td.chars() {
        match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => {}
            ':' => return Err(SpiffeIdError::Port),
            '@' => return Err(SpiffeIdError::UserInfo),
            '?' => return Err(SpiffeIdError::Query),
            '#' => return Err(SpiffeIdError::Fragment),
            other => return Err(SpiffeIdError::BadTrustDomainChar(other)),
        }
    }
    if td.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong);
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    // `path` starts with '/', so the first split element is empty and skipped.
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() {
            return Err(if segments.peek().is_none() {
                SpiffeIdError::TrailingSlash
            } else {
                SpiffeIdError::EmptySegment
            });
        }
        if seg == "." || seg == ".." {
            return Err(SpiffeIdError::DotSegment);
        }
        for c in seg.chars() {
            match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => {}
                '?' => return Err(SpiffeIdError::Query),
                '#' => return Err(SpiffeIdError::Fragment),
                other => return Err(SpiffeIdError::BadPathChar(other)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
