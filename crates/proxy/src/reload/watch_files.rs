//! What the reloader watches, and how it tells that something changed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::ProxyConfig;

/// At most this many files are stamped per poll, so that a policy directory pointed at the
/// wrong place (`/`) costs a bounded amount of work each second.
const MAX_FILES: usize = 10_000;

/// What a file looked like: enough to notice edits, truncations and atomic replacements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    is_dir: bool,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        // `metadata` follows symbolic links: a Kubernetes volume's `..data` swap shows up
        // as a change of the file behind the link.
        let meta = fs::metadata(path).ok()?;
        // A directory's own times change with every editor swap file; the files under it
        // are stamped one by one instead.
        let is_dir = meta.is_dir();
        Some(Stamp {
            modified: meta.modified().ok().filter(|_| !is_dir),
            len: if is_dir { 0 } else { meta.len() },
            inode: inode(&meta),
            is_dir,
        })
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> u64 {
    0
}

/// The stamps of every watched file; directories are expanded to the resource files under
/// them (as the resources loader reads them), so added and removed files count too.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fingerprint {
    roots: Vec<PathBuf>,
    stamps: Vec<(PathBuf, Option<Stamp>)>,
}

impl Fingerprint {
    /// Stamps `roots` now.
    pub(crate) fn of(roots: &[PathBuf]) -> Fingerprint {
        let mut roots = roots.to_vec();
        roots.dedup();
        let stamps = stamp_all(&roots);
        Fingerprint { roots, stamps }
    }

    /// The watched paths.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// These stamps plus `more` paths, stamped now.
    pub(crate) fn extended(mut self, more: &[PathBuf]) -> Fingerprint {
        let new: Vec<PathBuf> = more
            .iter()
            .filter(|p| !self.roots.contains(p))
            .cloned()
            .collect();
        self.stamps.extend(stamp_all(&new));
        self.roots.extend(new);
        self
    }

    /// Only the stamps under `keep`.
    pub(crate) fn retained(&self, keep: &[PathBuf]) -> Fingerprint {
        let roots: Vec<PathBuf> = self
            .roots
            .iter()
            .filter(|r| keep.contains(r))
            .cloned()
            .collect();
        let stamps = self
            .stamps
            .iter()
            .filter(|(p, _)| roots.iter().any(|r| p.starts_with(r)))
            .cloned()
            .collect();
        Fingerprint { roots, stamps }
    }

    /// Whether any watched file differs from its stamp (or files came or went).
    pub(crate) fn changed(&self) -> bool {
        let mut now = stamp_all(&self.roots);
        let mut then = self.stamps.clone();
        // `extended` appends, so the orders may differ; compare as sets.
        now.sort_by(|a, b| a.0.cmp(&b.0));
        then.sort_by(|a, b| a.0.cmp(&b.0));
        now != then
    }
}

fn stamp_all(roots: &[PathBuf]) -> Vec<(PathBuf, Option<Stamp>)> {
    let mut out = Vec::new();
    for root in roots {
        let stamp = Stamp::of(root);
        out.push((root.clone(), stamp));
        if stamp.is_some_and(|s| s.is_dir) {
            expand(root, &mut out);
        }
    }
    out
}

/// Appends the resource files under `dir` with their stamps, as the loader reads them:
/// recursively, `*.yaml`, `*.yml`, `*.json`, skipping names starting with `.`.
fn expand(dir: &Path, out: &mut Vec<(PathBuf, Option<Stamp>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= MAX_FILES {
            return;
        }
        let path = entry.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        let stamp = Stamp::of(&path);
        match stamp {
            Some(s) if s.is_dir => {
                out.push((path.clone(), stamp));
                expand(&path, out);
            }
            _ if is_resource_file(&path) => out.push((path, stamp)),
            _ => {}
        }
    }
}

fn is_resource_file(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str());
    ext.is_some_and(|e| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// The files `config` reads besides itself: certificate, key, bundle and policy paths.
pub(crate) fn referenced(config: &ProxyConfig, base_dir: &Path) -> Vec<PathBuf> {
    let identity = config.spec.identity.iter().flat_map(|identity| {
        [
            &identity.cert_file,
            &identity.key_file,
            &identity.bundle_file,
        ]
    });
    identity
        .chain(&config.spec.policies)
        .map(|p| base_dir.join(p))
        .collect()
}
