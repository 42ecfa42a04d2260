//! Table-driven verification tests, one row per class of go-spiffe's X509-SVID test data
//! (plus the chain classes around them): each row builds its certificates with rcgen and
//! names the exact error and the words the operator reads.

mod svid_testca;

use std::time::SystemTime;

use bulkhead_identity::svid::SvidError;
use bulkhead_identity::verify::{Usage, VerifyError, verify_svid_chain, verify_svid_chain_for};
use bulkhead_identity::{SpiffeId, SpiffeIdError, TrustBundle};
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use rustls_pki_types::CertificateDer;
use svid_testca::{LeafSpec, TestCa, uri_san};
use time::Duration as D;

const TD: &str = "example.test";
const ID: &str = "spiffe://example.test/ns/shop/sa/web";

/// What a row must produce.
enum Want {
    /// Accepted with this ID.
    Id(&'static str),
    /// Refused with an error for which the predicate holds, whose message contains the text.
    Err(fn(&VerifyError) -> bool, &'static str),
}

struct Case {
    name: &'static str,
    chain: Vec<CertificateDer<'static>>,
    bundle: TrustBundle,
    expected: Option<&'static str>,
    usage: Usage,
    want: Want,
}

fn case(name: &'static str, ca: &TestCa, spec: LeafSpec, want: Want) -> Case {
    Case {
        name,
        chain: ca.issue(&spec).chain,
        bundle: ca.bundle(),
        expected: None,
        usage: Usage::Any,
        want,
    }
}

// The case tables below are long on purpose: one row per class, all in one place.

fn svid_rule_cases(ca: &TestCa) -> Vec<Case> {
    let spec = || LeafSpec::svid(ID);
    vec![
        case("valid SVID", ca, spec(), Want::Id(ID)),
        case(
            "leaf is a CA",
            ca,
            LeafSpec {
                is_ca: IsCa::Ca(BasicConstraints::Unconstrained),
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::LeafIsCa)),
                "not an SVID: leaf is a CA certificate (basicConstraints CA:true)",
            ),
        ),
        case(
            "two URI SANs",
            ca,
            LeafSpec {
                sans: vec![uri_san(ID), uri_san("spiffe://example.test/ns/shop/sa/api")],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::MultipleUriSans(u)) if u.len() == 2),
                "2 URI SANs (spiffe://example.test/ns/shop/sa/web, spiffe://example.test/ns/shop/sa/api): an SVID has exactly one",
            ),
        ),
        case(
            "DNS SAN only",
            ca,
            LeafSpec {
                sans: vec![SanType::DnsName("web.shop.svc".try_into().unwrap())],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::NoUriSan)),
                "not an SVID: no URI SAN: a DNS-only certificate is not an SVID",
            ),
        ),
        case(
            "no SAN at all",
            ca,
            LeafSpec {
                sans: vec![],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::NoSan)),
                "no URI SAN: the certificate has no subject alternative names",
            ),
        ),
        case(
            "URI SAN with an https scheme",
            ca,
            LeafSpec {
                sans: vec![uri_san("https://example.test/ns/shop/sa/web")],
                ..spec()
            },
            Want::Err(
                |e| {
                    matches!(
                        e,
                        VerifyError::NotAnSvid(SvidError::InvalidId {
                            source: SpiffeIdError::WrongScheme,
                            ..
                        })
                    )
                },
                "URI SAN \"https://example.test/ns/shop/sa/web\" is not a valid SPIFFE ID: scheme must be lower-case `spiffe://`",
            ),
        ),
        case(
            "URI SAN with an upper-case scheme",
            ca,
            LeafSpec {
                sans: vec![uri_san("SPIFFE://example.test/ns/shop/sa/web")],
                ..spec()
            },
            Want::Err(
                |e| {
                    matches!(
                        e,
                        VerifyError::NotAnSvid(SvidError::InvalidId {
                            source: SpiffeIdError::WrongScheme,
                            ..
                        })
                    )
                },
                "scheme must be lower-case",
            ),
        ),
        case(
            "SPIFFE ID with a port",
            ca,
            LeafSpec {
                sans: vec![uri_san("spiffe://example.test:8443/ns/shop/sa/web")],
                ..spec()
            },
            Want::Err(
                |e| {
                    matches!(
                        e,
                        VerifyError::NotAnSvid(SvidError::InvalidId {
                            source: SpiffeIdError::Port,
                            ..
                        })
                    )
                },
                "trust domain must not carry a port",
            ),
        ),
        case(
            "SPIFFE ID with a dot segment",
            ca,
            LeafSpec {
                sans: vec![uri_san("spiffe://example.test/ns/../sa/web")],
                ..spec()
            },
            Want::Err(
                |e| {
                    matches!(
                        e,
                        VerifyError::NotAnSvid(SvidError::InvalidId {
                            source: SpiffeIdError::DotSegment,
                            ..
                        })
                    )
                },
                "'.' or '..' segments",
            ),
        ),
        case(
            "keyCertSign on a leaf",
            ca,
            LeafSpec {
                key_usages: vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyCertSign,
                ],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::KeyCertSign)),
                "keyUsage includes keyCertSign, which an SVID leaf must not have",
            ),
        ),
        case(
            "cRLSign on a leaf",
            ca,
            LeafSpec {
                key_usages: vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::CrlSign)),
                "keyUsage includes cRLSign",
            ),
        ),
        case(
            "keyUsage without digitalSignature",
            ca,
            LeafSpec {
                key_usages: vec![KeyUsagePurpose::KeyEncipherment],
                ..spec()
            },
            Want::Err(
                |e| matches!(e, VerifyError::NotAnSvid(SvidError::NoDigitalSignature)),
                "keyUsage lacks digitalSignature",
            ),
        ),
        case(
            "no keyUsage extension at all",
            ca,
            LeafSpec {
                key_usages: vec![],
                ..spec()
            },
            Want::Id(ID),
        ),
        case(
            "no basicConstraints extension",
            ca,
            LeafSpec {
                is_ca: IsCa::NoCa,
                ..spec()
            },
            Want::Id(ID),
        ),
    ]
}

