//! The admission controller over real HTTPS with real AdmissionReview JSON: policies pushed by a
//! real Sensor (mTLS) from a real Central, alerts back to Central; bad input; the failure modes;
//! a restart deciding from the disk cache.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_admission::policies::DiskCache;
use rampart_admission::{AdmissionController, Config, FailureMode, SensorLink};
use rampart_central::alerts::{AlertRecord, AlertState};
use rampart_central::pki::{InitBundle, IssuedCert, Service, persist};
use rampart_central::runtime::{Config as CentralRuntime, Running};
use rampart_test_support::ApiServer;
use serde_json::{Value, json};

const PRIVILEGED: &str = "4c8266ea-ae07-5588-8392-7843782925ce";
/// ACS's default "Images with no scans".
const NO_SCANS: &str = "094dd1e5-ec4d-5f80-885d-b03017fe4dc7";
const EXEC: &str = "0b4d9b2b-9e74-5a31-9e3b-d1d0cbbd8f05";

async fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    rampart_test_support::eventually(what, Duration::from_secs(30), check).await
}

/// A serving certificate for `localhost` and the CA that signed it, as files.
fn serving_cert(dir: &Path) -> String {
    rampart_test_support::serving_cert(dir).expect("serving certificate")
}

fn config(dir: &Path, mode: FailureMode) -> Config {
    let mut c = Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.join("tls.crt"),
        dir.join("tls.key"),
        dir.join("cache"),
    );
    c.health_listen = Some("127.0.0.1:0".parse().expect("addr"));
    c.settings.failure_mode = mode;
    c.max_body_bytes = 256 * 1024;
    c.body_timeout = Duration::from_millis(500);
    c
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(ca: &str, controller: &AdmissionController) -> Client {
        Client {
            agent: rampart_test_support::https_agent(ca).expect("agent"),
            base: format!("https://localhost:{}", controller.addr.port()),
        }
    }

    /// POSTs a body; the status and the JSON answer.
    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        tokio::task::spawn_blocking(move || {
            let request = ureq::http::Request::builder()
                .method("POST")
                .uri(url)
                .header("Content-Type", "application/json")
                .body(body)
                .expect("request");
            let mut response = agent.run(request).expect("response");
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().expect("body");
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
        .await
        .expect("call")
    }

    async fn review(&self, path: &str, review: Value) -> Value {
        let (status, body) = self
            .post(path, serde_json::to_vec(&review).expect("json"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["response"]["uid"], review["request"]["uid"]);
        body["response"].clone()
    }
}

/// The controller's `/metrics` text, from its health port.
fn exposed_metrics(controller: &AdmissionController) -> String {
    let health = controller.health_addr.expect("health");
    ureq::get(format!("http://{health}/metrics"))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text")
}

fn deployment(name: &str, privileged: bool, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations,
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1.0",
                    "securityContext": {"privileged": privileged}}]}
            }
        },
        "status": {"replicas": 2}
    })
}

fn review(uid: &str, operation: &str, object: &Value, extra: Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let mut request = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": object["metadata"]["name"], "namespace": "shop", "operation": operation,
        "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]},
        "object": object,
        "oldObject": if operation == "UPDATE" { object.clone() } else { Value::Null },
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": format!("{}Options", operation.to_lowercase())},
    });
    if let (Some(r), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

struct World {
    dir: tempfile::TempDir,
    api: ApiServer,
    central: Running,
    bundle: InitBundle,
    sensor: rampart_sensor::Sensor,
    ca: String,
    controller: AdmissionController,
}

fn cert(bundle: &InitBundle, service: Service) -> &IssuedCert {
    bundle
        .certs
        .iter()
        .find(|c| c.service == service)
        .expect("certificate")
}

async fn world() -> World {
    world_deciding(Default::default(), |_| {}).await
}

/// [`world`] with Central scanning as `images` says and the controller's settings changed by
/// `settings`.
async fn world_deciding(
    images: rampart_central::images::ImageSettings,
    settings: impl FnOnce(&mut rampart_admission::decide::Settings),
) -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start().await.expect("api server");
    api.write_kubeconfig(&dir.path().join("kubeconfig"))
        .expect("kubeconfig");
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .expect("namespace");
    let central = rampart_central::runtime::start(CentralRuntime {
        data_dir: dir.path().join("central"),
        sensor_listen: "127.0.0.1:0".parse().expect("addr"),
        api_listen: "127.0.0.1:0".parse().expect("addr"),
        server_names: vec!["localhost".into()],
        images,
        baselines: Default::default(),
        admin_password: None,
    })
    .await
    .expect("central");
    let now = time::OffsetDateTime::now_utc();
    let ca = persist::load_or_create_ca(&central.core.store, now).expect("ca");
    let bundle = persist::issue_bundle(&central.core.store, &ca, "prod", now).expect("bundle");
    let sensor_cert = cert(&bundle, Service::Sensor);
    let sensor = rampart_sensor::start(rampart_sensor::Config {
        central: rampart_sensor::CentralConfig {
            endpoint: format!("https://{}", central.sensor_addr),
            server_name: "localhost".into(),
            ca_pem: bundle.ca_pem.clone(),
            cert_pem: sensor_cert.cert_pem.clone(),
            key_pem: sensor_cert.key_pem.clone(),
            cluster_name: "prod".into(),
        },
        kubeconfig: Some(dir.path().join("kubeconfig")),
        collector_listen: Some("127.0.0.1:0".parse().expect("addr")),
        health_listen: None,
        exempt_namespaces: rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec(),
    })
    .await
    .expect("sensor");
    let serving_ca = serving_cert(dir.path());
    let admission = cert(&bundle, Service::AdmissionControl);
    let mut c = config(dir.path(), FailureMode::Closed);
    settings(&mut c.settings);
    c.sensor = Some(SensorLink {
        endpoint: format!(
            "https://{}",
            sensor.collector_addr.expect("sensor endpoint")
        ),
        server_name: "sensor.rampart.svc".into(),
        ca_pem: bundle.ca_pem.clone(),
        cert_pem: admission.cert_pem.clone(),
        key_pem: admission.key_pem.clone(),
        instance: "test".into(),
    });
    let controller = rampart_admission::start(c).await.expect("controller");
    World {
        dir,
        api,
        central,
        bundle,
        sensor,
        ca: serving_ca,
        controller,
    }
}

