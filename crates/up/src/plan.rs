//! Reading DIR before anything starts: every file through the strict loader (errors name
//! file, line and field), the batch through the control plane's own write checks, and
//! every run command resolved to a program.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use bulkhead_control::validate::{self, Document};
use bulkhead_resources::{Format, LoadError, Loader, ResourceSet, Workload};

/// A workload as `up` runs it.
#[derive(Debug, Clone)]
pub struct WorkloadPlan {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.serviceAccount` (`default` when absent).
    pub service_account: String,
    /// `spec.ports`: name and number.
    pub ports: Vec<(Option<String>, u16)>,
    /// `spec.upstreams`: service (`name.namespace`) and port.
    pub upstreams: Vec<(String, u16)>,
    /// The program (resolved), its arguments and extra environment; `None`: not started.
    pub run: Option<RunPlan>,
    /// Where the sidecar's inbound listener of the first port listens, from the annotation
    /// [`EXPOSE_ANNOTATION`] (port 0: a free port, still reported as exposed).
    pub expose: Option<SocketAddr>,
}

/// The Workload annotation that fixes the address of its sidecar's inbound listener for
/// the first port (`"127.0.0.1:8080"`), so that users have a stable URL to call.
pub const EXPOSE_ANNOTATION: &str = "bulkhead.dev/expose";

/// How to start a workload's process.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The program, resolved to a path.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// `spec.run.env`.
    pub env: BTreeMap<String, String>,
}

impl WorkloadPlan {
    /// `ns/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// DIR, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// DIR (absolute).
    pub dir: PathBuf,
    /// The resource files read, in order.
    pub files: Vec<PathBuf>,
    /// Every document, as the apply endpoint takes them.
    pub documents: Vec<Document>,
    /// The workloads, in file order.
    pub workloads: Vec<WorkloadPlan>,
    /// The lifetime of the sidecars' certificates (`None`: the CA's default, 24 h); not
    /// read from DIR, the caller sets it (`bulkhead up --svid-ttl`).
    pub svid_ttl: Option<std::time::Duration>,
}

/// Loads and checks `dir`, skipping `skip` (the data directory) and dot names. The error
/// is the full report, one problem per line.
pub fn load(dir: &Path, skip: &Path) -> Result<Plan, String> {
    let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let skip = std::path::absolute(skip).unwrap_or_else(|_| skip.to_owned());
    let mut files = Vec::new();
    collect(&dir, &skip, &mut files).map_err(|e| format!("{}: {e}", dir.display()))?;
    if files.is_empty() {
        return Err(format!(
            "{}: no resource files (*.yaml, *.yml, *.json)",
            dir.display()
        ));
    }
    let set = load_strict(&files)?;
    let documents = documents(&files)?;
    let changes: Vec<_> = documents
        .iter()
        .map(|d| (d.key.clone(), Some(&d.object)))
        .collect();
    validate::check_store(&[], &changes, "cluster.local").map_err(|e| api_report(&e))?;
    let workloads = set
        .workloads
        .iter()
        .map(|w| workload(w, &dir))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        dir,
        files,
        documents,
        workloads,
        svid_ttl: None,
    })
}

impl Plan {
    /// Exposed workloads get a free port instead of their annotation's (`up --no-expose`).
    pub fn expose_on_free_ports(&mut self) {
        for w in &mut self.workloads {
            if let Some(addr) = &mut w.expose {
                addr.set_port(0);
            }
        }
    }
}

