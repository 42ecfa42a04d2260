//! The running mesh: the embedded control plane, then a sidecar per workload that has a
//! run command, then the workloads; stopped in the reverse order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::control::Embedded;
use crate::plan::{Plan, WorkloadPlan};
use crate::supervise::{self, ChildSpec, Event, Lifecycle, Role, Supervised};
use crate::wiring::Wiring;
use crate::{Layout, exec, tail};

/// How long a sidecar may take to turn ready (first certificate and snapshot included).
const SIDECAR_READY: Duration = Duration::from_secs(60);
/// How long a workload may take to accept connections on its first port.
const APP_READY: Duration = Duration::from_secs(30);
/// How long a sidecar gets to drain at stop before SIGKILL.
const SIDECAR_GRACE: Duration = Duration::from_secs(10);
/// Readiness poll period.
const POLL: Duration = Duration::from_millis(100);

/// One line of the table printed once everything is up.
#[derive(Debug, Clone)]
pub struct Row {
    /// `ns/name`.
    pub workload: String,
    /// The SPIFFE ID.
    pub identity: String,
    /// (app port, sidecar inbound port) per workload port.
    pub ports: Vec<(u16, u16)>,
    /// The sidecar's admin port.
    pub admin: u16,
    /// The sidecar's inbound address of the first port, when the Workload is exposed
    /// (`bulkhead.dev/expose`).
    pub exposed: Option<SocketAddr>,
    /// Whether the sidecar and the workload turned ready in time.
    pub ready: bool,
}

/// What `up` reports once started.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The control plane's API address.
    pub control: SocketAddr,
    /// The API's CA certificate (PEM), for the context file.
    pub ca_pem: String,
    /// An admin token for this run, for the context file.
    pub operator_token: String,
    /// Started workloads.
    pub rows: Vec<Row>,
    /// Declared workloads without a run command (`ns/name`).
    pub not_started: Vec<String>,
}

/// Every supervised child's pid, for `DATA/up.children`.
type Pids = Arc<Mutex<Vec<(String, Role, watch::Receiver<u32>)>>>;

/// The running mesh.
#[derive(Debug)]
pub struct Mesh {
    layout: Layout,
    control: Option<Embedded>,
    sidecars: Vec<Supervised>,
    apps: Vec<Supervised>,
    stop_sidecars: watch::Sender<bool>,
    stop_apps: watch::Sender<bool>,
    stop_tails: watch::Sender<bool>,
    events_tx: mpsc::UnboundedSender<Event>,
    pids: Pids,
}