/// Sets a default policy's enforcement in Central; waits until the controller enforces it.
/// Enforces a default policy at `stage` as `rampart policy enforce` does: the stage's usual
/// action (a refusal of the request for an exec policy), patched into Central.
async fn enforce(w: &World, id: &str, stage: rampart_policy::LifecycleStage) {
    let mut policy = w
        .central
        .core
        .policies
        .current()
        .get(id)
        .cloned()
        .expect("default policy");
    policy
        .set_enforced(stage, true)
        .expect("the policy's stage");
    let change = rampart_central::policies::PolicyChange {
        enforcement_actions: Some(policy.enforcement_actions),
        ..Default::default()
    };
    w.central
        .core
        .policies
        .patch(id, change)
        .await
        .expect("patched");
    eventually("the controller to enforce the policy", || {
        let set = w.controller.state.policies()?;
        set.enforced_ids().contains(&id).then_some(())
    })
    .await;
}

fn central_alerts(central: &Running) -> Vec<AlertRecord> {
    rampart_central::alerts::persist::all(&central.core.store).expect("alerts")
}

/// Waits for Central's alert on the admission request `uid`.
async fn central_alert_for(central: &Running, uid: &str, what: &str) -> AlertRecord {
    eventually(what, || {
        central_alerts(central)
            .into_iter()
            .find(|a| a.admission.as_ref().is_some_and(|r| r.request_uid == uid))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decides_with_policies_pushed_by_the_sensor_and_reports_alerts_to_central() {
    let w = world().await;
    let client = Client::new(&w.ca, &w.controller);
    // A workload and its pod exist before: the controller learns them from the Sensor.
    let existing = w
        .api
        .apply(deployment("legacy", true, json!({})))
        .expect("create");
    let legacy_uid = existing["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    w.api
        .apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "legacy-5d8c-x2", "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy",
                "uid": legacy_uid, "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1.0"}]}}))
        .expect("pod");

    // Pushed while serving: enforcement switched on in Central reaches the controller.
    enforce(&w, PRIVILEGED, rampart_policy::LifecycleStage::Deploy).await;

    let clean = client
        .review(
            "/validate",
            review(
                "u-clean",
                "CREATE",
                &deployment("web", false, json!({})),
                json!({}),
            ),
        )
        .await;
    assert_eq!(clean["allowed"], true, "{clean}");
    // The enabled default policies it violates, not enforced, come back as warnings (what
    // `kubectl` prints), each naming its policy; the enforced one is not among them.
    let warnings: Vec<&str> = clean["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!warnings.is_empty(), "{clean}");
    for w in &warnings {
        assert!(
            w.starts_with("Rampart: violates \"") && w.contains("not enforced"),
            "{w}"
        );
        assert!(!w.contains("Privileged Container"), "{w}");
    }
    assert!(
        exposed_metrics(&w.controller).contains(&format!(
            "rampart_admission_warnings_total {}",
            warnings.len()
        )),
        "counted"
    );

    let denied = client
        .review(
            "/validate",
            review(
                "u-priv",
                "CREATE",
                &deployment("web", true, json!({})),
                json!({}),
            ),
        )
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["status"]["code"], 403);
    let message = denied["status"]["message"].as_str().expect("message");
    for part in [
        "Rampart denied the create of Deployment shop/web",
        "Policy: Privileged Container",
        "Container 'app' is privileged",
        "- Remediation:",
        "admission.rampart.io/break-glass",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }

    // A privileged pod that names the legacy Deployment as its controller: from the
    // ReplicaSet controller it is decided at that owner; from anyone else it is decided itself
    // (dry runs, to raise no alert).
    let claiming = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "legacy-5d8c-x3", "namespace": "shop",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "legacy",
            "uid": legacy_uid, "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1.0",
            "securityContext": {"privileged": true}}]}});
    let by_controller = client
        .review(
            "/validate",
            review(
                "u-pod-rs",
                "CREATE",
                &claiming,
                json!({"dryRun": true, "userInfo": {"username": "system:kube-controller-manager"}}),
            ),
        )
        .await;
    assert_eq!(by_controller["allowed"], true, "{by_controller}");
    let by_alice = client
        .review(
            "/validate",
            review("u-pod-alice", "CREATE", &claiming, json!({"dryRun": true})),
        )
        .await;
    assert_eq!(by_alice["allowed"], false, "{by_alice}");
    let message = by_alice["status"]["message"].as_str().expect("message");
    for part in [
        "Rampart denied the create of Pod shop/legacy-5d8c-x3",
        "alice is not a workload controller, so the Pod itself was evaluated",
        "Container 'app' is privileged",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }

    // `kubectl debug` adding a privileged container to the running legacy pod.
    let running = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "legacy-5d8c-x2", "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1.0"}]}});
    let mut debugged = running.clone();
    debugged["spec"]["ephemeralContainers"] = json!([{"name": "debugger-7q", "image": "busybox:1.36",
        "targetContainerName": "app", "securityContext": {"privileged": true}}]);
    let debug = client
        .review(
            "/validate",
            review(
                "u-debug",
                "UPDATE",
                &debugged,
                json!({"subResource": "ephemeralcontainers", "oldObject": running, "dryRun": true}),
            ),
        )
        .await;
    assert_eq!(debug["allowed"], false, "{debug}");
    let message = debug["status"]["message"].as_str().expect("message");
    for part in [
        "the ephemeral container 'debugger-7q' being added to the running Pod (kubectl debug)",
        "Container 'debugger-7q' is privileged",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }

    let glass = client
        .review(
            "/validate",
            review(
                "u-glass",
                "CREATE",
                &deployment(
                    "hotfix",
                    true,
                    json!({"admission.rampart.io/break-glass": "INC-42"}),
                ),
                json!({}),
            ),
        )
        .await;
    assert_eq!(glass["allowed"], true, "{glass}");
    assert!(
        glass["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("break-glass")
    );

    let dry = client
        .review(
            "/validate",
            review(
                "u-dry",
                "CREATE",
                &deployment("web", true, json!({})),
                json!({"dryRun": true}),
            ),
        )
        .await;
    assert_eq!(dry["allowed"], false, "dry-run decides the same");

    let excluded = client
        .review(
            "/validate",
            review(
                "u-ks",
                "CREATE",
                &deployment("web", true, json!({})),
                json!({"namespace": "kube-system"}),
            ),
        )
        .await;
    assert_eq!(excluded["allowed"], true);

    // v1beta1 is answered in v1beta1.
    let mut beta = review(
        "u-beta",
        "UPDATE",
        &deployment("web", true, json!({})),
        json!({}),
    );
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (status, body) = client
        .post("/validate", serde_json::to_vec(&beta).expect("json"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(body["response"]["allowed"], false);

    // Scaling the existing privileged workload up: decided against the Sensor's view of it.
    eventually("the controller to know the existing workload", || {
        let r = w.controller.state.resources.read().ok()?;
        (r.synced && r.owner_of_pod("shop", "legacy-5d8c-x2").is_some()).then_some(())
    })
    .await;
    let scale = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-scale",
        "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "subResource": "scale", "name": "legacy", "namespace": "shop", "operation": "UPDATE",
        "userInfo": {"username": "alice"},
        "object": {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "legacy", "namespace": "shop"}, "spec": {"replicas": 5}}}});
    let scaled = client.review("/validate", scale).await;
    assert_eq!(scaled["allowed"], false, "{scaled}");

    // exec into the existing pod, once exec is enforced.
    enforce(&w, EXEC, rampart_policy::LifecycleStage::Runtime).await;
    let exec = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-exec",
        "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": "exec", "name": "legacy-5d8c-x2", "namespace": "shop", "operation": "CONNECT",
        "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"], "stdin": true, "tty": true}}});
    let exec = client.review("/events", exec).await;
    assert_eq!(exec["allowed"], false, "{exec}");
    assert!(
        exec["status"]["message"]
            .as_str()
            .expect("message")
            .contains("Kubernetes Actions: Exec into Pod")
    );

    // A controller retrying a denied object: attempts made while an identical one's alert waits
    // are counted on it, however the reports fall.
    let retry = |uid: &str| {
        review(
            uid,
            "CREATE",
            &deployment("retried", true, json!({})),
            json!({}),
        )
    };
    let retries = tokio::join!(
        client.review("/validate", retry("u-retry-1")),
        client.review("/validate", retry("u-retry-2")),
        client.review("/validate", retry("u-retry-3")),
    );
    for answer in [&retries.0, &retries.1, &retries.2] {
        assert_eq!(answer["allowed"], false, "{answer}");
    }
    let attempts_on = |alerts: &[AlertRecord], name: &str| -> u64 {
        alerts
            .iter()
            .filter(|a| a.deployment_name == name)
            .filter_map(|a| a.admission.as_ref().map(|r| r.attempts))
            .sum()
    };

    // Every denial became an ATTEMPTED alert in Central; break-glass an ACTIVE one; dry-run none.
    let alerts = eventually("Central to hold the admission alerts", || {
        let alerts: Vec<AlertRecord> = central_alerts(&w.central)
            .into_iter()
            .filter(|a| a.admission.is_some())
            .collect();
        (alerts.len() >= 6 && attempts_on(&alerts, "retried") == 3).then_some(alerts)
    })
    .await;
    let retried: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.deployment_name == "retried")
        .collect();
    assert!((1..=3).contains(&retried.len()), "{retried:?}");
    for a in &retried {
        assert_eq!(a.policy_id, PRIVILEGED);
        assert_eq!(a.state, AlertState::Attempted);
        let request = a.admission.as_ref().expect("request");
        assert!(request.request_uid.starts_with("u-retry-"), "{request:?}");
        assert!(a.first_occurred_unix_ms <= a.time_unix_ms);
    }
    let by_request = |uid: &str| -> Vec<&AlertRecord> {
        alerts
            .iter()
            .filter(|a| a.admission.as_ref().is_some_and(|r| r.request_uid == uid))
            .collect()
    };
    let priv_alert = by_request("u-priv");
    assert_eq!(priv_alert.len(), 1);
    assert_eq!(priv_alert[0].state, AlertState::Attempted);
    assert_eq!(priv_alert[0].policy_id, PRIVILEGED);
    assert_eq!(
        priv_alert[0].cluster_id,
        w.central.core.store.clusters().expect("clusters")[0].id
    );
    assert_eq!(
        priv_alert[0].enforcements[0].action,
        "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"
    );
    let glass_alert = by_request("u-glass");
    assert_eq!(glass_alert[0].state, AlertState::Active);
    assert!(
        glass_alert[0]
            .admission
            .as_ref()
            .is_some_and(|r| r.break_glass)
    );
    assert_eq!(
        by_request("u-beta")[0]
            .admission
            .as_ref()
            .map(|r| r.operation.as_str()),
        Some("UPDATE")
    );
    assert_eq!(by_request("u-scale")[0].deployment_name, "legacy");
    let exec_alert = by_request("u-exec");
    assert_eq!(exec_alert[0].lifecycle_stage, "RUNTIME");
    assert_eq!(exec_alert[0].deployment_id, legacy_uid);
    assert_eq!(exec_alert[0].state, AlertState::Attempted);
    assert!(
        by_request("u-dry").is_empty(),
        "dry-run has no side effects"
    );
    assert!(by_request("u-clean").is_empty());

    // Metrics count decisions by outcome and policy.
    let metrics = exposed_metrics(&w.controller);
    assert!(
        metrics.contains(
            r#"rampart_admission_decisions_total{endpoint="validate",outcome="denied"} 9"#
        ),
        "{metrics}"
    );
    // Counted through the policy set's own handle on the series.
    let violations = |policy: &str| -> Option<u64> {
        let prefix = format!(r#"rampart_admission_policy_violations_total{{policy="{policy}"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse().ok())
    };
    assert!(
        violations("Privileged Container").is_some_and(|n| n > 0),
        "{metrics}"
    );
    assert!(metrics.contains("rampart_admission_request_duration_seconds_bucket"));
    assert!(metrics.contains("rampart_admission_alert_attempts_coalesced_total"));
    assert!(metrics.contains("rampart_admission_policy_age_seconds"));
    let _ = (&w.dir, &w.bundle);
}

