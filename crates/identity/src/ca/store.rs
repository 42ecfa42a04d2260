//! The CA directory on disk, root rotation, and writing key material safely.
//!
//! ```text
//! CA_DIR/
//!   ca.json       {"trust_domain": "...", "max_leaf_ttl_seconds": N}: the trust domain is
//!                 stored here, not derived from the certificate, because a CA you bring
//!                 need not carry a spiffe:// URI SAN
//!   ca.pem        the signing CA certificate, then its issuers up to the root
//!   ca-key.pem    its PKCS#8 key, mode 0600 from the moment it exists
//!   bundle.pem    the trust bundle: every root peers should accept (two during a rotation)
//!   next/         a staged rotation: ca.pem + ca-key.pem of the CA that will take over
//!   retired/<serial>/  CAs replaced by a rotation, kept so their root can be identified
//! ```
//!
//! Root rotation keeps traffic flowing because no peer ever sees an SVID from a root it
//! does not trust: (1) stage the new CA, which adds its root to the bundle while the old CA
//! keeps signing; distribute the bundle; (2) activate: the new CA signs from now on, and
//! both roots stay trusted while SVIDs are re-issued; (3) remove the old root from the
//! bundle once no SVID from it is left.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

use super::{CaError, CertificateAuthority, IssuedSvid, KeyAndCsr, Source, describe};
use crate::bundle::{BundleError, TrustBundle, parse_certificates};
use crate::spiffe::TrustDomain;

/// The signing CA certificate and its chain.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The signing CA key (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The trust bundle of the CA directory, and of an SVID directory.
pub const BUNDLE_FILE: &str = "bundle.pem";
/// Trust domain and maximum leaf TTL.
pub const METADATA_FILE: &str = "ca.json";
/// The staged CA of a root rotation.
pub const NEXT_DIR: &str = "next";
/// CAs replaced by a rotation.
pub const RETIRED_DIR: &str = "retired";
/// An SVID directory's certificate chain, leaf first.
pub const SVID_CERT_FILE: &str = "cert.pem";
/// An SVID directory's private key (mode 0600).
pub const SVID_KEY_FILE: &str = "key.pem";
/// An SVID directory's trust bundle.
pub const SVID_BUNDLE_FILE: &str = BUNDLE_FILE;

/// The settings a CA directory keeps in `ca.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSettings {
    /// The trust domain the CA issues for.
    pub trust_domain: TrustDomain,
    /// The longest leaf lifetime it grants.
    pub max_leaf_ttl: Duration,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    trust_domain: String,
    max_leaf_ttl_seconds: u64,
}

/// A CA directory (see the module documentation for its layout).
#[derive(Debug, Clone)]
pub struct CaDir {
    path: PathBuf,
}

impl CertificateAuthority {
    /// Writes a new CA directory; refuses to overwrite an existing CA.
    pub fn save(&self, dir: &Path) -> Result<(), CaError> {
        CaDir::new(dir).create(self)
    }

    /// Loads the signing CA of a directory, checking it is valid at `now` and, when given,
    /// that it belongs to `trust_domain`; its bundle is the directory's `bundle.pem`.
    pub fn load(
        dir: &Path,
        trust_domain: Option<&TrustDomain>,
        now: SystemTime,
    ) -> Result<Self, CaError> {
        CaDir::new(dir).load(trust_domain, now)
    }
}

impl CaDir {
    /// A CA directory at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CaDir { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory (mode 0700 when new) and writes `ca` into it.
    pub fn create(&self, ca: &CertificateAuthority) -> Result<(), CaError> {
        create_private_dir(&self.path)?;
        if self.file(CA_CERT_FILE).exists() || self.file(CA_KEY_FILE).exists() {
            return Err(CaError::AlreadyInitialized {
                path: self.path.display().to_string(),
            });
        }
        write_private_file(&self.file(CA_KEY_FILE), ca.key_pem().as_bytes())?;
        write_public_file(&self.file(CA_CERT_FILE), ca.chain_pem().as_bytes())?;
        write_public_file(&self.file(BUNDLE_FILE), ca.bundle().to_pem().as_bytes())?;
        let meta = Metadata {
            trust_domain: ca.trust_domain().to_string(),
            max_leaf_ttl_seconds: ca.max_leaf_ttl().as_secs(),
        };
        let json = serde_json::to_string_pretty(&meta).map_err(|e| CaError::Metadata {
            path: self.file(METADATA_FILE).display().to_string(),
            message: e.to_string(),
        })?;
        write_public_file(&self.file(METADATA_FILE), format!("{json}\n").as_bytes())
    }

