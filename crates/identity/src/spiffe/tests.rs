use proptest::prelude::*;

use super::*;

#[test]
fn valid_ids_and_accessors() {
    let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    assert_eq!(id.trust_domain_name(), "cluster.local");
    assert_eq!(id.path(), "/ns/shop/sa/web");
    assert_eq!(id.principal(), "cluster.local/ns/shop/sa/web");
    assert_eq!(id.workload(), Some(("shop", "web")));
    assert_eq!(id.namespace(), Some("shop"));
    assert_eq!(id.service_account(), Some("web"));
    let td = SpiffeId::parse("spiffe://example.org").unwrap();
    assert_eq!(td.path(), "");
    assert_eq!(td.workload(), None);
    assert_eq!(td, TrustDomain::new("example.org").unwrap().id());
    let other = SpiffeId::parse("spiffe://td/ns/a/sa/b/extra").unwrap();
    assert_eq!(other.workload(), None);
    let built = SpiffeId::for_workload(&TrustDomain::new("td").unwrap(), "a", "b").unwrap();
    assert_eq!(built.as_str(), "spiffe://td/ns/a/sa/b");
}

#[test]
fn each_rule_has_its_own_error() {
    use SpiffeIdError::*;
    let cases: &[(&str, SpiffeIdError)] = &[
        ("", Empty),
        ("http://td/x", WrongScheme),
        ("SPIFFE://td/x", WrongScheme),
        ("spiffe:/td/x", WrongScheme),
        ("spiffe:///x", MissingTrustDomain),
        ("spiffe://", MissingTrustDomain),
        ("spiffe://TD/x", BadTrustDomainChar('T')),
        ("spiffe://td:8080/x", Port),
        ("spiffe://user@td/x", UserInfo),
        ("spiffe://td/x?y=1", Query),
        ("spiffe://td?y", Query),
        ("spiffe://td/x#frag", Fragment),
        ("spiffe://td/a//b", EmptySegment),
        ("spiffe://td/a/./b", DotSegment),
        ("spiffe://td/a/..", DotSegment),
        ("spiffe://td/a/", TrailingSlash),
        ("spiffe://td/", TrailingSlash),
        ("spiffe://td/a%20b", BadPathChar('%')),
        ("spiffe://td/a b", BadPathChar(' ')),
    ];
    for (input, want) in cases {
        assert_eq!(SpiffeId::parse(input).as_ref(), Err(want), "{input}");
    }
    let long_td = format!("spiffe://{}/x", "a".repeat(256));
    assert_eq!(SpiffeId::parse(&long_td), Err(TrustDomainTooLong));
    let long_id = format!("spiffe://td/{}", "a".repeat(2048));
    assert_eq!(SpiffeId::parse(&long_id), Err(TooLong));
    assert_eq!(TrustDomain::new("a.b-c_d").unwrap().as_str(), "a.b-c_d");
    assert_eq!(TrustDomain::new("Example"), Err(BadTrustDomainChar('E')));
}

/// Reference reading of the specification, written independently of the parser.
fn reference_valid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("spiffe://") else {
        return false;
    };
    let (td, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let td_ok = !td.is_empty()
        && td.len() <= 255
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let path_ok = path.is_empty()
        || path[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    td_ok && path_ok && s.len() <= 2048
}

proptest! {
    /// The parser accepts exactly what the reference reading accepts.
    #[test]
    fn parser_agrees_with_reference(s in "(spiffe://|SPIFFE://|spiffe:/)?[a-zA-Z0-9._:@?#% -]{0,8}(/[a-zA-Z0-9._?#-]{0,4}){0,3}") {
        prop_assert_eq!(SpiffeId::parse(&s).is_ok(), reference_valid(&s), "{}", s);
    }

    /// Valid mesh identities round-trip through Display and keep their parts.
    #[test]
    fn mesh_ids_round_trip(td in "[a-z0-9.-]{1,20}", ns in "[a-z0-9-]{1,10}", sa in "[a-z0-9-]{1,10}") {
        let td = TrustDomain::new(&td).unwrap();
        let id = SpiffeId::for_workload(&td, &ns, &sa).unwrap();
        let again = SpiffeId::parse(&id.to_string()).unwrap();
        prop_assert_eq!(again.workload(), Some((ns.as_str(), sa.as_str())));
        prop_assert_eq!(again.trust_domain(), td);
    }
}