/// A controller stopped while the Sensor is away keeps its denials' alerts on disk; started
/// again with the Sensor there, it reports them, and Central records the ATTEMPTED alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_not_yet_reported_survive_a_restart_and_reach_central() {
    let w = world().await;
    enforce(&w, PRIVILEGED, rampart_policy::LifecycleStage::Deploy).await;
    // A controller without a Sensor (away), deciding from the set the Sensor pushed before.
    let away = offline(w.dir.path(), FailureMode::Closed).await;
    let denied = Client::new(&w.ca, &away)
        .review(
            "/validate",
            review(
                "u-while-away",
                "CREATE",
                &deployment("offline", true, json!({})),
                json!({}),
            ),
        )
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(away.state.alerts.len(), 1);
    assert_eq!(away.stop().await.expect("stopped"), 1);
    let kept = w
        .dir
        .path()
        .join("cache")
        .join(rampart_admission::PENDING_ALERTS_FILE);
    assert!(kept.exists());

    // Started again, the Sensor reachable: the kept alert is reported.
    let mut c = config(w.dir.path(), FailureMode::Closed);
    c.sensor = Some(link_to(
        &w,
        format!(
            "https://{}",
            w.sensor.collector_addr.expect("sensor endpoint")
        ),
    ));
    let back = rampart_admission::start(c).await.expect("controller");
    assert!(!kept.exists(), "read back once");
    let alert = central_alert_for(&w.central, "u-while-away", "the kept alert in Central").await;
    assert_eq!(alert.policy_id, PRIVILEGED);
    assert_eq!(alert.state, AlertState::Attempted);
    assert_eq!(alert.deployment_name, "offline");
    drop(back);
}