fn trust_cases(ca: &TestCa) -> Vec<Case> {
    let foreign_td = TestCa::root("other.test");
    let foreign_ca = TestCa::root_named(TD, "another cluster's root");
    let same_name_ca = TestCa::root(TD);
    let intermediate = ca.intermediate();
    let other_id = "spiffe://other.test/ns/shop/sa/web";
    vec![
        Case {
            name: "wrong trust domain (foreign CA)",
            chain: foreign_td.issue(&LeafSpec::svid(other_id)).chain,
            ..base(ca, wrong_td())
        },
        Case {
            name: "wrong trust domain (our CA, other domain's ID)",
            chain: ca.issue(&LeafSpec::svid(other_id)).chain,
            ..base(ca, wrong_td())
        },
        Case {
            name: "wrong expected identity",
            expected: Some("spiffe://example.test/ns/shop/sa/api"),
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::WrongIdentity { .. }),
                    "wrong identity: expected spiffe://example.test/ns/shop/sa/api, but the peer presented spiffe://example.test/ns/shop/sa/web",
                ),
            )
        },
        Case {
            name: "right expected identity",
            expected: Some(ID),
            ..base(ca, Want::Id(ID))
        },
        Case {
            name: "unknown issuer (another CA of the same trust domain)",
            chain: foreign_ca.issue(&LeafSpec::svid(ID)).chain,
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::UnknownIssuer { .. }),
                    "unknown issuer: the certificate for spiffe://example.test/ns/shop/sa/web does not chain to any root in the trust bundle for example.test",
                ),
            )
        },
        Case {
            name: "another CA of the same trust domain and the same name",
            chain: same_name_ca.issue(&LeafSpec::svid(ID)).chain,
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::BadSignature),
                    "not signed by its key (a different CA with the same name",
                ),
            )
        },
        Case {
            name: "intermediate chain",
            chain: intermediate.issue(&LeafSpec::svid(ID)).chain,
            ..base(ca, Want::Id(ID))
        },
        Case {
            name: "intermediate missing from the chain",
            chain: intermediate.issue(&LeafSpec::svid(ID)).chain[..1].to_vec(),
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::UnknownIssuer { .. }),
                    "unknown issuer",
                ),
            )
        },
        Case {
            name: "tampered signature",
            chain: vec![tamper(&ca.issue(&LeafSpec::svid(ID)).chain[0])],
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::BadSignature),
                    "bad signature: the certificate names a CA of the trust bundle as its issuer",
                ),
            )
        },
        Case {
            name: "client-only certificate used as a server",
            chain: ca
                .issue(&LeafSpec {
                    ekus: vec![ExtendedKeyUsagePurpose::ClientAuth],
                    ..LeafSpec::svid(ID)
                })
                .chain,
            usage: Usage::ServerAuth,
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::WrongUsage(Usage::ServerAuth)),
                    "extendedKeyUsage does not allow TLS server authentication (serverAuth)",
                ),
            )
        },
        Case {
            name: "code-signing-only certificate for any usage",
            chain: ca
                .issue(&LeafSpec {
                    ekus: vec![ExtendedKeyUsagePurpose::CodeSigning],
                    ..LeafSpec::svid(ID)
                })
                .chain,
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::WrongUsage(Usage::Any)),
                    "wrong usage",
                ),
            )
        },
        Case {
            name: "signed by a leaf, not a CA",
            chain: signed_by_leaf(ca),
            ..base(
                ca,
                Want::Err(
                    |e| {
                        matches!(
                            e,
                            VerifyError::UnknownIssuer { .. } | VerifyError::InvalidChain(_)
                        )
                    },
                    "",
                ),
            )
        },
        Case {
            name: "empty chain",
            chain: vec![],
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::EmptyChain),
                    "no certificate presented",
                ),
            )
        },
        Case {
            name: "garbage instead of a certificate",
            chain: vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01])],
            ..base(
                ca,
                Want::Err(
                    |e| matches!(e, VerifyError::NotAnSvid(SvidError::Malformed(_))),
                    "not an SVID: malformed certificate",
                ),
            )
        },
    ]
}

