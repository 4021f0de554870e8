//! The test API server + a real Central + the Sensor, on loopback with real mTLS: what a user
//! does in the cluster shows up in Central.
use std::time::Duration;

use rampart_central::alerts::{AlertRecord, AlertState};
use rampart_central::pki::{Service, persist};
use rampart_central::runtime::{Config as CentralRuntime, Running, start};
use rampart_sensor::{CentralConfig, Config};
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start().await.expect("api server");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let central = start(CentralRuntime {
        data_dir: dir.path().join("central"),
        sensor_listen: "127.0.0.1:0".parse().expect("addr"),
        api_listen: "127.0.0.1:0".parse().expect("addr"),
        server_names: vec!["localhost".into()],
    })
    .await
    .expect("central");
    let now = time::OffsetDateTime::now_utc();
    let ca = persist::load_or_create_ca(&central.core.store, now).expect("ca");
    let bundle = persist::issue_bundle(&central.core.store, &ca, "prod", now).expect("bundle");
    let cert = bundle
        .certs
        .iter()
        .find(|c| c.service == Service::Sensor)
        .expect("sensor certificate");
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .expect("namespace");
    let config = Config {
        central: CentralConfig {
            endpoint: format!("https://{}", central.sensor_addr),
            server_name: "localhost".into(),
            ca_pem: bundle.ca_pem.clone(),
            cert_pem: cert.cert_pem.clone(),
            key_pem: cert.key_pem.clone(),
            cluster_name: "prod".into(),
        },
        kubeconfig: Some(kubeconfig),
    };
    let sensor = rampart_sensor::start(config.clone()).await.expect("sensor");
    World {
        _dir: dir,
        api,
        central,
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
