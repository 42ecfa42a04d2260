//! Real TLS 1.3 handshakes in process (tokio-rustls over `tokio::io::duplex`) with the
//! SPIFFE verifiers: mutual authentication, each refusal with its reason, a root rotation
//! with traffic throughout, and an SVID rotation under an established connection.

mod svid_testca;

use std::io;
use std::sync::Arc;

use bulkhead_identity::SpiffeId;
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::svid::inspect_leaf;
use bulkhead_identity::verify::{
    BundleHandle, SpiffeServerCertVerifier, VerifyError, client_config, peer_id, server_config,
    verify_error,
};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use svid_testca::{Leaf, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

const TD: &str = "example.test";
const CLIENT: &str = "/ns/shop/sa/web";
const SERVER: &str = "/ns/shop/sa/api";

type Outcome = (
    io::Result<client::TlsStream<DuplexStream>>,
    io::Result<server::TlsStream<DuplexStream>>,
);

/// Runs one handshake over an in-memory pipe; both sides' results.
async fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> Outcome {
    let (c, s) = tokio::io::duplex(64 * 1024);
    // SPIFFE verification ignores the DNS name; any valid name will do.
    let name = ServerName::try_from("api.shop.invalid").unwrap();
    let connect = TlsConnector::from(client.clone()).connect(name, c);
    let accept = TlsAcceptor::from(server.clone()).accept(s);
    tokio::join!(connect, accept)
}

/// The rustls error inside a tokio-rustls I/O error.
fn tls_error(e: &io::Error) -> &rustls::Error {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a TLS error: {e}"))
}

/// The SPIFFE reason inside a tokio-rustls I/O error.
fn reason(e: &io::Error) -> VerifyError {
    verify_error(tls_error(e))
        .unwrap_or_else(|| panic!("no SPIFFE reason in {e}"))
        .clone()
}

fn source(leaf: Leaf) -> Arc<SvidSource> {
    SvidSource::new(leaf.chain, leaf.key).unwrap()
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://{TD}{path}")).unwrap()
}

fn configs(
    ca: &TestCa,
    expected: Option<SpiffeId>,
) -> (Arc<ClientConfig>, Arc<ServerConfig>, Arc<SvidSource>) {
    let client_bundle = BundleHandle::new(ca.bundle()).unwrap();
    let server_bundle = BundleHandle::new(ca.bundle()).unwrap();
    let server_source = source(ca.svid(SERVER));
    let client = client_config(client_bundle, expected, source(ca.svid(CLIENT))).unwrap();
    let server = server_config(server_bundle, server_source.clone()).unwrap();
    (Arc::new(client), Arc::new(server), server_source)
}

/// Sends a line each way over an established connection.
async fn exchange(
    client: &mut client::TlsStream<DuplexStream>,
    server: &mut server::TlsStream<DuplexStream>,
) {
    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    server.flush().await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn mutual_tls_exposes_both_peer_ids() {
    let ca = TestCa::root(TD);
    let (client, server, _) = configs(&ca, Some(id(SERVER)));
    let (c, s) = handshake(&client, &server).await;
    let (mut c, mut s) = (c.unwrap(), s.unwrap());
    assert_eq!(
        c.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(peer_id(c.get_ref().1), Some(id(SERVER)));
    assert_eq!(peer_id(s.get_ref().1), Some(id(CLIENT)));
    exchange(&mut c, &mut s).await;
}

#[tokio::test]
async fn intermediate_issued_svids_handshake() {
    let root = TestCa::root(TD);
    let ca = root.intermediate();
    let (client, server, _) = configs(&ca, None);
    let (c, s) = handshake(&client, &server).await;
    assert_eq!(peer_id(c.unwrap().get_ref().1), Some(id(SERVER)));
    assert_eq!(peer_id(s.unwrap().get_ref().1), Some(id(CLIENT)));
}

#[tokio::test]
async fn wrong_server_identity_is_refused_by_the_client() {
    let ca = TestCa::root(TD);
    let (client, server, _) = configs(&ca, Some(id("/ns/shop/sa/db")));
    let (c, s) = handshake(&client, &server).await;
    let err = reason(&c.unwrap_err());
    assert_eq!(
        err,
        VerifyError::WrongIdentity {
            expected: id("/ns/shop/sa/db"),
            presented: id(SERVER)
        }
    );
    assert!(s.is_err(), "the server sees the client's alert");
}

#[tokio::test]
async fn server_from_a_foreign_ca_is_refused() {
    let ca = TestCa::root(TD);
    let foreign = TestCa::root_named(TD, "foreign root");
    let client_bundle = BundleHandle::new(ca.bundle()).unwrap();
    let client = client_config(client_bundle, None, source(ca.svid(CLIENT))).unwrap();
    let server = server_config(
        BundleHandle::new(foreign.bundle()).unwrap(),
        source(foreign.svid(SERVER)),
    )
    .unwrap();
    let (c, _) = handshake(&Arc::new(client), &Arc::new(server)).await;
    let err = reason(&c.unwrap_err());
    assert!(matches!(err, VerifyError::UnknownIssuer { .. }), "{err}");
}

#[tokio::test]
async fn client_from_a_foreign_ca_is_refused() {
    let ca = TestCa::root(TD);
    let foreign = TestCa::root_named(TD, "foreign root");
    let client = client_config(
        BundleHandle::new(ca.bundle()).unwrap(),
        None,
        source(foreign.svid(CLIENT)),
    )
    .unwrap();
    let server = server_config(
        BundleHandle::new(ca.bundle()).unwrap(),
        source(ca.svid(SERVER)),
    )
    .unwrap();
    let (_, s) = handshake(&Arc::new(client), &Arc::new(server)).await;
    let err = reason(&s.unwrap_err());
    assert!(matches!(err, VerifyError::UnknownIssuer { .. }), "{err}");
}

#[tokio::test]
async fn a_client_without_certificate_is_refused() {
    let ca = TestCa::root(TD);
    let (_, server, _) = configs(&ca, None);
    let verifier = SpiffeServerCertVerifier::new(BundleHandle::new(ca.bundle()).unwrap(), None);
    let client = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(verifier))
    .with_no_client_auth();
    let (_, s) = handshake(&Arc::new(client), &server).await;
    let err = s.unwrap_err();
    assert_eq!(tls_error(&err), &rustls::Error::NoCertificatesPresented);
}

#[tokio::test]
async fn tls12_is_refused() {
    let ca = TestCa::root(TD);
    let (_, server, _) = configs(&ca, None);
    let verifier = SpiffeServerCertVerifier::new(BundleHandle::new(ca.bundle()).unwrap(), None);
    let client = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(verifier))
    .with_client_cert_resolver(source(ca.svid(CLIENT)));
    let (c, s) = handshake(&Arc::new(client), &server).await;
    assert!(c.is_err());
    assert!(matches!(
        tls_error(&s.unwrap_err()),
        rustls::Error::PeerIncompatible(_)
    ));
}

/// The documented root rotation: add the new root everywhere, re-issue, drop the old root.
/// The configurations are built once; only the shared bundles and sources change.
#[tokio::test]
async fn handshakes_keep_working_across_a_root_rotation() {
    let old = TestCa::root_named(TD, "root 2025");
    let new = TestCa::root_named(TD, "root 2026");
    let client_bundle = BundleHandle::new(old.bundle()).unwrap();
    let server_bundle = BundleHandle::new(old.bundle()).unwrap();
    let client_svid = source(old.svid(CLIENT));
    let server_svid = source(old.svid(SERVER));
    let client = Arc::new(
        client_config(client_bundle.clone(), Some(id(SERVER)), client_svid.clone()).unwrap(),
    );
    let server = Arc::new(server_config(server_bundle.clone(), server_svid.clone()).unwrap());
    let ok = |(c, s): Outcome| {
        let (c, s) = (c.expect("client side"), s.expect("server side"));
        assert_eq!(peer_id(c.get_ref().1), Some(id(SERVER)));
        assert_eq!(peer_id(s.get_ref().1), Some(id(CLIENT)));
    };
    ok(handshake(&client, &server).await);

    // 1. Both sides trust old and new.
    for bundle in [&client_bundle, &server_bundle] {
        assert!(bundle.update(|b| b.add(new.cert.clone())).unwrap());
    }
    ok(handshake(&client, &server).await);

    // 2. Re-issue the server from the new root: the client already trusts it.
    let leaf = new.svid(SERVER);
    server_svid.install(leaf.chain, leaf.key).unwrap();
    ok(handshake(&client, &server).await);

    // 3. Re-issue the client.
    let leaf = new.svid(CLIENT);
    client_svid.install(leaf.chain, leaf.key).unwrap();
    ok(handshake(&client, &server).await);

    // 4. Drop the old root on both sides.
    for bundle in [&client_bundle, &server_bundle] {
        assert!(bundle.update(|b| b.remove(&old.cert)).unwrap().unwrap());
    }
    ok(handshake(&client, &server).await);

    // A straggler still holding an old-root SVID is now refused, and told why.
    let leaf = old.svid(SERVER);
    server_svid.install(leaf.chain, leaf.key).unwrap();
    let (c, _) = handshake(&client, &server).await;
    let err = reason(&c.unwrap_err());
    assert!(matches!(err, VerifyError::UnknownIssuer { .. }), "{err}");
}

/// An SVID rotated under a live connection: the next handshake presents the new
/// certificate, and the connection established before keeps carrying traffic.
#[tokio::test]
async fn svid_rotation_keeps_established_connections() {
    let ca = TestCa::root(TD);
    let (client, server, server_svid) = configs(&ca, Some(id(SERVER)));
    let (c, s) = handshake(&client, &server).await;
    let (mut old_c, mut old_s) = (c.unwrap(), s.unwrap());
    let old_serial = serial_of(&old_c);
    exchange(&mut old_c, &mut old_s).await;

    let mut changes = server_svid.subscribe();
    let leaf = ca.svid(SERVER);
    server_svid.install(leaf.chain, leaf.key).unwrap();
    assert!(changes.has_changed().unwrap());
    let new_serial = changes.borrow_and_update().serial.clone();
    assert_ne!(new_serial, old_serial);

    let (c, s) = handshake(&client, &server).await;
    let (mut new_c, mut new_s) = (c.unwrap(), s.unwrap());
    assert_eq!(serial_of(&new_c), new_serial);
    exchange(&mut new_c, &mut new_s).await;
    // The connection made with the old certificate is untouched.
    exchange(&mut old_c, &mut old_s).await;
    assert_eq!(serial_of(&old_c), old_serial);
}

fn serial_of(c: &client::TlsStream<DuplexStream>) -> String {
    let certs = c.get_ref().1.peer_certificates().unwrap();
    inspect_leaf(&certs[0]).unwrap().serial
}
