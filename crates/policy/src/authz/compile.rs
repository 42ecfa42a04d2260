//! Turns AuthorizationPolicy rules into [`Check`] lists.

use bulkhead_matchers::cidr::{IpSet, parse_cidr};
use bulkhead_matchers::path::PathSet;
use bulkhead_matchers::string::StringSet;
use bulkhead_resources::{Condition, Operation, Source};

use super::check::{Check, Matcher};
use crate::PolicyError;
use crate::trust::TrustDomains;

/// Compiles values into checks for one policy, naming it in errors.
pub(crate) struct RuleCompiler<'a> {
    pub(crate) policy: &'a str,
    pub(crate) trust: &'a TrustDomains,
}

impl RuleCompiler<'_> {
    fn invalid(&self, field: &str, message: String) -> PolicyError {
        PolicyError::Invalid {
            policy: self.policy.to_owned(),
            message: format!("{field}: {message}"),
        }
    }

    fn strings(values: &[String], ignore_case: bool) -> StringSet {
        StringSet::new(values.iter().map(String::as_str), ignore_case)
    }

    fn ips(&self, field: &str, values: &[String]) -> Result<IpSet, PolicyError> {
        let nets = values
            .iter()
            .map(|v| parse_cidr(v, true).map_err(|e| self.invalid(field, format!("`{v}`: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpSet::from_blocks(
            &nets
                .into_iter()
                .map(|n| (n, Vec::new()))
                .collect::<Vec<_>>(),
        ))
    }

    fn ports(&self, field: &str, values: &[String]) -> Result<Box<[u16]>, PolicyError> {
        values
            .iter()
            .map(|v| match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(self.invalid(field, format!("`{v}` is not a port number 1-65535"))),
            })
            .collect()
    }

    fn paths(&self, field: &str, values: &[String]) -> Result<PathSet, PolicyError> {
        PathSet::new(values.iter().map(String::as_str))
            .map_err(|e| self.invalid(field, e.to_string()))
    }

    /// Adds a positive and a negated check for one field pair when their lists are non-empty.
    fn pair(
        out: &mut Vec<Check>,
        field: &str,
        pos: &[String],
        neg: &[String],
        mut make: impl FnMut(&str, &[String]) -> Result<Matcher, PolicyError>,
    ) -> Result<(), PolicyError> {
        if !pos.is_empty() {
            let matcher = make(field, pos)?;
            out.push(Check {
                field: field.to_owned(),
                negate: false,
                matcher,
            });
        }
        if !neg.is_empty() {
            let not_field = format!("not{}{}", field[..1].to_uppercase(), &field[1..]);
            let matcher = make(&not_field, neg)?;
            out.push(Check {
                field: not_field,
                negate: true,
                matcher,
            });
        }
        Ok(())
    }

    /// The checks of one `from[].source`.
    pub(crate) fn source(&self, s: &Source) -> Result<Vec<Check>, PolicyError> {
        let mut out = Vec::new();
        let principals = |_: &str, v: &[String]| {
            Ok(Matcher::Principal(Self::strings(
                &self.trust.expand(v),
                false,
            )))
        };
        Self::pair(
            &mut out,
            "principals",
            &s.principals,
            &s.not_principals,
            principals,
        )?;
        Self::pair(
            &mut out,
            "requestPrincipals",
            &s.request_principals,
            &s.not_request_principals,
            |_, v| Ok(Matcher::RequestPrincipal(Self::strings(v, false))),
        )?;
        Self::pair(
            &mut out,
            "namespaces",
            &s.namespaces,
            &s.not_namespaces,
            |_, v| Ok(Matcher::Namespace(Self::strings(v, false))),
        )?;
        Self::pair(
            &mut out,
            "ipBlocks",
            &s.ip_blocks,
            &s.not_ip_blocks,
            |f, v| Ok(Matcher::SourceIp(self.ips(f, v)?)),
        )?;
        Self::pair(
            &mut out,
            "remoteIpBlocks",
            &s.remote_ip_blocks,
            &s.not_remote_ip_blocks,
            |f, v| Ok(Matcher::RemoteIp(self.ips(f, v)?)),
        )?;
        Ok(out)
    }

    /// The checks of one `to[].operation`.
    pub(crate) fn operation(&self, o: &Operation) -> Result<Vec<Check>, PolicyError> {
        let mut out = Vec::new();
        Self::pair(&mut out, "hosts", &o.hosts, &o.not_hosts, |_, v| {
            Ok(Matcher::Host(Self::strings(v, true)))
        })?;
        Self::pair(&mut out, "ports", &o.ports, &o.not_ports, |f, v| {
            Ok(Matcher::Port(self.ports(f, v)?))
        })?;
        Self::pair(&mut out, "methods", &o.methods, &o.not_methods, |_, v| {
            Ok(Matcher::Method(Self::strings(v, false)))
        })?;
        Self::pair(&mut out, "paths", &o.paths, &o.not_paths, |f, v| {
            Ok(Matcher::Path(self.paths(f, v)?))
        })?;
        Ok(out)
    }

    /// The checks of one `when` condition.
    pub(crate) fn condition(&self, c: &Condition) -> Result<Vec<Check>, PolicyError> {
        let mut out = Vec::new();
        let field = format!("when[{}]", c.key);
        let key = c.key.as_str();
        let make = |f: &str, v: &[String]| -> Result<Matcher, PolicyError> {
            let s = || Self::strings(v, false);
            Ok(match key {
                "source.ip" => Matcher::SourceIp(self.ips(f, v)?),
                "remote.ip" => Matcher::RemoteIp(self.ips(f, v)?),
                "destination.ip" => Matcher::DestinationIp(self.ips(f, v)?),
                "destination.port" => Matcher::Port(self.ports(f, v)?),
                "source.namespace" => Matcher::Namespace(s()),
                "source.principal" => {
                    Matcher::Principal(Self::strings(&self.trust.expand(v), false))
                }
                "connection.sni" => Matcher::Sni(s()),
                "request.auth.principal" => Matcher::RequestPrincipal(s()),
                "request.auth.audiences" => Matcher::Audience(s()),
                "request.auth.presenter" => Matcher::Presenter(s()),
                _ => {
                    if let Some(name) = bracketed(key, "request.headers") {
                        match name.as_slice() {
                            [one] => Matcher::Header(one.to_ascii_lowercase(), s()),
                            _ => {
                                return Err(
                                    self.invalid(f, "expected request.headers[<name>]".into())
                                );
                            }
                        }
                    } else if let Some(path) = bracketed(key, "request.auth.claims") {
                        Matcher::Claim(path, s())
                    } else {
                        return Err(self.invalid(f, format!("unknown condition key `{key}`")));
                    }
                }
            })
        };
        Self::pair(&mut out, &field, &c.values, &c.not_values, make)?;
        Ok(out)
    }
}

/// Splits `prefix[a][b]…` into `["a","b",…]`; `None` when `key` has another shape.
fn bracketed(key: &str, prefix: &str) -> Option<Vec<String>> {
    let mut rest = key.strip_prefix(prefix)?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        if end == 0 {
            return None;
        }
        parts.push(inner[..end].to_owned());
        rest = &inner[end + 1..];
    }
    (!parts.is_empty()).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::bracketed;

    #[test]
    fn bracketed_keys() {
        assert_eq!(
            bracketed("request.headers[x-a]", "request.headers"),
            Some(vec!["x-a".into()])
        );
        assert_eq!(
            bracketed("request.auth.claims[a][b]", "request.auth.claims"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(bracketed("request.headers", "request.headers"), None);
        assert_eq!(bracketed("request.headers[]", "request.headers"), None);
        assert_eq!(bracketed("request.headers[a]x", "request.headers"), None);
        assert_eq!(bracketed("request.headersx[a]", "request.headers"), None);
    }
}
