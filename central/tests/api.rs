//! The HTTPS API of a real Central (`runtime::start`: sled in a temp dir, real TLS, real mTLS
//! Sensor stream): authorization of every route, the policy → alert → resolve flow, detection,
//! and bad input.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_central::api::ROUTES;
use rampart_central::auth::{Access, Role};
use rampart_central::runtime::{Config, Running, start};
use rampart_proto::v1::ResourceAction;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use serde_json::{Value, json};

struct Central {
    running: Running,
    runtime: tokio::runtime::Runtime,
    agent: ureq::Agent,
    base: String,
    admin: String,
    _dir: tempfile::TempDir,
}

fn start_central() -> Central {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = runtime
        .block_on(start(Config {
            data_dir: dir.path().to_path_buf(),
            sensor_listen: "127.0.0.1:0".parse().expect("addr"),
            api_listen: "127.0.0.1:0".parse().expect("addr"),
            server_names: vec!["localhost".into()],
            images: Default::default(),
            baselines: Default::default(),
            admin_password: None,
        }))
        .expect("central starts");
    let ca = std::fs::read_to_string(&running.ca_file).expect("ca.pem written");
    let cert = ureq::tls::Certificate::from_pem(ca.as_bytes())
        .expect("pem")
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let password = running.new_admin_password.clone().expect("first start");
    let file = std::fs::read_to_string(running.admin_password_file.as_ref().expect("file"))
        .expect("password file");
    assert_eq!(file.trim(), password);
    use base64::Engine;
    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
    );
    Central {
        base: format!("https://localhost:{}", running.api_addr.port()),
        running,
        runtime,
        agent,
        admin,
        _dir: dir,
    }
}

impl Central {
    fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, Value) {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        let request = request
            .header("Content-Type", content_type)
            .body(bytes)
            .expect("request");
        let mut response = self.agent.run(request).expect("response");
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let admin = self.admin.clone();
        self.call(
            method,
            path,
            Some(&admin),
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )
    }

    fn token(&self, role: &str) -> String {
        let (status, body) = self.admin(
            "POST",
            "/v1/tokens",
            Some(json!({"name": format!("{role} test"), "role": role})),
        );
        assert_eq!(status, 201, "{body}");
        format!("Bearer {}", body["token"].as_str().expect("token"))
    }

    /// Polls `f` until it returns Some, for state that settles asynchronously (reassessment).
    fn eventually<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(t) = f() {
                return t;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn every_route_answers_401_without_credentials_and_403_for_the_wrong_role() {
    let central = start_central();
    let analyst = central.token("analyst");
    let ci = central.token("ci");
    let roles = [
        (Role::Admin, central.admin.clone()),
        (Role::Analyst, analyst),
        (Role::ContinuousIntegration, ci),
    ];
    for (method, route, access) in ROUTES {
        let path = route
            .replace("{id}", "no-such-id")
            .replace("{cluster}", "no-such-cluster");
        let (status, body) = central.call(method, &path, None, None);
        match access {
            None => assert_eq!(status, 200, "{method} {route} is public: {body}"),
            Some(_) => {
                assert_eq!(status, 401, "{method} {route} without credentials");
                assert_eq!(body["error"], "unauthenticated", "{method} {route}");
            }
        }
        let (status, _) = central.call(method, &path, Some("Bearer rpt_not-a-real-token"), None);
        if access.is_some() {
            assert_eq!(status, 401, "{method} {route} with a made-up token");
        }
        let Some(access) = access else { continue };
        for (role, auth) in &roles {
            let (status, body) = central.call(method, &path, Some(auth), None);
            if access.allows(*role) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {route} as {role:?} must be allowed, got {status}: {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {route} as {role:?}: {body}");
                assert_eq!(body["error"], "forbidden");
            }
        }
    }
    // The table covers the roles the issue names: Analyst reads, CI only detects.
    assert!(!Access::Write.allows(Role::Analyst));
    assert!(!Access::Read.allows(Role::ContinuousIntegration));

    // A revoked token stops working at once.
    let (_, created) = central.admin(
        "POST",
        "/v1/tokens",
        Some(json!({"name": "short-lived", "role": "analyst"})),
    );
    let token = format!("Bearer {}", created["token"].as_str().expect("token"));
    assert_eq!(
        central.call("GET", "/v1/clusters", Some(&token), None).0,
        200
    );
    let id = created["record"]["id"].as_str().expect("id");
    assert_eq!(
        central.admin("DELETE", &format!("/v1/tokens/{id}"), None).0,
        200
    );
    let (status, body) = central.call("GET", "/v1/clusters", Some(&token), None);
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("revoked")
    );
    // Token listings never show the token or its hash.
    let (_, list) = central.admin("GET", "/v1/tokens", None);
    assert!(
        !list
            .to_string()
            .contains(created["token"].as_str().expect("t"))
    );
    assert!(list["tokens"][0].get("hash").is_none());
}

