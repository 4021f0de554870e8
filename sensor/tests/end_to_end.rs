//! The test API server + a real Central + the Sensor, on loopback with real mTLS: what a user
//! does in the cluster shows up in Central.
use std::time::Duration;

use rampart_central::alerts::{AlertRecord, AlertState};
mod common;

use rampart_central::runtime::Running;
use rampart_sensor::Config;
use rampart_test_support::ApiServer;
use serde_json::{Value, json};

async fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    rampart_test_support::eventually(what, Duration::from_secs(30), check).await
}

fn deployment(name: &str, privileged: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/shop/web:1.4.2",
                    "securityContext": {"privileged": privileged},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"}}}]}}}})
}

struct World {
    _dir: tempfile::TempDir,
    api: ApiServer,
    central: Running,
    sensor: Option<rampart_sensor::Sensor>,
    config: Config,
}

async fn world() -> World {
    let setup = common::setup().await;
    let config = setup.sensor_config(None);
    let sensor = rampart_sensor::start(config.clone()).await.expect("sensor");
    World {
        _dir: setup.dir,
        api: setup.api,
        central: setup.central,
        sensor: Some(sensor),
        config,
    }
}

fn alerts(central: &Running, policy: &str, deployment: &str) -> Vec<AlertRecord> {
    rampart_central::alerts::persist::all(&central.core.store)
        .expect("alerts")
        .into_iter()
        .filter(|a| a.policy_name == policy && a.deployment_name == deployment)
        .collect()
}

