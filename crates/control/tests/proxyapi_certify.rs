//! `Certify` through the service trait: every credential rule.

mod support;

use support::{Env, env, id};

use std::time::{Duration, SystemTime};

use bulkhead_api::proxy::CertifyRequest;
use bulkhead_api::proxy::proxy_api_server::ProxyApi;
use bulkhead_control::server::PeerInfo;
use bulkhead_identity::SpiffeId;
use bulkhead_identity::svid::inspect_leaf;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tonic::{Code, Request};

/// A CSR (PEM) for `uri`, signed by a fresh key.
fn csr(uri: &str) -> String {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn join_token(
    env: &Env,
    sa: &str,
    created: SystemTime,
    ttl: Duration,
    uses: u32,
) -> (String, String) {
    let (info, secret) = env
        .shared
        .store
        .create_join_token(&id(sa), ttl, uses, "test", created)
        .unwrap();
    (info.id, secret)
}

fn request(csr_pem: String, join_token: &str, client: Option<SpiffeId>) -> Request<CertifyRequest> {
    let mut request = Request::new(CertifyRequest {
        csr_pem,
        join_token: join_token.to_owned(),
    });
    request.extensions_mut().insert(PeerInfo {
        addr: "127.0.0.1:40000".parse().unwrap(),
        spiffe_id: client,
    });
    request
}

fn metric(env: &Env, line: &str) -> bool {
    env.shared.metrics.encode().lines().any(|l| l == line)
}

#[tokio::test]
async fn a_join_token_buys_exactly_its_identity_once() {
    let env = env();
    let (_, token) = join_token(&env, "web", SystemTime::now(), Duration::from_secs(3600), 1);
    let response = env
        .svc
        .certify(request(csr(id("web").as_str()), &token, None))
        .await
        .unwrap()
        .into_inner();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(response.cert_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let leaf = inspect_leaf(&chain[0]).unwrap();
    assert_eq!(leaf.id, id("web"));
    let expires = leaf
        .not_after
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(response.expires_unix, i64::try_from(expires).unwrap());
    assert_eq!(response.trust_bundle_pem, env.shared.bundle.to_pem());
    assert!(metric(
        &env,
        r#"bulkhead_control_certificates_issued_total{credential="join_token"} 1"#
    ));

    let again = env
        .svc
        .certify(request(csr(id("web").as_str()), &token, None))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
    assert!(again.message().contains("used up"), "{}", again.message());
    assert!(metric(
        &env,
        r#"bulkhead_control_certify_refused_total{reason="token_used_up"} 1"#
    ));
}

#[tokio::test]
async fn unknown_malformed_expired_and_revoked_tokens_are_refused() {
    let env = env();
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    let (_, expired) = join_token(&env, "web", day_ago, Duration::from_secs(3600), 1);
    let (revoked_id, revoked) =
        join_token(&env, "web", SystemTime::now(), Duration::from_secs(3600), 5);
    env.shared.store.revoke_token(&revoked_id, "test").unwrap();
    let unknown = format!("bhj_{}", "0".repeat(64));
    let cases = [
        (unknown.as_str(), "unknown token", "token_unknown"),
        ("bhj_nope", "malformed", "token_malformed"),
        (expired.as_str(), "expired", "token_expired"),
        (revoked.as_str(), "revoked", "token_revoked"),
    ];
    for (token, says, reason) in cases {
        let err = env
            .svc
            .certify(request(csr(id("web").as_str()), token, None))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token}");
        assert!(err.message().contains(says), "{token}: {}", err.message());
        let counted = format!(r#"bulkhead_control_certify_refused_total{{reason="{reason}"}} 1"#);
        assert!(metric(&env, &counted), "{counted}");
    }
}

#[tokio::test]
async fn a_csr_for_another_identity_is_denied_naming_both() {
    let env = env();
    let (_, token) = join_token(&env, "web", SystemTime::now(), Duration::from_secs(3600), 1);
    let err = env
        .svc
        .certify(request(csr(id("admin").as_str()), &token, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains(id("admin").as_str()),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains(id("web").as_str()),
        "{}",
        err.message()
    );
    assert!(metric(
        &env,
        r#"bulkhead_control_certify_refused_total{reason="csr_identity"} 1"#
    ));
}

#[tokio::test]
async fn a_malformed_csr_is_invalid() {
    let env = env();
    let err = env
        .svc
        .certify(request("not a csr".into(), "", Some(id("web"))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("CERTIFICATE REQUEST"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn renewal_needs_the_client_certificate_and_keeps_its_identity() {
    let env = env();
    let err = env
        .svc
        .certify(request(csr(id("web").as_str()), "", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message()
            .contains("present the current SVID as TLS client certificate or a join token"),
        "{}",
        err.message()
    );
    // No PeerInfo at all counts the same.
    let bare = Request::new(CertifyRequest {
        csr_pem: csr(id("web").as_str()),
        join_token: String::new(),
    });
    assert_eq!(
        env.svc.certify(bare).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let renewed = env
        .svc
        .certify(request(csr(id("web").as_str()), "", Some(id("web"))))
        .await
        .unwrap()
        .into_inner();
    let leaf = CertificateDer::from_pem_slice(renewed.cert_chain_pem.as_bytes()).unwrap();
    assert_eq!(inspect_leaf(&leaf).unwrap().id, id("web"));
    assert!(metric(
        &env,
        r#"bulkhead_control_certificates_issued_total{credential="renewal"} 1"#
    ));

    let other = env
        .svc
        .certify(request(csr(id("admin").as_str()), "", Some(id("web"))))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);
    assert!(
        other.message().contains("client certificate is for"),
        "{}",
        other.message()
    );
}