fn validity_cases(ca: &TestCa) -> Vec<Case> {
    let spec = |from: D, to: D| LeafSpec::svid(ID).valid(from, to);
    vec![
        case(
            "expired two hours ago",
            ca,
            spec(D::hours(-3), D::hours(-2)),
            Want::Err(
                |e| matches!(e, VerifyError::Expired { .. }),
                "expired: the certificate was valid until ",
            ),
        ),
        case(
            "expired 20 s ago: accepted within the clock-skew allowance",
            ca,
            spec(D::hours(-1), D::seconds(-20)),
            Want::Id(ID),
        ),
        case(
            "expired 2 minutes ago: beyond the allowance",
            ca,
            spec(D::hours(-1), D::minutes(-2)),
            Want::Err(|e| matches!(e, VerifyError::Expired { .. }), "expired"),
        ),
        case(
            "not valid for another two hours",
            ca,
            spec(D::hours(2), D::hours(3)),
            Want::Err(
                |e| matches!(e, VerifyError::NotYetValid { .. }),
                "not yet valid: the certificate is valid from ",
            ),
        ),
        case(
            "valid in 20 s: accepted within the clock-skew allowance",
            ca,
            spec(D::seconds(20), D::hours(1)),
            Want::Id(ID),
        ),
        case(
            "valid in 2 minutes: beyond the allowance",
            ca,
            spec(D::minutes(2), D::hours(1)),
            Want::Err(
                |e| matches!(e, VerifyError::NotYetValid { .. }),
                "check the clocks",
            ),
        ),
    ]
}

fn base(ca: &TestCa, want: Want) -> Case {
    Case {
        name: "",
        chain: ca.issue(&LeafSpec::svid(ID)).chain,
        bundle: ca.bundle(),
        expected: None,
        usage: Usage::Any,
        want,
    }
}

fn wrong_td() -> Want {
    Want::Err(
        |e| matches!(e, VerifyError::WrongTrustDomain { .. }),
        "wrong trust domain: the certificate is for spiffe://other.test/ns/shop/sa/web, in trust domain other.test, but the trust bundle is for example.test",
    )
}

/// Flips a bit near the end of the signature value: still DER, no longer a signature.
fn tamper(cert: &CertificateDer<'_>) -> CertificateDer<'static> {
    let mut bytes = cert.to_vec();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    CertificateDer::from(bytes)
}

/// A chain whose "issuer" is an ordinary SVID leaf.
fn signed_by_leaf(ca: &TestCa) -> Vec<CertificateDer<'static>> {
    let fake_ca = ca.leaf_issuer();
    let leaf = fake_ca.issue(&LeafSpec::svid(ID));
    leaf.chain
}

#[test]
fn every_class_of_bad_certificate_is_named() {
    let ca = TestCa::root(TD);
    let cases = svid_rule_cases(&ca)
        .into_iter()
        .chain(trust_cases(&ca))
        .chain(validity_cases(&ca));
    let mut failures = Vec::new();
    let mut count = 0;
    for c in cases {
        count += 1;
        let expected = c.expected.map(|e| SpiffeId::parse(e).unwrap());
        let got = verify_svid_chain_for(
            &c.chain,
            &c.bundle,
            SystemTime::now(),
            expected.as_ref(),
            c.usage,
        );
        let ok = match (&c.want, &got) {
            (Want::Id(id), Ok(got)) => got.as_str() == *id,
            (Want::Err(pred, text), Err(e)) => pred(e) && e.to_string().contains(text),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: got {:?} / {}",
                c.name,
                got,
                got.as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|e| e.to_string())
            ));
        }
    }
    assert!(count >= 30, "only {count} cases");
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn expired_message_carries_the_date() {
    let ca = TestCa::root(TD);
    let spec = LeafSpec {
        not_before: rcgen::date_time_ymd(2024, 1, 1),
        not_after: rcgen::date_time_ymd(2024, 1, 2) + D::hours(12) + D::minutes(30),
        ..LeafSpec::svid(ID)
    };
    let leaf = ca.issue(&spec);
    let err = verify_svid_chain(&leaf.chain, &ca.bundle(), SystemTime::now(), None).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "expired: the certificate was valid until 2024-01-02T12:30:00Z but it is now "
        ),
        "{err}"
    );
}
