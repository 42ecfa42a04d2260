//! rustls integration: SPIFFE certificate verifiers, TLS 1.3-only configurations, and the
//! verified peer's identity.
//!
//! Both verifiers read the bundle from a [`BundleHandle`] at every handshake, so a root
//! added or removed there applies to the next handshake. Session resumption is switched off
//! in the configurations built here: a resumed TLS 1.3 session skips certificate
//! verification, which would let a peer keep using a chain to a root that was since
//! dropped, and would hide a peer's expired SVID.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName, Error,
    OtherError, PeerIncompatible, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{BundleHandle, Check, Usage, VerifyError, system_time};
use crate::spiffe::SpiffeId;
use crate::svid;

/// The aws-lc-rs provider all of Bulkhead's TLS uses, built once.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The provider's signature algorithms, for chains and handshake signatures alike.
pub(crate) fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// Verifies a chain for `usage` against the bundle in force now.
fn verify_peer(
    bundle: &BundleHandle,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    expected: Option<&SpiffeId>,
    usage: Usage,
) -> Result<SpiffeId, Error> {
    let prepared = bundle.prepared();
    let check = Check {
        anchors: &prepared.anchors,
        trust_domain: prepared.bundle.trust_domain(),
        algorithms: algorithms().all,
        usage,
    };
    check
        .verify(end_entity, intermediates, system_time(now), expected)
        .map_err(|e| {
            tracing::debug!(error = %e, usage = ?usage, "peer certificate rejected");
            Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })
}

/// The reason a handshake failed in one of this module's verifiers, if it did.
pub fn verify_error(err: &Error) -> Option<&VerifyError> {
    match err {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<VerifyError>()
        }
        _ => None,
    }
}

/// TLS 1.2 is never negotiated by these configurations; refuse outright if asked.
fn tls12_refused() -> Result<HandshakeSignatureValid, Error> {
    Err(Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered))
}

/// Client side: verifies the server's X.509-SVID. The DNS server name is ignored (SPIFFE
/// identifies peers by SPIFFE ID); an expected ID, when set, must match exactly.
pub struct SpiffeServerCertVerifier {
    bundle: BundleHandle,
    expected: Option<SpiffeId>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeServerCertVerifier {
    /// A verifier trusting `bundle`, accepting any ID of its trust domain or only `expected`.
    pub fn new(bundle: BundleHandle, expected: Option<SpiffeId>) -> Self {
        SpiffeServerCertVerifier {
            bundle,
            expected,
            algorithms: algorithms(),
        }
    }
}

impl fmt::Debug for SpiffeServerCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeServerCertVerifier")
            .field("bundle", &self.bundle)
            .field("expected", &self.expected.as_ref().map(SpiffeId::as_str))
            .finish()
    }
}

impl ServerCertVerifier for SpiffeServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        verify_peer(
            &self.bundle,
            end_entity,
            intermediates,
            now,
            self.expected.as_ref(),
            Usage::ServerAuth,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Server side: requires a client X.509-SVID and verifies it. Which client may do what is
/// left to authorization policy, which reads the ID with [`peer_id`].
pub struct SpiffeClientCertVerifier {
    bundle: BundleHandle,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeClientCertVerifier {
    /// A verifier trusting `bundle`.
    pub fn new(bundle: BundleHandle) -> Self {
        SpiffeClientCertVerifier {
            bundle,
            algorithms: algorithms(),
        }
    }
}

impl fmt::Debug for SpiffeClientCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientCertVerifier")
            .field("bundle", &self.bundle)
            .finish()
    }
}

impl ClientCertVerifier for SpiffeClientCertVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // A workload holds exactly one SVID, so hints would not change its choice; and
        // hints borrowed from `self` could not follow a bundle swap anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        verify_peer(
            &self.bundle,
            end_entity,
            intermediates,
            now,
            None,
            Usage::ClientAuth,
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.3-only server configuration (aws-lc-rs) that requires and verifies client
/// SVIDs against `bundle` and presents the certificate `certs` resolves at each handshake.
pub fn server_config(
    bundle: BundleHandle,
    certs: Arc<dyn ResolvesServerCert>,
) -> Result<ServerConfig, Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(SpiffeClientCertVerifier::new(bundle)))
        .with_cert_resolver(certs);
    // No resumption: every connection re-verifies the peer against the current bundle.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A TLS 1.3-only client configuration (aws-lc-rs) that verifies the server's SVID against
/// `bundle` (and `expected`, when given) and presents the certificate `certs` resolves.
pub fn client_config(
    bundle: BundleHandle,
    expected: Option<SpiffeId>,
    certs: Arc<dyn ResolvesClientCert>,
) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerCertVerifier::new(bundle, expected)))
        .with_client_cert_resolver(certs);
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The SPIFFE ID of the peer, once a handshake with one of these verifiers has completed.
pub fn peer_id(conn: &CommonState) -> Option<SpiffeId> {
    svid::leaf_id(conn.peer_certificates()?.first()?).ok()
}