/// The admission controller's link to the world's Sensor, at `endpoint`.
fn link_to(w: &World, endpoint: String) -> SensorLink {
    let admission = cert(&w.bundle, Service::AdmissionControl);
    SensorLink {
        endpoint,
        server_name: "sensor.rampart.svc".into(),
        ca_pem: w.bundle.ca_pem.clone(),
        cert_pem: admission.cert_pem.clone(),
        key_pem: admission.key_pem.clone(),
        instance: "storm".into(),
    }
}

/// Distinct denials while the Sensor is away, more than the queue holds: the link moves the
/// oldest to disk instead of dropping them, and every one reaches Central once the Sensor is
/// back (here, after a restart in between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_distinct_denials_beyond_the_queue_is_kept_on_disk_and_reported() {
    let w = world().await;
    let storm_dir = w.dir.path().join("storm");
    std::fs::create_dir_all(&storm_dir).expect("mkdir");
    let ca = serving_cert(&storm_dir);
    cache_enforcing_privileged(&storm_dir);
    // The Sensor away: nothing listens where the link dials.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let away_endpoint = format!("https://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut c = config(&storm_dir, FailureMode::Closed);
    c.alert_queue = 8;
    c.sensor = Some(link_to(&w, away_endpoint));
    let away = rampart_admission::start(c).await.expect("controller");
    let client = Client::new(&ca, &away);
    let storm: usize = 20;
    for i in 0..storm {
        let answer = client
            .review(
                "/validate",
                review(
                    &format!("storm-{i}"),
                    "CREATE",
                    &deployment(&format!("storm-{i}"), true, json!({})),
                    json!({}),
                ),
            )
            .await;
        assert_eq!(answer["allowed"], false, "{answer}");
        // Paced as the link moves alerts out past half the queue (counting those it holds
        // for a report it is trying to send).
        eventually("the queue at half its capacity or less", || {
            (away.state.alerts.undelivered() <= 4).then_some(())
        })
        .await;
    }
    let metrics = &away.state.metrics;
    // Every denial's alert is on disk or still waiting (none delivered, none dropped) once the
    // link is done moving them.
    eventually("every alert on disk or waiting", || {
        let accounted = metrics.alerts_spilled.get() + away.state.alerts.undelivered() as u64;
        (accounted == storm as u64).then_some(())
    })
    .await;
    assert!(metrics.alerts_spilled.get() > 0);
    assert_eq!(metrics.alerts_dropped.get(), 0);
    let exposed = exposed_metrics(&away);
    assert!(
        exposed.contains(&format!(
            "rampart_admission_alerts_spilled_total {}",
            metrics.alerts_spilled.get()
        )),
        "{exposed}"
    );
    away.stop().await.expect("stopped");

    // Started again with the Sensor there: every denial's alert reaches Central.
    let mut c = config(&storm_dir, FailureMode::Closed);
    c.alert_queue = 8;
    c.sensor = Some(link_to(
        &w,
        format!(
            "https://{}",
            w.sensor.collector_addr.expect("sensor endpoint")
        ),
    ));
    let back = rampart_admission::start(c).await.expect("controller");
    let uids = eventually("every denial's alert in Central", || {
        let uids: std::collections::BTreeSet<String> = central_alerts(&w.central)
            .into_iter()
            .filter_map(|a| a.admission.map(|r| r.request_uid))
            .filter(|uid| uid.starts_with("storm-"))
            .collect();
        (uids.len() == storm).then_some(uids)
    })
    .await;
    assert_eq!(uids.len(), storm);
    let left = std::fs::read_dir(
        storm_dir
            .join("cache")
            .join(rampart_admission::ALERT_OVERFLOW_DIR),
    )
    .map(|d| d.count())
    .unwrap_or(0);
    assert_eq!(left, 0, "every segment read back");
    drop(back);
}

/// A controller with no Sensor: what its disk cache holds is all it knows.
async fn offline(dir: &Path, mode: FailureMode) -> AdmissionController {
    rampart_admission::start(config(dir, mode))
        .await
        .expect("controller")
}

