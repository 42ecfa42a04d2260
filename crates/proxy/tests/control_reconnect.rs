//! Static stability: the control plane goes away, the proxies keep serving with their
//! last snapshot and certificate, and when it comes back on the same port they reconnect,
//! resume with what they applied (no resend of an unchanged snapshot) and take new ones.

mod control_support;
mod support;

use control_support::{
    DENY_ADMIN_JSON, Event, FakeControlPlane, ManagedProxy, api_upstream, config, fast_options,
    scratch, snapshot,
};
use support::apps::{get, h1_client, http_app};

#[tokio::test]
async fn survives_a_control_plane_restart_and_resumes() {
    control_support::trace();
    let app = http_app().await;
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    cp.add_token("bhj_api", "api");
    cp.add_token("bhj_web", "web");
    cp.push("api", snapshot(&cp, 1, &[DENY_ADMIN_JSON], vec![]));
    let inbound = format!(
        "  inbound: [{{listen: \"127.0.0.1:0\", port: 8080, forwardTo: \"{}\"}}]",
        app.addr
    );
    let api = ManagedProxy::start(
        config("api", &cp, "bhj_api", &inbound),
        &base,
        fast_options(),
    )
    .await;
    cp.push(
        "web",
        snapshot(&cp, 1, &[], vec![api_upstream(api.inbound[0])]),
    );
    let outbound = "  outbound: [{listen: \"127.0.0.1:0\", service: api.shop}]";
    let web = ManagedProxy::start(
        config("web", &cp, "bhj_web", outbound),
        &base,
        fast_options(),
    )
    .await;
    api.wait_status(|s| s.connected).await;
    let serial = api.source.svid().info().serial.clone();

    cp.stop().await;
    let down = api.wait_status(|s| !s.connected).await;
    assert!(down.last_error.is_some(), "{down:?}");
    web.wait_status(|s| !s.connected).await;
    // Both proxies keep serving: same snapshot, same certificate.
    let mut client = h1_client(web.outbound[0]).await;
    assert_eq!(
        client.send_request(get("/public")).await.unwrap().status(),
        200
    );
    assert_eq!(
        client.send_request(get("/admin")).await.unwrap().status(),
        403
    );
    assert_eq!(api.source.current().version, 1);
    assert_eq!(api.source.svid().info().serial, serial);

    resumes_after_restart(&mut cp, &api, &serial).await;
    // A new snapshot on the new stream applies.
    cp.push("api", snapshot(&cp, 2, &[], vec![]));
    api.wait_version(2).await;
    assert_eq!(
        client.send_request(get("/admin")).await.unwrap().status(),
        200
    );
    cp.wait_for(
        "ack of v2",
        |e| matches!(e, Event::Ack { ack, .. } if ack.version == 2 && ack.error.is_empty()),
    )
    .await;
    web.stop().await;
    api.stop().await;
    cp.stop().await;
}

/// Back on the same port: the proxy reconnects with its certificate and resumes from
/// what it applied, so the unchanged snapshot is not sent (nor ACKed) again.
async fn resumes_after_restart(cp: &mut FakeControlPlane, api: &ManagedProxy, serial: &str) {
    let before = cp.events().len();
    cp.restart().await;
    let resumed = cp
        .wait_for("api resubscribing", |e| {
            matches!(e, Event::Subscribe { message, .. } if message.workload == "api" && message.applied_hash == "hash-1")
        })
        .await;
    let Event::Subscribe {
        message,
        client_serial,
    } = resumed
    else {
        unreachable!()
    };
    assert_eq!(message.applied_version, 1);
    assert_eq!(client_serial, serial);
    let status = api.wait_status(|s| s.connected && s.streams >= 2).await;
    assert_eq!(status.applied_version, 1);
    let new_acks = cp.events()[before..]
        .iter()
        .filter(|e| matches!(e, Event::Ack { workload, .. } if workload == "api"))
        .count();
    assert_eq!(new_acks, 0);
}
