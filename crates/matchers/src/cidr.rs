//! CIDR parsing and IP sets for Kubernetes NetworkPolicy `ipBlock` and Istio
//! `ipBlocks` / `remoteIpBlocks` / `source.ip` conditions.
//!
//! An [`IpSet`] flattens any number of CIDRs (minus their `except` lists)
//! into sorted, merged address ranges, so a lookup is one binary search
//! whatever the policy looks like.
//!
//! IPv4 and IPv6 are kept apart: an IPv4-mapped IPv6 address such as
//! `::ffff:10.0.0.1` is an IPv6 address here and is not matched by
//! `10.0.0.0/8`. Guessing that a mapped address "is" IPv4 is a policy
//! decision, so callers that accept dual-stack sockets should canonicalize
//! with [`IpAddr::to_canonical`] before asking.

mod ranges;

use std::net::IpAddr;

use ipnet::IpNet;

use ranges::Ranges;

/// Why a string is not a CIDR; every message shows an example of what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// No `/prefix-length`, and bare addresses were not allowed.
    #[error(
        "expected a CIDR such as 10.0.0.0/8 or fd00::/8, got {input:?} without a /prefix-length"
    )]
    MissingPrefix {
        /// The rejected text.
        input: String,
    },
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error(
        "expected a CIDR such as 10.0.0.0/8 or fd00::/8, got {input:?} whose address is not \
         a valid IPv4 or IPv6 address"
    )]
    InvalidAddress {
        /// The rejected text.
        input: String,
    },
    /// The part after `/` is not a number in `0..=max`.
    #[error(
        "expected a CIDR such as 10.0.0.0/8 or fd00::/8, got {input:?} whose prefix length is \
         not a number from 0 to {max}"
    )]
    InvalidPrefixLen {
        /// The rejected text.
        input: String,
        /// Largest prefix length for the address family (32 or 128).
        max: u8,
    },
}

/// Parses `addr/len`, or a bare address as a host route when `allow_bare_ip`.
///
/// Host bits are accepted and cleared (`10.1.2.3/8` is `10.0.0.0/8`), as
/// Kubernetes' parser does. Surrounding whitespace, zones (`%eth0`) and IPv4
/// octets with leading zeros are rejected.
pub fn parse_cidr(s: &str, allow_bare_ip: bool) -> Result<IpNet, CidrError> {
    let (addr, len) = match s.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None if allow_bare_ip => (s, None),
        None => {
            return Err(CidrError::MissingPrefix {
                input: s.to_owned(),
            });
        }
    };
    let ip: IpAddr = addr.parse().map_err(|_| CidrError::InvalidAddress {
        input: s.to_owned(),
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(text) => parse_prefix_len(text)
            .filter(|&n| n <= max)
            .ok_or_else(|| CidrError::InvalidPrefixLen {
                input: s.to_owned(),
                max,
            })?,
    };
    IpNet::new(ip, len)
        .map(|net| net.trunc())
        .map_err(|_| CidrError::InvalidPrefixLen {
            input: s.to_owned(),
            max,
        })
}

/// Decimal digits only: `str::parse` would also take a leading `+`.
fn parse_prefix_len(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether `inner` lies entirely inside `outer` (same family; equal counts).
pub fn is_subnet_of(inner: &IpNet, outer: &IpNet) -> bool {
    match (inner, outer) {
        (IpNet::V4(i), IpNet::V4(o)) => {
            o.prefix_len() <= i.prefix_len() && o.contains(&i.network())
        }
        (IpNet::V6(i), IpNet::V6(o)) => {
            o.prefix_len() <= i.prefix_len() && o.contains(&i.network())
        }
        _ => false,
    }
}

/// Whether `inner` lies inside `outer` and is smaller, as Kubernetes requires
/// of every NetworkPolicy `except` entry.
pub fn is_strict_subnet_of(inner: &IpNet, outer: &IpNet) -> bool {
    inner.prefix_len() > outer.prefix_len() && is_subnet_of(inner, outer)
}

/// A set of IPv4 and IPv6 addresses stored as merged, sorted ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

impl IpSet {
    /// The union of `nets`.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> IpSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            push_range(&mut v4, &mut v6, &net);
        }
        IpSet {
            v4: Ranges::from_unsorted(v4),
            v6: Ranges::from_unsorted(v6),
        }
    }

    /// The union over blocks of (cidr minus its excepts), as in a
    /// NetworkPolicy `ipBlock`; excepts outside their cidr or of the other
    /// family remove nothing.
    pub fn from_blocks(blocks: &[(IpNet, Vec<IpNet>)]) -> IpSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (cidr, excepts) in blocks {
            let block = IpSet::new([*cidr]);
            let holes = IpSet::new(excepts.iter().copied());
            v4.extend_from_slice(block.v4.subtract(&holes.v4).as_slice());
            v6.extend_from_slice(block.v6.subtract(&holes.v6).as_slice());
        }
        IpSet {
            v4: Ranges::from_unsorted(v4),
            v6: Ranges::from_unsorted(v6),
        }
    }

    /// Whether `ip` is in the set; IPv4-mapped IPv6 addresses are IPv6 here.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.contains(u128::from(v6)),
        }
    }

    /// Whether the set holds no address at all.
    pub fn is_empty(&self) -> bool {
        self.len_ranges() == 0
    }

    /// Number of disjoint ranges stored (IPv4 and IPv6 together).
    pub fn len_ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

impl FromIterator<IpNet> for IpSet {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        IpSet::new(iter)
    }
}

fn push_range(v4: &mut Vec<(u32, u32)>, v6: &mut Vec<(u128, u128)>, net: &IpNet) {
    match net {
        IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
        IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
    }
}

#[cfg(test)]
mod tests;
