//! Unit tests of the CA: what a root and a leaf contain, TTL caps, storage and rotation.
//! Bad-input classes are table-driven in `tests/ca_bad_input.rs`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
};

use super::*;

const DAY: Duration = Duration::from_secs(86_400);

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://example.org{path}")).unwrap()
}

/// A fixed instant (2030-01-01T00:00:00Z) so that tests never depend on the clock.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn verify(chain: &[CertificateDer<'static>], root: &CertificateDer<'_>, at: SystemTime) {
    let anchors = [webpki::anchor_from_trusted_cert(root).unwrap()];
    let ee = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap());
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .unwrap();
}

fn extension<'a>(
    cert: &'a x509_parser::certificate::X509Certificate<'a>,
    oid: &x509_parser::der_parser::oid::Oid<'static>,
) -> &'a x509_parser::extensions::X509Extension<'a> {
    cert.get_extension_unique(oid).unwrap().unwrap()
}

#[test]
fn init_makes_a_spiffe_root() {
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let (_, root) = x509_parser::parse_x509_certificate(ca.root()).unwrap();
    let bc = root.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    let ku = root.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    let san = root.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("spiffe://example.org")]
    );
    let summary = describe(ca.root()).unwrap();
    assert_eq!(summary.not_before, t0() - CLOCK_SKEW_BACKDATE);
    assert_eq!(summary.not_after, t0() + ROOT_VALIDITY);
    assert_eq!(summary.key_type, "ECDSA P-256");
    assert!(summary.subject.contains("O=Bulkhead") && summary.subject.contains("example.org"));
    assert!(root.raw_serial().len() >= 16, "{}", summary.serial);
    assert_eq!(ca.chain().len(), 1);
    assert_eq!(ca.bundle().roots(), &[ca.root().clone()]);
    let other = CertificateAuthority::init(&td(), t0()).unwrap();
    assert_ne!(describe(other.root()).unwrap().serial, summary.serial);
    assert_ne!(describe(other.root()).unwrap().subject, summary.subject);
}

#[test]
fn issued_leaf_follows_the_x509_svid_spec() {
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let web = id("/ns/shop/sa/web");
    let now = t0() + Duration::from_millis(1500);
    let (svid, key) = ca.issue_with_new_key(&web, None, now).unwrap();
    assert_eq!(
        svid.chain().len(),
        1,
        "the root is not part of the SVID chain"
    );
    assert_eq!(svid.ttl_cap(), None);
    let whole = t0() + Duration::from_secs(1);
    assert_eq!(svid.not_before(), whole - CLOCK_SKEW_BACKDATE);
    assert_eq!(svid.not_after(), whole + DEFAULT_LEAF_TTL);
    let (_, leaf) = x509_parser::parse_x509_certificate(svid.leaf()).unwrap();
    let bc = extension(&leaf, &OID_X509_EXT_BASIC_CONSTRAINTS);
    assert!(bc.critical);
    assert!(matches!(bc.parsed_extension(), ParsedExtension::BasicConstraints(b) if !b.ca));
    let ku = extension(&leaf, &OID_X509_EXT_KEY_USAGE);
    assert!(ku.critical);
    assert!(matches!(ku.parsed_extension(), ParsedExtension::KeyUsage(k) if k.flags == 1));
    match extension(&leaf, &OID_X509_EXT_EXTENDED_KEY_USAGE).parsed_extension() {
        ParsedExtension::ExtendedKeyUsage(e) => {
            assert!(e.server_auth && e.client_auth && !e.any && e.other.is_empty())
        }
        other => panic!("{other:?}"),
    }
    match extension(&leaf, &OID_X509_EXT_SUBJECT_ALT_NAME).parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => {
            assert_eq!(san.general_names, vec![GeneralName::URI(web.as_str())])
        }
        other => panic!("{other:?}"),
    }
    extension(&leaf, &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER);
    let summary = describe(svid.leaf()).unwrap();
    assert_eq!(summary.serial, svid.serial());
    assert_eq!(summary.issuer, ca.subject());
    assert!(!summary.is_ca);
    let key_pair = rcgen::KeyPair::from_pem(&key.key_pem()).unwrap();
    assert_eq!(
        key_pair.public_key_raw(),
        leaf.public_key().subject_public_key.data.as_ref()
    );
    verify(svid.chain(), ca.root(), now);
    assert!(
        svid.chain_pem()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
}

