//! A real SIGHUP makes `ConfigSource::run` reload. Its own test binary: the signal goes to
//! the whole process.

#![cfg(unix)]

mod config_support;

use std::sync::Arc;
use std::time::Duration;

use bulkhead_proxy::metrics::Metrics;
use bulkhead_proxy::reload::ConfigSource;
use config_support::web_mesh;

#[tokio::test]
async fn sighup_reloads_without_any_file_change() {
    let (_mesh, path) = web_mesh();
    let source = Arc::new(ConfigSource::load(&path, Metrics::new()).unwrap());
    let mut snapshots = source.subscribe();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // `run` subscribes to SIGHUP before it returns; polling is an hour apart, so only the
    // signal can cause a reload.
    let run = Arc::clone(&source).run(Duration::from_secs(3600), async move {
        let _ = stopped.await;
    });
    tokio::spawn(run);
    let pid = std::process::id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(30), snapshots.changed())
        .await
        .expect("no reload after SIGHUP")
        .unwrap();
    assert_eq!(snapshots.borrow().version, 2);
}
