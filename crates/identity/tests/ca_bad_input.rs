//! Table-driven bad-input tests for the CA, modelled on the classes of go-spiffe's
//! bad-certificate test data: every certificate is made here with rcgen, each with exactly
//! one defect, and each case checks the exact error message an operator would read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulkhead_identity::ca::{CaError, CertificateAuthority, KeyAndCsr};
use bulkhead_identity::{SpiffeId, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PKCS_ED25519, SanType,
};
use rustls_pki_types::{CertificateDer, UnixTime};

const DAY: Duration = Duration::from_secs(86_400);
const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);

/// 2030-01-01T00:00:00Z: every validity below is relative to it, so messages are exact.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// A valid CA template named `CN=<cn>`: CA:true, keyCertSign, valid a year back and 5 ahead.
fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    p.distinguished_name = name;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = (t0() - 365 * DAY).into();
    p.not_after = (t0() + 5 * 365 * DAY).into();
    p
}

/// One PEM block with LF line endings (the `pem` crate defaults to CRLF).
fn block(label: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config)
}

fn pem(certs: &[&CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| block("CERTIFICATE", c.to_vec()))
        .collect()
}

/// A self-signed CA from `params`: its PEM and key PEM.
fn self_signed(params: &CertificateParams, key: &KeyPair) -> (String, String) {
    let cert = params.self_signed(key).unwrap();
    (pem(&[cert.der()]), key.serialize_pem())
}

/// A root, and an intermediate `CN=<cn>` under it built from `inter`; returns the chain PEM
/// (intermediate, root), the intermediate's key PEM and the root DER.
fn under_root(
    root: CertificateParams,
    inter: CertificateParams,
) -> (String, String, CertificateDer<'static>) {
    let root_key = p256();
    let root_cert = root.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root, root_key);
    let key = p256();
    let inter_cert = inter.signed_by(&key, &issuer).unwrap();
    (
        pem(&[inter_cert.der(), root_cert.der()]),
        key.serialize_pem(),
        root_cert.der().clone(),
    )
}

fn with(mut p: CertificateParams, f: impl FnOnce(&mut CertificateParams)) -> CertificateParams {
    f(&mut p);
    p
}

struct Case {
    name: &'static str,
    chain: String,
    key: String,
    message: String,
}

fn case(name: &'static str, (chain, key): (String, String), message: &str) -> Case {
    Case {
        name,
        chain,
        key,
        message: message.to_owned(),
    }
}

/// A self-signed CA `CN=<cn>` from the valid template with one change.
fn defect(cn: &str, f: impl FnOnce(&mut CertificateParams)) -> (String, String) {
    self_signed(&with(ca_params(cn), f), &p256())
}

/// How messages name the `n`th certificate of the chain.
fn cert(n: usize, cn: &str) -> String {
    format!("CA certificate chain, certificate #{n} (CN={cn})")
}

const EXPECTED_KEY: &str = "expected an unencrypted ECDSA P-256 key (PKCS#8 `PRIVATE KEY`, \
                            or SEC1 `EC PRIVATE KEY`)";

/// basicConstraints, keyUsage and SPIFFE URI SANs.
fn constraint_cases() -> Vec<Case> {
    let not_ca = "not a CA certificate (basicConstraints is absent or CA:false); expected a \
                  root or intermediate CA with CA:true";
    let uri = SanType::URI("spiffe://other.org".try_into().unwrap());
    let no_cert_sign = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    vec![
        case(
            "leaf presented as CA (no basicConstraints)",
            defect("leaf-as-ca", |p| p.is_ca = IsCa::NoCa),
            &format!("{}: {not_ca}", cert(1, "leaf-as-ca")),
        ),
        case(
            "CA:false",
            defect("ca-false", |p| p.is_ca = IsCa::ExplicitNoCa),
            &format!("{}: {not_ca}", cert(1, "ca-false")),
        ),
        case(
            "keyUsage without keyCertSign",
            defect("no-cert-sign", |p| p.key_usages = no_cert_sign),
            &format!(
                "{}: keyUsage does not include keyCertSign; a CA that signs certificates \
                 needs it",
                cert(1, "no-cert-sign")
            ),
        ),
        case(
            "SPIFFE URI SAN of another trust domain",
            defect("foreign", |p| p.subject_alt_names = vec![uri]),
            &format!(
                "{}: carries URI SAN spiffe://other.org, which is not an ID of trust domain \
                 example.org",
                cert(1, "foreign")
            ),
        ),
        case(
            "directoryName constraints (webpki rejects every leaf under them)",
            defect("dn-constrained", |p| {
                p.name_constraints = Some(NameConstraints {
                    permitted_subtrees: vec![GeneralSubtree::DirectoryName(
                        DistinguishedName::new(),
                    )],
                    excluded_subtrees: vec![],
                })
            }),
            "a test SVID issued by this CA does not verify against its root: \
             NameConstraintViolation",
        ),
    ]
}

