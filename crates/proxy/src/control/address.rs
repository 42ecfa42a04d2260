//! `spec.controlPlane.address`: `host:port`, where host is a DNS name, an IPv4 address or
//! a bracketed IPv6 address. The host is also the TLS server name the control plane's
//! certificate must carry (IP addresses included, as the control plane's serving
//! certificate lists `127.0.0.1` and `::1`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use rustls_pki_types::ServerName;

/// Why an address does not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a control plane address: {reason}; expected `host:port`, e.g. `127.0.0.1:15010`, `control.mesh:15010` or `[::1]:15010`"
)]
pub struct AddressError {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    host: String,
    port: u16,
}

impl Address {
    /// Parses `host:port`; IPv6 hosts must be bracketed, the port must be 1-65535.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let fail = |reason| AddressError {
            input: input.to_owned(),
            reason,
        };
        if input.contains("://") {
            return Err(fail("it has a scheme (the connection is always TLS)"));
        }
        let (host, port) = if let Some(rest) = input.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| fail("missing `]:port`"))?;
            host.parse::<Ipv6Addr>()
                .map_err(|_| fail("the bracketed host is not an IPv6 address"))?;
            (host, port)
        } else {
            let (host, port) = input
                .rsplit_once(':')
                .ok_or_else(|| fail("missing `:port`"))?;
            if host.contains(':') {
                return Err(fail("IPv6 addresses must be written in brackets"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(fail("the host is empty"));
        }
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("the port is not a number"));
        }
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(fail("the port must be 1-65535")),
            Ok(port) => port,
        };
        if ServerName::try_from(host).is_err() {
            return Err(fail("the host is neither a DNS name nor an IP address"));
        }
        Ok(Address {
            host: host.to_owned(),
            port,
        })
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The name the control plane's certificate is checked against.
    pub fn server_name(&self) -> ServerName<'static> {
        // `parse` checked that the host converts.
        ServerName::try_from(self.host.clone())
            .unwrap_or_else(|_| ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_names_and_addresses() {
        let a = Address::parse("control.mesh:15010").unwrap();
        assert_eq!((a.host(), a.port()), ("control.mesh", 15010));
        let a = Address::parse("127.0.0.1:1").unwrap();
        assert!(matches!(a.server_name(), ServerName::IpAddress(_)));
        let a = Address::parse("[::1]:15010").unwrap();
        assert_eq!(a.host(), "::1");
        assert_eq!(a.to_string(), "[::1]:15010");
        assert!(matches!(a.server_name(), ServerName::IpAddress(_)));
    }

    #[test]
    fn refuses_what_is_not_host_port() {
        for (input, reason) in [
            ("https://cp:15010", "scheme"),
            ("cp", "missing `:port`"),
            ("cp:", "not a number"),
            ("cp:0", "1-65535"),
            ("cp:65536", "1-65535"),
            ("cp:+1", "not a number"),
            (":15010", "empty"),
            ("::1:15010", "brackets"),
            ("[::1]", "missing `]:port`"),
            ("[cp]:1", "IPv6"),
            ("bad_host!:1", "neither"),
        ] {
            let err = Address::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
            assert!(err.contains("expected `host:port`"), "{err}");
        }
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
            any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
            "[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,20}[a-z0-9])?){0,3}",
        ]
    }

    proptest! {
        #[test]
        fn display_round_trips(host in host(), port in 1u16..) {
            let text = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let parsed = Address::parse(&text).unwrap();
            prop_assert_eq!(parsed.host(), host.as_str());
            prop_assert_eq!(parsed.port(), port);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn never_panics_and_accepted_inputs_round_trip(input in "\\PC{0,40}") {
            if let Ok(parsed) = Address::parse(&input) {
                prop_assert_ne!(parsed.port(), 0);
                prop_assert_eq!(Address::parse(&parsed.to_string()), Ok(parsed));
            }
        }
    }
}