#[test]
fn ttl_is_capped_by_the_maximum_and_by_the_issuer() {
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let web = id("/ns/shop/sa/web");
    let (svid, _) = ca.issue_with_new_key(&web, Some(30 * DAY), t0()).unwrap();
    assert_eq!(svid.ttl_cap(), Some(TtlCap::MaxLeafTtl));
    assert_eq!(svid.not_after(), t0() + DEFAULT_MAX_LEAF_TTL);
    let short = Duration::from_secs(90);
    let (svid, _) = ca.issue_with_new_key(&web, Some(short), t0()).unwrap();
    assert_eq!(svid.not_after(), t0() + short);
    let late = ca.not_after() - Duration::from_secs(3600);
    let (svid, _) = ca.issue_with_new_key(&web, None, late).unwrap();
    assert_eq!(svid.ttl_cap(), Some(TtlCap::IssuerExpiry));
    assert_eq!(svid.not_after(), ca.not_after());
    let err = ca.issue_with_new_key(&web, Some(Duration::ZERO), t0());
    assert!(matches!(err, Err(CaError::ZeroTtl)));
    let err = ca
        .issue_with_new_key(&web, None, ca.not_after())
        .unwrap_err();
    assert!(matches!(err, CaError::Expired { .. }), "{err}");
    let err = ca.issue_with_new_key(&web, None, t0() - DAY).unwrap_err();
    assert!(matches!(err, CaError::NotYetValid { .. }), "{err}");
}

#[test]
fn issue_refuses_ids_outside_the_trust_domain_or_without_path() {
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let other = SpiffeId::parse("spiffe://other.org/ns/a/sa/b").unwrap();
    let err = ca.issue_with_new_key(&other, None, t0()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spiffe://other.org/ns/a/sa/b is not in this CA's trust domain; expected \
         spiffe://example.org/..."
    );
    let err = ca.issue_with_new_key(&td().id(), None, t0()).unwrap_err();
    assert!(matches!(err, CaError::IdWithoutPath { .. }), "{err}");
}

#[test]
fn save_and_load_round_trip_with_private_key_modes() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    ca.save(&dir).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    use std::path::Path;
    assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let json = std::fs::read_to_string(dir.join(METADATA_FILE)).unwrap();
    assert!(json.contains("\"trust_domain\": \"example.org\""), "{json}");
    assert!(json.contains("\"max_leaf_ttl_seconds\": 604800"), "{json}");
    let loaded = CertificateAuthority::load(&dir, Some(&td()), t0()).unwrap();
    assert_eq!(loaded.root(), ca.root());
    assert_eq!(loaded.max_leaf_ttl(), DEFAULT_MAX_LEAF_TTL);
    let (svid, _) = loaded
        .issue_with_new_key(&id("/ns/a/sa/b"), None, t0())
        .unwrap();
    verify(svid.chain(), ca.root(), t0());
    let err = ca.save(&dir).unwrap_err();
    assert!(matches!(err, CaError::AlreadyInitialized { .. }), "{err}");
    let other = TrustDomain::new("other.org").unwrap();
    let err = CertificateAuthority::load(&dir, Some(&other), t0()).unwrap_err();
    assert!(matches!(err, CaError::TrustDomainMismatch { .. }), "{err}");
    let err = CertificateAuthority::load(tmp.path(), None, t0()).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a Bulkhead CA directory (ca.json is missing)"),
        "{err}"
    );
}