const NGINX_127: &str = r#"{"name":"No nginx 1.27","severity":"MEDIUM_SEVERITY","lifecycleStages":["DEPLOY"],
  "categories":["DevOps Best Practices"],"description":"1.27 is retired here",
  "policySections":[{"policyGroups":[{"fieldName":"Image Tag","values":[{"value":"1.27"}]}]}]}"#;

fn alerts(central: &Central, query: &str) -> Value {
    let (status, body) = central.admin(
        "GET",
        &format!("/v1/alerts?query={}", urlencode(query)),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn policies_alerts_reassessment_and_detection_over_the_api() {
    let central = start_central();
    // An init bundle over the API, and a Sensor that connects with it.
    let (status, bundle) = central.admin("POST", "/v1/init-bundles", Some(json!({"name": "prod"})));
    assert_eq!(status, 201, "{bundle}");
    let sensor = bundle["certs"]
        .as_array()
        .expect("certs")
        .iter()
        .find(|c| c["service"] == "sensor")
        .expect("sensor cert");
    let identity = tonic::transport::Identity::from_pem(
        sensor["certPem"].as_str().expect("cert"),
        sensor["keyPem"].as_str().expect("key"),
    );
    let ca = bundle["caPem"].as_str().expect("ca").to_string();
    let sensor_addr = central.running.sensor_addr;
    let mut stream = central.runtime.block_on(async {
        let mut client = common::connect(sensor_addr, &ca, identity)
            .await
            .expect("sensor connects with the API-issued bundle");
        let mut stream = common::open_stream(&mut client, "prod")
            .await
            .expect("stream");
        common::send_all(
            &stream,
            [
                common::workload_event(1, "web", true, ResourceAction::Sync),
                common::workload_event(2, "api", false, ResourceAction::Sync),
                common::synced(3),
            ],
        )
        .await;
        common::until_ack(&mut stream, 3).await;
        stream
    });

    // Deploy-time alerts from the defaults, found with the ACS search syntax.
    let privileged = alerts(&central, "Policy:\"Privileged Container\"+Cluster:prod");
    assert_eq!(privileged["total"], 1, "{privileged}");
    assert_eq!(privileged["alerts"][0]["deploymentName"], "web");
    let (_, clusters) = central.admin("GET", "/v1/clusters", None);
    assert_eq!(clusters["clusters"][0]["name"], "prod");
    assert_eq!(clusters["clusters"][0]["connection"], "CONNECTED");
    let (_, deployments) = central.admin("GET", "/v1/deployments?cluster=prod&limit=1", None);
    assert_eq!(
        deployments["deployments"].as_array().expect("list").len(),
        1
    );
    let cursor = deployments["nextCursor"]
        .as_str()
        .expect("more")
        .to_string();
    let (_, rest) = central.admin(
        "GET",
        &format!("/v1/deployments?cluster=prod&after={}", urlencode(&cursor)),
        None,
    );
    assert_eq!(rest["deployments"].as_array().expect("list").len(), 1);
    assert_ne!(
        rest["deployments"][0]["id"],
        deployments["deployments"][0]["id"]
    );

    // Risk: both ranked, the privileged one first; `api`'s score is kept to compare after its
    // alerts change.
    let risk_of = |name: &str| -> f64 {
        let (status, risk) = central.admin("GET", "/v1/risk?cluster=prod", None);
        assert_eq!(status, 200, "{risk}");
        assert_eq!(risk["total"], 2, "{risk}");
        assert_eq!(risk["items"][0]["name"], "web", "{risk}");
        risk["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["score"].as_f64())
            .expect("scored")
    };
    let api_before = risk_of("api");

    // Dry-run first: both deployments run nginx 1.27.
    let (status, dry) = central.call(
        "POST",
        "/v1/policies/dryrun",
        Some(&central.admin),
        Some(("application/json", NGINX_127.as_bytes().to_vec())),
    );
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (
            dry["deploymentsEvaluated"].as_u64(),
            dry["violating"].as_u64()
        ),
        (Some(2), Some(2)),
        "{dry}"
    );
    assert!(
        alerts(&central, "Policy:\"No nginx 1.27\"")["total"] == 0,
        "a dry-run saves nothing"
    );

    // Create it: the Sensor gets the new set, reassessment opens an alert per deployment.
    let (status, created) = central.call(
        "POST",
        "/v1/policies",
        Some(&central.admin),
        Some(("application/json", NGINX_127.as_bytes().to_vec())),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let revision = central
        .running
        .core
        .policies
        .current()
        .sync
        .revision
        .clone();
    central.runtime.block_on(async {
        loop {
            if let ToSensor::PolicySync(p) = common::next(&mut stream).await.expect("message")
                && p.revision == revision
            {
                break;
            }
        }
    });
    central.eventually("reassessment to open alerts", || {
        (alerts(&central, "Policy:\"No nginx 1.27\"")["total"] == 2).then_some(())
    });
    // The ranking follows: `api` gained a violation, so its risk rose.
    let api_violating = risk_of("api");
    assert!(
        api_violating > api_before,
        "{api_violating} vs {api_before}"
    );
    let (_, counts) = central.admin("GET", "/v1/alertscount?groupBy=severity", None);
    assert!(
        counts["groups"]["MEDIUM"].as_u64().expect("medium") >= 2,
        "{counts}"
    );

    // Pagination and sorting: two pages of one, different alerts, same total.
    let page = |offset: usize| {
        central
            .admin(
                "GET",
                &format!(
                    "/v1/alerts?query={}&limit=1&offset={offset}&sort=Deployment",
                    urlencode("Policy:\"No nginx 1.27\"")
                ),
                None,
            )
            .1
    };
    let (first, second) = (page(0), page(1));
    assert_eq!(
        (
            first["alerts"][0]["deploymentName"].as_str(),
            second["alerts"][0]["deploymentName"].as_str(),
            first["total"].as_u64()
        ),
        (Some("api"), Some("web"), Some(2))
    );

    // Bulk resolve by query: only what the query matches.
    let (status, bulk) = central.admin(
        "PATCH",
        "/v1/alerts/resolve",
        Some(json!({"query": "Policy:\"No nginx 1.27\"+Deployment:api"})),
    );
    assert_eq!((status, &bulk["resolved"]), (200, &json!(1)), "{bulk}");
    assert_eq!(alerts(&central, "Policy:\"No nginx 1.27\"")["total"], 1);
    // A user's resolution moves the ranking too (no deployment record changed).
    assert_eq!(risk_of("api"), api_before);

    // Disable: reassessment resolves the rest.
    let (status, _) = central.admin(
        "PATCH",
        &format!("/v1/policies/{id}"),
        Some(json!({"disabled": true})),
    );
    assert_eq!(status, 200);
    central.eventually("reassessment to resolve alerts", || {
        (alerts(
            &central,
            "Policy:\"No nginx 1.27\"+Violation State:RESOLVED",
        )["total"]
            == 2)
            .then_some(())
    });
    assert_eq!(alerts(&central, "Policy:\"No nginx 1.27\"")["total"], 0);

    // Manual resolve.
    let alert_id = privileged["alerts"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, resolved) =
        central.admin("PATCH", &format!("/v1/alerts/{alert_id}/resolve"), None);
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["state"], "RESOLVED");
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{alert_id}"), None);
    assert_eq!(one["alert"]["state"], "RESOLVED");
    assert_eq!(one["policy"]["name"], "Privileged Container");
    // Still violating when the Sensor next reports it: a new alert opens (the resolved one stays
    // resolved, as in ACS).
    central.runtime.block_on(async {
        common::send_all(
            &stream,
            [common::workload_event(
                4,
                "web",
                true,
                ResourceAction::Update,
            )],
        )
        .await;
        common::until_ack(&mut stream, 4).await;
    });
    let again = alerts(&central, "Policy:\"Privileged Container\"+Cluster:prod");
    assert_eq!(again["total"], 1, "{again}");
    assert_ne!(again["alerts"][0]["id"].as_str(), Some(alert_id.as_str()));
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{alert_id}"), None);
    assert_eq!(one["alert"]["state"], "RESOLVED");

    // Export, then import: refused as a duplicate, accepted with overwrite.
    let (_, exported) = central.admin("GET", &format!("/v1/policies/export?id={id}"), None);
    assert_eq!(exported["policies"].as_array().expect("list").len(), 1);
    let (_, again) = central.admin("POST", "/v1/policies/import", Some(exported.clone()));
    assert_eq!(again["allSucceeded"], false, "{again}");
    let mut over = exported.clone();
    over["overwrite"] = json!(true);
    let (status, again) = central.admin("POST", "/v1/policies/import", Some(over));
    assert_eq!(
        (status, &again["allSucceeded"]),
        (200, &json!(true)),
        "{again}"
    );
    // Defaults cannot be deleted.
    let default_id = central
        .running
        .core
        .policies
        .current()
        .policies
        .iter()
        .find(|p| p.name == "Privileged Container")
        .map(|p| p.id.clone())
        .expect("default");
    let (status, body) = central.admin("DELETE", &format!("/v1/policies/{default_id}"), None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        central
            .admin("DELETE", &format!("/v1/policies/{id}"), None)
            .0,
        204
    );

    // Detection for CI: raw YAML in, the CLI's report out.
    let ci = central.token("ci");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ci}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext: {privileged: true}\n";
    let (status, report) = central.call(
        "POST",
        "/v1/detect/deploy/yaml",
        Some(&ci),
        Some(("application/yaml", yaml.as_bytes().to_vec())),
    );
    assert_eq!(status, 200, "{report}");
    let findings: Vec<&str> = report["objects"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["policy"].as_str())
        .collect();
    assert!(findings.contains(&"Privileged Container"), "{findings:?}");

    // Metrics.
    let (status, metrics) = central.admin("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains("rampart_sensor_messages_total{cluster=\"prod\"}"),
        "{text}"
    );
    assert!(text.contains("rampart_reassessments_total"));
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let central = start_central();
    let before = central.running.core.policies.current().revision;
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", "/v1/policies", b"{not json".to_vec(), 400, "invalid"),
        (
            "POST",
            "/v1/policies",
            br#"{"name":"x","severity":"LOW_SEVERITY","colour":"red"}"#.to_vec(),
            400,
            "colour",
        ),
        (
            "POST",
            "/v1/policies",
            br#"{"name":"x","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],
                "policySections":[{"policyGroups":[{"fieldName":"Privileged Containr","values":[{"value":"true"}]}]}]}"#
                .to_vec(),
            422,
            "invalid",
        ),
        ("PATCH", "/v1/policies/x", br#"{"disabled":"yes"}"#.to_vec(), 400, "disabled"),
        ("PATCH", "/v1/policies/x", br#"{}"#.to_vec(), 400, "nothing to change"),
        ("PATCH", "/v1/policies/x", br#"{"enforcementActions":["KILL"]}"#.to_vec(), 400, "KILL"),
        ("PATCH", "/v1/policies/x", br#"{"enforce":true}"#.to_vec(), 400, "enforce"),
        ("POST", "/v1/policies/import", br#"{"policies":[{"nam":1}]}"#.to_vec(), 422, "nothing was imported"),
        ("POST", "/v1/tokens", br#"{"name":"t","role":"root"}"#.to_vec(), 400, "unknown role"),
        ("POST", "/v1/tokens", br#"{"name":"t","role":"sensor"}"#.to_vec(), 400, "certificates"),
        ("POST", "/v1/init-bundles", br#"{"name":"Bad Name"}"#.to_vec(), 400, "cluster name"),
        ("PATCH", "/v1/alerts/resolve", br#"{"query":""}"#.to_vec(), 400, "query is required"),
        ("GET", "/v1/alerts?limit=abc", vec![], 400, "limit must be a number"),
        ("GET", "/v1/alerts?limit=100000", vec![], 400, "at most"),
        ("GET", "/v1/alerts?colour=red", vec![], 400, "unknown query parameter"),
        ("GET", "/v1/alerts?query=Colour:red", vec![], 400, "unknown field"),
        ("GET", "/v1/alerts?sort=Colour", vec![], 400, "cannot sort"),
        ("GET", "/v1/alerts?query=%zz", vec![], 400, ""),
        ("GET", "/v1/nothing-here", vec![], 404, "no such endpoint"),
        ("POST", "/v1/policies", vec![b' '; 5 * 1024 * 1024], 413, "larger than"),
    ];
    for (method, path, body, want, says) in cases {
        let admin = central.admin.clone();
        let (status, answer) =
            central.call(method, path, Some(&admin), Some(("application/json", body)));
        assert_eq!(status, want, "{method} {path}: {answer}");
        let message = answer["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(
            message.contains(&says.to_lowercase()),
            "{method} {path}: '{message}' should say '{says}'"
        );
    }
    assert_eq!(
        central.running.core.policies.current().revision,
        before,
        "nothing changed"
    );
    assert_eq!(central.call("GET", "/v1/health", None, None).0, 200);
}

#[test]
fn enforcement_is_switched_by_patch_within_the_policys_stages() {
    let central = start_central();
    let (_, list) = central.admin("GET", "/v1/policies?query=privileged%20container", None);
    let privileged = list["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["name"] == "Privileged Container")
        .expect("a default policy")
        .clone();
    assert_eq!(
        (&privileged["enforced"], &privileged["enforcedStages"]),
        (&json!(false), &json!([]))
    );
    let id = privileged["id"].as_str().expect("id").to_string();
    let path = format!("/v1/policies/{id}");
    let revision = || central.running.core.policies.current().revision;
    let before = revision();

    let (status, patched) = central.admin(
        "PATCH",
        &path,
        Some(json!({"enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"]})),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["enforcementActions"],
        json!(["SCALE_TO_ZERO_ENFORCEMENT"])
    );
    // The criteria of a default policy stay as they were; only its switch moved.
    assert_eq!(
        patched["policySections"],
        central.admin("GET", &path, None).1["policySections"]
    );
    assert!(revision() > before, "a new policy set is published");
    let (_, list) = central.admin("GET", "/v1/policies?query=privileged%20container", None);
    let listed = list["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(
        (&listed["enforced"], &listed["enforcedStages"]),
        (&json!(true), &json!(["DEPLOY"]))
    );

    // An action of a stage the policy does not have is refused, naming it; nothing changes.
    let enforced = revision();
    let (status, refused) = central.admin(
        "PATCH",
        &path,
        Some(json!({"enforcementActions": ["KILL_POD_ENFORCEMENT"]})),
    );
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["details"],
        json!([
            "policy 'Privileged Container': enforcementActions: KILL_POD_ENFORCEMENT enforces \
                the RUNTIME stage, which 'Privileged Container' does not have"
        ]),
        "{refused}"
    );
    assert_eq!(revision(), enforced);
    assert_eq!(
        central.admin("GET", &path, None).1["enforcementActions"],
        json!(["SCALE_TO_ZERO_ENFORCEMENT"])
    );

    // Both switches at once; an empty list stops enforcing.
    let (status, patched) = central.admin(
        "PATCH",
        &path,
        Some(json!({"disabled": true, "enforcementActions": []})),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["disabled"], true);
    assert!(
        patched
            .get("enforcementActions")
            .is_none_or(|a| a == &json!([])),
        "{patched}"
    );
    // The same again changes nothing.
    let settled = revision();
    let (status, _) = central.admin(
        "PATCH",
        &path,
        Some(json!({"disabled": true, "enforcementActions": []})),
    );
    assert_eq!((status, revision()), (200, settled));
}

fn runtime_results(
    seq: u64,
    deployment: &str,
    policy_id: &str,
    messages: &[String],
) -> rampart_proto::v1::MsgFromSensor {
    use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
    use rampart_proto::v1::{Alert, AlertResults, LifecycleStage, MsgFromSensor, Violation};
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::AlertResults(AlertResults {
            deployment_id: deployment.into(),
            stage: LifecycleStage::Runtime as i32,
            alerts: vec![Alert {
                policy_id: policy_id.into(),
                violations: messages
                    .iter()
                    .map(|m| Violation {
                        message: m.clone(),
                        ..Violation::default()
                    })
                    .collect(),
                ..Alert::default()
            }],
            policy_revision: String::new(),
        })),
    }
}

/// Runtime alerts from the Sensor: merged per deployment and policy (40 violations kept), left
/// alone by deploy-time evaluation, recorded with their kill-pod enforcement, and resolved
/// only when their policy stops covering the deployment.
#[test]
fn runtime_alerts_merge_per_policy_and_resolve_with_their_policy() {
    let central = start_central();
    let (status, bundle) = central.admin("POST", "/v1/init-bundles", Some(json!({"name": "prod"})));
    assert_eq!(status, 201, "{bundle}");
    let mut stream = common::sensor_sends(
        &central.runtime,
        central.running.sensor_addr,
        &bundle,
        "prod",
        vec![
            common::workload_event(1, "web", true, ResourceAction::Sync),
            common::workload_event(2, "api", false, ResourceAction::Sync),
            common::synced(3),
        ],
    );
    let java_shell = central
        .running
        .core
        .policies
        .current()
        .policies
        .iter()
        .find(|p| p.name == "Shell Spawned by Java Application")
        .map(|p| p.id.clone())
        .expect("default runtime policy");
    let shell = |i: usize| {
        format!("Binary '/bin/sh' executed with arguments '-c step {i}' under user ID 0")
    };
    let send = |stream: &mut common::Stream, msgs: Vec<rampart_proto::v1::MsgFromSensor>| {
        let last = msgs.last().map(|m| m.seq).expect("messages");
        central.runtime.block_on(async {
            common::send_all(stream, msgs).await;
            common::until_ack(stream, last).await
        })
    };
    let runtime_alerts = || alerts(&central, "Lifecycle Stage:RUNTIME+Deployment:web");

    send(
        &mut stream,
        vec![runtime_results(
            4,
            "uid-web",
            &java_shell,
            &[shell(1), shell(2)],
        )],
    );
    let first = runtime_alerts();
    assert_eq!(first["total"], 1, "{first}");
    let id = first["alerts"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        first["alerts"][0]["policyName"],
        "Shell Spawned by Java Application"
    );
    // The same policy again: one alert, the new violation merged, the repeated one not doubled.
    send(
        &mut stream,
        vec![runtime_results(
            5,
            "uid-web",
            &java_shell,
            &[shell(2), shell(3)],
        )],
    );
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(
        one["alert"]["violations"].as_array().map(Vec::len),
        Some(3),
        "{one}"
    );
    // Fifty more: the newest 40 are kept.
    let many: Vec<String> = (10..60).map(shell).collect();
    send(
        &mut stream,
        vec![runtime_results(6, "uid-web", &java_shell, &many)],
    );
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{id}"), None);
    let kept = one["alert"]["violations"].as_array().expect("violations");
    assert_eq!(kept.len(), 40, "{one}");
    assert_eq!(kept[39], json!(shell(59)));
    assert_eq!(runtime_alerts()["total"], 1);

    // A deploy-time change to the deployment leaves the runtime alert alone.
    send(
        &mut stream,
        vec![common::workload_event(
            7,
            "web",
            false,
            ResourceAction::Update,
        )],
    );
    assert_eq!(
        alerts(&central, "Policy:\"Privileged Container\"+Deployment:web")["total"],
        0,
        "fixed at deploy time"
    );
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(one["alert"]["state"], "ACTIVE", "{one}");
    // The deployment's page counts it.
    let (_, risk) = central.admin("GET", "/v1/risk?cluster=prod", None);
    let web = risk["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["name"] == "web")
        .expect("web ranked")
        .clone();
    assert!(web.to_string().contains("1 high"), "{web}");

    // The Sensor killed the pod: recorded on the runtime alert.
    let report = rampart_proto::v1::MsgFromSensor {
        seq: 8,
        msg: Some(rampart_proto::v1::msg_from_sensor::Msg::EnforcementReport(
            rampart_proto::v1::EnforcementReport {
                deployment_id: "uid-web".into(),
                policy_id: java_shell.clone(),
                action: "KILL_POD_ENFORCEMENT".into(),
                succeeded: true,
                message: "deleted pod web-1".into(),
                ..Default::default()
            },
        )),
    };
    send(&mut stream, vec![report]);
    let (_, one) = central.admin("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(
        one["alert"]["enforcements"][0]["action"], "KILL_POD_ENFORCEMENT",
        "{one}"
    );

    // What Central cannot attach is refused or counted, never stored half.
    let notices = send(
        &mut stream,
        vec![runtime_results(9, "uid-nowhere", &java_shell, &[shell(1)])],
    );
    assert!(notices.is_empty(), "{notices:?}");
    let mut deploy_stage = runtime_results(10, "uid-web", &java_shell, &[shell(1)]);
    if let Some(rampart_proto::v1::msg_from_sensor::Msg::AlertResults(r)) = &mut deploy_stage.msg {
        r.stage = rampart_proto::v1::LifecycleStage::Deploy as i32;
    }
    let notices = send(&mut stream, vec![deploy_stage]);
    assert_eq!(notices.len(), 1, "{notices:?}");
    let (_, metrics) = central.admin("GET", "/metrics", None);
    assert!(
        metrics
            .as_str()
            .expect("text")
            .contains("rampart_runtime_alerts_dropped_total 1"),
        "{metrics}"
    );

    // Disabling the policy resolves it.
    let (status, _) = central.admin(
        "PATCH",
        &format!("/v1/policies/{java_shell}"),
        Some(json!({"disabled": true})),
    );
    assert_eq!(status, 200);
    central.eventually("reassessment to resolve the runtime alert", || {
        let (_, one) = central.admin("GET", &format!("/v1/alerts/{id}"), None);
        (one["alert"]["state"] == "RESOLVED").then_some(())
    });
}

/// A NetworkPolicy an earlier generation left in the cluster: ingress only, from api.
fn old_generated_policy(seq: u64) -> rampart_proto::v1::MsgFromSensor {
    use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
    let object = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "rampart-generated-web", "namespace": "shop", "uid": "np-1",
            "labels": {"network-policy-generator.rampart.io/generated": "true"}},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    });
    rampart_proto::v1::MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(rampart_proto::v1::ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: rampart_proto::v1::ResourceKind::NetworkPolicy as i32,
            id: "np-1".into(),
            namespace: "shop".into(),
            name: "rampart-generated-web".into(),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: seq,
            context: None,
        })),
    }
}

/// The network graph from the Collectors' flows (deployments, the Internet, a named CIDR
/// block), and network baselines: learned while observing, locked by a person, a new peer then
/// an anomalous edge and an "Unauthorized Network Flow" alert; accepting the peer clears it.
#[test]
fn network_graph_and_network_baselines() {
    let central = start_central();
    let (status, bundle) = central.admin("POST", "/v1/init-bundles", Some(json!({"name": "prod"})));
    assert_eq!(status, 201, "{bundle}");
    let mut stream = common::sensor_sends(
        &central.runtime,
        central.running.sensor_addr,
        &bundle,
        "prod",
        vec![
            common::workload_event(1, "web", false, ResourceAction::Sync),
            common::workload_event(2, "api", false, ResourceAction::Sync),
            common::workload_event(3, "db", false, ResourceAction::Sync),
            old_generated_policy(4),
            common::synced(5),
            common::flow(6, "uid-web", "uid-api", "", 8080),
            common::flow(7, "uid-web", "", "8.8.8.8", 443),
            common::flow(8, "uid-web", "uid-api", "", 8080),
        ],
    );
    let (status, graph) = central.admin("GET", "/v1/networkgraph?cluster=prod", None);
    assert_eq!(status, 200, "{graph}");
    let edges = graph["edges"].as_array().expect("edges");
    let edge = |src: &str, dst: &str| {
        edges
            .iter()
            .find(|e| e["source"] == src && e["destination"] == dst)
            .cloned()
    };
    let to_api = edge("uid-web", "uid-api").expect("web → api");
    assert_eq!(
        (to_api["port"].as_u64(), to_api["flows"].as_u64()),
        (Some(8080), Some(1))
    );
    assert_eq!(to_api["anomalous"], false);
    assert!(edge("uid-web", "internet").is_some(), "{graph}");
    let names: Vec<&str> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert!(
        names.contains(&"db") && names.contains(&"Internet"),
        "{names:?}"
    );
    // A namespace filter keeps its deployments and their peers.
    let (status, _) = central.admin("GET", "/v1/networkgraph?cluster=prod&namespace=shop", None);
    assert_eq!(status, 200);
    let (status, _) = central.admin("GET", "/v1/networkgraph?cluster=nowhere", None);
    assert_eq!(status, 404);

    // A named block takes the Internet address; a bad one is refused whole.
    let (status, bad) = central.admin(
        "PUT",
        "/v1/networkgraph/cidrs",
        Some(json!({"blocks": [{"name": "dns", "cidr": "8.8.8.0/33"}]})),
    );
    assert_eq!(status, 422, "{bad}");
    let (status, _) = central.admin(
        "PUT",
        "/v1/networkgraph/cidrs",
        Some(json!({"blocks": [{"name": "public dns", "cidr": "8.8.8.0/24"}]})),
    );
    assert_eq!(status, 200);
    let (_, graph) = central.admin("GET", "/v1/networkgraph?cluster=prod", None);
    assert!(
        graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["destination"] == "cidr:public dns"),
        "{graph}"
    );

    // web's baseline learned api; locked, a flow to db is anomalous and raises an alert.
    let cluster_id = central
        .running
        .core
        .store
        .clusters()
        .expect("clusters")
        .into_iter()
        .find(|c| c.name == "prod")
        .map(|c| c.id)
        .expect("cluster");
    let base = format!("/v1/deployments/{cluster_id}/uid-web/networkbaseline");
    let (_, baseline) = central.admin("GET", &base, None);
    assert_eq!(baseline["locked"], false);
    assert!(baseline.to_string().contains("uid-api"), "{baseline}");
    let (status, locked) = central.admin(
        "PUT",
        &format!("{base}/lock"),
        Some(json!({"locked": true})),
    );
    assert_eq!((status, &locked["locked"]), (200, &json!(true)), "{locked}");
    central.runtime.block_on(async {
        common::send_all(&stream, [common::flow(9, "uid-web", "uid-db", "", 5432)]).await;
        common::until_ack(&mut stream, 9).await;
    });
    let anomalies = alerts(&central, "Policy:\"Unauthorized Network Flow\"");
    assert_eq!(anomalies["total"], 1, "{anomalies}");
    let (_, one) = central.admin(
        "GET",
        &format!(
            "/v1/alerts/{}",
            anomalies["alerts"][0]["id"].as_str().expect("id")
        ),
        None,
    );
    assert_eq!(
        one["alert"]["violations"][0],
        "Unexpected outgoing network flow to deployment shop/db on port 5432/TCP",
        "{one}"
    );
    let (_, graph) = central.admin("GET", "/v1/networkgraph?cluster=prod", None);
    let to_db = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["destination"] == "uid-db")
        .cloned()
        .expect("web → db");
    assert_eq!(to_db["anomalous"], true, "{to_db}");
    // The Internet peer it learned is a named block now: still known (it was the Internet when
    // the baseline learned it).
    let to_dns = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["destination"] == "cidr:public dns")
        .cloned()
        .expect("web → public dns");
    assert_eq!(to_dns["anomalous"], false, "{to_dns}");

    // NetworkPolicies from the baselines, simulated on the observed flows: every baseline flow
    // passes, the anomalous one (web's egress to db) is blocked, by web's policy.
    let web_to_db =
        json!({"source": "shop/web", "destination": "shop/db", "port": 5432, "protocol": "TCP"});
    let (status, generated) = central.admin(
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&from=baseline",
        None,
    );
    assert_eq!(status, 200, "{generated}");
    assert_eq!(generated["flows"], 3, "{generated}");
    assert_eq!(generated["blockedNow"], json!([]), "{generated}");
    assert_eq!(generated["blockedAfter"], json!([web_to_db]), "{generated}");
    let policy = |report: &serde_json::Value, name: &str| {
        report["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };
    let web = policy(&generated, "rampart-generated-web");
    assert_eq!(web["action"], "REPLACE", "{web}");
    assert!(
        web["diff"].as_str().expect("diff").contains("+  - Egress"),
        "{web}"
    );
    assert_eq!(web["blocks"], json!([web_to_db]), "{web}");
    let yaml = web["yaml"].as_str().expect("yaml");
    assert!(
        yaml.contains("app: api") && yaml.contains("port: 8080"),
        "{yaml}"
    );
    assert!(
        yaml.contains("cidr: 0.0.0.0/0"),
        "the Internet peer it learned: {yaml}"
    );
    let db = policy(&generated, "rampart-generated-db");
    assert_eq!(db["action"], "ADD");
    assert_eq!(
        db["blocks"],
        json!([]),
        "db learned web while observing: {db}"
    );
    // From the observed flows nothing is blocked; the YAML alone is one stream.
    let (_, from_flows) = central.admin(
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&namespace=shop&from=flows&egress=false",
        None,
    );
    assert_eq!(from_flows["blockedAfter"], json!([]), "{from_flows}");
    let web = policy(&from_flows, "rampart-generated-web");
    assert!(
        !web["yaml"].as_str().expect("yaml").contains("Egress"),
        "{web}"
    );
    // From the observed flows but the anomalous one: that one is blocked, the rest pass.
    let (_, except) = central.admin(
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&from=flows-except-anomalous",
        None,
    );
    assert_eq!(except["blockedAfter"], json!([web_to_db]), "{except}");
    assert_eq!(
        except["generatedFrom"], "observed flows except anomalous ones",
        "{except}"
    );
    let (status, yaml) = central.admin(
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&format=yaml",
        None,
    );
    assert_eq!(status, 200);
    let yaml = yaml.as_str().expect("text").to_string();
    assert_eq!(yaml.matches("kind: NetworkPolicy").count(), 3, "{yaml}");
    assert!(yaml.contains("cidr: 8.8.8.0/24"), "the named block: {yaml}");
    let (status, bad) = central.admin(
        "GET",
        "/v1/networkpolicies/generate?cluster=prod&from=guesses",
        None,
    );
    assert_eq!(status, 400, "{bad}");

    // Accepting both clears the graph.
    let (status, decided) = central.admin(
        "PATCH",
        &base,
        Some(json!({"accept": [
            {"ingress": false, "peer": "uid-db", "port": 5432, "protocol": "TCP"},
            {"ingress": false, "peer": "cidr:public dns", "port": 443, "protocol": "TCP"}]})),
    );
    assert_eq!(status, 200, "{decided}");
    let (_, graph) = central.admin("GET", "/v1/networkgraph?cluster=prod", None);
    assert!(
        graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .all(|e| e["anomalous"] == false),
        "{graph}"
    );
}