impl Mesh {
    /// Starts everything `plan` runs; `progress` hears each step. Returns the mesh, its
    /// summary and the live events. A failure stops what was started.
    pub async fn start(
        plan: &Plan,
        layout: &Layout,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(Mesh, Summary, mpsc::UnboundedReceiver<Event>)> {
        for dir in [
            layout.data.join("proxies"),
            layout.logs(),
            layout.data.join("state"),
        ] {
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        }
        let control = Embedded::start(layout, plan.svid_ttl).await?;
        progress(&format!(
            "control plane listening on https://{}",
            control.addr
        ));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let pids: Pids = Arc::default();
        let mut mesh = Mesh {
            layout: layout.clone(),
            control: Some(control),
            sidecars: Vec::new(),
            apps: Vec::new(),
            stop_sidecars: watch::channel(false).0,
            stop_apps: watch::channel(false).0,
            stop_tails: watch::channel(false).0,
            events_tx: forward(events_tx, Arc::clone(&pids), layout.children_file()),
            pids,
        };
        match mesh.bring_up(plan, progress).await {
            Ok(summary) => Ok((mesh, summary, events_rx)),
            Err(e) => {
                mesh.shutdown().await;
                Err(e)
            }
        }
    }

    async fn bring_up(
        &mut self,
        plan: &Plan,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Summary> {
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| anyhow!("no control plane"))?;
        let written = control.apply(plan.documents.clone()).await?;
        progress(&format!(
            "applied {} resources (store revision {})",
            written.results.len(),
            written.revision
        ));
        let operator_token = control.operator_token()?;
        let (control_addr, ca_pem) = (control.addr, control.ca_pem.clone());
        let (rows, not_started) = self.start_workloads(plan, progress).await?;
        Ok(Summary {
            control: control_addr,
            ca_pem,
            operator_token,
            rows,
            not_started,
        })
    }

    /// Sidecars first (all at once), each workload once its sidecar is ready.
    async fn start_workloads(
        &mut self,
        plan: &Plan,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(Vec<Row>, Vec<String>)> {
        let mut not_started = Vec::new();
        let mut wirings = Vec::new();
        for w in &plan.workloads {
            if w.run.is_none() {
                not_started.push(w.key());
                progress(&format!(
                    "{}: declared without spec.run, not started",
                    w.key()
                ));
                continue;
            }
            let wiring = Wiring::allocate(w)?;
            self.start_sidecar(w, &wiring)?;
            progress(&format!("{}: sidecar starting", w.key()));
            wirings.push((w, wiring));
        }
        for (w, wiring) in &wirings {
            wait_sidecar(w, wiring, &self.layout).await?;
            progress(&format!("{}: sidecar ready", w.key()));
            self.start_app(w, wiring, &plan.dir)?;
        }
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| anyhow!("no control plane"))?;
        let mut rows = Vec::new();
        for (w, wiring) in &wirings {
            let ready = wait_app(wiring).await;
            let state = if ready {
                "ready"
            } else {
                "NOT ready (see its app log)"
            };
            progress(&format!("{}: workload {state}", w.key()));
            rows.push(Row {
                workload: w.key(),
                identity: control.identity(&w.namespace, &w.service_account),
                ports: wiring.ports.iter().map(|p| (p.app, p.inbound)).collect(),
                admin: wiring.admin,
                exposed: w
                    .expose
                    .zip(wiring.ports.first())
                    .map(|(addr, p)| SocketAddr::new(addr.ip(), p.inbound)),
                ready,
            });
        }
        Ok((rows, not_started))
    }

    fn start_sidecar(&mut self, w: &WorkloadPlan, wiring: &Wiring) -> Result<()> {
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| anyhow!("no control plane"))?;
        let layout = &self.layout;
        let config_path = layout.proxy_config(&w.namespace, &w.name);
        let trust_domain = control.shared.trust_domain.as_str().to_owned();
        let address = control.addr.to_string();
        let config = wiring.proxy_config(w, layout, &address, &trust_domain)?;
        std::fs::write(&config_path, config).with_context(|| config_path.display().to_string())?;
        std::fs::create_dir_all(layout.proxy_state(&w.namespace, &w.name))?;
        let token = control.join_token(&w.namespace, &w.service_account)?;
        let ca = layout.api_ca().display().to_string();
        let args = ["proxy", "--config", &config_path.display().to_string()]
            .into_iter()
            .chain(["--control-plane", &address, "--control-plane-ca", &ca])
            .chain(["--exit-with-parent"])
            .map(str::to_owned)
            .collect();
        let spec = ChildSpec {
            workload: w.key(),
            role: Role::Sidecar,
            program: current_exe()?,
            args,
            env: vec![("BULKHEAD_JOIN_TOKEN".to_owned(), token)],
            cwd: layout.data.clone(),
            output: layout.output(&w.namespace, &w.name, "proxy"),
            grace: SIDECAR_GRACE,
        };
        let child = self.supervise(spec, self.stop_sidecars.subscribe());
        self.sidecars.push(child);
        tokio::spawn(tail::follow(
            w.key(),
            layout.access_log(&w.namespace, &w.name),
            self.events_tx.clone(),
            self.stop_tails.subscribe(),
        ));
        Ok(())
    }

