//! Where `bulkhead up` keeps things under its data directory (`DIR/.bulkhead` by default).

use std::path::{Path, PathBuf};

/// The files and directories under the data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The data directory itself (absolute).
    pub data: PathBuf,
}

impl Layout {
    /// The layout of `data` (made absolute against the current directory).
    pub fn new(data: &Path) -> Layout {
        Layout {
            data: std::path::absolute(data).unwrap_or_else(|_| data.to_owned()),
        }
    }

    /// The control plane's state (store, CA, API TLS): the data directory itself.
    pub fn control(&self) -> PathBuf {
        self.data.clone()
    }

    /// The control plane API's CA certificate.
    pub fn api_ca(&self) -> PathBuf {
        self.control().join("tls").join("ca.pem")
    }

    /// The CLI context file.
    pub fn context(&self) -> PathBuf {
        self.data.join("context.yaml")
    }

    /// The ProxyConfig of workload `ns/name`.
    pub fn proxy_config(&self, namespace: &str, name: &str) -> PathBuf {
        self.data
            .join("proxies")
            .join(format!("{namespace}-{name}.yaml"))
    }

    /// The sidecar state directory (certificate, key, last snapshot) of `ns/name`.
    pub fn proxy_state(&self, namespace: &str, name: &str) -> PathBuf {
        self.data.join("state").join(format!("{namespace}-{name}"))
    }

    /// The log directory.
    pub fn logs(&self) -> PathBuf {
        self.data.join("logs")
    }

    /// The access log of the sidecar of `ns/name`.
    pub fn access_log(&self, namespace: &str, name: &str) -> PathBuf {
        self.logs().join(format!("{namespace}-{name}.access.log"))
    }

    /// The output of a child: `<name>.proxy.log` or `<name>.app.log`.
    pub fn output(&self, namespace: &str, name: &str, suffix: &str) -> PathBuf {
        self.logs().join(format!("{namespace}-{name}.{suffix}.log"))
    }

    /// The pid of the running `up`.
    pub fn pid_file(&self) -> PathBuf {
        self.data.join("up.pid")
    }

    /// Written once everything is ready (what `--detach` waits for).
    pub fn ready_file(&self) -> PathBuf {
        self.data.join("up.ready")
    }

    /// The output of a detached `up`.
    pub fn up_log(&self) -> PathBuf {
        self.data.join("up.log")
    }

    /// The pids of every running child, one `role name pid` per line (rewritten on change).
    pub fn children_file(&self) -> PathBuf {
        self.data.join("up.children")
    }
}
