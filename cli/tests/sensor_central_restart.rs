//! Central as a real process killed with SIGKILL under a live Sensor (the test API server and
//! the Sensor in this process): the Sensor reconnects to the restarted Central and Central's
//! picture matches the cluster again, including what changed while it was down.

mod common;

use std::time::Duration;

use rampart_test_support::{ApiServer, eventually};
use serde_json::{Value, json};

fn deployment(name: &str, privileged: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/shop/web:1.4.2",
                    "securityContext": {"privileged": privileged}}]}}}})
}

/// Central's API as admin.
struct Api {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Api {
    fn new(central: &common::CentralProcess, password: &str) -> Api {
        let ca = std::fs::read_to_string(&central.ca).expect("ca");
        Api {
            agent: rampart_test_support::https_agent(&ca).expect("agent"),
            base: central.api.clone(),
            auth: rampart_test_support::basic_auth("admin", password),
        }
    }

    fn get(&self, path: &str) -> Option<Value> {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .call()
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.body_mut().read_json().ok()
    }

    /// Deployment names Central holds for the cluster, sorted.
    fn deployments(&self) -> Option<Vec<String>> {
        let page = self.get("/v1/deployments?limit=1000")?;
        let mut names: Vec<String> = page["deployments"]
            .as_array()?
            .iter()
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Some(names)
    }

    /// States of the "Privileged Container" alerts of one deployment.
    fn privileged_alerts(&self, deployment: &str) -> Option<Vec<String>> {
        let query = format!(
            "Policy:\"Privileged Container\"+Deployment:\"{deployment}\"+Violation State:ACTIVE,RESOLVED"
        );
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let page = self.get(&format!("/v1/alerts?query={encoded}&limit=100"))?;
        Some(
            page["alerts"]
                .as_array()?
                .iter()
                .filter_map(|a| a["state"].as_str().map(str::to_string))
                .collect(),
        )
    }
}

async fn wait<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    eventually(what, Duration::from_secs(60), check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensor_reconnects_after_central_is_killed_and_central_matches_the_cluster() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bundle = dir.path().join("bundle");
    common::init_bundle(&data, &bundle, "prod");
    let central = common::start_central(&data);
    let password = central.password.clone().expect("first start");
    let sensor_endpoint = central.sensor.clone();

    let cluster = ApiServer::start().await.expect("api server");
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .expect("namespace");
    for (name, privileged) in [("a", true), ("b", false), ("c", false)] {
        cluster.apply(deployment(name, privileged)).expect("create");
    }
    let read = |f: &str| std::fs::read_to_string(bundle.join(f)).expect("bundle file");
    let sensor = rampart_sensor::start(rampart_sensor::Config {
        central: rampart_sensor::CentralConfig {
            endpoint: format!("https://{sensor_endpoint}"),
            server_name: "localhost".into(),
            ca_pem: read("ca.pem"),
            cert_pem: read("sensor.pem"),
            key_pem: read("sensor-key.pem"),
            cluster_name: "prod".into(),
        },
        kubeconfig: Some(kubeconfig),
        collector_listen: None,
        health_listen: None,
        exempt_namespaces: rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec(),
    })
    .await
    .expect("sensor");

    let api = Api::new(&central, &password);
    wait("a, b and c in Central", || {
        (api.deployments()? == ["a", "b", "c"]).then_some(())
    })
    .await;
    wait("a's alert", || {
        (api.privileged_alerts("a")? == ["ACTIVE"]).then_some(())
    })
    .await;

    // SIGKILL: no shutdown code runs in Central.
    drop(central);
    wait("the Sensor to notice", || {
        (!sensor.status().connected).then_some(())
    })
    .await;
    cluster.delete("Deployment", "shop", "b").expect("delete");
    cluster.apply(deployment("d", true)).expect("create");
    cluster.apply(deployment("a", false)).expect("fix");

    let central = common::start_central_on(&data, &sensor_endpoint);
    assert_eq!(
        central.sensor, sensor_endpoint,
        "same address after restart"
    );
    let api = Api::new(&central, &password);
    wait("the Sensor to reconnect", || {
        let s = sensor.status();
        (s.connected && s.connections == 2).then_some(())
    })
    .await;
    wait("Central to match the cluster", || {
        (api.deployments()? == ["a", "c", "d"]).then_some(())
    })
    .await;
    wait("a's alert resolved and d's opened", || {
        (api.privileged_alerts("a")? == ["RESOLVED"] && api.privileged_alerts("d")? == ["ACTIVE"])
            .then_some(())
    })
    .await;
    let clusters = api.get("/v1/clusters").expect("clusters");
    let prod = clusters["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "prod"))
        .cloned()
        .expect("prod");
    assert_eq!(prod["connection"], "CONNECTED", "{prod}");
}
