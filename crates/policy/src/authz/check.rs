//! One compiled condition on a request attribute, shared by `from`, `to` and `when`.

use std::net::IpAddr;

use bulkhead_matchers::cidr::IpSet;
use bulkhead_matchers::path::PathSet;
use bulkhead_matchers::string::StringSet;

use crate::request::{HttpRequest, Jwt};

/// The request attributes that checks read, computed once per evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs<'a> {
    pub(crate) principal: Option<&'a str>,
    pub(crate) source_namespace: Option<&'a str>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) destination_ip: Option<IpAddr>,
    pub(crate) port: u16,
    pub(crate) sni: Option<&'a str>,
    pub(crate) http: Option<HttpAttrs<'a>>,
}

/// HTTP attributes, present only for L7 requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpAttrs<'a> {
    pub(crate) request: &'a HttpRequest,
    /// The normalized path.
    pub(crate) path: &'a str,
    pub(crate) jwt: Option<&'a Jwt>,
    /// `iss/sub` of the JWT.
    pub(crate) request_principal: Option<&'a str>,
}

/// What a check compares.
#[derive(Debug)]
pub(crate) enum Matcher {
    Principal(StringSet),
    Namespace(StringSet),
    SourceIp(IpSet),
    RemoteIp(IpSet),
    DestinationIp(IpSet),
    Port(Box<[u16]>),
    Sni(StringSet),
    RequestPrincipal(StringSet),
    Host(StringSet),
    Method(StringSet),
    Path(PathSet),
    Header(String, StringSet),
    Audience(StringSet),
    Presenter(StringSet),
    Claim(Vec<String>, StringSet),
}

/// A matcher, possibly negated (`notX`, `notValues`), with the field name for explanations.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) field: String,
    pub(crate) negate: bool,
    pub(crate) matcher: Matcher,
}

impl Matcher {
    /// True for attributes that exist only on HTTP requests.
    pub(crate) fn http_only(&self) -> bool {
        matches!(
            self,
            Matcher::RequestPrincipal(_)
                | Matcher::Host(_)
                | Matcher::Method(_)
                | Matcher::Path(_)
                | Matcher::Header(..)
                | Matcher::Audience(_)
                | Matcher::Presenter(_)
                | Matcher::Claim(..)
        )
    }

    /// Whether the attribute is present and matches one of the values. An absent attribute
    /// matches nothing.
    fn matches(&self, a: &Attrs<'_>) -> bool {
        let http = a.http.as_ref();
        match self {
            Matcher::Principal(s) => s.matches(a.principal),
            Matcher::Namespace(s) => s.matches(a.source_namespace),
            Matcher::SourceIp(s) => a.source_ip.is_some_and(|ip| s.contains(ip)),
            Matcher::RemoteIp(s) => a.remote_ip.is_some_and(|ip| s.contains(ip)),
            Matcher::DestinationIp(s) => a.destination_ip.is_some_and(|ip| s.contains(ip)),
            Matcher::Port(ports) => ports.contains(&a.port),
            Matcher::Sni(s) => s.matches(a.sni),
            Matcher::RequestPrincipal(s) => s.matches(http.and_then(|h| h.request_principal)),
            Matcher::Host(s) => s.matches(http.and_then(|h| h.request.host.as_deref())),
            Matcher::Method(s) => s.matches(http.map(|h| h.request.method.as_str())),
            Matcher::Path(s) => http.is_some_and(|h| s.matches(h.path)),
            Matcher::Header(name, s) => http
                .and_then(|h| h.request.header(name))
                .is_some_and(|v| s.matches(Some(v))),
            Matcher::Audience(s) => http
                .and_then(|h| h.jwt)
                .is_some_and(|j| j.aud.iter().any(|v| s.matches(Some(v)))),
            Matcher::Presenter(s) => s.matches(http.and_then(|h| h.jwt?.presenter())),
            Matcher::Claim(path, s) => http
                .and_then(|h| h.jwt)
                .is_some_and(|j| j.claim_values(path).into_iter().any(|v| s.matches(Some(v)))),
        }
    }
}

impl Check {
    /// Whether the check holds for `a`.
    pub(crate) fn holds(&self, a: &Attrs<'_>) -> bool {
        self.matcher.matches(a) != self.negate
    }
}