fn stored_deployments(central: &Running) -> Vec<String> {
    let Some(cluster) = central
        .core
        .store
        .clusters()
        .expect("clusters")
        .into_iter()
        .find(|c| c.name == "prod")
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = central
        .core
        .store
        .deployments(&cluster.id, None, 10_000)
        .expect("deployments")
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_deployment_alerts_then_resolves_when_fixed_and_is_gone_when_deleted() {
    let w = world().await;
    w.api.apply(deployment("web", true)).expect("create");
    w.api.apply(deployment("api", false)).expect("create");
    let opened = eventually("a Privileged Container alert for web", || {
        alerts(&w.central, "Privileged Container", "web")
            .into_iter()
            .find(|a| a.state == AlertState::Active)
    })
    .await;
    assert_eq!(opened.namespace, "shop");
    eventually("both deployments in Central", || {
        (stored_deployments(&w.central) == vec!["api", "web"]).then_some(())
    })
    .await;
    assert!(
        alerts(&w.central, "Privileged Container", "api").is_empty(),
        "the unprivileged deployment is not flagged"
    );

    // Fixed in the cluster: the alert resolves.
    w.api.apply(deployment("web", false)).expect("update");
    eventually("the alert to resolve", || {
        alerts(&w.central, "Privileged Container", "web")
            .iter()
            .all(|a| a.state == AlertState::Resolved)
            .then_some(())
    })
    .await;

    // Deleted: gone from Central.
    w.api.delete("Deployment", "shop", "api").expect("delete");
    eventually("api to be removed from Central", || {
        (stored_deployments(&w.central) == vec!["web"]).then_some(())
    })
    .await;
    assert!(w.sensor.as_ref().is_some_and(|s| s.status().connected));

    // Probes and metrics for the kubelet and Prometheus.
    let health = w
        .sensor
        .as_ref()
        .and_then(|s| s.health_addr)
        .expect("health endpoint");
    let [ready, metrics]: [(u16, String); 2] = common::probe(health, &["/readyz", "/metrics"])
        .await
        .try_into()
        .expect("two answers");
    assert_eq!(ready, (200, "ready\n".to_string()));
    assert_eq!(metrics.0, 200);
    assert!(
        metrics.1.contains("rampart_sensor_central_connected 1\n"),
        "{}",
        metrics.1
    );
    assert!(metrics.1.contains("rampart_sensor_dropped_events 0\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_sensor_was_away_central_matches_the_cluster_exactly() {
    let mut w = world().await;
    for name in ["a", "b", "c"] {
        w.api.apply(deployment(name, false)).expect("create");
    }
    eventually("three deployments in Central", || {
        (stored_deployments(&w.central) == vec!["a", "b", "c"]).then_some(())
    })
    .await;
    let connections = w.sensor.as_ref().map(|s| s.status().connections);
    assert_eq!(connections, Some(1));

    // The Sensor stops; meanwhile the cluster changes.
    w.sensor = None;
    w.api.delete("Deployment", "shop", "b").expect("delete");
    w.api.apply(deployment("d", true)).expect("create");
    w.api.apply(deployment("a", true)).expect("update");

    // A new Sensor process: full resync, deletions included.
    w.sensor = Some(
        rampart_sensor::start(w.config.clone())
            .await
            .expect("sensor"),
    );
    eventually("Central to match the cluster", || {
        (stored_deployments(&w.central) == vec!["a", "c", "d"]).then_some(())
    })
    .await;
    for name in ["a", "d"] {
        eventually("the privileged deployments to alert", || {
            alerts(&w.central, "Privileged Container", name)
                .iter()
                .any(|a| a.state == AlertState::Active)
                .then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_context_from_the_sensor_decides_exposure_policies() {
    let w = world().await;
    // A default policy ACS ships disabled: it needs Services to decide.
    w.central
        .core
        .policies
        .set_disabled("16790a48-b13d-591b-a802-a66191a3b45e", false)
        .await
        .expect("enable");
    let mut web = deployment("web", false);
    web["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    w.api.apply(web).expect("create");
    eventually("web in Central", || {
        (stored_deployments(&w.central) == vec!["web"]).then_some(())
    })
    .await;
    let exposed = "Deployments with externally exposed endpoints";
    assert!(
        alerts(&w.central, exposed, "web").is_empty(),
        "an internal-only deployment is not exposed"
    );
    // A LoadBalancer Service selecting its pods: the Sensor sends the new context, Central alerts.
    w.api
        .apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web-public", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                "ports": [{"port": 443, "targetPort": 8080}]}}))
        .expect("service");
    let alert = eventually("the exposure alert", || {
        alerts(&w.central, exposed, "web")
            .into_iter()
            .find(|a| a.state == AlertState::Active)
    })
    .await;
    assert!(
        alert
            .violations
            .iter()
            .any(|v| v.contains("exposure EXTERNAL (service 'web-public')")),
        "{:?}",
        alert.violations
    );
    // The Service goes away: the alert resolves.
    w.api
        .delete("Service", "shop", "web-public")
        .expect("delete");
    eventually("the exposure alert to resolve", || {
        alerts(&w.central, exposed, "web")
            .iter()
            .all(|a| a.state == AlertState::Resolved)
            .then_some(())
    })
    .await;
}

const PRIVILEGED_POLICY: &str = "4c8266ea-ae07-5588-8392-7843782925ce";

/// Turns on scale-to-zero for "Privileged Container" and waits until the Sensor has it and
/// acts on changes.
async fn enforce_privileged(w: &World, action: &str) {
    let mut policy = w
        .central
        .core
        .policies
        .current()
        .get(PRIVILEGED_POLICY)
        .cloned()
        .expect("default policy");
    policy.enforcement_actions =
        vec![serde_json::from_value(json!(action)).expect("enforcement action")];
    w.central
        .core
        .policies
        .update(PRIVILEGED_POLICY, policy)
        .await
        .expect("update");
    let revision = w.central.core.policies.current().sync.revision.clone();
    eventually("the Sensor to hold the new policies and enforce", || {
        let s = w.sensor.as_ref()?.status();
        (s.enforcing && s.policy_revision == revision).then_some(())
    })
    .await;
}

fn replicas(api: &ApiServer, kind: &str, name: &str) -> Option<i64> {
    api.get(kind, "shop", name)?
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforced_policy_scales_a_new_violating_workload_to_zero_unless_break_glass() {
    let w = world().await;
    // Running before enforcement was switched on: reported, not touched.
    w.api.apply(deployment("legacy", true)).expect("create");
    eventually("legacy in Central", || {
        (stored_deployments(&w.central) == vec!["legacy"]).then_some(())
    })
    .await;
    enforce_privileged(&w, "SCALE_TO_ZERO_ENFORCEMENT").await;

    let mut hotfix = deployment("hotfix", true);
    hotfix["metadata"]["annotations"] =
        json!({"admission.rampart.io/break-glass": "INC-4711 outage fix"});
    w.api.apply(hotfix).expect("create");
    eventually("the break-glass deployment to be skipped", || {
        (w.sensor.as_ref()?.status().break_glass_skips >= 1).then_some(())
    })
    .await;
    w.api.apply(deployment("web", true)).expect("create");
    let mut agent = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": deployment("agent", true)["spec"]["template"].clone()}});
    agent["spec"]["template"]["metadata"]["labels"] = json!({"app": "agent"});
    w.api.apply(agent).expect("create");

    eventually("web scaled to zero in the API server", || {
        (replicas(&w.api, "Deployment", "web") == Some(0)).then_some(())
    })
    .await;
    eventually("the DaemonSet pinned to no node", || {
        let ds = w.api.get("DaemonSet", "shop", "agent")?;
        (ds.pointer("/spec/template/spec/nodeSelector/BlockedByRampart")
            == Some(&json!(PRIVILEGED_POLICY)))
        .then_some(())
    })
    .await;
    // Central records what was done on the alert.
    let alert = eventually("the enforcement on web's alert", || {
        alerts(&w.central, "Privileged Container", "web")
            .into_iter()
            .find(|a| a.state == AlertState::Active && !a.enforcements.is_empty())
    })
    .await;
    let e = &alert.enforcements[0];
    assert_eq!(e.action, "SCALE_TO_ZERO_ENFORCEMENT");
    assert!(e.succeeded);
    assert_eq!(
        e.message,
        "Deployment shop/web scaled from 2 to 0 replicas (policy 'Privileged Container')"
    );
    assert!(e.order_id.is_empty(), "the Sensor acted on its own");

    // Untouched: the pre-existing and the break-glass deployments.
    assert_eq!(replicas(&w.api, "Deployment", "legacy"), Some(2));
    assert_eq!(replicas(&w.api, "Deployment", "hotfix"), Some(2));
    for name in ["legacy", "hotfix"] {
        let active = eventually("an active alert", || {
            alerts(&w.central, "Privileged Container", name)
                .into_iter()
                .find(|a| a.state == AlertState::Active)
        })
        .await;
        assert!(
            active.enforcements.is_empty(),
            "{name}: {:?}",
            active.enforcements
        );
    }
    let status = w.sensor.as_ref().map(|s| s.status()).expect("sensor");
    assert_eq!(status.failed_enforcements, 0);
    assert_eq!(status.enforcements, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enforcement_ordered_through_the_api_is_executed_and_reported() {
    let w = world().await;
    w.api.apply(deployment("legacy", true)).expect("create");
    let alert = eventually("legacy's alert", || {
        alerts(&w.central, "Privileged Container", "legacy")
            .into_iter()
            .find(|a| a.state == AlertState::Active)
    })
    .await;
    let path = format!("/v1/alerts/{}/enforce", alert.id);
    // The policy has no enforcement action: the action must be named.
    let (status, body) = common::admin_call(&w.central, "POST", &path, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        common::admin_call(&w.central, "POST", &path, json!({"action": "DROP_TABLES"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = common::admin_call(
        &w.central,
        "POST",
        &path,
        json!({"action": "SCALE_TO_ZERO_ENFORCEMENT"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let order = body["orderId"].as_str().expect("order id").to_string();
    eventually("legacy scaled to zero", || {
        (replicas(&w.api, "Deployment", "legacy") == Some(0)).then_some(())
    })
    .await;
    let alert = eventually("the order's outcome on the alert", || {
        rampart_central::alerts::persist::get(&w.central.core.store, &alert.id)
            .ok()
            .flatten()
            .filter(|a| !a.enforcements.is_empty())
    })
    .await;
    assert_eq!(alert.enforcements[0].order_id, order);
    assert!(alert.enforcements[0].succeeded, "{:?}", alert.enforcements);

    // In an exempt namespace (Rampart's own) an order is refused by the Sensor, said why on
    // the alert, and the workload is left running.
    let mut own = deployment("agent", true);
    own["metadata"]["namespace"] = json!("rampart");
    w.api.apply(own).expect("create");
    let exempt = eventually("the exempt workload's alert", || {
        alerts(&w.central, "Privileged Container", "agent")
            .into_iter()
            .find(|a| a.state == AlertState::Active)
    })
    .await;
    let exempt_path = format!("/v1/alerts/{}/enforce", exempt.id);
    let (status, body) = common::admin_call(
        &w.central,
        "POST",
        &exempt_path,
        json!({"action": "SCALE_TO_ZERO_ENFORCEMENT"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let refused = eventually("the refusal on the alert", || {
        rampart_central::alerts::persist::get(&w.central.core.store, &exempt.id)
            .ok()
            .flatten()
            .and_then(|a| a.enforcements.first().cloned())
    })
    .await;
    assert!(!refused.succeeded, "{refused:?}");
    assert!(
        refused.message.contains("namespace rampart") && refused.message.contains("exempts"),
        "{refused:?}"
    );
    assert_eq!(
        w.api
            .get("Deployment", "rampart", "agent")
            .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_i64)),
        Some(2)
    );
    let status = w.sensor.as_ref().map(|s| s.status()).expect("sensor");
    assert_eq!(status.exempt_skips, 1);

    // With the Sensor away, an order is refused at once rather than queued.
    let mut w = w;
    w.sensor = None;
    eventually("Central to see the Sensor gone", || {
        let cluster = w
            .central
            .core
            .store
            .clusters()
            .ok()?
            .into_iter()
            .find(|c| c.name == "prod")?;
        (cluster.connection == rampart_central::model::ConnectionState::Disconnected).then_some(())
    })
    .await;
    let (status, body) = common::admin_call(
        &w.central,
        "POST",
        &path,
        json!({"action": "SCALE_TO_ZERO_ENFORCEMENT"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not connected")),
        "{body}"
    );
}
