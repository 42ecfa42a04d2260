//! `Certify`: an SVID for exactly the identity the credential is bound to: a join token's
//! identity, or (renewal) the identity of the verified client certificate.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bulkhead_api::proxy::{CertifyRequest, CertifyResponse};
use bulkhead_identity::SpiffeId;
use bulkhead_identity::ca::CaError;
use bulkhead_store::{JoinTokenRefusal, StoreError};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::state::Shared;

/// Which credential bought the certificate (the `credential` metric label).
#[derive(Debug, Clone, Copy)]
enum Credential {
    JoinToken,
    Renewal,
}

impl Credential {
    fn label(self) -> &'static str {
        match self {
            Credential::JoinToken => "join_token",
            Credential::Renewal => "renewal",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Credential::JoinToken => "the join token is",
            Credential::Renewal => "the client certificate is",
        }
    }
}

/// Handles one `Certify` call.
pub(super) async fn certify(
    shared: &Arc<Shared>,
    request: Request<CertifyRequest>,
) -> Result<Response<CertifyResponse>, Status> {
    let client_id = super::peer(&request).and_then(|p| p.spiffe_id);
    let req = request.into_inner();
    let shared = Arc::clone(shared);
    // Redeeming a token is a store write and signing is public-key crypto: both run on the
    // blocking pool so a burst of proxies starting does not stall the streams.
    tokio::task::spawn_blocking(move || issue(&shared, &req, client_id, SystemTime::now()))
        .await
        .map_err(|e| Status::internal(format!("the certify task failed: {e}")))?
        .map(Response::new)
}

/// Checks the credential and the CSR and issues the SVID.
fn issue(
    shared: &Shared,
    req: &CertifyRequest,
    client_id: Option<SpiffeId>,
    now: SystemTime,
) -> Result<CertifyResponse, Status> {
    let csr =
        CertificateSigningRequestDer::from_pem_slice(req.csr_pem.as_bytes()).map_err(|e| {
            let message = format!("csr_pem: expected a PEM `CERTIFICATE REQUEST` block: {e}");
            refused(shared, "malformed_csr", Status::invalid_argument(message))
        })?;
    let (id, credential) = credential(shared, req, client_id, now)?;
    let svid = shared
        .ca
        .issue(csr.as_ref(), &id, shared.svid_ttl(), now)
        .map_err(|e| {
            let (reason, status) = ca_refusal(e, &id, credential);
            if reason == "internal" {
                tracing::error!(identity = %id, error = status.message(), "the CA cannot issue");
                return status;
            }
            refused(shared, reason, status)
        })?;
    shared.metrics.certificate_issued(credential.label());
    tracing::info!(identity = %id, credential = credential.label(), serial = svid.serial(),
        "issued an SVID");
    Ok(CertifyResponse {
        cert_chain_pem: svid.chain_pem(),
        trust_bundle_pem: shared.bundle.to_pem(),
        expires_unix: unix_seconds(svid.not_after()),
    })
}

/// The identity the request may have a certificate for: the join token's (spending one
/// use) or, without a token, the client certificate's.
fn credential(
    shared: &Shared,
    req: &CertifyRequest,
    client_id: Option<SpiffeId>,
    now: SystemTime,
) -> Result<(SpiffeId, Credential), Status> {
    if req.join_token.is_empty() {
        return match client_id {
            Some(id) => Ok((id, Credential::Renewal)),
            None => Err(refused(
                shared,
                "no_credential",
                Status::unauthenticated(
                    "no credential: present the current SVID as TLS client certificate or a \
                     join token",
                ),
            )),
        };
    }
    match shared.store.redeem_join_token(&req.join_token, now) {
        Ok(id) => Ok((id, Credential::JoinToken)),
        Err(StoreError::JoinToken(refusal)) => {
            let message = format!("join token refused: {refusal}");
            let reason = refusal_reason(&refusal);
            Err(refused(shared, reason, Status::unauthenticated(message)))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// Counts and logs a refusal; returns its status.
fn refused(shared: &Shared, reason: &'static str, status: Status) -> Status {
    shared.metrics.certify_refused(reason);
    tracing::warn!(
        reason,
        message = status.message(),
        "refused a certificate request"
    );
    status
}

/// The `reason` label of a refused join token.
fn refusal_reason(refusal: &JoinTokenRefusal) -> &'static str {
    match refusal {
        JoinTokenRefusal::Malformed => "token_malformed",
        JoinTokenRefusal::Unknown => "token_unknown",
        JoinTokenRefusal::Revoked { .. } => "token_revoked",
        JoinTokenRefusal::Expired { .. } => "token_expired",
        JoinTokenRefusal::UsedUp { .. } => "token_used_up",
        _ => "token_refused",
    }
}

/// The metric reason and status for a CSR the CA refused (`internal` for the CA's own
/// failures, which are not the requester's fault).
fn ca_refusal(e: CaError, id: &SpiffeId, credential: Credential) -> (&'static str, Status) {
    let bound = credential.describe();
    match e {
        CaError::CsrWrongId { requested, .. } => (
            "csr_identity",
            Status::permission_denied(format!(
                "the CSR asks for {requested}, but {bound} for {id}; a certificate is issued \
                 only for the credential's identity"
            )),
        ),
        e @ (CaError::CsrMissingId { .. }
        | CaError::CsrMultipleIds { .. }
        | CaError::CsrNonUriSan { .. }) => (
            "csr_identity",
            Status::permission_denied(format!("{e} ({bound} for {id})")),
        ),
        e @ CaError::CsrSignature => ("csr_signature", Status::permission_denied(e.to_string())),
        e @ (CaError::MalformedCsr { .. } | CaError::UnsupportedCsrKey { .. }) => (
            "malformed_csr",
            Status::invalid_argument(format!("csr_pem: {e}")),
        ),
        e @ (CaError::WrongTrustDomain { .. } | CaError::IdWithoutPath { .. }) => (
            "identity",
            Status::permission_denied(format!(
                "{bound} for {id}, which this CA cannot certify: {e}"
            )),
        ),
        e => (
            "internal",
            Status::internal(format!("the CA cannot issue for {id}: {e}")),
        ),
    }
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
