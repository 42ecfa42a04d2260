//! The operator REST API end to end over TLS: CRUD, conflicts, validation, dry runs,
//! atomic batches, roles, audit, watch, persistence and a corrupt store.

mod support;

use anyhow::Result;
use serde_json::{Value, json};
use support::ControlPlane;

const SHOP: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: retail}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop, labels: {tier: api}}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]
";

fn changes(reply: &Value) -> Vec<String> {
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["name"].as_str().unwrap(),
                r["change"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn apply_get_update_conflict_delete() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();

    let r = admin.post_yaml("/api/v1/apply", SHOP).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(changes(&r.body), ["shop/created", "allow-web/created"]);
    let rev = r.body["revision"].as_u64().unwrap();
    assert_eq!(rev, 2);

    let r = admin.post_yaml("/api/v1/apply", SHOP).await?;
    assert_eq!(changes(&r.body), ["shop/unchanged", "allow-web/unchanged"]);
    assert_eq!(r.body["revision"], 2);

    let r = admin
        .get("/api/v1/resources/authorizationpolicies/allow-web?namespace=shop")
        .await?;
    assert_eq!(r.status, 200);
    let stored = &r.body["items"][0];
    assert_eq!(stored["metadata"]["resourceVersion"], "2");
    assert!(stored["metadata"]["creationTimestamp"].is_string());

    // Update based on the stored version succeeds; a second update from the same (now
    // stale) version is refused as a whole and changes nothing.
    let updated = SHOP
        .replace("sa/web]", "sa/web, cluster.local/ns/shop/sa/admin]")
        .replace(
            "labels: {tier: api}",
            "labels: {tier: api}, resourceVersion: \"2\"",
        );
    let r = admin.post_yaml("/api/v1/apply", &updated).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(changes(&r.body), ["shop/unchanged", "allow-web/updated"]);
    let stale = updated.replace(
        "cluster.local/ns/shop/sa/admin",
        "cluster.local/ns/shop/sa/ops",
    );
    let r = admin.post_yaml("/api/v1/apply", &stale).await?;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["reason"], "Conflict");
    assert!(
        r.body["error"]["details"][0]
            .as_str()
            .unwrap()
            .contains("AuthorizationPolicy/shop/allow-web")
    );
    let r = admin
        .get("/api/v1/resources?kind=AuthorizationPolicy")
        .await?;
    assert!(!r.text.contains("sa/ops"));
    assert_eq!(r.body["revision"], 3);

    // Filters.
    let r = admin
        .get("/api/v1/resources?labelSelector=team%3Dretail")
        .await?;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["kind"], "Namespace");
    let r = admin.get("/api/v1/resources?namespace=other").await?;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);

    // Delete with a stale version, then for real, then again.
    let path = "/api/v1/resources/AuthorizationPolicy/allow-web?namespace=shop";
    let r = admin.delete(&format!("{path}&resourceVersion=2")).await?;
    assert_eq!(r.status, 409);
    let r = admin.delete(path).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(changes(&r.body), ["allow-web/deleted"]);
    let r = admin.delete(path).await?;
    assert_eq!(r.status, 404);
    let r = admin.get(path).await?;
    assert_eq!(r.status, 404);
    cp.stop().await;
    Ok(())
}

#[tokio::test]
async fn validation_dry_run_and_atomic_batches() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();

    let bad = format!(
        "{SHOP}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: broken, namespace: shop}}\nspec: {{action: MAYBE}}\n"
    );
    let r = admin.post_yaml("/api/v1/apply", &bad).await?;
    assert_eq!(r.status, 400, "{}", r.text);
    let detail = r.body["error"]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("document 3") && detail.contains("spec.action"),
        "{detail}"
    );
    let r = admin.get("/api/v1/resources").await?;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "nothing of the batch was written"
    );

    let r = admin.post_yaml("/api/v1/apply?dryRun=true", SHOP).await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["dryRun"], true);
    assert_eq!(changes(&r.body), ["shop/created", "allow-web/created"]);
    assert!(r.body["results"][1]["diff"].as_str().unwrap().contains("+"));
    let r = admin.get("/api/v1/resources").await?;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "a dry run writes nothing"
    );
    let audit = admin.get("/api/v1/audit").await?.body;
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        1,
        "only the admin token's creation: {audit}"
    );

    admin.post_yaml("/api/v1/apply", SHOP).await?;
    let changed = SHOP.replace("action: ALLOW", "action: DENY");
    let r = admin.post_yaml("/api/v1/diff", &changed).await?;
    assert_eq!(r.status, 200);
    let diff = r.body["results"][1]["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  action: ALLOW") && diff.contains("+  action: DENY"),
        "{diff}"
    );

    let r = admin
        .send(
            http::Method::POST,
            "/api/v1/apply",
            Some(("application/xml", "<x/>")),
        )
        .await?;
    assert_eq!(r.status, 415);
    let r = admin.post_yaml("/api/v1/apply", "a: [").await?;
    assert_eq!(r.status, 400);
    cp.stop().await;
    Ok(())
}