    fn start_app(
        &mut self,
        w: &WorkloadPlan,
        wiring: &Wiring,
        dir: &std::path::Path,
    ) -> Result<()> {
        let run = w
            .run
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no run", w.key()))?;
        let mut args = vec![
            "up-exec".to_owned(),
            "--parent-pid".to_owned(),
            std::process::id().to_string(),
            "--".to_owned(),
            run.program.display().to_string(),
        ];
        let env = wiring.env(w);
        args.extend(run.args.iter().map(|a| crate::wiring::expand(a, &env)));
        let spec = ChildSpec {
            workload: w.key(),
            role: Role::App,
            program: current_exe()?,
            args,
            env,
            cwd: dir.to_owned(),
            output: self.layout.output(&w.namespace, &w.name, "app"),
            grace: exec::GRACE + Duration::from_secs(2),
        };
        let child = self.supervise(spec, self.stop_apps.subscribe());
        self.apps.push(child);
        Ok(())
    }

    fn supervise(&self, spec: ChildSpec, stop: watch::Receiver<bool>) -> Supervised {
        let (workload, role) = (spec.workload.clone(), spec.role);
        let child = supervise::start(spec, self.events_tx.clone(), stop);
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((workload, role, child.pid.clone()));
        // The child's `Started` event may have been handled before it was listed here;
        // its pid is set before that event is sent, so writing now cannot miss it.
        write_pids(&self.pids, &self.layout.children_file());
        child
    }

    /// Stops the workloads, then the sidecars, then the control plane.
    pub async fn shutdown(mut self) {
        self.stop_apps.send_replace(true);
        for child in self.apps.drain(..) {
            let _ = child.task.await;
        }
        self.stop_sidecars.send_replace(true);
        for child in self.sidecars.drain(..) {
            let _ = child.task.await;
        }
        self.stop_tails.send_replace(true);
        if let Some(control) = self.control.take() {
            control.stop().await;
        }
        let _ = std::fs::remove_file(self.layout.children_file());
    }
}

fn current_exe() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the bulkhead executable")
}

/// Passes events on to the caller, rewriting `DATA/up.children` whenever a child starts
/// or ends; returns the sender the children report to.
fn forward(
    out: mpsc::UnboundedSender<Event>,
    pids: Pids,
    file: PathBuf,
) -> mpsc::UnboundedSender<Event> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let Event::Lifecycle(_, _, ref what) = event
                && !matches!(what, Lifecycle::Restarting(_))
            {
                write_pids(&pids, &file);
            }
            let _ = out.send(event);
        }
    });
    tx
}

fn write_pids(pids: &Pids, file: &std::path::Path) {
    let pids = pids.lock().unwrap_or_else(PoisonError::into_inner);
    let mut text = String::new();
    for (workload, role, pid) in pids.iter() {
        let pid = *pid.borrow();
        if pid != 0 {
            text.push_str(&format!("{} {workload} {pid}\n", role.as_str()));
        }
    }
    let tmp = file.with_extension("children.tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, file);
    }
}

/// Waits until the sidecar's admin `/ready?skip=app` answers 200 (its app starts after).
async fn wait_sidecar(w: &WorkloadPlan, wiring: &Wiring, layout: &Layout) -> Result<()> {
    let deadline = Instant::now() + SIDECAR_READY;
    let addr = SocketAddr::from(([127, 0, 0, 1], wiring.admin));
    while Instant::now() < deadline {
        if ready(addr).await {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(anyhow!(
        "{}: the sidecar did not turn ready within {}s; see {}",
        w.key(),
        SIDECAR_READY.as_secs(),
        layout.output(&w.namespace, &w.name, "proxy").display()
    ))
}

async fn ready(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request =
            "GET /ready?skip=app HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.ends_with(b" 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Waits until the workload accepts connections on its first port (at once without ports).
async fn wait_app(wiring: &Wiring) -> bool {
    let Some(first) = wiring.ports.first() else {
        return true;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], first.app));
    let deadline = Instant::now() + APP_READY;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    false
}
