//! `ConfigSource`: reloads on file changes and on request, publishes valid configurations
//! with the next version and keeps the old snapshot when a new one is invalid. Timers run
//! on paused tokio time; every wait is on a channel, bounded by a timeout.

mod config_support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::reload::ConfigSource;
use config_support::{WEB, web_mesh};
use tokio::sync::oneshot;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

/// Starts `source.run` with a 1 s poll interval; dropping the sender stops it.
fn start(source: &Arc<ConfigSource>) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(Arc::clone(source).run(Duration::from_secs(1), shutdown));
    stop
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn load() -> (config_support::Mesh, Arc<ConfigSource>, Arc<Metrics>) {
    let (mesh, path) = web_mesh();
    let metrics = Metrics::new();
    let source = Arc::new(ConfigSource::load(&path, Arc::clone(&metrics)).unwrap());
    (mesh, source, metrics)
}

#[tokio::test(start_paused = true)]
async fn a_valid_change_is_published_as_the_next_version() {
    let (mesh, source, metrics) = load();
    let mut snapshots = source.subscribe();
    assert_eq!(snapshots.borrow().version, 1);
    assert!(
        metrics
            .encode()
            .contains("bulkhead_proxy_config_version 1\n")
    );
    let _stop = start(&source);

    mesh.write("proxy.yaml", &WEB.replace("port: 8080", "port: 8081"));
    within("the new snapshot", snapshots.changed())
        .await
        .unwrap();
    let snapshot = snapshots.borrow_and_update().clone();
    assert_eq!(snapshot.version, 2);
    assert_eq!(snapshot.inbound[0].port, 8081);
    assert_eq!(source.config().spec.inbound[0].port, 8081);
    let text = metrics.encode();
    assert!(text.contains("bulkhead_proxy_config_version 2\n"), "{text}");
    assert!(
        text.contains("bulkhead_proxy_config_reloads_total{result=\"accepted\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalid_change_is_rejected_and_the_old_snapshot_stays() {
    let (mesh, source, metrics) = load();
    let snapshots = source.subscribe();
    let mut status = source.subscribe_status();
    let _stop = start(&source);

    let path = mesh.write("proxy.yaml", &WEB.replace("port: 8080", "port: 0"));
    within("the rejection", status.changed()).await.unwrap();
    let seen = status.borrow_and_update().clone();
    assert_eq!((seen.attempts, seen.rejected), (1, 1));
    let error = seen.last_error.unwrap();
    assert!(
        error.starts_with(&format!(
            "{}: document 1 (line 11): ProxyConfig/shop/web: spec.inbound[0].port: ",
            path.display()
        )),
        "{error}"
    );
    assert!(!snapshots.has_changed().unwrap());
    assert_eq!(source.current().version, 1);
    assert!(
        metrics
            .encode()
            .contains("bulkhead_proxy_config_reloads_total{result=\"rejected\"} 1\n")
    );

    // The same broken file is not retried every second...
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(source.subscribe_status().borrow().attempts, 1);
    // ...but fixing it is picked up, as version 2 (rejected attempts use no version).
    mesh.write("proxy.yaml", &WEB.replace("port: 8080", "port: 8082"));
    let mut snapshots = snapshots;
    within("the fixed snapshot", snapshots.changed())
        .await
        .unwrap();
    assert_eq!(snapshots.borrow().version, 2);
    assert_eq!(source.subscribe_status().borrow().last_error, None);
}

#[tokio::test(start_paused = true)]
async fn nothing_changed_means_no_reload() {
    let (_mesh, source, _) = load();
    let snapshots = source.subscribe();
    let _stop = start(&source);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(source.subscribe_status().borrow().attempts, 0);
    assert!(!snapshots.has_changed().unwrap());
}

#[test]
fn reload_on_request_publishes_even_without_changes() {
    // What SIGHUP calls.
    let (_mesh, source, _) = load();
    assert_eq!(source.reload().unwrap(), 2);
    assert_eq!(source.current().version, 2);
    assert!(source.poll().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_renewed_certificate_is_picked_up_into_the_same_source() {
    let (mesh, source, _) = load();
    let first = source.current();
    let serial = first.svid.info().serial.clone();
    let mut snapshots = source.subscribe();
    let _stop = start(&source);

    mesh.issue("web", "shop", "web");
    within("the renewed certificate", snapshots.changed())
        .await
        .unwrap();
    let second = snapshots.borrow().clone();
    assert_eq!(second.version, 2);
    assert!(Arc::ptr_eq(&first.svid, &second.svid));
    assert_ne!(second.svid.info().serial, serial);
}

#[tokio::test(start_paused = true)]
async fn policy_files_added_to_a_watched_directory_are_picked_up() {
    let (mesh, path) = web_mesh();
    std::fs::create_dir(mesh.path().join("policies")).unwrap();
    mesh.write(
        "proxy.yaml",
        &WEB.replace("policies: []", "policies: [policies]"),
    );
    let source = Arc::new(ConfigSource::load(&path, Metrics::new()).unwrap());
    assert_eq!(source.current().engine.policy_counts(), (0, 0, 0));
    let mut snapshots = source.subscribe();
    let _stop = start(&source);

    mesh.write(
        "policies/nested/strict.yaml",
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n",
    );
    within("the new policy", snapshots.changed()).await.unwrap();
    assert_eq!(snapshots.borrow().engine.policy_counts(), (0, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_loop() {
    let (_mesh, source, _) = load();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(Arc::clone(&source).run(Duration::from_secs(1), async move {
        let _ = stopped.await;
    }));
    drop(stop);
    within("the loop to stop", task).await.unwrap();
}

#[test]
fn an_invalid_initial_config_is_a_startup_error() {
    let (mesh, _) = web_mesh();
    let path = mesh.write("proxy.yaml", &WEB.replace("port: 8080", "port: 0"));
    let err = ConfigSource::load(&path, Metrics::new()).unwrap_err();
    assert!(err.to_string().contains("spec.inbound[0].port"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_access_log_follows_the_reloaded_switch() {
    use bulkhead_proxy::accesslog::AccessLog;
    use bulkhead_proxy::config::AccessLogSpec;

    let (mesh, source, _) = load();
    let spec = AccessLogSpec {
        enabled: true,
        path: Some("access.log".into()),
    };
    let log = Arc::new(AccessLog::new(&spec, mesh.path()).unwrap());
    let mut snapshots = source.subscribe();
    tokio::spawn(Arc::clone(&log).follow(source.subscribe()));
    let _stop = start(&source);
    // The example config has `accessLog: {enabled: false}`.
    within("the log to switch off", async {
        while log.is_enabled() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    mesh.write(
        "proxy.yaml",
        &WEB.replace("accessLog: {enabled: false}", "accessLog: {enabled: true}"),
    );
    within("the new snapshot", snapshots.changed())
        .await
        .unwrap();
    within("the log to switch on", async {
        while !log.is_enabled() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}