    /// Reads `ca.json`.
    pub fn settings(&self) -> Result<CaSettings, CaError> {
        let path = self.file(METADATA_FILE);
        let text = self.read(METADATA_FILE)?;
        let bad = |message: String| CaError::Metadata {
            path: path.display().to_string(),
            message,
        };
        let meta: Metadata = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let trust_domain = TrustDomain::new(&meta.trust_domain)
            .map_err(|e| bad(format!("trust_domain {:?}: {e}", meta.trust_domain)))?;
        if meta.max_leaf_ttl_seconds == 0 {
            return Err(bad(
                "max_leaf_ttl_seconds must be greater than zero".to_owned()
            ));
        }
        Ok(CaSettings {
            trust_domain,
            max_leaf_ttl: Duration::from_secs(meta.max_leaf_ttl_seconds),
        })
    }

    /// Reads a file of the directory; a missing one means this is no CA directory.
    fn read(&self, name: &'static str) -> Result<Vec<u8>, CaError> {
        let path = self.file(name);
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CaError::NotACaDir {
                path: self.path.display().to_string(),
                missing: name,
            },
            _ => CaError::io(&path, e),
        })
    }

    /// Loads the signing CA (see [`CertificateAuthority::load`]).
    pub fn load(
        &self,
        trust_domain: Option<&TrustDomain>,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        let settings = self.settings()?;
        if let Some(expected) = trust_domain
            && *expected != settings.trust_domain
        {
            return Err(CaError::TrustDomainMismatch {
                path: self.path.display().to_string(),
                found: settings.trust_domain.to_string(),
                expected: expected.to_string(),
            });
        }
        let mut ca = self.load_ca_files("", &settings, now)?;
        let bundle = self.bundle()?;
        if !bundle.roots().contains(ca.root()) {
            return Err(CaError::RootNotInBundle {
                path: self.file(BUNDLE_FILE).display().to_string(),
                root: describe::describe(ca.root())?.subject,
            });
        }
        ca.bundle = bundle;
        Ok(ca)
    }

    /// Loads `ca.pem` + `ca-key.pem` from `sub` (`""` or `next`).
    fn load_ca_files(
        &self,
        sub: &str,
        settings: &CaSettings,
        now: SystemTime,
    ) -> Result<CertificateAuthority, CaError> {
        let dir = CaDir::new(self.path.join(sub));
        let (cert_path, key_path) = (dir.file(CA_CERT_FILE), dir.file(CA_KEY_FILE));
        let chain_origin = cert_path.display().to_string();
        let key_origin = key_path.display().to_string();
        let key_pem = dir.read(CA_KEY_FILE)?;
        let source = Source {
            chain: parse_certificates(&dir.read(CA_CERT_FILE)?, &chain_origin)?,
            chain_origin: &chain_origin,
            key_pem: &key_pem,
            key_origin: &key_origin,
        };
        let now = super::whole_seconds(now);
        CertificateAuthority::assemble(
            source,
            &settings.trust_domain,
            now,
            settings.max_leaf_ttl,
            false,
        )
    }

    /// The trust bundle (`bundle.pem`).
    pub fn bundle(&self) -> Result<TrustBundle, CaError> {
        let td = self.settings()?.trust_domain;
        let pem = self.read(BUNDLE_FILE)?;
        let origin = self.file(BUNDLE_FILE).display().to_string();
        Ok(TrustBundle::from_pem(td, &pem, &origin)?)
    }

    fn write_bundle(&self, bundle: &TrustBundle) -> Result<(), CaError> {
        write_public_file(&self.file(BUNDLE_FILE), bundle.to_pem().as_bytes())
    }

    /// The root the signing CA chains to (the last certificate of `ca.pem`).
    pub fn signing_root(&self) -> Result<CertificateDer<'static>, CaError> {
        last_cert(&self.read(CA_CERT_FILE)?, &self.file(CA_CERT_FILE))
    }

    /// The root of the staged rotation CA, if one is staged.
    pub fn staged_root(&self) -> Result<Option<CertificateDer<'static>>, CaError> {
        let path = self.path.join(NEXT_DIR).join(CA_CERT_FILE);
        match fs::read(&path) {
            Ok(pem) => last_cert(&pem, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CaError::io(&path, e)),
        }
    }

    /// Rotation step 1: stages `next` in `next/` and adds its root to the bundle; the current
    /// CA keeps signing. Returns whether the bundle gained a root (a new intermediate under
    /// the same root adds none).
    pub fn stage_rotation(&self, next: &CertificateAuthority) -> Result<bool, CaError> {
        let settings = self.settings()?;
        if settings.trust_domain != *next.trust_domain() {
            return Err(CaError::TrustDomainMismatch {
                path: self.path.display().to_string(),
                found: settings.trust_domain.to_string(),
                expected: next.trust_domain().to_string(),
            });
        }
        self.read(CA_CERT_FILE)?;
        let staged = self.path.join(NEXT_DIR);
        if staged.exists() {
            return Err(CaError::RotationInProgress {
                path: staged.display().to_string(),
            });
        }
        let mut bundle = self.bundle()?;
        create_private_dir(&staged)?;
        write_private_file(&staged.join(CA_KEY_FILE), next.key_pem().as_bytes())?;
        write_public_file(&staged.join(CA_CERT_FILE), next.chain_pem().as_bytes())?;
        let added = bundle.add(next.root().clone());
        self.write_bundle(&bundle)?;
        Ok(added)
    }

    /// Rotation step 2: the staged CA becomes the signing CA; the old one moves to
    /// `retired/<serial>/` and its root stays in the bundle.
    pub fn activate_rotation(&self, now: SystemTime) -> Result<Activation, CaError> {
        let staged = self.path.join(NEXT_DIR);
        if !staged.join(CA_CERT_FILE).exists() {
            return Err(CaError::NoRotationStaged {
                path: self.path.display().to_string(),
            });
        }
        let settings = self.settings()?;
        let next = self.load_ca_files(NEXT_DIR, &settings, now)?;
        if !self.bundle()?.roots().contains(next.root()) {
            return Err(CaError::RootNotInBundle {
                path: self.file(BUNDLE_FILE).display().to_string(),
                root: describe::describe(next.root())?.subject,
            });
        }
        let current = parse_certificates(&self.read(CA_CERT_FILE)?, CA_CERT_FILE)?;
        let serial = describe::describe(&current[0])?.serial;
        let retired = self.path.join(RETIRED_DIR).join(serial);
        create_private_dir(&retired)?;
        // Each rename is atomic; the key moves with its mode, so it is never exposed.
        for name in [CA_CERT_FILE, CA_KEY_FILE] {
            rename(&self.file(name), &retired.join(name))?;
        }
        for name in [CA_CERT_FILE, CA_KEY_FILE] {
            rename(&staged.join(name), &self.file(name))?;
        }
        fs::remove_dir(&staged).map_err(|e| CaError::io(&staged, e))?;
        Ok(Activation {
            retired,
            old_root: current[current.len() - 1].clone(),
            new_root: next.root().clone(),
        })
    }

    /// Adds every certificate of `pem` (each must be a CA) to the bundle; returns each with
    /// whether it was new.
    pub fn add_roots(
        &self,
        pem: &[u8],
        origin: &str,
    ) -> Result<Vec<(describe::CertSummary, bool)>, CaError> {
        let mut bundle = self.bundle()?;
        let mut result = Vec::new();
        for root in parse_certificates(pem, origin)? {
            let summary = describe::describe(&root)?;
            if !summary.is_ca {
                return Err(CaError::NotACa {
                    certificate: format!("{origin} ({})", summary.subject),
                });
            }
            let added = bundle.add(root);
            result.push((summary, added));
        }
        self.write_bundle(&bundle)?;
        Ok(result)
    }

    /// Rotation step 3: removes from the bundle every certificate of `pem` that it holds
    /// (so a retired `ca.pem` chain can be passed as is), refusing the roots of the signing
    /// and staged CAs, the last root, and a file of which the bundle holds nothing.
    pub fn remove_roots(
        &self,
        pem: &[u8],
        origin: &str,
    ) -> Result<Vec<describe::CertSummary>, CaError> {
        let mut bundle = self.bundle()?;
        let signing = self.signing_root()?;
        let staged = self.staged_root()?;
        let certs = parse_certificates(pem, origin)?;
        let mut removed = Vec::new();
        for root in certs.iter().filter(|c| bundle.roots().contains(c)) {
            let summary = describe::describe(root)?;
            let role = if *root == signing {
                Some("signing")
            } else if staged.as_ref() == Some(root) {
                Some("staged")
            } else {
                None
            };
            if let Some(role) = role {
                return Err(CaError::RootInUse {
                    subject: summary.subject,
                    fingerprint: summary.sha256,
                    role,
                });
            }
            removed.push(summary);
        }
        if removed.is_empty() {
            let first = describe::describe(&certs[0])?;
            return Err(CaError::RootNotFound {
                origin: origin.to_owned(),
                subject: first.subject,
                fingerprint: first.sha256,
            });
        }
        for root in certs
            .iter()
            .filter(|c| bundle.roots().contains(c))
            .cloned()
            .collect::<Vec<_>>()
        {
            bundle.remove(&root)?;
        }
        self.write_bundle(&bundle)?;
        Ok(removed)
    }
}

