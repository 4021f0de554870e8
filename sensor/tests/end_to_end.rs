//! The test API server + a real Central + the Sensor, on loopback with real mTLS: what a user
//! does in the cluster shows up in Central.
use std::time::Duration;

use rampart_central::alerts::{AlertRecord, AlertState};
use rampart_central::pki::{Service, persist};
use rampart_central::runtime::{Config as CentralRuntime, Running, start};
use rampart_sensor::{CentralConfig, Config};
use rampart_test_support::ApiServer;
use serde_json::{Value, json};

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
    sensor: rampart_sensor::Sensor,
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
    let sensor = rampart_sensor::start(Config {
        central: CentralConfig {
            endpoint: format!("https://{}", central.sensor_addr),
            server_name: "localhost".into(),
            ca_pem: bundle.ca_pem.clone(),
            cert_pem: cert.cert_pem.clone(),
            key_pem: cert.key_pem.clone(),
            cluster_name: "prod".into(),
        },
        kubeconfig: Some(kubeconfig),
    })
    .await
    .expect("sensor");
    World {
        _dir: dir,
        api,
        central,
        sensor,
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
    assert!(
        alerts(&w.central, "Privileged Container", "api").is_empty(),
        "the unprivileged deployment is not flagged"
    );
    assert_eq!(stored_deployments(&w.central), vec!["api", "web"]);

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
    assert!(w.sensor.status().connected);
}
