//! Renewal through the control plane: `SvidSource::spawn_renewal` asks the client's
//! `Signer`, which calls `Certify` with no token and the current SVID as TLS client
//! certificate; the renewed certificate is served and presented on the next connection.

mod control_support;

use std::path::Path;
use std::time::Duration;

use bulkhead_identity::bundle::parse_certificates;
use bulkhead_identity::rotation::SvidSource;
use bulkhead_identity::svid::inspect_leaf;
use control_support::{
    Event, FakeControlPlane, ManagedProxy, config, fast_options, scratch, snapshot,
};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

#[tokio::test]
async fn renews_with_the_current_svid_and_presents_the_new_one() {
    control_support::trace();
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    cp.add_token("bhj_api", "api");
    cp.push("api", snapshot(&cp, 1, &[], vec![]));
    // The renewal point counts from installation (not the backdated notBefore): renew one
    // second after it.
    let ttl = Duration::from_secs(3600);
    let mut options = fast_options();
    options.renewal.renew_at = 1.0 / ttl.as_secs_f64();
    options.renewal.jitter = 0.0;
    cp.set_ttl(ttl);
    let mut cfg = config("api", &cp, "bhj_api", "");
    cfg.spec.control_plane.as_mut().unwrap().state_dir = Some("state".into());
    let api = ManagedProxy::start(cfg, &base, options).await;
    let first = api.source.svid().info().serial.clone();

    let renewal = cp
        .wait_for("a renewal", |e| {
            matches!(
                e,
                Event::Certify {
                    client: Some(_),
                    ..
                }
            )
        })
        .await;
    let Event::Certify { token, client, .. } = renewal else {
        unreachable!()
    };
    assert_eq!(token, "");
    assert_eq!(client.unwrap(), *api.source.svid().id());
    // Installed in place: the snapshot's source serves the renewed certificate.
    let mut changes = api.source.svid().subscribe();
    tokio::time::timeout(
        control_support::WAIT,
        changes.wait_for(|info| info.serial != first),
    )
    .await
    .expect("renewed certificate installed")
    .unwrap();
    assert!(api.source.current().svid.is_ready());
    let status = api.wait_status(|s| s.cert_expiry_unix > 0).await;
    assert!(status.connected);
    state_dir_is_refreshed(&base.join("state"), &first).await;

    // The next connection presents the renewed certificate.
    cp.stop().await;
    api.wait_status(|s| !s.connected).await;
    cp.restart().await;
    cp.wait_for(
        "a stream with a renewed certificate",
        |e| matches!(e, Event::Subscribe { client_serial, .. } if *client_serial != first),
    )
    .await;
    api.stop().await;
    cp.stop().await;
}

/// The certificate in `stateDir` moves on with renewals (a restart long after the join
/// still finds a live one), and its key is the one next to it.
async fn state_dir_is_refreshed(state: &Path, joined_serial: &str) {
    let deadline = tokio::time::Instant::now() + control_support::WAIT;
    loop {
        let chain = parse_certificates(&std::fs::read(state.join("cert.pem")).unwrap(), "cert.pem")
            .unwrap();
        if inspect_leaf(&chain[0]).unwrap().serial != joined_serial {
            let key = PrivateKeyDer::from_pem_file(state.join("key.pem")).unwrap();
            SvidSource::new(chain, key).expect("the persisted key is the certificate's");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stateDir certificate not refreshed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
