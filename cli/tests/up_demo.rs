//! `rampart up --demo` as a newcomer runs it: one command, and Central shows the demo
//! cluster's workloads and the violations a security team would expect to find in it.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

fn get(agent: &ureq::Agent, url: &str, auth: &str) -> Option<Value> {
    let mut response = agent.get(url).header("Authorization", auth).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    response.body_mut().read_json().ok()
}

#[test]
fn up_demo_shows_the_demo_cluster_and_its_violations_in_central() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = common::start_demo(&dir.path().join("data"));
    let password = central.password.clone().expect("first start");
    let ca = std::fs::read_to_string(&central.ca).expect("ca");
    let agent = rampart_test_support::https_agent(&ca).expect("agent");
    let auth = rampart_test_support::basic_auth("admin", &password);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (deployments, alerts) = loop {
        let deployments: Vec<String> = get(
            &agent,
            &format!("{}/v1/deployments?limit=1000", central.api),
            &auth,
        )
        .and_then(|v| {
            v["deployments"].as_array().map(|d| {
                d.iter()
                    .filter_map(|d| d["name"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
        let alerts: Vec<(String, String)> = get(
            &agent,
            &format!("{}/v1/alerts?limit=1000", central.api),
            &auth,
        )
        .and_then(|v| {
            v["alerts"].as_array().map(|a| {
                a.iter()
                    .map(|a| {
                        (
                            a["deploymentName"].as_str().unwrap_or_default().to_string(),
                            a["policyName"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
        let has = |d: &str, p: &str| alerts.iter().any(|(ad, ap)| ad == d && ap == p);
        if deployments.len() >= 7
            && has("payments-api", "Privileged Container")
            && has("cart-cache", "Latest tag")
        {
            break (deployments, alerts);
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not show up: deployments {deployments:?}, alerts {alerts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for name in [
        "frontend",
        "cart-cache",
        "checkout",
        "payments-api",
        "node-exporter",
        "debug-shell",
        "nightly-backup",
    ] {
        assert!(
            deployments.iter().any(|d| d == name),
            "{name} in {deployments:?}"
        );
    }
    let has = |d: &str, p: &str| alerts.iter().any(|(ad, ap)| ad == d && ap == p);
    for (deployment, policy) in [
        ("payments-api", "Mount Container Runtime Socket"),
        ("checkout", "Environment Variable Contains Secret"),
        (
            "node-exporter",
            "Docker CIS 5.15: Ensure that the host's process namespace is not shared",
        ),
        ("debug-shell", "Container may run as root"),
    ] {
        assert!(
            has(deployment, policy),
            "{deployment}: {policy} in {alerts:?}"
        );
    }
    // The well-configured storefront raises no privilege or tag alerts.
    assert!(!has("frontend", "Privileged Container") && !has("frontend", "Latest tag"));

    // The demo's node agent: connections between the workloads reach the network graph, and
    // nmap run in the debugging pod raises the runtime alert.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let graph = get(
            &agent,
            &format!("{}/v1/networkgraph?cluster=local", central.api),
            &auth,
        )
        .unwrap_or_default();
        let names: std::collections::HashMap<&str, &str> = graph["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| Some((n["id"].as_str()?, n["name"].as_str()?)))
            .collect();
        let edge = |src: &str, dst: &str, port: u64| {
            graph["edges"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .any(|e| {
                    e["source"].as_str().and_then(|id| names.get(id)) == Some(&src)
                        && e["destination"].as_str().and_then(|id| names.get(id)) == Some(&dst)
                        && e["port"] == port
                })
        };
        let nmap = get(
            &agent,
            &format!(
                "{}/v1/alerts?query=Policy%3A%22nmap%20Execution%22",
                central.api
            ),
            &auth,
        )
        .and_then(|v| v["alerts"].as_array().cloned())
        .unwrap_or_default();
        if edge("frontend", "checkout", 8080)
            && edge("checkout", "payments-api", 8443)
            && edge("payments-api", "Internet", 443)
            && nmap.iter().any(|a| a["deploymentName"] == "debug-shell")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo's traffic did not show: {graph} / {nmap:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