/// notBefore / notAfter against `now` and the maximum leaf TTL.
fn validity_cases() -> Vec<Case> {
    let now = "now is 2030-01-01T00:00:00Z";
    vec![
        case(
            "expired CA",
            defect("expired", |p| {
                p.not_before = (t0() - 400 * DAY).into();
                p.not_after = (t0() - DAY).into();
            }),
            &format!(
                "{}: expired at 2029-12-31T00:00:00Z ({now})",
                cert(1, "expired")
            ),
        ),
        case(
            "CA not yet valid",
            defect("future", |p| p.not_before = (t0() + DAY).into()),
            &format!(
                "{}: not valid until 2030-01-02T00:00:00Z ({now})",
                cert(1, "future")
            ),
        ),
        case(
            "CA expires before a maximum-TTL leaf would",
            defect("short", |p| p.not_after = (t0() + 2 * DAY).into()),
            &format!(
                "{}: expires at 2030-01-03T00:00:00Z, too soon to issue a leaf with the \
                 maximum TTL of 7d; expected it to be valid until at least \
                 2030-01-08T00:00:00Z",
                cert(1, "short")
            ),
        ),
    ]
}

/// Key types, formats and the key/certificate match.
fn key_cases() -> Vec<Case> {
    let (ok_chain, _) = defect("ok", |_| {});
    let other_key = p256().serialize_pem();
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let ed25519 = KeyPair::generate_for(&PKCS_ED25519)
        .unwrap()
        .serialize_pem();
    let with_key = |key: String| (ok_chain.clone(), key);
    vec![
        case(
            "key does not match the certificate",
            (defect("mismatch", |_| {}).0, other_key.clone()),
            &format!(
                "CA key: private key does not match the public key of {}",
                cert(1, "mismatch")
            ),
        ),
        case(
            "P-384 CA certificate",
            self_signed(&ca_params("p384"), &p384),
            &format!(
                "{}: a certificate whose key is ECDSA P-384 is not supported; {EXPECTED_KEY}",
                cert(1, "p384")
            ),
        ),
        case(
            "Ed25519 key file",
            with_key(ed25519),
            &format!("CA key: an Ed25519 key is not supported; {EXPECTED_KEY}"),
        ),
        case(
            "encrypted key file",
            with_key(block("ENCRYPTED PRIVATE KEY", vec![1, 2])),
            &format!("CA key: an encrypted private key is not supported; {EXPECTED_KEY}"),
        ),
        case(
            "RSA key file",
            with_key(block("RSA PRIVATE KEY", vec![1, 2])),
            &format!("CA key: an RSA key is not supported; {EXPECTED_KEY}"),
        ),
        case(
            "key file without a key",
            with_key("hello\n".to_owned()),
            "CA key: malformed private key: no PRIVATE KEY block found; expected a PEM \
             `PRIVATE KEY` block",
        ),
    ]
}

/// PEM, DER, order, links, root and path length.
fn chain_cases() -> Vec<Case> {
    let key = p256().serialize_pem();
    let (chain, inter_key, _) = under_root(ca_params("other-root"), ca_params("inter"));
    let mut blocks = chain.split_inclusive("-----END CERTIFICATE-----\n");
    let (inter, root) = (blocks.next().unwrap().to_owned(), blocks.next().unwrap());
    let unrelated = defect("unrelated", |_| {}).0;
    let pinned_root = with(ca_params("pathlen-0-root"), |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0))
    });
    let (pinned, pinned_key, _) = under_root(pinned_root, ca_params("below-pathlen-0"));
    vec![
        case(
            "certificate file without a certificate",
            ("hello\n".to_owned(), key.clone()),
            "CA certificate chain: no CERTIFICATE block found; expected PEM-encoded root \
             certificates",
        ),
        case(
            "certificate block that is not DER X.509",
            (block("CERTIFICATE", vec![0x30, 0x03, 1, 2, 3]), key),
            "CA certificate chain: certificate #1 is not a valid X.509 certificate: Parsing \
             Error: NomError(Eof)",
        ),
        case(
            "chain in the wrong order (root first)",
            (format!("{root}{inter}"), inter_key.clone()),
            &format!(
                "CA key: private key does not match the public key of {}",
                cert(1, "other-root")
            ),
        ),
        case(
            "intermediate followed by an unrelated root",
            (format!("{inter}{unrelated}"), inter_key.clone()),
            &format!(
                "{}: not issued by the next certificate in the chain (CN=unrelated); \
                 expected the CA certificate first, then each issuer in order up to the root",
                cert(1, "inter")
            ),
        ),
        case(
            "intermediate without its root",
            (inter, inter_key),
            "CA certificate chain: the chain ends in CN=inter, which is not a self-signed \
             root; append the root certificate (the bundle needs it)",
        ),
        case(
            "root pathLen 0 forbids the intermediate below it",
            (pinned, pinned_key),
            &format!(
                "{}: pathLenConstraint 0 allows at most 0 intermediate CA certificate(s) \
                 below it, but the chain puts 1 there",
                cert(2, "pathlen-0-root")
            ),
        ),
    ]
}

