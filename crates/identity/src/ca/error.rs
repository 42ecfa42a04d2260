//! Everything the CA refuses, each variant saying what it expected instead.

use crate::bundle::BundleError;

/// Why a CA could not be created, loaded, changed, or could not issue an SVID.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading or changing a trust bundle failed (malformed PEM, no certificate, last root).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A PEM block was valid but its contents are not a DER X.509 certificate.
    #[error("{origin}: certificate #{index} is not a valid X.509 certificate: {message}")]
    Certificate {
        /// Where the PEM came from.
        origin: String,
        /// Position in the file, counting from 1.
        index: usize,
        /// The parser's complaint.
        message: String,
    },
    /// A certificate that must sign others lacks `basicConstraints CA:true`.
    #[error(
        "{certificate}: not a CA certificate (basicConstraints is absent or CA:false); \
         expected a root or intermediate CA with CA:true"
    )]
    NotACa {
        /// The certificate: file, position and subject.
        certificate: String,
    },
    /// A CA certificate's keyUsage extension is present but lacks keyCertSign.
    #[error(
        "{certificate}: keyUsage does not include keyCertSign; a CA that signs certificates needs it"
    )]
    NoKeyCertSign {
        /// The certificate: file, position and subject.
        certificate: String,
    },
    /// The CA key (or certificate key) is of a type Bulkhead does not sign with.
    #[error(
        "{origin}: {found} is not supported; expected an unencrypted ECDSA P-256 key \
         (PKCS#8 `PRIVATE KEY`, or SEC1 `EC PRIVATE KEY`)"
    )]
    UnsupportedKey {
        /// The file or certificate holding the key.
        origin: String,
        /// What was found instead.
        found: String,
    },
    /// The private key PEM could not be parsed.
    #[error("{origin}: malformed private key: {message}; expected a PEM `PRIVATE KEY` block")]
    MalformedKey {
        /// The key file.
        origin: String,
        /// The parser's complaint.
        message: String,
    },
    /// The private key does not belong to the CA certificate.
    #[error("{origin}: private key does not match the public key of {certificate}")]
    KeyMismatch {
        /// The key file.
        origin: String,
        /// The CA certificate: file, position and subject.
        certificate: String,
    },
    /// A certificate of the CA chain is not valid yet.
    #[error("{certificate}: not valid until {not_before} (now is {now})")]
    NotYetValid {
        /// The certificate: file, position and subject.
        certificate: String,
        /// Its notBefore, RFC 3339.
        not_before: String,
        /// The time of the check, RFC 3339.
        now: String,
    },
    /// A certificate of the CA chain has expired.
    #[error("{certificate}: expired at {not_after} (now is {now})")]
    Expired {
        /// The certificate: file, position and subject.
        certificate: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
        /// The time of the check, RFC 3339.
        now: String,
    },
    /// A certificate of the CA chain expires before one maximum-TTL leaf issued now would.
    #[error(
        "{certificate}: expires at {not_after}, too soon to issue a leaf with the maximum TTL of \
         {max_ttl}; expected it to be valid until at least {needed}"
    )]
    ValidityTooShort {
        /// The certificate: file, position and subject.
        certificate: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
        /// The configured maximum leaf TTL, e.g. `7d`.
        max_ttl: String,
        /// The earliest acceptable notAfter, RFC 3339.
        needed: String,
    },
    /// An issuer's pathLenConstraint does not allow the intermediates below it.
    #[error(
        "{certificate}: pathLenConstraint {path_len} allows at most {path_len} intermediate CA \
         certificate(s) below it, but the chain puts {below} there"
    )]
    PathLenExceeded {
        /// The constraining issuer: file, position and subject.
        certificate: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// How many non-self-issued CA certificates the chain places below it.
        below: usize,
    },
    /// A CA certificate names a SPIFFE ID outside the CA's trust domain.
    #[error(
        "{certificate}: carries URI SAN {found}, which is not an ID of trust domain {expected}"
    )]
    ForeignSpiffeId {
        /// The certificate: file, position and subject.
        certificate: String,
        /// The URI it carries.
        found: String,
        /// The CA's trust domain.
        expected: String,
    },
    /// The chain is out of order or a certificate is not signed by the next one.
    #[error(
        "{certificate}: not issued by the next certificate in the chain ({next}); expected the CA \
         certificate first, then each issuer in order up to the root"
    )]
    ChainBroken {
        /// The certificate: file, position and subject.
        certificate: String,
        /// The next certificate's subject.
        next: String,
    },
    /// The chain's last certificate is not a self-signed root.
    #[error(
        "{origin}: the chain ends in {subject}, which is not a self-signed root; append the \
         root certificate (the bundle needs it)"
    )]
    NoRoot {
        /// Where the chain came from.
        origin: String,
        /// The last certificate's subject.
        subject: String,
    },
    /// rcgen cannot re-encode the CA's subject byte for byte as the issuer of new leaves.
    #[error(
        "{subject}: this subject name cannot be reproduced exactly as the issuer of new \
         certificates (multi-valued RDN, repeated attribute or unusual string type), so \
         issued SVIDs would not chain to it"
    )]
    IssuerNameUnsupported {
        /// The CA certificate's subject.
        subject: String,
    },
    /// A test SVID issued by this CA did not verify against the CA's own root.
    #[error("a test SVID issued by this CA does not verify against its root: {reason}")]
    SelfCheck {
        /// The verifier's complaint.
        reason: String,
    },
    /// Certificate or key generation failed inside the crypto library.
    #[error("could not create {what}: {message}")]
    Generate {
        /// What was being made.
        what: &'static str,
        /// The library's message.
        message: String,
    },
    /// The CSR is not DER PKCS#10.
    #[error("malformed CSR: {reason}; expected a DER PKCS#10 certification request")]
    MalformedCsr {
        /// What is wrong.
        reason: String,
    },
    /// The CSR uses a key or signature algorithm other than ECDSA P-256 with SHA-256.
    #[error("CSR uses {found}; expected an ECDSA P-256 key and an ecdsa-with-SHA256 signature")]
    UnsupportedCsrKey {
        /// The algorithm found.
        found: String,
    },
    /// The CSR's signature does not verify with its own public key.
    #[error(
        "CSR signature does not verify: the requester did not prove possession of the \
         private key, or the request was altered"
    )]
    CsrSignature,
    /// The CSR asks for a name other than a URI.
    #[error(
        "CSR asks for {name}; an X509-SVID carries exactly one URI SAN ({authorized}) and no \
         other names"
    )]
    CsrNonUriSan {
        /// The extra name, e.g. `DNS:web.example`.
        name: String,
        /// The ID the requester is authorized for.
        authorized: String,
    },
    /// The CSR asks for no SPIFFE ID at all.
    #[error("CSR asks for no URI SAN; expected exactly one: {authorized}")]
    CsrMissingId {
        /// The ID the requester is authorized for.
        authorized: String,
    },
    /// The CSR asks for several URI SANs.
    #[error("CSR asks for {count} URI SANs ({found}); expected exactly one: {authorized}")]
    CsrMultipleIds {
        /// How many.
        count: usize,
        /// The URIs, comma separated.
        found: String,
        /// The ID the requester is authorized for.
        authorized: String,
    },
    /// The CSR asks for an identity the requester is not authorized for.
    #[error("CSR asks for {requested}, but the requester is authorized only for {authorized}")]
    CsrWrongId {
        /// The URI in the CSR.
        requested: String,
        /// The ID the requester is authorized for.
        authorized: String,
    },
    /// The SPIFFE ID to issue for is in another trust domain than the CA's.
    #[error("{id} is not in this CA's trust domain; expected spiffe://{expected}/...")]
    WrongTrustDomain {
        /// The requested ID.
        id: String,
        /// The CA's trust domain.
        expected: String,
    },
    /// A leaf SVID's ID must have a path; the bare trust domain ID names the domain itself.
    #[error("{id} has no path; a workload SVID needs one, e.g. spiffe://{td}/ns/NS/sa/SA")]
    IdWithoutPath {
        /// The requested ID.
        id: String,
        /// Its trust domain.
        td: String,
    },
    /// A zero TTL was requested or configured.
    #[error("TTL must be greater than zero")]
    ZeroTtl,
    /// The directory already holds a CA.
    #[error(
        "{path}: already holds a CA (ca.pem or ca-key.pem exists); refusing to overwrite its \
         key; use `bulkhead cert init --rotate --ca {path}` to replace its root"
    )]
    AlreadyInitialized {
        /// The CA directory.
        path: String,
    },
    /// A file the CA directory needs is missing.
    #[error(
        "{path}: not a Bulkhead CA directory ({missing} is missing); create one with `bulkhead cert init`"
    )]
    NotACaDir {
        /// The directory.
        path: String,
        /// The missing file.
        missing: &'static str,
    },
    /// `ca.json` could not be parsed.
    #[error(
        "{path}: {message}; expected {{\"trust_domain\": \"...\", \"max_leaf_ttl_seconds\": N}}"
    )]
    Metadata {
        /// The file.
        path: String,
        /// The parser's complaint.
        message: String,
    },
    /// The CA directory belongs to another trust domain than the one asked for.
    #[error("{path}: CA is for trust domain {found}, not {expected}")]
    TrustDomainMismatch {
        /// The CA directory.
        path: String,
        /// Its trust domain.
        found: String,
        /// The one asked for.
        expected: String,
    },
    /// The bundle does not hold the root the signing CA chains to.
    #[error(
        "{path}: does not contain the root of the signing CA ({root}); SVIDs it issues would \
         not verify; add it with `bulkhead cert bundle --add`"
    )]
    RootNotInBundle {
        /// The bundle file.
        path: String,
        /// The root's subject.
        root: String,
    },
    /// A root rotation is already staged.
    #[error(
        "{path}: a root rotation is already staged (next/ exists); activate it with \
         `bulkhead cert init --rotate --activate --ca DIR` first"
    )]
    RotationInProgress {
        /// The staged directory.
        path: String,
    },
    /// `--activate` without a staged rotation.
    #[error(
        "{path}: no rotation is staged (next/ is missing); stage one with \
         `bulkhead cert init --rotate --ca DIR`"
    )]
    NoRotationStaged {
        /// The CA directory.
        path: String,
    },
    /// Removing this root would strand the signing (or staged) CA.
    #[error("refusing to remove root {subject} (sha256 {fingerprint}): the {role} CA chains to it")]
    RootInUse {
        /// The root's subject.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// `signing` or `staged`.
        role: &'static str,
    },
    /// The root to remove is not in the bundle.
    #[error("{origin}: root {subject} (sha256 {fingerprint}) is not in the bundle")]
    RootNotFound {
        /// Where the root came from.
        origin: String,
        /// The root's subject.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
}

impl CaError {
    /// An I/O error naming its path.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CaError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A crypto-library failure while making `what`.
    pub(crate) fn generate(what: &'static str, e: impl std::fmt::Display) -> Self {
        CaError::Generate {
            what,
            message: e.to_string(),
        }
    }
}
