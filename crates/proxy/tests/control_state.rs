//! `stateDir`: the last good snapshot, certificate, key and bundle survive a restart, so a
//! proxy whose control plane is unreachable at start serves what it served before; and
//! the start-up failures that retrying cannot fix.

mod control_support;

use bulkhead_proxy::control::{ControlError, ControlledSource, Options};
use bulkhead_proxy::metrics::Metrics;
use control_support::{
    DENY_ADMIN_JSON, Event, FakeControlPlane, ManagedProxy, config, fast_options, scratch, snapshot,
};

#[tokio::test]
async fn a_restarted_proxy_serves_the_persisted_state_while_the_control_plane_is_down() {
    control_support::trace();
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    cp.add_token("bhj_api", "api");
    cp.push("api", snapshot(&cp, 1, &[DENY_ADMIN_JSON], vec![]));
    let mut cfg = config("api", &cp, "bhj_api", "");
    cfg.spec.control_plane.as_mut().unwrap().state_dir = Some("state".into());
    let api = ManagedProxy::start(cfg.clone(), &base, fast_options()).await;
    cp.wait_for(
        "ack of v1",
        |e| matches!(e, Event::Ack { ack, .. } if ack.version == 1),
    )
    .await;
    let serial = api.source.svid().info().serial.clone();
    let state = base.join("state");
    for file in ["cert.pem", "key.pem", "bundle.pem", "snapshot.json"] {
        assert!(state.join(file).is_file(), "{file} not persisted");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    api.stop().await;
    cp.stop().await;

    // The token is spent and the control plane is down: only the persisted state helps.
    let api = ManagedProxy::start(cfg, &base, fast_options()).await;
    let current = api.source.current();
    assert_eq!(current.version, 1);
    assert_eq!(current.engine.policy_counts().2, 1);
    assert_eq!(api.source.svid().info().serial, serial);
    let status = api.source.status();
    assert!(status.from_state_dir && !status.connected, "{status:?}");
    assert_eq!(status.applied_hash, "hash-1");

    // Back on the same port: the proxy resumes from the persisted version.
    cp.restart().await;
    cp.wait_for("resubscribe from the persisted snapshot", |e| {
        matches!(e, Event::Subscribe { message, client_serial }
            if message.applied_hash == "hash-1" && *client_serial == serial)
    })
    .await;
    api.wait_status(|s| s.connected).await;
    cp.push("api", snapshot(&cp, 2, &[], vec![]));
    api.wait_version(2).await;
    assert!(!api.source.status().from_state_dir);
    api.stop().await;
    cp.stop().await;
}

#[tokio::test]
async fn a_refused_join_token_fails_start() {
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    let cfg = config("api", &cp, "bhj_unknown", "");
    let err = ControlledSource::start(cfg, &base, Metrics::new(), Options::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControlError::Refused {
                code: tonic::Code::Unauthenticated,
                rpc: "Certify",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown or spent join token"),
        "{err}"
    );
    cp.stop().await;
}

#[tokio::test]
async fn no_token_and_no_persisted_certificate_fails_start() {
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    let mut cfg = config("api", &cp, "unused", "");
    cfg.spec.control_plane.as_mut().unwrap().token = None;
    let err = ControlledSource::start(cfg, &base, Metrics::new(), Options::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::NoCredential { .. }), "{err}");
    assert!(err.to_string().contains("BULKHEAD_JOIN_TOKEN"), "{err}");
    cp.stop().await;
}
