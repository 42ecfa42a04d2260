//! TLS for the control plane's listener: its own small API CA and serving certificate
//! (kept apart from the mesh CA, whose certificates carry SPIFFE IDs and no host names),
//! and a server configuration that asks for, but does not require, a client SVID.
//!
//! Operators authenticate with bearer tokens and present no certificate; proxies present
//! their SVID for `Watch` and for renewals. The SVID is verified against the mesh bundle
//! with the same verifier the sidecars use; the handler decides what an anonymous client
//! may do.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_identity::TrustBundle;
use bulkhead_identity::ca::{write_private_file, write_public_file};
use bulkhead_identity::verify::{BundleHandle, SpiffeClientCertVerifier};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName as TlsName, ServerConfig, SignatureScheme};

/// The API CA's lifetime.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The serving certificate's lifetime; it is re-issued at every start.
const SERVER_VALIDITY: Duration = Duration::from_secs(398 * 24 * 3600);

/// Why the API's TLS material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Certificate generation failed.
    #[error("cannot make the API certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// The API's TLS material under `DATA/tls`.
#[derive(Debug)]
pub struct ApiTls {
    /// `tls/ca.pem`: what clients trust (goes into contexts and proxy configs).
    pub ca_pem: String,
    /// The serving chain (leaf, API CA).
    pub chain: Vec<CertificateDer<'static>>,
    /// The serving key.
    pub key: PrivateKeyDer<'static>,
}

impl ApiTls {
    /// Loads the API CA from `dir` (creating it on first start) and issues a fresh serving
    /// certificate for `localhost`, `127.0.0.1`, `::1` and `sans`.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<ApiTls, TlsError> {
        let (ca_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        let (ca_pem, ca_key_pem) = if ca_path.exists() {
            let ca = fs::read_to_string(&ca_path).map_err(|e| file_error(&ca_path, e))?;
            let key = fs::read_to_string(&key_path).map_err(|e| file_error(&key_path, e))?;
            (ca, key)
        } else {
            fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
            let (ca, key) = new_ca()?;
            write_private_file(&key_path, key.as_bytes()).map_err(|e| file_error(&key_path, e))?;
            write_public_file(&ca_path, ca.as_bytes()).map_err(|e| file_error(&ca_path, e))?;
            (ca, key)
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| file_error(&key_path, e))?;
        let issuer =
            Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| file_error(&ca_path, e))?;
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| file_error(&ca_path, format!("expected a PEM certificate: {e}")))?;
        let (leaf, key) = server_cert(&issuer, sans)?;
        let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
            .map_err(|e| file_error(dir, e))?;
        let server_path = dir.join("server.pem");
        let pem = format!("{}{}", leaf.pem(), ca_pem);
        write_public_file(&server_path, pem.as_bytes()).map_err(|e| file_error(&server_path, e))?;
        let key_path = dir.join("server-key.pem");
        write_private_file(&key_path, key.serialize_pem().as_bytes())
            .map_err(|e| file_error(&key_path, e))?;
        Ok(ApiTls {
            ca_pem,
            chain: vec![leaf.der().clone(), ca_der],
            key: key_der,
        })
    }

    /// The listener's rustls configuration: TLS 1.3, ALPN `h2` and `http/1.1`, client SVIDs
    /// verified against `bundle` when presented.
    pub fn server_config(&self, bundle: TrustBundle) -> Result<ServerConfig, TlsError> {
        let handle = BundleHandle::new(bundle).map_err(|e| TlsError::File {
            path: PathBuf::from("ca/bundle.pem"),
            message: e.to_string(),
        })?;
        let verifier = OptionalSvid(SpiffeClientCertVerifier::new(handle));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn new_ca() -> Result<(String, String), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Bulkhead control-plane API CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + CA_VALIDITY).into();
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn server_cert(
    issuer: &Issuer<'_, KeyPair>,
    sans: &[String],
) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(sans.iter().cloned());
    names.dedup();
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "bulkhead-control");
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + SERVER_VALIDITY).into();
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

/// The sidecars' client verifier, made optional: operators connect without a certificate.
#[derive(Debug)]
struct OptionalSvid(SpiffeClientCertVerifier);

impl ClientCertVerifier for OptionalSvid {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[TlsName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