fn cache_enforcing_privileged(dir: &Path) {
    let policies: Vec<Vec<u8>> = rampart_policy::defaults::default_policies()
        .into_iter()
        .map(|mut p| {
            if p.id == PRIVILEGED {
                p.enforcement_actions = vec![
                    serde_json::from_value(json!("SCALE_TO_ZERO_ENFORCEMENT")).expect("action"),
                ];
            }
            serde_json::to_vec(&p).expect("json")
        })
        .collect();
    DiskCache::new(&dir.join("cache"))
        .store("r-cached", "prod", std::time::SystemTime::now(), &policies)
        .expect("cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_set_the_failure_mode_decides_and_a_restart_uses_the_cache() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = serving_cert(dir.path());
    let bad = review(
        "u1",
        "CREATE",
        &deployment("web", true, json!({})),
        json!({}),
    );
    for (mode, allowed) in [(FailureMode::Open, true), (FailureMode::Closed, false)] {
        let controller = offline(dir.path(), mode).await;
        let health = controller.health_addr.expect("health");
        let ready = ureq::get(format!("http://{health}/readyz"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .expect("readyz");
        assert_eq!(ready.status().as_u16(), 503);
        let answer = Client::new(&ca, &controller)
            .review("/validate", bad.clone())
            .await;
        assert_eq!(answer["allowed"], allowed, "{mode:?}: {answer}");
        let text = if allowed {
            answer["warnings"][0].as_str()
        } else {
            answer["status"]["message"].as_str()
        };
        assert!(
            text.expect("explained")
                .contains("no policy set received yet"),
            "{answer}"
        );
    }
    // The set a Sensor sent before is on disk: a restarted controller decides at once.
    cache_enforcing_privileged(dir.path());
    let controller = offline(dir.path(), FailureMode::Open).await;
    let answer = Client::new(&ca, &controller).review("/validate", bad).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    assert!(
        answer["status"]["message"]
            .as_str()
            .expect("message")
            .contains("Privileged Container")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_storm_is_logged_within_the_budget_and_every_denial_still_counts() {
    let Offline {
        _dir,
        controller,
        client,
        ..
    } = offline_enforcing_privileged_with(|c| c.log_lines_per_second = 2).await;
    let storm = 12;
    for i in 0..storm {
        let bad = review(
            &format!("storm-{i}"),
            "CREATE",
            &deployment("web", true, json!({})),
            json!({}),
        );
        let answer = client.review("/validate", bad).await;
        assert_eq!(answer["allowed"], false, "{answer}");
    }
    let metrics = &controller.state.metrics;
    assert_eq!(
        metrics
            .decision("validate", rampart_admission::decide::Outcome::Denied)
            .get(),
        storm
    );
    // At most two lines a second were written; the storm took less than a few seconds.
    let withheld = metrics.log_lines_withheld.get();
    assert!((1..storm).contains(&withheld), "{withheld} withheld");
    let exposed = exposed_metrics(&controller);
    assert!(
        exposed.contains(&format!(
            "rampart_admission_log_lines_withheld_total {withheld}"
        )),
        "{exposed}"
    );
}

/// A fail-closed controller without a Sensor, deciding from a cached set that enforces
/// "Privileged Container".
struct Offline {
    _dir: tempfile::TempDir,
    ca: String,
    controller: AdmissionController,
    client: Client,
}

async fn offline_enforcing_privileged() -> Offline {
    offline_enforcing_privileged_with(|_| {}).await
}

/// The same with its configuration changed by `tweak`.
async fn offline_enforcing_privileged_with(tweak: impl FnOnce(&mut Config)) -> Offline {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = serving_cert(dir.path());
    cache_enforcing_privileged(dir.path());
    let mut config = config(dir.path(), FailureMode::Closed);
    tweak(&mut config);
    let controller = rampart_admission::start(config).await.expect("controller");
    let client = Client::new(&ca, &controller);
    Offline {
        _dir: dir,
        ca,
        controller,
        client,
    }
}

/// A workload of `kind` named `web` around one container, privileged or not, as its API group
/// writes it.
fn workload(kind: &str, privileged: bool) -> Value {
    let pod_spec = json!({"containers": [{"name": "app", "image": "registry.example.com/web:1.0",
        "securityContext": {"privileged": privileged}}]});
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec});
    let (api_version, spec) = match kind {
        "Pod" => ("v1", pod_spec),
        "ReplicationController" => (
            "v1",
            json!({"replicas": 2, "selector": {"app": "web"}, "template": template}),
        ),
        "Job" => ("batch/v1", json!({"template": template})),
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}),
        ),
        "DeploymentConfig" => (
            "apps.openshift.io/v1",
            json!({"replicas": 2, "selector": {"app": "web"}, "template": template}),
        ),
        _ => (
            "apps/v1",
            json!({"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}),
        ),
    };
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": "web", "namespace": "shop", "uid": format!("uid-{kind}")},
        "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_kind_is_decided_on_create_and_update_over_https() {
    // Kept whole: the controller serves while it is held.
    let offline = offline_enforcing_privileged().await;
    let client = &offline.client;
    for kind in rampart_policy::WorkloadKind::ALL.map(|k| k.as_str()) {
        for operation in ["CREATE", "UPDATE"] {
            let uid = format!("{kind}-{operation}");
            let clean = client
                .review(
                    "/validate",
                    review(&uid, operation, &workload(kind, false), json!({})),
                )
                .await;
            assert_eq!(clean["allowed"], true, "{kind} {operation}: {clean}");

            let denied = client
                .review(
                    "/validate",
                    review(&uid, operation, &workload(kind, true), json!({})),
                )
                .await;
            assert_eq!(denied["allowed"], false, "{kind} {operation}: {denied}");
            assert_eq!(denied["status"]["code"], 403);
            let message = denied["status"]["message"].as_str().expect("message");
            for part in [
                format!(
                    "Rampart denied the {} of {kind} shop/web",
                    operation.to_lowercase()
                ),
                "Policy: Privileged Container".to_string(),
                "Container 'app' is privileged".to_string(),
            ] {
                assert!(message.contains(&part), "{part:?} missing from:\n{message}");
            }
        }
    }
}

/// Opens a TLS connection to the controller.
async fn tls_connect(
    ca: &str,
    controller: &AdmissionController,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = rampart_test_support::tls_connector(ca).expect("connector");
    let tcp = tokio::net::TcpStream::connect(controller.addr)
        .await
        .expect("connect");
    connector
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("handshake")
}

/// The controller offers HTTP/2 as well as HTTP/1.1 (the API server speaks HTTP/1.1 to
/// admission webhooks since Kubernetes 1.16; other clients may negotiate HTTP/2): reviews sent
/// at once as the streams of one connection are each answered with their own uid and decision,
/// whatever order they are decided in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_multiplexed_over_one_http2_connection_are_each_answered() {
    use http_body_util::{BodyExt, Full};
    let Offline {
        _dir,
        ca,
        controller,
        client: _,
    } = offline_enforcing_privileged().await;
    let connector = rampart_test_support::tls_connector_offering(&ca, &[b"h2", b"http/1.1"])
        .expect("connector");
    let tcp = tokio::net::TcpStream::connect(controller.addr)
        .await
        .expect("connect");
    let tls = connector
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let streams: Vec<_> = (0..64)
        .map(|i| {
            let mut sender = sender.clone();
            let privileged = i % 3 == 0;
            let body = review(
                &format!("u-h2-{i}"),
                "CREATE",
                &deployment(&format!("web-{i}"), privileged, json!({})),
                json!({}),
            );
            tokio::spawn(async move {
                let request = hyper::Request::post("/validate")
                    .header("content-type", "application/json")
                    .body(Full::new(bytes::Bytes::from(
                        serde_json::to_vec(&body).expect("json"),
                    )))
                    .expect("request");
                let response = sender.send_request(request).await.expect("answer");
                assert_eq!(response.version(), hyper::Version::HTTP_2);
                assert_eq!(response.status(), 200);
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
                (i, privileged, answer)
            })
        })
        .collect();
    for stream in streams {
        let (i, privileged, answer) = stream.await.expect("stream");
        assert_eq!(answer["response"]["uid"], format!("u-h2-{i}"), "{answer}");
        assert_eq!(answer["response"]["allowed"], !privileged, "{answer}");
        if privileged {
            let message = answer["response"]["status"]["message"]
                .as_str()
                .expect("message");
            assert!(message.contains(&format!("shop/web-{i}")), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer_and_nothing_breaks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Offline {
        _dir,
        ca,
        controller,
        client,
    } = offline_enforcing_privileged().await;

    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\":".to_vec(),
            400,
            "malformed AdmissionReview",
        ),
        (
            b"not json at all".to_vec(),
            400,
            "malformed AdmissionReview",
        ),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"operation": "CREATE", "object": deployment("web", true, json!({}))}}),
            )
            .expect("json"),
            400,
            "has no uid",
        ),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview",
                "request": {"uid": "u"}}),
            )
            .expect("json"),
            400,
            "unsupported AdmissionReview apiVersion",
        ),
    ];
    for (body, status, fragment) in cases {
        let (got, answer) = client.post("/validate", body).await;
        assert_eq!(got, status, "{answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(fragment),
            "{fragment:?} not in {answer}"
        );
    }
    // A malformed object inside a good review is answered as a review, by the failure mode.
    let mut malformed = review(
        "u-m",
        "CREATE",
        &deployment("web", false, json!({})),
        json!({}),
    );
    malformed["request"]["object"]["spec"]["template"]["spec"]["containers"] = json!("oops");
    let answer = client.review("/validate", malformed).await;
    assert_eq!(answer["allowed"], false);
    assert!(
        answer["status"]["message"]
            .as_str()
            .expect("message")
            .contains("does not decode")
    );

    // Oversized by its Content-Length: refused before the body is read.
    let mut tls = tls_connect(&ca, &controller).await;
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 307200\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 512];
    let n = tls.read(&mut head).await.expect("read");
    let text = String::from_utf8_lossy(&head[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("larger than 262144 bytes"), "{text}");

    // Oversized without a Content-Length (chunked): cut off at the limit.
    let mut tls = tls_connect(&ca, &controller).await;
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .expect("write");
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..5 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if tls.write_all(&framed).await.is_err() {
            break;
        }
    }
    let mut head = vec![0u8; 64];
    let n = tls.read(&mut head).await.expect("read");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );

    // Slow loris: a body promised and never sent is answered 408 within the budget.
    let mut tls = tls_connect(&ca, &controller).await;
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"api",
    )
    .await
    .expect("write");
    let mut head = vec![0u8; 64];
    let n = tls.read(&mut head).await.expect("read");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );

    // Wrong method, unknown path.
    let agent = rampart_test_support::https_agent(&ca).expect("agent");
    let base = format!("https://localhost:{}", controller.addr.port());
    let status = tokio::task::spawn_blocking(move || {
        let get = agent
            .get(format!("{base}/validate"))
            .call()
            .expect("get")
            .status()
            .as_u16();
        let other = agent
            .post(format!("{base}/mutate"))
            .send("{}")
            .expect("post")
            .status()
            .as_u16();
        (get, other)
    })
    .await
    .expect("calls");
    assert_eq!(status, (405, 404));

    // Still serving.
    let answer = client
        .review(
            "/validate",
            review(
                "u-after",
                "CREATE",
                &deployment("web", false, json!({})),
                json!({}),
            ),
        )
        .await;
    assert_eq!(answer["allowed"], true);
}

