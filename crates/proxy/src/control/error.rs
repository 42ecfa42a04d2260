//! Errors of the controlled mode: [`ControlError`] for joining and talking to the control
//! plane (each names the field, file or peer at fault), [`SnapshotError`] for a snapshot
//! the proxy refuses (its text is the NACK reason the control plane records).

use std::path::PathBuf;

use bulkhead_policy::PolicyError;
use bulkhead_resources::LoadError;

/// Why the proxy could not join the control plane, or lost it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A file `spec.controlPlane` names is unusable.
    #[error("spec.controlPlane.{field} `{}`: {message}", path.display())]
    File {
        /// `caFile`, `tokenFile` or `stateDir`.
        field: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A field holds a value [`crate::load::load_config`] would have refused.
    #[error("{field}: {message}")]
    Field {
        /// The field path.
        field: String,
        /// What was expected.
        message: String,
    },
    /// No connection could be made, or it broke.
    #[error("control plane {address}: {message}")]
    Unreachable {
        /// `host:port`.
        address: String,
        /// The transport's reason, with its causes.
        message: String,
    },
    /// The control plane answered a call with an error status.
    #[error("control plane {address} refused {rpc}: {code:?}: {message}")]
    Refused {
        /// `host:port`.
        address: String,
        /// `Certify` or `Watch`.
        rpc: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message (it names the rule that refused).
        message: String,
    },
    /// `Certify` returned something that is not a certificate for this workload.
    #[error("control plane {address} answered Certify with an unusable certificate: {message}")]
    BadCertificate {
        /// `host:port`.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// There is neither a join token nor a usable persisted certificate.
    #[error(
        "spec.controlPlane: no join token (token, tokenFile, --token or BULKHEAD_JOIN_TOKEN) \
         and {reason}; create one with `POST /api/v1/jointokens` on the control plane"
    )]
    NoCredential {
        /// Why the persisted certificate cannot be used.
        reason: String,
    },
    /// The control-plane task ended before it published a first snapshot.
    #[error("the control-plane task stopped before the first snapshot arrived")]
    Stopped,
}

impl ControlError {
    /// Whether retrying cannot help: the control plane refused the credential itself.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ControlError::Refused {
                code: tonic::Code::Unauthenticated
                    | tonic::Code::PermissionDenied
                    | tonic::Code::InvalidArgument,
                ..
            }
        )
    }
}

/// Why a snapshot was NACKed; the field names are the proto message's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshot is for another trust domain than this proxy's.
    #[error("trust_domain: `{found}` is not this proxy's trust domain `{expected}`")]
    TrustDomain {
        /// What the snapshot says.
        found: String,
        /// `spec.controlPlane.trustDomain`.
        expected: String,
    },
    /// The trust bundle does not parse or cannot be a set of trust anchors.
    #[error("trust_bundle_pem: {0}")]
    Bundle(String),
    /// A resource does not decode or breaks a rule (one located line per problem).
    #[error("resources_json: invalid resources:\n{0}")]
    Resources(#[source] LoadError),
    /// The resources load but the policy engine refuses them.
    #[error("resources_json: {0}")]
    Compile(#[source] PolicyError),
    /// The compiled policies do not know this workload.
    #[error("resources_json: workload `{0}` is missing from the compiled policies")]
    MissingSelf(String),
    /// The firewall's settings are malformed.
    #[error("{field}: {message}")]
    Waf {
        /// e.g. `waf.spec_json.paranoiaLevel`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The firewall's rules do not compile.
    #[error("waf: {0}")]
    WafCompile(#[from] crate::waf::WafConfigError),
    /// An upstream's endpoint or traffic policy is malformed.
    #[error("upstreams[{index}].{field}: {message}")]
    Upstream {
        /// Position in `Snapshot.upstreams`.
        index: usize,
        /// e.g. `endpoints[0].address` or `traffic_policy_json.retries.attempts`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// An error and its causes on one line (tonic's transport errors say little at the top).
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
