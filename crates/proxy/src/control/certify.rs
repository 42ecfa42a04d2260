//! Identity from the control plane: the first certificate bought with a join token, and
//! renewals (`Certify` with the current SVID as TLS client certificate and no token) as
//! the [`Signer`] of [`SvidSource::spawn_renewal`], which schedules them at half the
//! lifetime ± jitter and retries with backoff.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_api::proxy::CertifyRequest;
use bulkhead_identity::bundle::{der_to_pem, parse_certificates};
use bulkhead_identity::ca::KeyAndCsr;
use bulkhead_identity::rotation::{BoxFuture, SignError, Signer, SvidSource};
use bulkhead_identity::verify::{BundleHandle, verify_svid_chain};
use bulkhead_identity::{SpiffeId, TrustBundle};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::backoff::{Backoff, BackoffConfig};
use super::connect::Client;
use super::error::ControlError;
use super::state::StateDir;

/// How long one `Certify` call may take.
const CERTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// A certificate `Certify` returned, checked against the bundle that came with it.
pub(crate) struct Certified {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) bundle: TrustBundle,
}

impl Certified {
    /// The chain as PEM, leaf first.
    pub(crate) fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| der_to_pem(c)).collect()
    }
}

/// One `Certify` call for the key of `csr_der`; `identity` is the client certificate
/// (renewals) or `None` (with a join token).
pub(crate) async fn certify(
    client: &Client,
    csr_der: &[u8],
    join_token: &str,
    identity: Option<Arc<SvidSource>>,
    expected: &SpiffeId,
) -> Result<Certified, ControlError> {
    let mut api = client.connect(identity).await?;
    let request = CertifyRequest {
        csr_pem: pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr_der.to_vec())),
        join_token: join_token.to_owned(),
    };
    let response = tokio::time::timeout(CERTIFY_TIMEOUT, api.certify(request))
        .await
        .map_err(|e| client.unreachable(&e))?
        .map_err(|status| client.refused("Certify", &status))?
        .into_inner();
    let bad = |message: String| ControlError::BadCertificate {
        address: client.address().to_string(),
        message,
    };
    let chain = parse_certificates(response.cert_chain_pem.as_bytes(), "cert_chain_pem")
        .map_err(|e| bad(e.to_string()))?;
    let bundle = TrustBundle::from_pem(
        expected.trust_domain(),
        response.trust_bundle_pem.as_bytes(),
        "trust_bundle_pem",
    )
    .map_err(|e| bad(e.to_string()))?;
    // A chain that does not verify, or names another workload, would only be refused by
    // every peer later; refuse it here, where the reason is clear.
    verify_svid_chain(&chain, &bundle, SystemTime::now(), Some(expected))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Certified { chain, bundle })
}

/// The first identity: a fresh key and its certificate.
pub(crate) struct Joined {
    pub(crate) svid: Arc<SvidSource>,
    pub(crate) certified: Certified,
    pub(crate) key_pem: String,
}

/// Buys the first certificate with the join token.
pub(crate) async fn join(
    client: &Client,
    id: &SpiffeId,
    token: &str,
) -> Result<Joined, ControlError> {
    let key = KeyAndCsr::generate(id).map_err(|e| ControlError::Field {
        field: "spec.serviceAccount".into(),
        message: format!("cannot make a CSR for `{id}`: {e}"),
    })?;
    let certified = certify(client, key.csr_der(), token, None, id).await?;
    let svid = SvidSource::new(certified.chain.clone(), PrivateKeyDer::Pkcs8(key.key_der()))
        .map_err(|e| ControlError::BadCertificate {
            address: client.address().to_string(),
            message: e.to_string(),
        })?;
    Ok(Joined {
        svid,
        certified,
        key_pem: key.key_pem(),
    })
}

/// [`join`] until it succeeds or the control plane refuses the token; an unreachable
/// control plane is logged once and retried with backoff.
pub(crate) async fn join_with_retries(
    client: &Client,
    id: &SpiffeId,
    token: &str,
    backoff: &BackoffConfig,
) -> Result<Joined, ControlError> {
    let mut backoff = Backoff::new(backoff.clone());
    let mut attempt: u32 = 0;
    loop {
        match join(client, id, token).await {
            Ok(joined) => return Ok(joined),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                let delay = backoff.next_delay();
                if attempt == 0 {
                    tracing::warn!(error = %e, spiffe_id = %id,
                        "cannot get a certificate from the control plane yet; retrying");
                } else {
                    tracing::debug!(error = %e, attempt, retry_in_secs = delay.as_secs_f64(),
                        "certify attempt failed");
                }
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Renews through the control plane with the current SVID as client certificate.
pub(crate) struct Renewer {
    pub(crate) client: Arc<Client>,
    pub(crate) svid: Arc<SvidSource>,
    pub(crate) bundle: BundleHandle,
    /// Where a restart credential is kept, if anywhere.
    pub(crate) state: Option<StateDir>,
}

/// Keeps `stateDir`'s certificate as fresh as the one in service. The renewal task
/// keeps the key it generates inside the `SvidSource`, where nothing can read it, so
/// a second certificate for the same identity, with a key made here, is bought for
/// the state directory: two SVIDs of one workload are as valid as one, and a restart
/// after more than a lifetime of renewals still finds a live certificate.
async fn refresh_state(client: Arc<Client>, svid: Arc<SvidSource>, state: StateDir) {
    let id = svid.id();
    let key = match KeyAndCsr::generate(id) {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a key for stateDir");
            return;
        }
    };
    let certified = certify(&client, key.csr_der(), "", Some(svid.clone()), id);
    let certified = match certified.await {
        Ok(certified) => certified,
        Err(e) => {
            tracing::warn!(error = %e, "no certificate for stateDir; it keeps the previous one");
            return;
        }
    };
    let (chain, key, bundle) = (
        certified.chain_pem(),
        key.key_pem(),
        certified.bundle.to_pem(),
    );
    let saved = tokio::task::spawn_blocking(move || state.save_identity(&chain, &key, &bundle));
    match saved.await {
        Ok(Ok(())) => tracing::debug!(spiffe_id = %id, "stateDir certificate refreshed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot persist the certificate"),
        Err(e) => tracing::warn!(error = %e, "the persisting task failed"),
    }
}

impl Signer for Renewer {
    fn sign(
        &self,
        csr_der: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<CertificateDer<'static>>, SignError>> {
        Box::pin(async move {
            let id = self.svid.id();
            let certified = certify(&self.client, &csr_der, "", Some(self.svid.clone()), id)
                .await
                .map_err(|e| match e {
                    ControlError::Refused { .. } | ControlError::BadCertificate { .. } => {
                        SignError::Rejected(e.to_string())
                    }
                    other => SignError::Unavailable(other.to_string()),
                })?;
            // A renewal also hands out the bundle in force; a root rotation may show up
            // here before the next snapshot does.
            if self.bundle.current().roots() != certified.bundle.roots()
                && let Err(e) = self.bundle.replace(certified.bundle.clone())
            {
                tracing::warn!(error = %e, "trust bundle from Certify not installed");
            }
            if let Some(state) = self.state.clone() {
                // In the background: installing the renewed certificate must not wait.
                let (client, svid) = (Arc::clone(&self.client), Arc::clone(&self.svid));
                tokio::spawn(refresh_state(client, svid, state));
            }
            Ok(certified.chain)
        })
    }
}