#[tokio::test]
async fn tokens_roles_and_audit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();

    assert_eq!(cp.client("").get("/healthz").await?.status, 200);
    let mut anonymous = cp.admin();
    anonymous.token = None;
    assert_eq!(anonymous.get("/api/v1/status").await?.status, 401);
    assert_eq!(anonymous.get("/metrics").await?.status, 401);
    assert_eq!(cp.client("nope").get("/api/v1/status").await?.status, 401);
    let unknown = format!("bht_{}", "0".repeat(64));
    assert_eq!(cp.client(&unknown).get("/api/v1/status").await?.status, 401);

    let mut secrets = Vec::new();
    for role in ["viewer", "editor"] {
        let r = admin
            .post_json("/api/v1/tokens", &json!({"name": role, "role": role}))
            .await?;
        assert_eq!(r.status, 200, "{}", r.text);
        secrets.push((
            r.body["token"]["id"].as_str().unwrap().to_owned(),
            r.body["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let viewer = cp.client(&secrets[0].1);
    let editor = cp.client(&secrets[1].1);
    assert_eq!(viewer.get("/api/v1/resources").await?.status, 200);
    assert_eq!(viewer.get("/metrics").await?.status, 200);
    assert_eq!(viewer.post_yaml("/api/v1/apply", SHOP).await?.status, 403);
    assert_eq!(editor.post_yaml("/api/v1/apply", SHOP).await?.status, 200);
    assert_eq!(editor.get("/api/v1/tokens").await?.status, 403);
    let r = editor
        .post_json("/api/v1/tokens", &json!({"name": "x", "role": "admin"}))
        .await?;
    assert_eq!(r.status, 403);
    assert_eq!(
        admin
            .post_json(
                "/api/v1/tokens",
                &json!({"name": "viewer", "role": "viewer"})
            )
            .await?
            .status,
        409
    );

    let r = admin
        .delete(&format!("/api/v1/tokens/{}", secrets[0].0))
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = viewer.get("/api/v1/resources").await?;
    assert_eq!(r.status, 401);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    let r = admin
        .post_json(
            "/api/v1/jointokens",
            &json!({"namespace": "shop", "serviceAccount": "web", "maxUses": 2}),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["secret"].as_str().unwrap().starts_with("bhj_"));
    assert_eq!(
        r.body["token"]["identity"],
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    let listed = admin.get("/api/v1/tokens").await?;
    assert_eq!(listed.body["joinTokens"].as_array().unwrap().len(), 1);
    assert!(
        !listed.text.contains("bht_") && !listed.text.contains("bhj_"),
        "secrets are never listed"
    );

    let audit = viewer_or_admin_audit(&admin).await?;
    let verbs: Vec<&str> = audit.iter().map(|r| r["verb"].as_str().unwrap()).collect();
    assert_eq!(
        verbs,
        [
            "token.create",
            "token.create",
            "token.create",
            "create",
            "create",
            "token.revoke",
            "jointoken.create"
        ]
    );
    assert_eq!(audit[0]["actor"], "control-plane");
    let create = &audit[3];
    assert!(
        create["actor"]
            .as_str()
            .unwrap()
            .starts_with("token:editor")
    );
    assert_eq!(create["object"], "Namespace/shop");
    assert!(create["diff"].as_str().unwrap().contains("+"));
    let seqs: Vec<u64> = audit.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());

    let metrics = admin.get("/metrics").await?.text;
    assert!(
        metrics.contains("bulkhead_control_auth_failures_total{reason=\"revoked\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bulkhead_control_api_requests_total{route=\"/api/v1/apply\""),
        "{metrics}"
    );
    cp.stop().await;
    Ok(())
}

async fn viewer_or_admin_audit(client: &support::Client) -> Result<Vec<Value>> {
    let r = client.get("/api/v1/audit").await?;
    assert_eq!(r.status, 200, "{}", r.text);
    Ok(r.body["items"].as_array().unwrap().clone())
}

#[tokio::test]
async fn watch_replays_history_then_follows() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();
    admin.post_yaml("/api/v1/apply", SHOP).await?;
    let watcher = admin.clone();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let lines = tokio::spawn(async move {
        watcher
            .watch_lines(
                "/api/v1/watch?revision=1&kind=AuthorizationPolicy",
                2,
                ready_tx,
            )
            .await
    });
    ready.await?;
    let r = admin
        .delete("/api/v1/resources/ap/allow-web?namespace=shop")
        .await?;
    assert_eq!(r.status, 200);
    let lines = lines.await??;
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["revision"], 2);
    assert_eq!(lines[1]["type"], "DELETED");
    assert_eq!(lines[1]["object"]["metadata"]["name"], "allow-web");
    cp.stop().await;
    Ok(())
}

#[tokio::test]
async fn restart_keeps_everything_and_corrupt_store_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin_token = cp.admin.clone().unwrap();
    cp.admin().post_yaml("/api/v1/apply", SHOP).await?;
    cp.stop().await;

    let cp = ControlPlane::start(dir.path()).await?;
    assert!(
        cp.admin.is_none(),
        "the admin token is printed on the first start only"
    );
    let client = cp.client(&admin_token);
    let r = client.get("/api/v1/resources").await?;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(
        client.get("/api/v1/audit").await?.body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    cp.stop().await;

    let store = dir.path().join("store.redb");
    std::fs::write(&store, b"this is not a database")?;
    let err =
        bulkhead_control::Bootstrap::open(&bulkhead_control::Options::new(dir.path())).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("store.redb") && message.contains("not a readable"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&store)?,
        b"this is not a database",
        "nothing was reset"
    );
    Ok(())
}

