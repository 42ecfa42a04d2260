//! End to end through `bulkhead up` (issue 8, b): traffic between sidecars is encrypted and
//! authenticated.
//!
//! - With mTLS STRICT (a namespace PeerAuthentication; the default is PERMISSIVE), at an
//!   inbound port of a sidecar `up` started, a plaintext HTTP client, a TLS client
//!   without a certificate and a TLS client whose certificate names the very same SPIFFE ID
//!   but comes from another CA all get no answer from the app.
//! - Bytes captured between two sidecars contain none of the request or response
//!   plaintext, and start with a TLS handshake record (0x16).
//!
//! How the bytes are captured: front's sidecar dials whatever address the control plane
//! lists for `api`, which is what api's sidecar registered. A sidecar registers its
//! `listen` address unless its inbound port says `advertise` (a ProxyConfig field meant
//! for port forwards and relays in front of a sidecar). `up` never sets it, so here `api`
//! is declared in DIR without `spec.run` (up applies it but starts nothing) and the test
//! runs api's sidecar itself, under up's control plane with a join token from the CLI:
//! listening on one port and advertising the port of a recording TCP relay owned by the
//! test. front, its sidecar and the control plane are up's. No root, no packet capture,
//! loopback and ephemeral ports only.

#![cfg(target_os = "linux")]

mod mesh;
mod up;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh::{Proc, app, bin, eventually, free_addr};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Not a test of its own: the workload `bulkhead up` starts (see `up/mod.rs`).
#[test]
fn workload_role() {
    up::serve_role_if_asked();
}

/// front (run by up) calls api; api is declared but not run by up. mTLS is STRICT in the
/// namespace (without a PeerAuthentication the mode is PERMISSIVE, as in Istio, and
/// plaintext would be let through to the app).
fn write_dir(dir: &Path) {
    let text = format!(
        "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: default}}
spec: {{mtls: {{mode: STRICT}}}}
---
{}---
{}",
        up::api_workload("api", false),
        up::api_service_and_front()
    );
    std::fs::write(dir.join("mesh.yaml"), text).unwrap();
}

/// A TCP relay on an ephemeral port to `to`, recording every byte in both directions.
fn recording_relay(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                        if into.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (addr, seen)
}

#[test]
fn sidecars_refuse_unauthenticated_clients_and_encrypt_what_they_carry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".bulkhead");
    write_dir(dir.path());
    let path = dir.path().display().to_string();
    let proc = Proc::start(dir.path(), &["up", &path]);
    let rows = up::started(|| proc.stdout_line(""));
    let front = up::row(&rows, "default/front").clone();

    refusals_at(up::local(front.inbound), dir.path());

    // api's sidecar, behind the relay: listens on `listen`, registers the relay's address.
    let api_app = app("api");
    let listen = free_addr();
    let (relay, seen) = recording_relay(listen);
    let config = format!(
        "apiVersion: bulkhead.dev/v1alpha1
kind: ProxyConfig
metadata: {{name: api, namespace: default, labels: {{app: api}}}}
spec:
  serviceAccount: api
  admin: {{listen: \"127.0.0.1:0\"}}
  accessLog: {{enabled: false}}
  inbound:
  - {{listen: \"{listen}\", advertise: \"{relay}\", port: 8080, forwardTo: \"{api_app}\"}}
"
    );
    std::fs::write(dir.path().join("api.yaml"), config).unwrap();
    let token = up::cli(
        &data,
        &[
            "token",
            "create",
            "--join",
            "--namespace",
            "default",
            "--service-account",
            "api",
            "-o",
            "json",
        ],
    );
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let control = std::fs::read_to_string(data.join("context.yaml")).unwrap();
    let control = control
        .split("https://")
        .nth(1)
        .unwrap()
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .next()
        .unwrap()
        .to_owned();
    let api = Proc::start(
        dir.path(),
        &[
            "proxy",
            "--config",
            "api.yaml",
            "--control-plane",
            &control,
            "--control-plane-ca",
            &data.join("tls/ca.pem").display().to_string(),
            "--token",
            token["secret"].as_str().unwrap(),
        ],
    );
    api.log("data path listening");

    let marker = "plaintext-marker-7f3c9a1e";
    let through_front = up::local(front.app);
    let expected = "front got 200: app:api".to_owned();
    eventually("front to reach api through the relay", || {
        up::get(through_front, &format!("/{marker}")).is_some_and(|(_, body)| body == expected)
    });
    for i in 0..5 {
        let (status, body) = up::get(through_front, &format!("/{marker}/{i}")).unwrap();
        assert_eq!((status, body.as_str()), (200, expected.as_str()));
    }
    let captured = seen.lock().unwrap().clone();
    println!(
        "captured {} bytes between front's and api's sidecars",
        captured.len()
    );
    assert!(captured.len() > 1000, "the relay carried the calls");
    assert_eq!(captured[0], 0x16, "a TLS handshake record comes first");
    for plaintext in [marker.as_bytes(), b"app:api", b"GET /", b"HTTP/1.1"] {
        assert!(
            !captured.windows(plaintext.len()).any(|w| w == plaintext),
            "`{}` appears in the bytes between the sidecars",
            String::from_utf8_lossy(plaintext)
        );
    }
    drop(api);
}

/// Plain HTTP, TLS without a client certificate, and TLS with a certificate for front's
/// own SPIFFE ID from another CA: none gets an HTTP answer from `addr`.
fn refusals_at(addr: SocketAddr, dir: &Path) {
    assert_eq!(up::get(addr, "/plain"), None, "plaintext is refused");
    assert_eq!(
        tls_get(addr, None),
        None,
        "TLS without a certificate is refused"
    );

    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&[
        "cert",
        "init",
        "--trust-domain",
        "cluster.local",
        "--out",
        "rogue-ca",
    ]);
    run(&[
        "cert",
        "issue",
        "--ca",
        "rogue-ca",
        "--id",
        "spiffe://cluster.local/ns/default/sa/front",
        "--out",
        "rogue",
    ]);
    let cert = CertificateDer::pem_file_iter(dir.join("rogue/cert.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("rogue/key.pem")).unwrap();
    assert_eq!(
        tls_get(addr, Some((cert, key))),
        None,
        "a certificate from another CA is refused"
    );
}

/// A TLS client (trusting any server, so that only the server's verdict on the client
/// counts) sending `GET /`; the HTTP status line it got back, if any.
fn tls_get(
    addr: SocketAddr,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Option<String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    let _ = tls.read_to_string(&mut text);
    text.lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .map(str::to_owned)
}

/// Accepts any server certificate (signatures still checked).
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
