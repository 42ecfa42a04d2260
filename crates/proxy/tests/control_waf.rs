//! The firewall under a (fake) control plane: a snapshot's `waf` is compiled and enforced
//! on the inbound path, a malformed one is NACKed naming the field and changes nothing,
//! and an unchanged firewall survives other changes without recompiling.

mod control_support;
mod support;

use std::sync::Arc;

use bulkhead_api::proxy::Waf;
use control_support::{
    Event, FakeControlPlane, ManagedProxy, config, fast_options, scratch, snapshot,
};
use support::apps::{get, h1_client, http_app};

fn waf(spec_json: &str) -> Option<Waf> {
    Some(Waf {
        name: "shop/api".into(),
        spec_json: spec_json.into(),
    })
}

async fn nack(cp: &FakeControlPlane, version: u64) -> String {
    let event = cp
        .wait_for("a NACK", |e| {
            matches!(e, Event::Ack { workload, ack } if workload == "api" && ack.version == version)
        })
        .await;
    let Event::Ack { ack, .. } = event else {
        unreachable!()
    };
    ack.error
}

#[tokio::test]
async fn the_snapshots_firewall_is_compiled_enforced_and_checked() {
    control_support::trace();
    let app = http_app().await;
    let mut cp = FakeControlPlane::start().await;
    let (_dir, base) = scratch();
    cp.add_token("bhj_api", "api");
    let mut first = snapshot(&cp, 1, &[], vec![]);
    first.waf = waf(r#"{"mode":"Blocking"}"#);
    cp.push("api", first);
    let inbound = format!(
        "  inbound: [{{listen: \"127.0.0.1:0\", port: 8080, forwardTo: \"{}\", protocol: http}}]",
        app.addr
    );
    let api = ManagedProxy::start(
        config("api", &cp, "bhj_api", &inbound),
        &base,
        fast_options(),
    )
    .await;
    let current = api.wait_version(1).await;
    let firewall = current.waf.as_ref().expect("the firewall");
    assert_eq!(firewall.source(), "WebApplicationFirewall/shop/api");
    let rules = Arc::clone(firewall.rules().unwrap());
    // Plaintext straight to the inbound port (PERMISSIVE): the firewall answers.
    let mut client = h1_client(api.inbound[0]).await;
    let resp = client
        .send_request(get("/?id=1%27%20OR%201=1--"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        client.send_request(get("/?id=1")).await.unwrap().status(),
        200
    );

    // A malformed firewall is NACKed naming the field; version 1 stays.
    let mut bad = snapshot(&cp, 2, &[], vec![]);
    bad.waf = waf(r#"{"mode":"Blocking","anomalyThresholds":{"inbound":0}}"#);
    cp.push("api", bad);
    let error = nack(&cp, 2).await;
    assert!(
        error.contains("waf.spec_json.anomalyThresholds.inbound"),
        "{error}"
    );
    assert_eq!(api.source.current().version, 1);
    // So is one whose rules do not compile (a target's regular expression, which only the
    // engine checks), naming the rendered line.
    let mut broken = snapshot(&cp, 5, &[], vec![]);
    broken.waf = waf(r#"{"mode":"Blocking","exclusions":[{"targets":["ARGS:/(/"]}]}"#);
    cp.push("api", broken);
    let error = nack(&cp, 5).await;
    assert!(
        error.starts_with("waf: WebApplicationFirewall/shop/api: the firewall rules do not compile: <WebApplicationFirewall/shop/api after CRS>:1:"),
        "{error}"
    );
    assert_eq!(api.source.current().version, 1);
    let resp = client
        .send_request(get("/?id=1%27%20OR%201=1--"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "the rules in force still block");

    // The same firewall in a new snapshot keeps its compiled rules; none removes it.
    let mut same = snapshot(&cp, 6, &[], vec![]);
    same.waf = waf(r#"{"mode":"Blocking"}"#);
    cp.push("api", same);
    let current = api.wait_version(6).await;
    assert!(Arc::ptr_eq(
        current.waf.as_ref().unwrap().rules().unwrap(),
        &rules
    ));
    cp.push("api", snapshot(&cp, 7, &[], vec![]));
    assert!(api.wait_version(7).await.waf.is_none());
    let resp = client
        .send_request(get("/?id=1%27%20OR%201=1--"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    api.stop().await;
    cp.stop().await;
}
