//! A proxy under a (fake) control plane: join-token certify, subscribe, snapshots applied
//! and enforced on the real data path, a NACKed snapshot that changes nothing, and the
//! connection state in `/config`.

mod control_support;
mod support;

use bulkhead_api::proxy::Subscribe;
use bulkhead_proxy::admin::{AdminState, bind_admin, serve_admin};
use control_support::{
    DENY_ADMIN_JSON, Event, FakeControlPlane, ManagedProxy, api_upstream, config, fast_options,
    scratch, snapshot, spiffe,
};
use support::apps::{body_string, get, h1_client, http_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `api` (inbound to the app) and `web` (outbound to `api.shop`), both managed.
async fn mesh(cp: &FakeControlPlane, app: std::net::SocketAddr) -> (ManagedProxy, ManagedProxy) {
    let (_dir, base) = scratch();
    cp.add_token("bhj_api", "api");
    cp.add_token("bhj_web", "web");
    cp.push("api", snapshot(cp, 1, &[], vec![]));
    let inbound = format!(
        "  inbound: [{{listen: \"127.0.0.1:0\", port: 8080, forwardTo: \"{app}\", protocol: http}}]"
    );
    let api = ManagedProxy::start(
        config("api", cp, "bhj_api", &inbound),
        &base,
        fast_options(),
    )
    .await;
    cp.push(
        "web",
        snapshot(cp, 1, &[], vec![api_upstream(api.inbound[0])]),
    );
    let outbound =
        "  outbound: [{listen: \"127.0.0.1:0\", service: api.shop, port: 8080, protocol: http}]";
    let web = ManagedProxy::start(
        config("web", cp, "bhj_web", outbound),
        &base,
        fast_options(),
    )
    .await;
    (api, web)
}

fn acks(cp: &FakeControlPlane, workload: &str) -> Vec<bulkhead_api::proxy::Ack> {
    let acks = cp.events().into_iter().filter_map(|e| match e {
        Event::Ack { workload: w, ack } if w == workload => Some(ack),
        _ => None,
    });
    acks.collect()
}

#[tokio::test]
async fn joins_subscribes_and_enforces_pushed_policies() {
    control_support::trace();
    let app = http_app().await;
    let mut cp = FakeControlPlane::start().await;
    let (api, web) = mesh(&cp, app.addr).await;
    joined_and_subscribed(&cp, &api).await;

    // Version 1 allows everything; endpoints came from the snapshot.
    assert_eq!(
        web.source.current().outbound[0].endpoints[0].address,
        api.inbound[0]
    );
    let mut client = h1_client(web.outbound[0]).await;
    assert_eq!(
        client.send_request(get("/admin/x")).await.unwrap().status(),
        200
    );
    cp.wait_for("ack of api v1", |e| {
        matches!(e, Event::Ack { workload, ack } if workload == "api" && ack.version == 1 && ack.error.is_empty())
    })
    .await;

    // Version 2 denies /admin*: enforced through the real data path.
    cp.push("api", snapshot(&cp, 2, &[DENY_ADMIN_JSON], vec![]));
    api.wait_version(2).await;
    let resp = client.send_request(get("/admin/x")).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert!(body_string(resp).await.contains("authorization"));
    assert_eq!(
        client.send_request(get("/public")).await.unwrap().status(),
        200
    );

    refused_snapshots_change_nothing(&cp, &api).await;
    assert_eq!(
        client.send_request(get("/admin/x")).await.unwrap().status(),
        403
    );
    admin_config_shows_the_connection(&api).await;
    web.stop().await;
    api.stop().await;
    cp.stop().await;
}

/// Joined with the token and no client certificate, then subscribed with the wiring.
async fn joined_and_subscribed(cp: &FakeControlPlane, api: &ManagedProxy) {
    let joined = cp
        .wait_for(
            "join",
            |e| matches!(e, Event::Certify { token, .. } if token == "bhj_api"),
        )
        .await;
    assert!(matches!(joined, Event::Certify { client: None, .. }));
    assert_eq!(api.source.svid().id().as_str(), spiffe("api"));
    let subscribe = |workload: &'static str| move |e: &Event| matches!(e, Event::Subscribe { message, .. } if message.workload == workload);
    let Event::Subscribe { message, .. } = cp.wait_for("api subscribe", subscribe("api")).await
    else {
        unreachable!()
    };
    let Subscribe {
        labels,
        inbound,
        applied_version,
        applied_hash,
        cert_expiry_unix,
        ..
    } = message;
    assert_eq!(labels.get("app").map(String::as_str), Some("api"));
    assert_eq!(
        (inbound[0].port, inbound[0].protocol.as_str()),
        (8080, "http")
    );
    assert_eq!((applied_version, applied_hash.as_str()), (0, ""));
    assert!(cert_expiry_unix > 0);
    let Event::Subscribe { message, .. } = cp.wait_for("web subscribe", subscribe("web")).await
    else {
        unreachable!()
    };
    assert_eq!(message.upstreams[0].service, "api.shop");
    assert_eq!(message.upstreams[0].port, 8080);
}

/// A snapshot that does not decode, then one for another trust domain: both NACKed with
/// the reason, version 2 stays in force.
async fn refused_snapshots_change_nothing(cp: &FakeControlPlane, api: &ManagedProxy) {
    cp.push(
        "api",
        snapshot(cp, 3, &[DENY_ADMIN_JSON, "{not json"], vec![]),
    );
    let nack = cp
        .wait_for(
            "NACK of v3",
            |e| matches!(e, Event::Ack { ack, .. } if ack.version == 3),
        )
        .await;
    let Event::Ack { ack, .. } = nack else {
        unreachable!()
    };
    assert_eq!(ack.hash, "hash-3");
    assert!(ack.error.contains("resources_json[1]"), "{}", ack.error);
    assert_eq!(api.source.current().version, 2);
    let status = api.source.status();
    assert_eq!((status.applied_version, status.rejected), (2, 1));
    assert!(status.last_nack.unwrap().contains("resources_json[1]"));
    let metrics = api.metrics.encode();
    assert!(
        metrics.contains("bulkhead_proxy_config_reloads_total{result=\"rejected\"} 1"),
        "{metrics}"
    );

    let mut foreign = snapshot(cp, 4, &[], vec![]);
    foreign.trust_domain = "other.mesh".into();
    cp.push("api", foreign);
    cp.wait_for("NACK of v4", |e| {
        matches!(e, Event::Ack { ack, .. } if ack.version == 4 && ack.error.starts_with("trust_domain:"))
    })
    .await;
    assert_eq!(
        acks(cp, "api")
            .iter()
            .filter(|a| a.error.is_empty())
            .count(),
        2
    );
    assert_eq!(api.source.current().version, 2);
}

/// `/config` carries the control plane state.
async fn admin_config_shows_the_connection(api: &ManagedProxy) {
    let listener = bind_admin("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut state = AdminState::new(api.source.subscribe(), api.metrics.clone());
    state.control_status = Some(api.source.subscribe_status());
    let admin = tokio::spawn(serve_admin(listener, state));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /config HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let control = &json["control"];
    assert_eq!(control["connected"], true, "{json:#}");
    assert_eq!(control["applied_version"], 2);
    assert_eq!(control["applied_hash"], "hash-2");
    assert_eq!(control["rejected"], 2);
    assert!(
        control["last_nack"]
            .as_str()
            .unwrap()
            .contains("trust_domain")
    );
    assert_eq!(json["version"], 2);
    admin.abort();
}

#[tokio::test]
async fn the_services_traffic_policy_arrives_in_the_outbound() {
    use std::time::Duration;

    use bulkhead_proxy::resilience::TrafficPolicy;
    use bulkhead_proxy::resilience::policy::LoadBalancer;

    control_support::trace();
    let app = http_app().await;
    let mut cp = FakeControlPlane::start().await;
    let (api, web) = mesh(&cp, app.addr).await;
    // Version 1 has no traffic policy: the defaults.
    assert_eq!(
        *web.source.current().outbound[0].traffic,
        TrafficPolicy::default()
    );

    let mut upstream = api_upstream(api.inbound[0]);
    upstream.traffic_policy_json =
        r#"{"loadBalancer":"roundRobin","timeouts":{"connect":"250ms"},"retries":{"attempts":0}}"#
            .into();
    cp.push("web", snapshot(&cp, 2, &[], vec![upstream.clone()]));
    let current = web.wait_version(2).await;
    let traffic = &current.outbound[0].traffic;
    assert_eq!(traffic.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(traffic.timeouts.connect, Duration::from_millis(250));
    assert_eq!(traffic.retries.attempts, 0);
    assert_eq!(traffic.outlier, TrafficPolicy::default().outlier);
    let mut client = h1_client(web.outbound[0]).await;
    assert_eq!(client.send_request(get("/x")).await.unwrap().status(), 200);

    // A policy that breaks a rule is NACKed naming the field; version 2 stays.
    upstream.traffic_policy_json = r#"{"retries":{"budget":{"percent":150}}}"#.into();
    cp.push("web", snapshot(&cp, 3, &[], vec![upstream]));
    let nack = cp
        .wait_for(
            "NACK of web v3",
            |e| matches!(e, Event::Ack { workload, ack } if workload == "web" && ack.version == 3),
        )
        .await;
    let Event::Ack { ack, .. } = nack else {
        unreachable!()
    };
    assert!(
        ack.error
            .contains("upstreams[0].traffic_policy_json.retries.budget.percent"),
        "{}",
        ack.error
    );
    assert_eq!(web.source.current().version, 2);
    web.stop().await;
    api.stop().await;
    cp.stop().await;
}