/// Resident memory of this process, from procfs.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_and_endless_headers_holds_bounded_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Offline {
        _dir,
        ca,
        controller,
        client,
    } = offline_enforcing_privileged().await;
    let good = || {
        review(
            "u-flood",
            "CREATE",
            &deployment("web", true, json!({})),
            json!({}),
        )
    };
    // Warm up (TLS, allocator), then measure from here.
    assert_eq!(client.review("/validate", good()).await["allowed"], false);
    let before = rss_kib();

    // An endless header: the connection is refused once the head passes the limit, instead of
    // the buffer growing with what the client sends.
    const CONNECTIONS: usize = 200;
    let pad = vec![b'a'; 16 * 1024];
    let mut endless = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut tls = tls_connect(&ca, &controller).await;
        tls.write_all(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Pad: ")
            .await
            .expect("write");
        endless.push(tls);
    }
    let mut refused = 0;
    for tls in &mut endless {
        let mut sent = 0;
        while sent < 2 * rampart_admission::server::MAX_HEAD_BYTES {
            if tls.write_all(&pad).await.is_err() {
                break;
            }
            sent += pad.len();
        }
        let mut answer = vec![0u8; 256];
        // Answered at the limit, not after the header timeout closes the connection.
        let n = tls.read(&mut answer).await.unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");
        refused += 1;
    }
    assert_eq!(refused, CONNECTIONS);

    // Slow heads: each sends part of a header and waits. They are held (until the header
    // timeout), each with a bounded buffer, and the controller keeps deciding meanwhile.
    let mut slow = Vec::new();
    for i in 0..CONNECTIONS {
        let mut tls = tls_connect(&ca, &controller).await;
        tls.write_all(
            format!("POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow-{i}: ").as_bytes(),
        )
        .await
        .expect("write");
        tls.write_all(&pad[..8 * 1024]).await.expect("write");
        slow.push(tls);
    }
    assert_eq!(client.review("/validate", good()).await["allowed"], false);
    let grown = rss_kib().saturating_sub(before);
    // Both ends of every connection live in this process (TLS state and buffers on each
    // side); what must not happen is growth with the bytes the clients sent (200 × 128 KiB
    // endless, 200 × 8 KiB slow) beyond the per-connection bound.
    let bound_kib = (CONNECTIONS * 2 * 256) as u64;
    assert!(
        grown < bound_kib,
        "resident memory grew {grown} KiB for {} connections (bound {bound_kib} KiB)",
        2 * CONNECTIONS
    );
    drop(slow);
}

