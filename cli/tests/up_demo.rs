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

    // A user enforces a default policy by name; the demo's admission controller then refuses
    // a privileged Deployment, and the attempt is an alert `alert get` shows in full.
    let cli = |args: &[&str]| {
        let mut all = vec![
            "-e",
            central.api.as_str(),
            "--ca",
            central.ca.as_str(),
            "--password",
            password.as_str(),
        ];
        all.extend_from_slice(args);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(&all)
            .env_remove("RAMPART_ENDPOINT")
            .output()
            .expect("run rampart");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["policy", "enforce", "Privileged Container"]);
    assert_eq!(code, 0, "{out}{err}");
    let (url, admission_ca) = central
        .admission
        .clone()
        .expect("up runs an admission controller");
    let admission_ca = std::fs::read_to_string(&admission_ca).expect("admission CA");
    let webhook = rampart_test_support::https_agent(&admission_ca).expect("agent");
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-e2e", "operation": "CREATE", "namespace": "shop", "name": "evil",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "evil", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": "evil"}},
                    "template": {"metadata": {"labels": {"app": "evil"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                            "securityContext": {"privileged": true}}]}}}}}});
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let answer: Value = webhook
            .post(&format!("{url}/validate"))
            .send_json(&review)
            .expect("the webhook answers")
            .body_mut()
            .read_json()
            .expect("a review");
        // Until the Sensor has pushed the new set, the controller allows.
        if answer["response"]["allowed"] == false {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "the enforced policy never reached the controller: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let message = answer["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("Policy: Privileged Container")
            && message.contains("Container 'c' is privileged"),
        "{message}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let (_, listed, _) = cli(&[
            "alert",
            "list",
            "-q",
            "Violation State:ATTEMPTED+Deployment:evil",
            "-o",
            "json",
        ]);
        let listed: Value = serde_json::from_str(&listed).unwrap_or_default();
        if let Some(id) = listed["alerts"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no ATTEMPTED alert for the refusal"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (code, shown, err) = cli(&["alert", "get", &id]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "ATTEMPTED: Privileged Container (severity MEDIUM, DEPLOY stage)",
        "Deployment:  local/shop/evil (Deployment)",
        "Request:     CREATE by alice (uid u-e2e), refused",
        "  - Container 'c' is privileged",
        "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT: the admission controller denied CREATE by alice",
        "Remediation: Remove securityContext.privileged",
    ] {
        assert!(shown.contains(line), "'{line}' in:\n{shown}");
    }
}
