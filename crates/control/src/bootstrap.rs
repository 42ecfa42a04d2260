//! First start and every start: the data directory, the store, the mesh CA, the API's TLS
//! material and the first admin token. Any inconsistency is an error naming the file; the
//! control plane never starts from scratch over existing state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_api::rest::Role;
use bulkhead_identity::TrustDomain;
use bulkhead_identity::ca::{CaDir, CaError, CertificateAuthority};
use bulkhead_store::{Store, StoreError};

use crate::error::ApiError;
use crate::state::Shared;
use crate::tls::{ApiTls, TlsError};

/// The store key holding the mesh's trust domain.
const TRUST_DOMAIN_KEY: &str = "trust_domain";

/// How `bulkhead control` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where all state lives.
    pub data_dir: PathBuf,
    /// The TLS listener (REST and gRPC).
    pub listen: SocketAddr,
    /// A CA directory to use instead of `DATA/ca`.
    pub ca_dir: Option<PathBuf>,
    /// The trust domain on first start (later starts check it).
    pub trust_domain: Option<String>,
    /// Extra names (DNS or IP) for the serving certificate.
    pub sans: Vec<String>,
    /// How long a disconnected proxy's endpoints stay registered.
    pub registration_ttl: Duration,
    /// The lifetime of the SVIDs issued to proxies; `None`: the CA's default (24 h). Checked
    /// against [`MIN_SVID_TTL`] by [`Bootstrap::open`].
    pub svid_ttl: Option<Duration>,
}

/// The shortest SVID lifetime `svid_ttl` may ask for: proxies renew at half the lifetime,
/// and a renewal needs a few seconds of slack for backoff and clock skew.
pub const MIN_SVID_TTL: Duration = Duration::from_secs(30);

impl Options {
    /// Defaults for `data_dir`: `127.0.0.1:15010`, `DATA/ca`, 10 minute registrations.
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 15010)),
            ca_dir: None,
            trust_domain: None,
            sans: Vec::new(),
            registration_ttl: Duration::from_secs(600),
            svid_ttl: None,
        }
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("{}: cannot create the data directory: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CA could not be created or loaded.
    #[error("CA {}: {source}", path.display())]
    Ca {
        /// The CA directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: CaError,
    },
    /// The trust domain flag disagrees with the store, or is invalid.
    #[error("{0}")]
    TrustDomain(String),
    /// The API's TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The SVID lifetime asked for is too short.
    #[error(
        "the SVID lifetime {}s is below the minimum of {}s (proxies renew at half the lifetime)",
        .0.as_secs(),
        MIN_SVID_TTL.as_secs()
    )]
    SvidTtl(Duration),
    /// Anything else the shared state refused.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Everything `bulkhead control` needs to serve.
#[derive(Debug)]
pub struct Bootstrap {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The API's TLS material.
    pub tls: ApiTls,
    /// The first admin token's secret, only on the start that created it.
    pub admin_token: Option<String>,
}

impl Bootstrap {
    /// Opens (or, on first start, creates) everything under `options.data_dir`.
    pub fn open(options: &Options) -> Result<Bootstrap, StartError> {
        let data = &options.data_dir;
        create_private_dir(data)?;
        let store = Arc::new(Store::open(&data.join("store.redb"))?);
        let trust_domain = trust_domain(&store, options)?;
        let ca_dir = options.ca_dir.clone().unwrap_or_else(|| data.join("ca"));
        let ca = load_or_create_ca(&ca_dir, &trust_domain, options.ca_dir.is_some())?;
        let bundle = CaDir::new(&ca_dir)
            .bundle()
            .map_err(|source| StartError::Ca {
                path: ca_dir.clone(),
                source,
            })?;
        let tls = ApiTls::load_or_create(&data.join("tls"), &options.sans)?;
        let admin_token = if store.list_tokens()?.is_empty() {
            let (_, secret) = store.create_token("admin", Role::Admin, "control-plane")?;
            Some(secret)
        } else {
            None
        };
        if let Some(ttl) = options.svid_ttl
            && ttl < MIN_SVID_TTL
        {
            return Err(StartError::SvidTtl(ttl));
        }
        let shared = Shared::new(store, ca, bundle)?;
        shared.set_svid_ttl(options.svid_ttl);
        Ok(Bootstrap {
            shared,
            tls,
            admin_token,
        })
    }
}

fn create_private_dir(path: &Path) -> Result<(), StartError> {
    let err = |source| StartError::DataDir {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The store remembers the trust domain of its first start; a different flag later is
/// an error, because every issued identity and stored principal depends on it.
fn trust_domain(store: &Store, options: &Options) -> Result<TrustDomain, StartError> {
    let stored = store.get_meta(TRUST_DOMAIN_KEY)?;
    let name = match (&stored, &options.trust_domain) {
        (Some(stored), Some(flag)) if stored != flag => {
            return Err(StartError::TrustDomain(format!(
                "{}: the store belongs to trust domain `{stored}`, but --trust-domain says \
                 `{flag}`; drop the flag or use another --data-dir",
                store.path().display()
            )));
        }
        (Some(stored), _) => stored.clone(),
        (None, Some(flag)) => flag.clone(),
        (None, None) => "cluster.local".to_owned(),
    };
    let td = TrustDomain::new(&name)
        .map_err(|e| StartError::TrustDomain(format!("--trust-domain `{name}`: {e}")))?;
    if stored.is_none() {
        store.put_meta(TRUST_DOMAIN_KEY, td.as_str())?;
    }
    Ok(td)
}

/// Loads the CA directory, creating a self-signed CA there on first start unless the
/// directory was named explicitly (then it must exist: `bulkhead cert init` makes one).
fn load_or_create_ca(
    dir: &Path,
    trust_domain: &TrustDomain,
    explicit: bool,
) -> Result<CertificateAuthority, StartError> {
    let ca_err = |source| StartError::Ca {
        path: dir.to_owned(),
        source,
    };
    let now = SystemTime::now();
    let ca_dir = CaDir::new(dir);
    if !explicit && !dir.join(bulkhead_identity::ca::CA_CERT_FILE).exists() {
        let ca = CertificateAuthority::init(trust_domain, now).map_err(ca_err)?;
        ca_dir.create(&ca).map_err(ca_err)?;
        tracing::info!(ca_dir = %dir.display(), trust_domain = %trust_domain, "created the mesh CA");
    }
    ca_dir.load(Some(trust_domain), now).map_err(ca_err)
}
