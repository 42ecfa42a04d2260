//! `@ipMatch` and `@ipMatchFromFile`: IPv4/IPv6 addresses and CIDR networks.
//!
//! As in libmodsecurity 3, an entry or value containing `:` is IPv6, anything else IPv4;
//! a value that is not an address never matches, and IPv4-mapped IPv6 values are only
//! compared with IPv6 entries.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A set of networks, grouped by prefix length so that a lookup is one hash probe per
/// distinct length.
#[derive(Debug, Default)]
pub(super) struct IpSet {
    v4: Vec<(u32, HashSet<u32>)>,
    v6: Vec<(u32, HashSet<u128>)>,
}

impl IpSet {
    /// Parses a comma-separated list (`127.0.0.1,::1,10.0.0.0/8`).
    pub(super) fn from_list(list: &str) -> Result<IpSet, String> {
        let mut set = IpSet::default();
        set.add_list(list)?;
        if set.v4.is_empty() && set.v6.is_empty() {
            return Err("expected a comma-separated list of IP addresses or networks".into());
        }
        Ok(set)
    }

    /// Reads the files named in `argument` (whitespace-separated, relative to `base_dir`):
    /// lists as for `@ipMatch`, one or more per line, `#` starting a comment.
    pub(super) fn from_file(argument: &str, base_dir: &Path) -> Result<IpSet, String> {
        let mut set = IpSet::default();
        let mut any = false;
        for name in argument.split_ascii_whitespace() {
            any = true;
            let path = base_dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default();
                set.add_list(line)
                    .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
            }
        }
        if !any {
            return Err("expected a file name".into());
        }
        Ok(set)
    }

    fn add_list(&mut self, list: &str) -> Result<(), String> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            self.add(entry)?;
        }
        Ok(())
    }

    fn add(&mut self, entry: &str) -> Result<(), String> {
        let bad = || format!("invalid IP address or network {entry:?}");
        let (addr, prefix) = match entry.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|_| bad())?)),
            None => (entry, None),
        };
        if addr.contains(':') {
            let ip: Ipv6Addr = addr.parse().map_err(|_| bad())?;
            let len = prefix.unwrap_or(128);
            if len > 128 {
                return Err(bad());
            }
            insert(&mut self.v6, len, u128::from(ip) & mask128(len));
        } else {
            let ip: Ipv4Addr = addr.parse().map_err(|_| bad())?;
            let len = prefix.unwrap_or(32);
            if len > 32 {
                return Err(bad());
            }
            insert(&mut self.v4, len, u32::from(ip) & mask32(len));
        }
        Ok(())
    }

    /// Whether `input` is an address inside one of the networks.
    pub(super) fn contains(&self, input: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        if text.contains(':') {
            let Ok(ip) = text.parse::<Ipv6Addr>() else {
                return false;
            };
            let ip = u128::from(ip);
            self.v6
                .iter()
                .any(|(len, nets)| nets.contains(&(ip & mask128(*len))))
        } else {
            let Ok(ip) = text.parse::<Ipv4Addr>() else {
                return false;
            };
            let ip = u32::from(ip);
            self.v4
                .iter()
                .any(|(len, nets)| nets.contains(&(ip & mask32(*len))))
        }
    }
}

fn insert<T: std::hash::Hash + Eq>(groups: &mut Vec<(u32, HashSet<T>)>, len: u32, net: T) {
    match groups.iter_mut().find(|(l, _)| *l == len) {
        Some((_, nets)) => {
            nets.insert(net);
        }
        None => groups.push((len, HashSet::from([net]))),
    }
}

fn mask32(len: u32) -> u32 {
    u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0)
}

fn mask128(len: u32) -> u128 {
    u128::MAX.checked_shl(128 - len.min(128)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> IpSet {
        match IpSet::from_list(list) {
            Ok(s) => s,
            Err(e) => panic!("{list}: {e}"),
        }
    }

    #[test]
    fn single_addresses() {
        let s = set("127.0.0.1,::1");
        assert!(s.contains(b"127.0.0.1"));
        assert!(s.contains(b"::1"));
        assert!(s.contains(b"0:0:0:0:0:0:0:1"));
        assert!(!s.contains(b"127.0.0.2"));
        assert!(!s.contains(b"::ffff:127.0.0.1"));
        assert!(!s.contains(b"localhost"));
        assert!(!s.contains(b" 127.0.0.1"));
        assert!(!s.contains(b"\xff"));
    }

    #[test]
    fn networks() {
        let s = set("10.0.0.0/8, 192.168.1.77/24, 2001:db8::/32, 0.0.0.0/0");
        assert!(s.contains(b"10.255.1.2"));
        assert!(s.contains(b"192.168.1.1"));
        assert!(s.contains(b"2001:db8:1::5"));
        assert!(!s.contains(b"2001:db9::1"));
        // /0 covers every IPv4 address.
        assert!(s.contains(b"8.8.8.8"));
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "::1/129",
            "1.2.3.4/x",
            "nope",
            "01.2.3.4",
        ] {
            assert!(IpSet::from_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_lists() -> Result<(), String> {
        let dir = std::env::temp_dir().join(format!("bulkhead-waf-ip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("ips.txt"),
            "# comment\n1.2.3.4 # host\n\n10.0.0.0/8,::1\n",
        )
        .map_err(|e| e.to_string())?;
        let s = IpSet::from_file("ips.txt", &dir)?;
        assert!(s.contains(b"1.2.3.4"));
        assert!(s.contains(b"10.1.1.1"));
        assert!(s.contains(b"::1"));
        assert!(IpSet::from_file("missing.txt", &dir).is_err());
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn v4_networks_agree_with_masking(net: u32, prefix in 0u32..=32, probe: u32) {
            let set = IpSet::from_list(&format!("{}/{prefix}", Ipv4Addr::from(net)));
            let set = set.map_err(proptest::test_runner::TestCaseError::fail)?;
            let mask = mask32(prefix);
            let probe_text = Ipv4Addr::from(probe).to_string();
            proptest::prop_assert_eq!(set.contains(probe_text.as_bytes()), probe & mask == net & mask);
            proptest::prop_assert!(set.contains(Ipv4Addr::from(net).to_string().as_bytes()));
        }

        #[test]
        fn v6_networks_agree_with_masking(net: u128, prefix in 0u32..=128, probe: u128) {
            let set = IpSet::from_list(&format!("{}/{prefix}", Ipv6Addr::from(net)));
            let set = set.map_err(proptest::test_runner::TestCaseError::fail)?;
            let mask = mask128(prefix);
            let probe_text = Ipv6Addr::from(probe).to_string();
            // Dotted-quad IPv6 text (`::1.2.3.4`) still contains `:`, so it is read as IPv6.
            proptest::prop_assert_eq!(set.contains(probe_text.as_bytes()), probe & mask == net & mask);
        }

        #[test]
        fn never_panics(list in ".{0,40}", input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            if let Ok(set) = IpSet::from_list(&list) {
                let _ = set.contains(&input);
            }
        }
    }
}