/// Whether an HTTPS client trusting only `ca` completes a request to the controller (blocking).
fn handshakes(ca: &str, addr: std::net::SocketAddr) -> bool {
    let agent = rampart_test_support::https_agent(ca).expect("agent");
    agent
        .get(format!("https://localhost:{}/validate", addr.port()))
        .call()
        .is_ok()
}

async fn trusted_by(ca: &str, controller: &AdmissionController) -> bool {
    let (ca, addr) = (ca.to_string(), controller.addr);
    tokio::task::spawn_blocking(move || handshakes(&ca, addr))
        .await
        .expect("call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_serving_certificate_is_served_without_a_restart() {
    let Offline {
        _dir: dir,
        ca: old_ca,
        controller,
        ..
    } = offline_enforcing_privileged_with(|c| c.cert_reload_interval = Duration::from_millis(50))
        .await;
    assert!(trusted_by(&old_ca, &controller).await);
    // A pair that does not match is ignored: the controller keeps serving the old one.
    std::fs::write(dir.path().join("tls.key"), b"not a key").expect("write");
    let metrics = Arc::clone(&controller.state.metrics);
    eventually("the broken pair to be refused", || {
        (metrics.certificate_reload_failures.get() > 0).then_some(())
    })
    .await;
    assert!(
        trusted_by(&old_ca, &controller).await,
        "broken pair kept out"
    );
    // cert-manager writes a new pair from another CA: new handshakes get it.
    let new_ca = serving_cert(dir.path());
    eventually("the new certificate", || {
        tokio::task::block_in_place(|| handshakes(&new_ca, controller.addr)).then_some(())
    })
    .await;
    assert!(
        !trusted_by(&old_ca, &controller).await,
        "old certificate retired"
    );
    assert!(metrics.certificate_reloads.get() >= 1);
    let answer = Client::new(&new_ca, &controller)
        .review(
            "/validate",
            review(
                "u-rot",
                "CREATE",
                &deployment("web", true, json!({})),
                json!({}),
            ),
        )
        .await;
    assert_eq!(answer["allowed"], false, "{answer}");
}

/// Pushes an Alpine 3.10 image as `reference` whose only package is musl 1.1.22-r2: in the real
/// secdb, CVE-2019-14697, fixed in 1.1.22-r3.
async fn push_vulnerable_alpine(
    registry: &rampart_test_support::registry::Registry,
    reference: &str,
) {
    use rampart_test_support::registry::{layer, push};
    push(
        &registry.client(),
        &oci_client::secrets::RegistryAuth::Anonymous,
        reference,
        &[layer(&[
            (
                "etc/os-release",
                b"ID=alpine\nVERSION_ID=3.10.9\nPRETTY_NAME=\"Alpine Linux v3.10\"\n".to_vec(),
            ),
            (
                "lib/apk/db/installed",
                b"C:Q1aaaa=\nP:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n".to_vec(),
            ),
        ])],
        "amd64",
    )
    .await;
}

/// A world whose Central scans the images clusters run, pulling from `registry`, with the
/// real Alpine secdb imported and an enforced policy on musl's CVE-2019-14697 (on image data
/// alone, so nothing but Central's findings decide it) held by the controller.
async fn world_enforcing_the_musl_cve(
    registry: &rampart_test_support::registry::Registry,
) -> World {
    let w = world_deciding(
        rampart_central::images::ImageSettings {
            scan_deployments: true,
            pull: rampart_scanner::registry::PullOptions {
                insecure: vec![registry.host.clone()],
                ..Default::default()
            },
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let secdb = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/alpine-secdb/v3.10/main.yaml");
    let central = Arc::clone(&w.central.core);
    tokio::task::spawn_blocking(move || central.images.import_blocking(&secdb))
        .await
        .expect("import task")
        .expect("secdb imported");
    let policy: rampart_policy::Policy = serde_json::from_value(json!({
        "name": "musl CVE-2019-14697", "severity": "HIGH_SEVERITY",
        "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
        "remediation": "Upgrade musl to 1.1.22-r3.",
        "policySections": [{"policyGroups": [{"fieldName": "CVE", "values": [{"value": "CVE-2019-14697"}]}]}]
    }))
    .expect("policy");
    let id = w
        .central
        .core
        .policies
        .create(policy)
        .await
        .expect("created")
        .id;
    eventually("the controller to hold the CVE policy", || {
        let set = w.controller.state.policies()?;
        set.on_image_data()
            .iter()
            .any(|p| p.policy.id == id)
            .then_some(())
    })
    .await;
    w
}

/// Whether the controller holds findings for `image` that name musl's CVE-2019-14697.
fn holds_the_musl_cve(controller: &AdmissionController, image: &str) -> Option<()> {
    let resources = controller.state.resources.read().ok()?;
    let data = resources.image(image)?;
    data.components
        .iter()
        .any(|c| c.vulns.iter().any(|v| v.cve == "CVE-2019-14697"))
        .then_some(())
}

/// An enforced policy on image data alone, end to end: Central scans the image a workload runs
/// (from a real registry), matches it against real advisories, and its findings reach the
/// controller through the Sensor; a workload running that image is then denied for the CVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cve_policy_is_enforced_from_centrals_findings_on_the_image() {
    use rampart_test_support::registry::Registry;

    let registry = tokio::task::spawn_blocking(|| Registry::start(&[]))
        .await
        .expect("registry");
    let image = format!("{}/base/alpine:3.10", registry.host);
    push_vulnerable_alpine(&registry, &image).await;
    let w = world_enforcing_the_musl_cve(&registry).await;

    let running_it = |name: &str| {
        let mut d = deployment(name, false, json!({}));
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        d
    };
    let client = Client::new(&w.ca, &w.controller);
    // Before Central has scanned it, nothing can say the image is vulnerable.
    let early = client
        .review(
            "/validate",
            review(
                "u-early",
                "CREATE",
                &running_it("early"),
                json!({"dryRun": true}),
            ),
        )
        .await;
    assert_eq!(early["allowed"], true, "{early}");

    // A workload in the cluster runs the image: Central scans it, and its findings travel.
    w.api.apply(running_it("legacy-api")).expect("deployment");
    eventually("the image's findings at the controller", || {
        holds_the_musl_cve(&w.controller, &image)
    })
    .await;
    let denied = client
        .review(
            "/validate",
            review(
                "u-cve",
                "CREATE",
                &running_it("api"),
                json!({"dryRun": true}),
            ),
        )
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let message = denied["status"]["message"].as_str().expect("message");
    for part in [
        "Policy: musl CVE-2019-14697",
        "CVE-2019-14697",
        "musl",
        "Upgrade musl",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    let metrics = exposed_metrics(&w.controller);
    assert!(
        metrics.contains("rampart_admission_image_findings 1"),
        "{metrics}"
    );

    // An image checked through Central before any workload runs it (a CI pipeline's
    // `rampart image check -e`) is decided at its first deployment.
    let checked = format!("{}/base/alpine:3.10-ci", registry.host);
    push_vulnerable_alpine(&registry, &checked).await;
    w.central
        .core
        .images
        .scan_now(&w.central.core, &checked, false)
        .await
        .expect("scanned on request");
    eventually("the checked image's findings at the controller", || {
        let resources = w.controller.state.resources.read().ok()?;
        resources.image(&checked).map(|_| ())
    })
    .await;
    let mut first = running_it("ci-release");
    first["spec"]["template"]["spec"]["containers"][0]["image"] = json!(checked);
    let denied = client
        .review(
            "/validate",
            review("u-ci", "CREATE", &first, json!({"dryRun": true})),
        )
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");

    // A controller (re)started while the Sensor is away decides from the findings it kept on
    // disk, with the policy set it kept beside them.
    let restarted = rampart_admission::start(config(w.dir.path(), FailureMode::Closed))
        .await
        .expect("controller without a Sensor");
    assert!(
        restarted
            .state
            .resources
            .read()
            .expect("view")
            .image(&image)
            .is_some(),
        "findings read back"
    );
    let denied = Client::new(&w.ca, &restarted)
        .review(
            "/validate",
            review(
                "u-restart",
                "CREATE",
                &running_it("api"),
                json!({"dryRun": true}),
            ),
        )
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(
        denied["status"]["message"]
            .as_str()
            .expect("message")
            .contains("CVE-2019-14697"),
        "{denied}"
    );
    let _ = (&w.dir, &w.bundle, registry);
}

/// ACS's "Images with no scans" enforced, end to end: a workload running an image Central has
/// never scanned (no workload ran it, no pipeline checked it) is refused for that policy, with
/// an ATTEMPTED alert in Central; the controller asks for the scan, which goes through the
/// Sensor to Central, is pulled from a real registry and matched against real advisories; its
/// findings come back, and the retry is decided on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_met_unscanned_is_scanned_on_the_controllers_request_and_then_decided() {
    use rampart_test_support::registry::Registry;

    let registry = tokio::task::spawn_blocking(|| Registry::start(&[]))
        .await
        .expect("registry");
    let image = format!("{}/base/alpine:3.10-new", registry.host);
    push_vulnerable_alpine(&registry, &image).await;
    // No workload runs the image (none is applied to the API server): only the controller's
    // request can have it scanned.
    let w = world_enforcing_the_musl_cve(&registry).await;
    let policies = &w.central.core.policies;
    let mut no_scans = policies
        .current()
        .get(NO_SCANS)
        .cloned()
        .expect("the default policy");
    no_scans.disabled = false;
    no_scans.enforcement_actions = vec![rampart_policy::policy::EnforcementAction::ScaleToZero];
    policies.update(NO_SCANS, no_scans).await.expect("enforced");
    eventually(
        "the controller to hold Images with no scans, and the Sensor's view",
        || {
            let set = w.controller.state.policies()?;
            let synced = w.controller.state.resources.read().ok()?.synced;
            (synced && set.on_image_data().iter().any(|p| p.policy.id == NO_SCANS)).then_some(())
        },
    )
    .await;
    let mut new_release = deployment("release", false, json!({}));
    new_release["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    let client = Client::new(&w.ca, &w.controller);
    let refused = client
        .review(
            "/validate",
            review("u-new", "CREATE", &new_release, json!({})),
        )
        .await;
    assert_eq!(refused["allowed"], false, "{refused}");
    let message = refused["status"]["message"].as_str().expect("message");
    for part in [
        "Policy: Images with no scans",
        &format!("Central has not scanned {image} yet"),
        "retry once the scan is done",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    assert!(
        !message.contains("musl"),
        "nothing is known of the image yet: {message}"
    );
    let alert = central_alert_for(
        &w.central,
        "u-new",
        "the refusal's ATTEMPTED alert in Central",
    )
    .await;
    assert_eq!(alert.policy_id, NO_SCANS);
    assert_eq!(alert.state, AlertState::Attempted);

    eventually(
        "the scan the controller asked for, at the controller",
        || holds_the_musl_cve(&w.controller, &image),
    )
    .await;
    let retried = client
        .review(
            "/validate",
            review("u-retry", "CREATE", &new_release, json!({})),
        )
        .await;
    assert_eq!(retried["allowed"], false, "{retried}");
    let message = retried["status"]["message"].as_str().expect("message");
    for part in ["Policy: musl CVE-2019-14697", "Upgrade musl"] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    assert!(!message.contains("not scanned"), "{message}");
    assert!(!message.contains("Images with no scans"), "{message}");
    let metrics = exposed_metrics(&w.controller);
    assert!(
        metrics.contains("rampart_admission_image_scans_asked_total 1"),
        "{metrics}"
    );
    let _ = (&w.dir, &w.bundle, registry);
}