fn ca_cases() -> Vec<Case> {
    let groups = [
        constraint_cases(),
        validity_cases(),
        key_cases(),
        chain_cases(),
    ];
    groups.into_iter().flatten().collect()
}

#[test]
fn bring_your_own_ca_refuses_each_defect_with_its_own_message() {
    let cases = ca_cases();
    assert_eq!(cases.len(), 20);
    let mut failures = Vec::new();
    for case in cases {
        let result = CertificateAuthority::from_pem(
            case.chain.as_bytes(),
            case.key.as_bytes(),
            &td(),
            t0(),
            MAX_TTL,
        );
        match result {
            Ok(_) => failures.push(format!("{}: accepted", case.name)),
            Err(e) if e.to_string() != case.message => failures.push(format!(
                "{}:\n  got  {e}\n  want {}",
                case.name, case.message
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn verify(chain: &[CertificateDer<'static>], root: &CertificateDer<'_>) {
    let anchors = [webpki::anchor_from_trusted_cert(root).unwrap()];
    let ee = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let time = UnixTime::since_unix_epoch(t0().duration_since(UNIX_EPOCH).unwrap());
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .unwrap();
}

#[test]
fn bring_your_own_ca_accepts_what_the_rules_allow() {
    let web = SpiffeId::parse("spiffe://example.org/ns/shop/sa/web").unwrap();
    // pathLen 0 on the signing CA itself still allows end-entity certificates.
    let pinned = with(ca_params("pathlen-0"), |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages.clear(); // keyUsage absent is allowed too
        p.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())];
    });
    let (chain, key) = self_signed(&pinned, &p256());
    let ca = CertificateAuthority::from_pem(chain.as_bytes(), key.as_bytes(), &td(), t0(), MAX_TTL)
        .unwrap();
    let (svid, _) = ca.issue_with_new_key(&web, None, t0()).unwrap();
    verify(svid.chain(), ca.root());

    // An intermediate under a root with pathLen 1: the SVID chain carries the intermediate.
    let root = with(ca_params("root"), |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1))
    });
    let (chain, key, root_der) = under_root(root, ca_params("intermediate"));
    let ca = CertificateAuthority::from_pem(chain.as_bytes(), key.as_bytes(), &td(), t0(), MAX_TTL)
        .unwrap();
    assert_eq!(ca.bundle().roots(), std::slice::from_ref(&root_der));
    let (svid, _) = ca.issue_with_new_key(&web, None, t0()).unwrap();
    assert_eq!(svid.chain().len(), 2);
    assert_eq!(&svid.chain()[1], ca.certificate());
    verify(svid.chain(), &root_der);

    // A SEC1 `EC PRIVATE KEY` file (what `openssl ecparam -genkey` writes) is accepted.
    let key = p256();
    let (chain, _) = self_signed(&ca_params("sec1"), &key);
    let sec1 = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        key.serialized_der(),
    )
    .unwrap();
    let sec1_der = aws_lc_rs::encoding::AsDer::as_der(&sec1.private_key()).unwrap();
    let sec1_pem = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
        block("EC PRIVATE KEY", sec1_der.as_ref().to_vec())
    );
    CertificateAuthority::from_pem(chain.as_bytes(), sec1_pem.as_bytes(), &td(), t0(), MAX_TTL)
        .unwrap();
}

/// A CSR for `sans` made with a fresh P-256 key.
fn csr(sans: Vec<SanType>) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = sans;
    p.serialize_request(&p256()).unwrap().der().to_vec()
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

