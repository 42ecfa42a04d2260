//! Full mutual-TLS 1.3 handshakes between two in-process endpoints, over memory.
//!
//! Both variants use the same certificates (leaves with the SPIFFE URI SAN and a DNS SAN,
//! so WebPKI accepts them too), the same certificate resolvers, the same aws-lc-rs
//! provider and TLS 1.3 only, and no session resumption, so only the verifiers differ.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::verify::{BundleHandle, client_config, peer_id, server_config};
use bulkhead_identity::{SpiffeId, TrustBundle, TrustDomain};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::rate;

const TD: &str = "bench.local";
const SERVER_DNS: &str = "api.bench.internal";

/// Handshake rates per round.
pub(crate) struct Handshakes {
    /// With `SpiffeServerCertVerifier` / `SpiffeClientCertVerifier`.
    pub(crate) spiffe_per_s: Vec<f64>,
    /// With rustls's `WebPkiServerVerifier` / `WebPkiClientVerifier`.
    pub(crate) webpki_per_s: Vec<f64>,
    /// What was negotiated (the same for both variants).
    pub(crate) negotiated: String,
}

/// A client and a server configuration that handshake with each other.
struct Pair {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

/// The shared PKI: one root, a server and a client leaf.
struct Pki {
    root: CertificateDer<'static>,
    server: Arc<SvidSource>,
    client: Arc<SvidSource>,
}

pub(crate) fn run(round: Duration, rounds: usize) -> Result<Handshakes> {
    let pki = pki()?;
    let spiffe = spiffe_pair(&pki)?;
    let webpki = webpki_pair(&pki)?;
    // Sanity: both are real mutual handshakes, and the SPIFFE one yields both IDs.
    let (client, server) = handshake(&spiffe)?;
    ensure!(
        peer_id(&client).as_ref() == Some(pki.server.id()),
        "server ID"
    );
    ensure!(
        peer_id(&server).as_ref() == Some(pki.client.id()),
        "client ID"
    );
    let spiffe_negotiated = negotiated(&client);
    let (client, server) = handshake(&webpki)?;
    ensure!(
        server.peer_certificates().is_some(),
        "WebPKI run is not mutual"
    );
    ensure!(
        negotiated(&client) == spiffe_negotiated,
        "the variants negotiated different parameters"
    );

    let mut out = Handshakes {
        spiffe_per_s: Vec::new(),
        webpki_per_s: Vec::new(),
        negotiated: spiffe_negotiated,
    };
    for _ in 0..rounds {
        out.webpki_per_s
            .push(rate(round, || handshake(&webpki).map(drop))?);
        out.spiffe_per_s
            .push(rate(round, || handshake(&spiffe).map(drop))?);
    }
    Ok(out)
}

/// Protocol, cipher suite and key-exchange group, e.g. `TLSv1_3 TLS13_AES_256_GCM_SHA384
/// X25519MLKEM768`.
fn negotiated(client: &ClientConnection) -> String {
    let suite = client.negotiated_cipher_suite().map(|s| s.suite());
    let group = client.negotiated_key_exchange_group().map(|g| g.name());
    format!("{:?} {:?} {:?}", client.protocol_version(), suite, group)
        .replace("Some(", "")
        .replace(')', "")
}

/// One full handshake, moving bytes between the two sides until neither is handshaking.
fn handshake(pair: &Pair) -> Result<(ClientConnection, ServerConnection)> {
    let name = ServerName::try_from(SERVER_DNS)?;
    let mut client = Connection::Client(ClientConnection::new(pair.client.clone(), name)?);
    let mut server = Connection::Server(ServerConnection::new(pair.server.clone())?);
    let mut buf = Vec::with_capacity(16 * 1024);
    // A TLS 1.3 mutual handshake needs two flights each way; the bound catches a stall.
    for _ in 0..8 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return match (client, server) {
                (Connection::Client(c), Connection::Server(s)) => Ok((c, s)),
                _ => unreachable!("sides are fixed above"),
            };
        }
        transfer(&mut client, &mut server, &mut buf).context("client → server")?;
        transfer(&mut server, &mut client, &mut buf).context("server → client")?;
    }
    bail!("handshake did not complete")
}

fn transfer(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf)?;
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest)?;
        to.process_new_packets()?;
    }
    Ok(())
}

fn pki() -> Result<Pki> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "bench root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let root = params.self_signed(&key)?.der().clone();
    let issuer = Issuer::new(params, key);
    let td = TrustDomain::new(TD)?;
    let leaf = |sa: &str, dns: &str| -> Result<Arc<SvidSource>> {
        let id = SpiffeId::for_workload(&td, "bench", sa)?;
        let (chain, key) = leaf(&issuer, &id, dns)?;
        Ok(SvidSource::new(chain, key)?)
    };
    Ok(Pki {
        server: leaf("api", SERVER_DNS)?,
        client: leaf("web", "web.bench.internal")?,
        root,
    })
}

/// An SVID leaf that also carries a DNS SAN, so that WebPKI's name check passes.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    id: &SpiffeId,
    dns: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![
        SanType::URI(id.as_str().try_into()?),
        SanType::DnsName(dns.try_into()?),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    ))
}

fn spiffe_pair(pki: &Pki) -> Result<Pair> {
    let bundle = TrustBundle::new(TrustDomain::new(TD)?, vec![pki.root.clone()]);
    let client_bundle = BundleHandle::new(bundle.clone())?;
    let server_bundle = BundleHandle::new(bundle)?;
    let expected = Some(pki.server.id().clone());
    Ok(Pair {
        client: Arc::new(client_config(client_bundle, expected, pki.client.clone())?),
        server: Arc::new(server_config(server_bundle, pki.server.clone())?),
    })
}

fn webpki_pair(pki: &Pki) -> Result<Pair> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.clone())?;
    let roots = Arc::new(roots);
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(client_verifier)
        .with_cert_resolver(pki.server.clone());
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    let server_verifier =
        WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build()?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(server_verifier)
        .with_client_cert_resolver(pki.client.clone());
    client.resumption = Resumption::disabled();
    Ok(Pair {
        client: Arc::new(client),
        server: Arc::new(server),
    })
}