/// What [`CaDir::activate_rotation`] did.
#[derive(Debug, Clone)]
pub struct Activation {
    /// Where the replaced CA's `ca.pem` and `ca-key.pem` now are.
    pub retired: PathBuf,
    /// The root the replaced CA chained to.
    pub old_root: CertificateDer<'static>,
    /// The root the new signing CA chains to.
    pub new_root: CertificateDer<'static>,
}

impl Activation {
    /// Whether the root changed (a new intermediate under the same root leaves it as is,
    /// and then there is no old root to remove).
    pub fn root_changed(&self) -> bool {
        self.old_root != self.new_root
    }
}

fn last_cert(pem: &[u8], path: &Path) -> Result<CertificateDer<'static>, CaError> {
    let origin = path.display().to_string();
    // parse_certificates refuses empty input, so the fallback is never taken.
    parse_certificates(pem, &origin)?
        .pop()
        .ok_or(CaError::Bundle(BundleError::Empty { origin }))
}

fn rename(from: &Path, to: &Path) -> Result<(), CaError> {
    fs::rename(from, to).map_err(|e| CaError::io(from, e))
}

/// Writes `DIR/cert.pem` (leaf first, then intermediates), `DIR/key.pem` (0600) and
/// `DIR/bundle.pem`, creating `dir` if needed; each file is replaced atomically.
pub fn write_svid_files(
    dir: &Path,
    svid: &IssuedSvid,
    key: &KeyAndCsr,
    bundle: &TrustBundle,
) -> Result<(), CaError> {
    fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
    // Key first: a reader that sees the new certificate then also finds its key.
    write_private_file(&dir.join(SVID_KEY_FILE), key.key_pem().as_bytes())?;
    write_public_file(&dir.join(SVID_CERT_FILE), svid.chain_pem().as_bytes())?;
    write_public_file(&dir.join(SVID_BUNDLE_FILE), bundle.to_pem().as_bytes())
}

/// Atomically replaces `path` with `contents`, mode 0600: the data goes to a new temporary
/// file created with that mode (so it is never readable by others, even briefly), then is
/// renamed over `path`.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    write_atomic(path, contents, 0o600)
}

/// Atomically replaces `path` with `contents`, mode 0644.
pub fn write_public_file(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    write_atomic(path, contents, 0o644)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|e| CaError::generate("a file name", e))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", describe::hex(&suffix)));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        set_mode(&mut options, mode);
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        CaError::io(path, e)
    })
}

#[cfg(unix)]
fn set_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

#[cfg(not(unix))]
fn set_mode(_: &mut OpenOptions, _: u32) {}

/// Creates `dir` and its parents; a directory created here gets mode 0700.
fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| CaError::io(dir, e))
}