#[tokio::test]
async fn traffic_policies_are_validated_and_one_per_service() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();
    let policy = |name: &str, spec: &str| {
        format!(
            "apiVersion: bulkhead.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: {name}, \
             namespace: shop}}\nspec:\n  service: api\n{spec}"
        )
    };

    let bad = policy("api", "  retries: {backoff: {base: 1s, max: 100ms}}\n");
    let r = admin.post_yaml("/api/v1/apply", &bad).await?;
    assert_eq!(r.status, 400, "{}", r.text);
    let detail = r.body["error"]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("TrafficPolicy/shop/api") && detail.contains("spec.retries.backoff.base"),
        "{detail}"
    );

    let good = policy(
        "api",
        "  timeouts: {request: 5s}\n  retries: {attempts: 1}\n",
    );
    let r = admin.post_yaml("/api/v1/apply", &good).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = admin.get("/api/v1/resources/tp/api?namespace=shop").await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["spec"]["timeouts"]["request"], "5s");

    // A second policy for the same Service is refused by the whole-store check.
    let r = admin
        .post_yaml("/api/v1/apply", &policy("api-2", ""))
        .await?;
    assert_eq!(r.status, 400, "{}", r.text);
    let detail = r.body["error"]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("spec.service") && detail.contains("TrafficPolicy/shop/api"),
        "{detail}"
    );
    cp.stop().await;
    Ok(())
}

#[tokio::test]
async fn web_application_firewalls_are_validated_and_stored() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cp = ControlPlane::start(dir.path()).await?;
    let admin = cp.admin();
    let firewall = |spec: &str| {
        format!(
            "apiVersion: bulkhead.dev/v1alpha1\nkind: WebApplicationFirewall\nmetadata: {{name: \
             frontend, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: frontend}}}}\n{spec}"
        )
    };
    let bad = firewall("  mode: Blocking\n  exclusions: [{ruleIds: [942100], paths: [upload]}]\n");
    let r = admin.post_yaml("/api/v1/apply", &bad).await?;
    assert_eq!(r.status, 400, "{}", r.text);
    let detail = r.body["error"]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("WebApplicationFirewall/shop/frontend")
            && detail.contains("spec.exclusions[0].paths[0]"),
        "{detail}"
    );
    let good = firewall("  mode: DetectionOnly\n  paranoiaLevel: 2\n");
    let r = admin.post_yaml("/api/v1/apply", &good).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    // `waf` is the short name.
    let r = admin
        .get("/api/v1/resources/waf/frontend?namespace=shop")
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"][0]["spec"]["paranoiaLevel"], 2);
    cp.stop().await;
    Ok(())
}