/// The resource files under `dir`, recursively in sorted order, as the loader takes them.
fn collect(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden || path == skip {
            continue;
        }
        if path.is_dir() {
            collect(&path, skip, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn load_strict(files: &[PathBuf]) -> Result<ResourceSet, String> {
    let mut loader = Loader::new();
    for file in files {
        // `finish` reports every file's problems together.
        let _ = loader.add_path(file);
    }
    loader.finish().map_err(|e| load_report(&e))
}

fn load_report(e: &LoadError) -> String {
    let lines: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
    if lines.is_empty() {
        e.to_string()
    } else {
        lines.join("\n")
    }
}

fn api_report(e: &bulkhead_control::ApiError) -> String {
    match e {
        bulkhead_control::ApiError::Invalid { message, details } => {
            let mut out = message.clone();
            for d in details {
                out.push_str("\n  ");
                out.push_str(d);
            }
            out
        }
        other => other.to_string(),
    }
}

/// The documents of every file, as `POST /api/v1/apply` parses its body.
fn documents(files: &[PathBuf]) -> Result<Vec<Document>, String> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let format = match file.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            _ => Format::Yaml,
        };
        if text.trim().is_empty() {
            continue;
        }
        let docs = validate::parse_body(&text, format)
            .map_err(|e| format!("{}: {}", file.display(), api_report(&e)))?;
        out.extend(docs);
    }
    Ok(out)
}

fn workload(w: &Workload, dir: &Path) -> Result<WorkloadPlan, String> {
    let namespace = w.metadata.namespace_or_default().to_owned();
    let run = match &w.spec.run {
        None => None,
        Some(run) => {
            let where_ = format!("Workload/{namespace}/{}: spec.run.command", w.metadata.name);
            let (first, rest) = run
                .command
                .split_first()
                .ok_or_else(|| format!("{where_}: expected a program and its arguments"))?;
            let program = resolve(first, dir).ok_or_else(|| {
                format!(
                    "{where_}[0]: `{first}` not found (looked next to this executable, \
                     then in PATH; a path is relative to {})",
                    dir.display()
                )
            })?;
            Some(RunPlan {
                program,
                args: rest.to_vec(),
                env: run.env.clone(),
            })
        }
    };
    let expose = match w.metadata.annotations.get(EXPOSE_ANNOTATION) {
        None => None,
        Some(value) => Some(expose(value, w.spec.ports.is_empty()).map_err(|e| {
            format!(
                "Workload/{namespace}/{}: metadata.annotations.{EXPOSE_ANNOTATION}: {e}",
                w.metadata.name
            )
        })?),
    };
    Ok(WorkloadPlan {
        expose,
        name: w.metadata.name.clone(),
        namespace,
        labels: w.metadata.labels.clone(),
        service_account: w
            .spec
            .service_account
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        ports: w
            .spec
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.port))
            .collect(),
        upstreams: w
            .spec
            .upstreams
            .iter()
            .map(|u| (u.service.clone(), u.port))
            .collect(),
        run,
    })
}

/// The value of [`EXPOSE_ANNOTATION`]: `127.0.0.1:PORT` on a workload with ports.
fn expose(value: &str, no_ports: bool) -> Result<SocketAddr, String> {
    let addr: SocketAddr = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not an address (expected 127.0.0.1:PORT)"))?;
    if addr.ip() != Ipv4Addr::LOCALHOST {
        return Err(format!(
            "`{value}`: only 127.0.0.1 is supported (every sidecar of `up` is on loopback)"
        ));
    }
    if no_ports {
        return Err("the workload has no spec.ports to expose".to_owned());
    }
    Ok(addr)
}

/// A program name: with a `/` relative to DIR; a bare name next to the current
/// executable first, then in PATH.
pub fn resolve(name: &str, dir: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let path = dir.join(name);
        return path.is_file().then_some(path);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|p| p.join(name)));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// The environment variable name of a port or service name: upper case, `-` → `_`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The Service name part of `name.namespace`.
pub fn service_name(service: &str) -> &str {
    service.split('.').next().unwrap_or(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_takes_a_loopback_address_on_a_workload_with_ports() {
        assert_eq!(
            expose("127.0.0.1:8080", false),
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        assert!(
            expose("127.0.0.1:8080", true)
                .unwrap_err()
                .contains("spec.ports")
        );
        assert!(
            expose("0.0.0.0:8080", false)
                .unwrap_err()
                .contains("127.0.0.1")
        );
        assert!(
            expose("8080", false)
                .unwrap_err()
                .contains("not an address")
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("ratings-api"), "RATINGS_API");
        assert_eq!(service_name("api.shop"), "api");
    }
}
