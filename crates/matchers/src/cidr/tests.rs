use super::ranges::Bound;
use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn net(s: &str) -> IpNet {
    parse_cidr(s, true).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn block(cidr: &str, excepts: &[&str]) -> (IpNet, Vec<IpNet>) {
    (net(cidr), excepts.iter().map(|e| net(e)).collect())
}

#[test]
fn parses_cidrs_and_masks_host_bits() {
    assert_eq!(parse_cidr("10.0.0.0/8", false), Ok(net("10.0.0.0/8")));
    assert_eq!(
        parse_cidr("10.1.2.3/8", false).unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        parse_cidr("fd00::1/8", false).unwrap().to_string(),
        "fd00::/8"
    );
    assert_eq!(
        parse_cidr("0.0.0.0/0", false).unwrap().to_string(),
        "0.0.0.0/0"
    );
    assert_eq!(parse_cidr("::/0", false).unwrap().to_string(), "::/0");
    assert_eq!(
        parse_cidr("10.0.0.0/08", false).unwrap().to_string(),
        "10.0.0.0/8"
    );
}

#[test]
fn bare_addresses_only_when_allowed() {
    assert_eq!(
        parse_cidr("10.0.0.1", true).unwrap().to_string(),
        "10.0.0.1/32"
    );
    assert_eq!(parse_cidr("::1", true).unwrap().to_string(), "::1/128");
    assert!(matches!(
        parse_cidr("10.0.0.1", false),
        Err(CidrError::MissingPrefix { .. })
    ));
}

#[test]
fn rejects_malformed_cidrs() {
    for bad in [
        "",
        "/8",
        "abc/8",
        " 10.0.0.0/8",
        "010.0.0.0/8",
        "fe80::1%eth0/64",
        "10.0.0/8",
    ] {
        assert!(
            matches!(parse_cidr(bad, true), Err(CidrError::InvalidAddress { .. })),
            "{bad:?}"
        );
    }
    for bad in [
        "10.0.0.0/",
        "10.0.0.0/8 ",
        "10.0.0.0/33",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "10.0.0.0/8/8",
        "::/129",
        "::/0008",
    ] {
        assert!(
            matches!(
                parse_cidr(bad, true),
                Err(CidrError::InvalidPrefixLen { .. })
            ),
            "{bad:?}"
        );
    }
    let msg = parse_cidr("nope", false).unwrap_err().to_string();
    assert!(
        msg.contains("expected a CIDR such as 10.0.0.0/8 or fd00::/8"),
        "{msg}"
    );
    let msg = parse_cidr("::/200", false).unwrap_err().to_string();
    assert!(msg.contains("0 to 128"), "{msg}");
}

#[test]
fn subnet_checks() {
    assert!(is_subnet_of(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
    assert!(is_subnet_of(&net("10.0.0.0/8"), &net("10.0.0.0/8")));
    assert!(!is_strict_subnet_of(&net("10.0.0.0/8"), &net("10.0.0.0/8")));
    assert!(is_strict_subnet_of(&net("10.0.0.1"), &net("10.0.0.0/8")));
    assert!(!is_subnet_of(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
    assert!(!is_subnet_of(&net("11.0.0.0/16"), &net("10.0.0.0/8")));
    assert!(is_subnet_of(&net("fd00::/16"), &net("::/0")));
    assert!(!is_subnet_of(&net("10.0.0.0/8"), &net("::/0")));
    assert!(!is_subnet_of(
        &net("::ffff:10.0.0.0/104"),
        &net("0.0.0.0/0")
    ));
}

#[test]
fn whole_families_stay_apart() {
    let v4 = IpSet::new([net("0.0.0.0/0")]);
    assert!(v4.contains(ip("0.0.0.0")));
    assert!(v4.contains(ip("255.255.255.255")));
    assert!(!v4.contains(ip("::")));
    // IPv4-mapped IPv6 is IPv6.
    assert!(!v4.contains(ip("::ffff:10.0.0.1")));
    assert_eq!(v4.len_ranges(), 1);

    let v6 = IpSet::new([net("::/0")]);
    assert!(v6.contains(ip("::")));
    assert!(v6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    assert!(v6.contains(ip("::ffff:10.0.0.1")));
    assert!(!v6.contains(ip("10.0.0.1")));
}

#[test]
fn empty_sets() {
    let empty = IpSet::new([]);
    assert!(empty.is_empty());
    assert_eq!(empty.len_ranges(), 0);
    assert!(!empty.contains(ip("10.0.0.1")));
    assert!(IpSet::from_blocks(&[]).is_empty());
    assert!(IpSet::from_blocks(&[block("10.0.0.0/8", &["10.0.0.0/8"])]).is_empty());
    assert!(IpSet::from_blocks(&[block("10.0.0.0/8", &["0.0.0.0/0"])]).is_empty());
}

#[test]
fn adjacent_and_overlapping_ranges_merge() {
    let set = IpSet::new([net("10.0.0.0/25"), net("10.0.0.128/25")]);
    assert_eq!(set.len_ranges(), 1);
    assert_eq!(set, IpSet::new([net("10.0.0.0/24")]));
    let halves = IpSet::new([net("128.0.0.0/1"), net("0.0.0.0/1")]);
    assert_eq!(halves, IpSet::new([net("0.0.0.0/0")]));
    let top = IpSet::new([
        net("255.255.255.255"),
        net("255.255.255.254"),
        net("255.255.255.0/24"),
    ]);
    assert_eq!(top.len_ranges(), 1);
    let gap = IpSet::new([net("10.0.0.0/32"), net("10.0.0.2/32")]);
    assert_eq!(gap.len_ranges(), 2);
    assert!(!gap.contains(ip("10.0.0.1")));
    let v6 = IpSet::new([net("::/1"), net("8000::/1"), net("fd00::/8")]);
    assert_eq!(v6, IpSet::new([net("::/0")]));
}

#[test]
fn excepts_split_ranges_at_exact_boundaries() {
    let set = IpSet::from_blocks(&[block("10.0.0.0/8", &["10.1.0.0/16"])]);
    assert_eq!(set.len_ranges(), 2);
    assert!(set.contains(ip("10.0.255.255")));
    assert!(!set.contains(ip("10.1.0.0")));
    assert!(!set.contains(ip("10.1.255.255")));
    assert!(set.contains(ip("10.2.0.0")));

    let start = IpSet::from_blocks(&[block("10.0.0.0/8", &["10.0.0.0/24"])]);
    assert_eq!(start.len_ranges(), 1);
    assert!(!start.contains(ip("10.0.0.255")));
    assert!(start.contains(ip("10.0.1.0")));

    let end = IpSet::from_blocks(&[block("10.0.0.0/8", &["10.255.255.0/24"])]);
    assert!(end.contains(ip("10.255.254.255")));
    assert!(!end.contains(ip("10.255.255.0")));
    assert!(!end.contains(ip("11.0.0.0")));

    let all = IpSet::from_blocks(&[block("0.0.0.0/0", &["0.0.0.0/32", "255.255.255.255/32"])]);
    assert_eq!(all.len_ranges(), 1);
    assert!(!all.contains(ip("0.0.0.0")));
    assert!(all.contains(ip("0.0.0.1")));
    assert!(all.contains(ip("255.255.255.254")));
    assert!(!all.contains(ip("255.255.255.255")));
}

#[test]
fn except_next_to_range_start_keeps_single_address() {
    let set = IpSet::from_blocks(&[block("10.0.0.0/24", &["10.0.0.1/32", "10.0.0.254/32"])]);
    assert_eq!(set.len_ranges(), 3);
    assert!(set.contains(ip("10.0.0.0")));
    assert!(!set.contains(ip("10.0.0.1")));
    assert!(set.contains(ip("10.0.0.2")));
    assert!(!set.contains(ip("10.0.0.254")));
    assert!(set.contains(ip("10.0.0.255")));
}

#[test]
fn excepts_outside_or_of_other_family_remove_nothing() {
    let set = IpSet::from_blocks(&[block("10.0.0.0/8", &["192.168.0.0/16", "::/0"])]);
    assert_eq!(set, IpSet::new([net("10.0.0.0/8")]));
    let v6 = IpSet::from_blocks(&[block("::/0", &["::/1", "0.0.0.0/0"])]);
    assert_eq!(v6, IpSet::new([net("8000::/1")]));
}

#[test]
fn one_blocks_except_does_not_cut_another_block() {
    let set = IpSet::from_blocks(&[
        block("10.0.0.0/8", &["10.1.0.0/16"]),
        block("10.1.2.0/24", &[]),
    ]);
    assert!(set.contains(ip("10.1.2.3")));
    assert!(!set.contains(ip("10.1.3.0")));
    assert_eq!(set.len_ranges(), 3);
}

#[test]
fn collects_from_iterator() {
    let set: IpSet = [net("10.0.0.0/8"), net("fd00::/8")].into_iter().collect();
    assert!(set.contains(ip("10.2.3.4")));
    assert!(set.contains(ip("fd12::1")));
}

fn assert_canonical<T: Bound + std::fmt::Debug>(ranges: &[(T, T)]) {
    for r in ranges {
        assert!(r.0 <= r.1, "{r:?}");
    }
    for w in ranges.windows(2) {
        let next = w[0].1.succ().expect("a range ending at MAX must be last");
        assert!(next < w[1].0, "unmerged {w:?}");
    }
}

fn naive_contains(blocks: &[(IpNet, Vec<IpNet>)], ip: IpAddr) -> bool {
    blocks
        .iter()
        .any(|(cidr, excepts)| cidr.contains(&ip) && !excepts.iter().any(|e| e.contains(&ip)))
}

fn neighbours(a: IpAddr) -> [IpAddr; 3] {
    match a {
        IpAddr::V4(a) => {
            let x = u32::from(a);
            [x.wrapping_sub(1), x, x.wrapping_add(1)].map(|x| IpAddr::V4(x.into()))
        }
        IpAddr::V6(a) => {
            let x = u128::from(a);
            [x.wrapping_sub(1), x, x.wrapping_add(1)].map(|x| IpAddr::V6(x.into()))
        }
    }
}

/// Low address bytes biased to the edges of /25 and /24 blocks, where
/// ranges start and end.
fn low_byte() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..4, 126u8..130, 252u8..=255, any::<u8>()]
}

/// IPv4 addresses clustered in a few /24s so random nets and probes collide.
fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    let base = prop_oneof![
        Just(0u32),
        Just(0x0A00_0000),
        Just(0x0A00_0100),
        Just(0xFFFF_FF00)
    ];
    (base, low_byte()).prop_map(|(b, low)| Ipv4Addr::from(b | u32::from(low)))
}

/// IPv6 addresses clustered the same way.
fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
    let base = prop_oneof![Just(0u128), Just(0xfd00u128 << 112), Just(u128::MAX << 8)];
    (base, low_byte()).prop_map(|(b, low)| Ipv6Addr::from(b | u128::from(low)))
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_addr().prop_map(IpAddr::V4),
        v6_addr().prop_map(IpAddr::V6)
    ]
}

/// Nets mostly small (inside one cluster) and sometimes huge.
fn any_net() -> impl Strategy<Value = IpNet> {
    let v4 = (
        v4_addr(),
        prop_oneof![2 => 30u8..=32, 2 => 24u8..=29, 1 => 0u8..=32],
    )
        .prop_map(|(a, len)| IpNet::V4(ipnet::Ipv4Net::new(a, len).unwrap().trunc()));
    let v6 = (
        v6_addr(),
        prop_oneof![2 => 126u8..=128, 2 => 120u8..=125, 1 => 0u8..=128],
    )
        .prop_map(|(a, len)| IpNet::V6(ipnet::Ipv6Net::new(a, len).unwrap().trunc()));
    prop_oneof![v4, v6]
}

fn blocks() -> impl Strategy<Value = Vec<(IpNet, Vec<IpNet>)>> {
    proptest::collection::vec(
        (any_net(), proptest::collection::vec(any_net(), 0..4)),
        0..5,
    )
}

proptest! {
    // Subtraction edge cases need several nets to line up; more cases find them.
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn from_blocks_agrees_with_naive(blocks in blocks(), probes in proptest::collection::vec(any_ip(), 1..40)) {
        let set = IpSet::from_blocks(&blocks);
        assert_canonical(set.v4.as_slice());
        assert_canonical(set.v6.as_slice());
        for probe in probes {
            prop_assert_eq!(set.contains(probe), naive_contains(&blocks, probe), "{}", probe);
        }
        // Range ends are where off-by-one errors live: probe every input
        // and output boundary and its neighbours.
        let inputs = blocks.iter().flat_map(|(c, ex)| std::iter::once(c).chain(ex));
        for n in inputs {
            for a in [n.network(), n.broadcast()] {
                for probe in neighbours(a) {
                    prop_assert_eq!(set.contains(probe), naive_contains(&blocks, probe), "{}", probe);
                }
            }
        }
        for &(s, e) in set.v4.as_slice() {
            for x in [s.wrapping_sub(1), s, e, e.wrapping_add(1)] {
                let probe = IpAddr::V4(Ipv4Addr::from(x));
                prop_assert_eq!(set.contains(probe), naive_contains(&blocks, probe), "{}", probe);
            }
        }
        for &(s, e) in set.v6.as_slice() {
            for x in [s.wrapping_sub(1), s, e, e.wrapping_add(1)] {
                let probe = IpAddr::V6(Ipv6Addr::from(x));
                prop_assert_eq!(set.contains(probe), naive_contains(&blocks, probe), "{}", probe);
            }
        }
    }

    #[test]
    fn new_is_union(nets in proptest::collection::vec(any_net(), 0..8), probe in any_ip()) {
        let set = IpSet::new(nets.iter().copied());
        prop_assert_eq!(set.contains(probe), nets.iter().any(|n| n.contains(&probe)));
        prop_assert_eq!(set.is_empty(), nets.is_empty());
    }

    #[test]
    fn parse_round_trips_display(net in any_net()) {
        prop_assert_eq!(parse_cidr(&net.to_string(), false), Ok(net));
    }

    #[test]
    fn subnet_agrees_with_containment(inner in any_net(), outer in any_net()) {
        let expected = outer.contains(&inner.network()) && outer.contains(&inner.broadcast())
            && std::mem::discriminant(&inner) == std::mem::discriminant(&outer);
        prop_assert_eq!(is_subnet_of(&inner, &outer), expected);
    }
}