#[test]
fn svid_files_are_written_with_a_private_key_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    let (svid, key) = ca
        .issue_with_new_key(&id("/ns/a/sa/b"), None, t0())
        .unwrap();
    let out = tmp.path().join("svid");
    // An existing, world-readable key file is replaced, not reused.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join(SVID_KEY_FILE), "old").unwrap();
    std::fs::set_permissions(out.join(SVID_KEY_FILE), PermissionsExt::from_mode(0o644)).unwrap();
    write_svid_files(&out, &svid, &key, ca.bundle()).unwrap();
    let meta = std::fs::metadata(out.join(SVID_KEY_FILE)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(out.join(SVID_KEY_FILE)).unwrap(),
        key.key_pem()
    );
    assert_eq!(
        std::fs::read_to_string(out.join(SVID_CERT_FILE)).unwrap(),
        svid.chain_pem()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rotation_stages_activates_and_drops_the_old_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CaDir::new(tmp.path().join("ca"));
    let old = CertificateAuthority::init(&td(), t0()).unwrap();
    dir.create(&old).unwrap();
    let new = CertificateAuthority::init(&td(), t0()).unwrap();
    assert!(dir.stage_rotation(&new).unwrap());
    assert_eq!(
        dir.bundle().unwrap().roots(),
        &[old.root().clone(), new.root().clone()]
    );
    assert_eq!(
        dir.signing_root().unwrap(),
        *old.root(),
        "old CA keeps signing"
    );
    assert_eq!(dir.staged_root().unwrap().as_ref(), Some(new.root()));
    let err = dir.stage_rotation(&new).unwrap_err();
    assert!(matches!(err, CaError::RotationInProgress { .. }), "{err}");
    let err = dir
        .remove_roots(new.chain_pem().as_bytes(), "new.pem")
        .unwrap_err();
    assert!(
        err.to_string().contains("the staged CA chains to it"),
        "{err}"
    );

    let activation = dir.activate_rotation(t0()).unwrap();
    assert!(activation.root_changed());
    assert_eq!(activation.old_root, *old.root());
    let retired = activation.retired;
    assert_eq!(dir.signing_root().unwrap(), *new.root());
    assert_eq!(dir.staged_root().unwrap(), None);
    assert!(retired.join(CA_KEY_FILE).exists());
    let loaded = dir.load(None, t0()).unwrap();
    assert_eq!(
        loaded.bundle().roots().len(),
        2,
        "both roots trusted meanwhile"
    );
    let (svid, _) = loaded
        .issue_with_new_key(&id("/ns/a/sa/b"), None, t0())
        .unwrap();
    verify(svid.chain(), new.root(), t0());
    let err = dir.activate_rotation(t0()).unwrap_err();
    assert!(matches!(err, CaError::NoRotationStaged { .. }), "{err}");

    let err = dir
        .remove_roots(new.chain_pem().as_bytes(), "new.pem")
        .unwrap_err();
    assert!(
        err.to_string().contains("the signing CA chains to it"),
        "{err}"
    );
    let old_pem = std::fs::read(retired.join(CA_CERT_FILE)).unwrap();
    let removed = dir.remove_roots(&old_pem, "old.pem").unwrap();
    assert_eq!(removed[0].sha256, sha256_fingerprint(old.root()));
    assert_eq!(dir.bundle().unwrap().roots(), &[new.root().clone()]);
    let err = dir.remove_roots(&old_pem, "old.pem").unwrap_err();
    assert!(matches!(err, CaError::RootNotFound { .. }), "{err}");
    let added = dir.add_roots(&old_pem, "old.pem").unwrap();
    assert!(added[0].1);
    assert!(!dir.add_roots(&old_pem, "old.pem").unwrap()[0].1);
}

#[test]
fn load_refuses_a_bundle_without_the_signing_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CaDir::new(tmp.path());
    let ca = CertificateAuthority::init(&td(), t0()).unwrap();
    dir.create(&ca).unwrap();
    let other = CertificateAuthority::init(&td(), t0()).unwrap();
    std::fs::write(tmp.path().join(BUNDLE_FILE), other.bundle().to_pem()).unwrap();
    let err = dir.load(None, t0()).unwrap_err();
    assert!(matches!(err, CaError::RootNotInBundle { .. }), "{err}");
}

#[test]
fn times_serials_and_durations_print_plainly() {
    assert_eq!(rfc3339(t0()), "2030-01-01T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661);
    assert_eq!(rfc3339(leap), "2000-02-29T01:01:01Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
        "1969-12-31T23:59:59Z"
    );
    assert_eq!(format_duration(DAY * 7), "7d");
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(serial_text(&[0x00, 0x81, 0x02]), "008102");
    assert_eq!(serial_text(&[0x7f, 0x02]), "7f02");
    assert_eq!(serial_text(&[0x00, 0x00, 0x12]), "12");
}

#[test]
fn rotating_to_a_new_intermediate_under_the_same_root_keeps_the_bundle() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root_params = CertificateParams::default();
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params.not_before = (t0() - DAY).into();
    root_params.not_after = (t0() + 3650 * DAY).into();
    let root = root_params.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root_params.clone(), root_key);
    let intermediate = |cn: &str| {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = root_params.clone();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &issuer).unwrap();
        let chain = format!("{}{}", der_to_pem(cert.der()), der_to_pem(root.der()));
        CertificateAuthority::from_pem(
            chain.as_bytes(),
            key.serialize_pem().as_bytes(),
            &td(),
            t0(),
            DEFAULT_MAX_LEAF_TTL,
        )
        .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = CaDir::new(tmp.path());
    dir.create(&intermediate("first")).unwrap();
    assert!(
        !dir.stage_rotation(&intermediate("second")).unwrap(),
        "same root"
    );
    let activation = dir.activate_rotation(t0()).unwrap();
    assert!(!activation.root_changed());
    assert_eq!(
        dir.bundle().unwrap().roots(),
        std::slice::from_ref(root.der())
    );
    let ca = dir.load(None, t0()).unwrap();
    assert!(ca.subject().contains("second"), "{}", ca.subject());
}

#[test]
fn the_ca_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CertificateAuthority>();
    assert_send_sync::<IssuedSvid>();
    assert_send_sync::<KeyAndCsr>();
}