type CsrCase = (&'static str, Vec<u8>, String);

/// Proof of possession, key type and encoding.
fn tampered_csr_cases(web: &str) -> Vec<CsrCase> {
    let good = KeyAndCsr::generate(&SpiffeId::parse(web).unwrap()).unwrap();
    let mut bad_signature = good.csr_der().to_vec();
    *bad_signature.last_mut().unwrap() ^= 0x01;
    // Swap `web` for `api` in the requested SAN: an altered request must not verify.
    let mut altered = good.csr_der().to_vec();
    let at = altered.windows(3).rposition(|w| w == b"web").unwrap();
    altered[at..at + 3].copy_from_slice(b"api");
    let mut p = CertificateParams::default();
    p.subject_alt_names = vec![uri(web)];
    let p384_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let p384 = p.serialize_request(&p384_key).unwrap().der().to_vec();
    let no_pop = "CSR signature does not verify: the requester did not prove possession of the \
                  private key, or the request was altered";
    vec![
        (
            "corrupted signature bytes",
            bad_signature,
            no_pop.to_owned(),
        ),
        ("request altered after signing", altered, no_pop.to_owned()),
        (
            "P-384 key",
            p384,
            "CSR uses key type ECDSA P-384 and signature algorithm 1.2.840.10045.4.3.3; \
             expected an ECDSA P-256 key and an ecdsa-with-SHA256 signature"
                .to_owned(),
        ),
        (
            "not DER",
            b"hello".to_vec(),
            "malformed CSR: Parsing Error: NomError(Eof); expected a DER PKCS#10 \
             certification request"
                .to_owned(),
        ),
    ]
}

/// The names asked for: exactly one URI SAN, the authorized one.
fn name_csr_cases(web: &str) -> Vec<CsrCase> {
    let api = "spiffe://example.org/ns/shop/sa/api";
    let upper = web.replace("spiffe", "SPIFFE");
    let dns = SanType::DnsName("web.example.org".try_into().unwrap());
    let only_uri = format!("an X509-SVID carries exactly one URI SAN ({web}) and no other names");
    vec![
        (
            "CSR for another identity",
            csr(vec![uri(api)]),
            format!("CSR asks for {api}, but the requester is authorized only for {web}"),
        ),
        (
            "two URI SANs",
            csr(vec![uri(web), uri(api)]),
            format!("CSR asks for 2 URI SANs ({web}, {api}); expected exactly one: {web}"),
        ),
        (
            "DNS SAN only",
            csr(vec![dns]),
            format!("CSR asks for DNS:web.example.org; {only_uri}"),
        ),
        (
            "URI SAN plus an IP SAN",
            csr(vec![uri(web), SanType::IpAddress([10, 0, 0, 1].into())]),
            format!("CSR asks for IP:10.0.0.1; {only_uri}"),
        ),
        (
            "no SAN at all",
            csr(vec![]),
            format!("CSR asks for no URI SAN; expected exactly one: {web}"),
        ),
        (
            "upper-case scheme",
            csr(vec![uri(&upper)]),
            format!("CSR asks for {upper}, but the requester is authorized only for {web}"),
        ),
    ]
}

#[test]
fn issue_refuses_each_bad_csr_with_its_own_message() {
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let web = "spiffe://example.org/ns/shop/sa/web";
    let authorized = SpiffeId::parse(web).unwrap();
    let mut failures = Vec::new();
    let cases = [tampered_csr_cases(web), name_csr_cases(web)].concat();
    assert_eq!(cases.len(), 10);
    for (name, der, want) in cases {
        match ca.issue(&der, &authorized, None, t0()) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if e.to_string() != want => {
                failures.push(format!("{name}:\n  got  {e}\n  want {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_corrupted_signature_is_caught_by_verification_not_by_parsing() {
    use x509_parser::prelude::FromDer;
    let web = SpiffeId::parse("spiffe://example.org/ns/shop/sa/web").unwrap();
    let good = KeyAndCsr::generate(&web).unwrap();
    let mut der = good.csr_der().to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    // The corrupted request still parses, and still asks for exactly the authorized ID...
    let parsed = x509_parser::certification_request::X509CertificationRequest::from_der(&der);
    assert!(parsed.is_ok());
    // ...so only the signature check can be what refuses it.
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let err = ca.issue(&der, &web, None, t0()).unwrap_err();
    assert!(matches!(err, CaError::CsrSignature), "{err}");
    ca.issue(good.csr_der(), &web, None, t0()).unwrap();
}
