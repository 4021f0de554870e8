//! Central's image catalog end to end: a real Central (`runtime::start`, sled in a temp dir,
//! real TLS and mTLS), a Sensor stream reporting a deployment, Debian's `docker-registry` on
//! loopback holding the image it runs, and Alpine's real secdb imported over the API. The
//! image is scanned once, its findings follow the data (import → rematch → alert), the API
//! answers images → components → CVEs → deployments, and a restart keeps it all without the
//! registry.

mod common;

use std::time::{Duration, Instant};

use oci_client::secrets::RegistryAuth;
use rampart_central::runtime::{Config, Running, start};
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::{MsgFromSensor, ResourceAction, ResourceEvent, ResourceKind};
use rampart_test_support::registry::{Registry, layer, push};
use serde_json::{Value, json};

struct Central {
    running: Running,
    runtime: tokio::runtime::Runtime,
    agent: ureq::Agent,
    base: String,
    admin: String,
}

/// ACS's default "Images with no scans".
const NO_SCANS: &str = "094dd1e5-ec4d-5f80-885d-b03017fe4dc7";

fn start_central(dir: &std::path::Path, registry: &str, admin_password: Option<&str>) -> Central {
    start_central_with(dir, registry, admin_password, Default::default())
}

fn start_central_with(
    dir: &std::path::Path,
    registry: &str,
    admin_password: Option<&str>,
    base: rampart_central::images::ImageSettings,
) -> Central {
    rampart_test_support::registry::install_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = runtime
        .block_on(start(Config {
            data_dir: dir.to_path_buf(),
            sensor_listen: "127.0.0.1:0".parse().expect("addr"),
            api_listen: "127.0.0.1:0".parse().expect("addr"),
            server_names: vec!["localhost".into()],
            images: rampart_central::images::ImageSettings {
                scan_deployments: true,
                pull: rampart_scanner::registry::PullOptions {
                    insecure: vec![registry.to_string()],
                    ..Default::default()
                },
                ..base
            },
            baselines: Default::default(),
            admin_password: None,
        }))
        .expect("central starts");
    let ca = std::fs::read_to_string(&running.ca_file).expect("ca.pem");
    let agent = rampart_test_support::https_agent(&ca).expect("agent");
    let password = admin_password
        .map(str::to_string)
        .or_else(|| running.new_admin_password.clone())
        .expect("password");
    let admin = rampart_test_support::basic_auth("admin", &password);
    Central {
        base: format!("https://localhost:{}", running.api_addr.port()),
        running,
        runtime,
        agent,
        admin,
    }
}

impl Central {
    fn call(&self, method: &str, path: &str, auth: &str, body: Vec<u8>) -> (u16, Value) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .body(body)
            .expect("request");
        let mut response = self.agent.run(request).expect("response");
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, &self.admin, Vec::new());
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    fn import(&self, file: &str) -> (u16, Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/alpine-secdb")
            .join(file);
        let body = std::fs::read(&path).expect("secdb file");
        self.call(
            "POST",
            "/v1/vulndb/import?name=main.yaml",
            &self.admin,
            body,
        )
    }

    fn eventually<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(t) = f() {
                return t;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Pushes an Alpine 3.10 image of [`apk_db`]'s packages as `reference`; its digest.
async fn push_alpine(registry: &Registry, reference: &str) -> String {
    let (digest, _) = push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        reference,
        &[layer(&[
            (
                "etc/os-release",
                b"ID=alpine\nVERSION_ID=3.10.9\nPRETTY_NAME=\"Alpine Linux v3.10\"\n".to_vec(),
            ),
            ("lib/apk/db/installed", apk_db()),
        ])],
        "amd64",
    )
    .await;
    digest
}

/// Real secdb entries: musl 1.1.22-r2 (v3.10 fixed CVE-2019-14697 in r3), libcrypto1.1 from
/// openssl 1.1.1c-r0 (fixed CVE-2019-1547 in 1.1.1d-r0), zlib 1.2.11-r1.
fn apk_db() -> Vec<u8> {
    b"C:Q1aaaa=\nP:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n\
C:Q1bbbb=\nP:libcrypto1.1\nV:1.1.1c-r0\nA:x86_64\no:openssl\n\n\
C:Q1cccc=\nP:zlib\nV:1.2.11-r1\nA:x86_64\no:zlib\n\n"
        .to_vec()
}

fn deployment(seq: u64, name: &str, namespace: &str, image: &str) -> MsgFromSensor {
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]}}}
    });
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: ResourceKind::Deployment as i32,
            id: format!("uid-{name}"),
            namespace: namespace.into(),
            name: name.into(),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: seq,
            context: None,
        })),
    }
}

const MUSL_POLICY: &str = r#"{"name":"musl CVE-2019-14697","severity":"HIGH_SEVERITY",
  "lifecycleStages":["DEPLOY"],"categories":["Vulnerability Management"],
  "description":"musl's x87 stack adjustment bug","remediation":"Upgrade musl to 1.1.22-r3",
  "policySections":[{"policyGroups":[{"fieldName":"CVE","values":[{"value":"CVE-2019-14697"}]}]}]}"#;

fn alerts_of_policy(central: &Central) -> Vec<Value> {
    let body = central.get("/v1/alerts?query=Policy%3A%22musl%20CVE-2019-14697%22");
    body["alerts"].as_array().cloned().unwrap_or_default()
}

#[test]
fn deployments_images_are_scanned_rematched_on_new_data_and_kept_across_restarts() {
    let registry = Registry::start(&[]);
    let reference = format!("{}/base/alpine:3.10", registry.host);
    let dir = tempfile::tempdir().expect("tempdir");
    let central = start_central(dir.path(), &registry.host, None);
    let pushed_digest = central.runtime.block_on(push_alpine(&registry, &reference));

    // Only v3.9's data first: the v3.10 image matches nothing, and says why.
    let (status, imported) = central.import("v3.9/main.yaml");
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["secdbFiles"], 1, "{imported}");
    assert_eq!(imported["vulndb"]["stale"], false);
    let (status, created) = central.call(
        "POST",
        "/v1/policies",
        &central.admin,
        MUSL_POLICY.as_bytes().to_vec(),
    );
    assert_eq!(status, 201, "{created}");

    // A Sensor reports two deployments running the image, in two namespaces (it takes image
    // findings for its admission controllers).
    let mut stream = sensor_sends_with(
        &central,
        "prod",
        &[rampart_proto::capabilities::IMAGE_FINDINGS],
        vec![
            deployment(1, "web", "shop", &reference),
            deployment(2, "worker", "batch", &reference),
            common::synced(3),
        ],
    );

    // Scanned once (one digest for both), listed with its counts: nothing matched yet.
    let image = central.eventually("the image scanned", || {
        let list = central.get("/v1/images");
        let item = list["items"].as_array()?.first()?.clone();
        (item["status"] == "SCANNED").then_some(item)
    });
    assert_eq!(image["id"], pushed_digest.as_str(), "{image}");
    assert_eq!(image["references"], json!([reference]));
    assert_eq!(image["components"], 3);
    assert_eq!(image["vulnerabilities"], 0);
    assert_eq!(image["deployments"], 2);
    let digest = pushed_digest.clone();
    let detail = central.get(&format!("/v1/images/{digest}"));
    assert!(
        detail["image"]["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n == "3 packages were not matched: no Alpine secdb for v3.10 is loaded"),
        "{detail}"
    );
    assert!(alerts_of_policy(&central).is_empty());

    // v3.10's data arrives: the image is matched again (not pulled: the registry is not
    // asked), both deployments are reassessed and the CVE policy opens an alert on each.
    let (status, imported) = central.import("v3.10/main.yaml");
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["deploymentsAffected"], 2, "{imported}");
    let alerts = central.eventually("alerts from the CVE policy", || {
        let a = alerts_of_policy(&central);
        (a.len() == 2).then_some(a)
    });
    let mut names: Vec<&str> = alerts
        .iter()
        .map(|a| a["deploymentName"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["web", "worker"]);
    let (_, alert) = central.call(
        "GET",
        &format!("/v1/alerts/{}", alerts[0]["id"].as_str().expect("id")),
        &central.admin,
        Vec::new(),
    );
    assert!(
        alert.to_string().contains("CVE-2019-14697"),
        "the violation names the CVE: {alert}"
    );

    // The Sensor was sent the image's findings as they changed, the CVE among them by now: its
    // admission controllers decide the CVE policy from them.
    let findings = central.runtime.block_on(async {
        loop {
            if let ToSensor::ImageFindings(f) = common::next(&mut stream).await.expect("stream") {
                assert_eq!(f.reference, reference);
                let data: rampart_policy::image_data::ImageData =
                    serde_json::from_slice(&f.image_data_json).expect("ImageData");
                if data
                    .components
                    .iter()
                    .any(|c| c.vulns.iter().any(|v| v.cve == "CVE-2019-14697"))
                {
                    return data;
                }
            }
        }
    });
    assert!(findings.scanned);
    assert!(findings.os.starts_with("alpine"), "{}", findings.os);

    // Image → components → CVEs, with the fixing version from the secdb.
    let detail = central.get(&format!("/v1/images/{digest}"));
    let musl = detail["image"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "musl")
        .expect("musl")
        .clone();
    assert!(
        musl["vulnerabilities"]
            .as_array()
            .expect("vulns")
            .iter()
            .any(|v| v["id"] == "CVE-2019-14697" && v["fixed_by"] == "1.1.22-r3"),
        "{musl}"
    );
    let mut deployments: Vec<&str> = detail["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    deployments.sort();
    assert_eq!(deployments, ["web", "worker"]);

    // Deployment → images: what it runs, with the roll-up of each.
    let web = central.get("/v1/deployments/prod/uid-web");
    assert_eq!(web["images"][0]["name"], reference.as_str(), "{web}");
    assert_eq!(web["images"][0]["id"], digest.as_str());
    assert_eq!(web["images"][0]["status"], "SCANNED");
    assert!(
        web["images"][0]["fixable"].as_u64().expect("fixable") >= 1,
        "{web}"
    );

    // CVE → images and deployments; scoped by namespace.
    let cves = central.get("/v1/cves?fixable=true&limit=1000");
    let cve = cves["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == "CVE-2019-14697")
        .expect("the CVE is listed")
        .clone();
    assert_eq!(
        (cve["images"].as_u64(), cve["deployments"].as_u64()),
        (Some(1), Some(2))
    );
    let scoped = central.get("/v1/cves?namespace=shop&limit=1000");
    let in_shop = scoped["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == "CVE-2019-14697")
        .expect("listed in shop")
        .clone();
    assert_eq!(in_shop["deployments"], 1);
    assert_eq!(
        central.get("/v1/cves?namespace=nowhere")["total"],
        0,
        "no CVE affects a namespace without deployments"
    );
    let one = central.get("/v1/cves/cve-2019-14697");
    assert_eq!(one["affectedImages"][0]["id"], digest.as_str());
    assert_eq!(one["affectedImages"][0]["components"][0]["name"], "musl");
    assert_eq!(one["affectedDeployments"].as_array().expect("d").len(), 2);
    // Every CVE the list counts for the image is one its secdb gives for its packages.
    assert_eq!(
        central.get("/v1/images?severity=unknown&fixable=true")["total"],
        1
    );
    assert_eq!(central.get("/v1/images?cve=CVE-2019-14697")["total"], 1);
    assert_eq!(central.get("/v1/images?cve=CVE-1999-0001")["total"], 0);
    assert_eq!(central.get("/v1/images?namespace=batch")["total"], 1);

    // The CI role scans on request; a scanned image is answered from Central's catalog.
    let (status, token) = central.call(
        "POST",
        "/v1/tokens",
        &central.admin,
        json!({"name": "ci", "role": "ci"}).to_string().into_bytes(),
    );
    assert_eq!(status, 201);
    let ci = format!("Bearer {}", token["token"].as_str().expect("token"));
    let (status, scan) = central.call(
        "POST",
        "/v1/images/scan",
        &ci,
        json!({"image": reference}).to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{scan}");
    assert_eq!(scan["digest"], digest.as_str());
    assert!(scan.to_string().contains("CVE-2019-14697"));
    // Bad requests: no such image (502 naming the registry's answer), not a reference,
    // unknown fields; reading images is not for CI.
    let missing = format!("{}/base/alpine:9.9", registry.host);
    let (status, body) = central.call(
        "POST",
        "/v1/images/scan",
        &ci,
        json!({"image": missing}).to_string().into_bytes(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream")),
        "{body}"
    );
    assert!(
        body["message"].as_str().expect("m").contains("alpine:9.9"),
        "{body}"
    );
    let (status, body) = central.call(
        "POST",
        "/v1/images/scan",
        &ci,
        json!({"image": "not a reference"}).to_string().into_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = central.call(
        "POST",
        "/v1/images/scan",
        &ci,
        json!({"image": reference, "forse": true})
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().expect("m").contains("forse"),
        "{body}"
    );
    assert_eq!(central.call("GET", "/v1/images", &ci, Vec::new()).0, 403);
    // Data that is not vulnerability data is refused and changes nothing.
    let (status, body) = central.call(
        "POST",
        "/v1/vulndb/import?name=x.json",
        &central.admin,
        b"{\"hello\": 1}".to_vec(),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(central.get("/v1/vulndb")["secdb_files"], 2);
    // The failed reference is listed with why.
    let failed = central.get("/v1/images?status=failed");
    assert_eq!(failed["total"], 1, "{failed}");
    assert!(
        failed["items"][0]["error"]
            .as_str()
            .expect("error")
            .contains("alpine:9.9")
    );

    // A restart without the registry: the stored scan is matched again from its facts and
    // attached to the deployments, so the alerts stay and nothing is pulled.
    drop(stream);
    let password = std::fs::read_to_string(dir.path().join("admin-password"))
        .expect("password file")
        .trim()
        .to_string();
    let Central {
        running, runtime, ..
    } = central;
    drop(running);
    runtime.shutdown_timeout(Duration::from_secs(10));
    drop(registry);
    let central = start_central(dir.path(), "127.0.0.1:1", Some(&password));
    let image = central.eventually("the stored image loaded", || {
        let list = central.get("/v1/images?status=scanned");
        let item = list["items"].as_array()?.first()?.clone();
        (item["deployments"] == 2).then_some(item)
    });
    assert_eq!(image["id"], digest.as_str());
    assert!(image["vulnerabilities"].as_u64().expect("n") > 0, "{image}");
    assert_eq!(alerts_of_policy(&central).len(), 2);
}

fn secret_event(seq: u64, name: &str, namespace: &str, dockerconfig: &str) -> MsgFromSensor {
    use base64::Engine;
    let object = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(dockerconfig)}
    });
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: ResourceKind::Secret as i32,
            id: format!("uid-{name}"),
            namespace: namespace.into(),
            name: name.into(),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: seq,
            context: None,
        })),
    }
}

#[test]
fn private_images_are_pulled_with_the_pull_secrets_of_the_namespaces_running_them() {
    let registry = Registry::start(&[("puller", "s3cret-pw")]);
    let auth = RegistryAuth::Basic("puller".into(), "s3cret-pw".into());
    let shop_image = format!("{}/private/shop:1", registry.host);
    let lab_image = format!("{}/private/lab:1", registry.host);
    let dir = tempfile::tempdir().expect("tempdir");
    let central = start_central(dir.path(), &registry.host, None);
    for reference in [&shop_image, &lab_image] {
        central.runtime.block_on(push(
            &registry.client(),
            &auth,
            reference,
            &[layer(&[
                ("etc/os-release", b"ID=alpine\nVERSION_ID=3.10.9\n".to_vec()),
                ("lib/apk/db/installed", apk_db()),
            ])],
            "amd64",
        ));
    }
    let config =
        json!({"auths": {registry.host.clone(): {"username": "puller", "password": "s3cret-pw"}}})
            .to_string();
    // ACS's "Images with no scans" enabled: it holds for the images whose scan failed.
    let (status, body) = central.call(
        "PATCH",
        &format!("/v1/policies/{NO_SCANS}"),
        &central.admin,
        br#"{"disabled": false}"#.to_vec(),
    );
    assert_eq!(status, 200, "{body}");
    // The deployment first, its namespace's pull secret after: the failed pull is tried
    // again as soon as the secret arrives.
    let stream = sensor_sends(
        &central,
        "prod",
        vec![
            deployment(1, "shop-app", "shop", &shop_image),
            deployment(2, "lab-app", "lab", &lab_image),
            common::synced(3),
        ],
    );
    let _stream = central.runtime.block_on(async move {
        let mut stream = stream;
        common::send_all(&stream, [secret_event(4, "regcred", "shop", &config)]).await;
        common::until_ack(&mut stream, 4).await;
        stream
    });
    let scanned = central.eventually("the shop image scanned with shop's pull secret", || {
        let list = central.get("/v1/images?status=scanned");
        (list["total"] == 1).then_some(list)
    });
    assert_eq!(scanned["items"][0]["references"], json!([shop_image]));
    assert_eq!(scanned["items"][0]["components"], 3);
    // The lab namespace has no pull secret: its image is not pulled with shop's.
    let failed = central.eventually("the lab image refused by the registry", || {
        let list = central.get("/v1/images?status=failed");
        (list["total"] == 1).then_some(list)
    });
    assert_eq!(failed["items"][0]["name"], lab_image.as_str());
    let error = failed["items"][0]["error"].as_str().expect("error");
    assert!(error.contains("Not authorized"), "{error}");
    // The deployment running the image Central could not scan is alerted on for it; the one
    // whose image was scanned (after a first failure, before its pull secret came) is not.
    let unscanned = |name: &str| -> Vec<Value> {
        central.get("/v1/alerts?query=Policy%3A%22Images%20with%20no%20scans%22")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["deploymentName"] == name && a["state"] == "ACTIVE")
            .collect()
    };
    let alert = central.eventually("lab-app alerted on for its unscanned image", || {
        unscanned("lab-app").into_iter().next()
    });
    let text = alert.to_string();
    assert!(text.contains("has not been scanned"), "{text}");
    central.eventually(
        "no active alert for shop-app, whose image is scanned",
        || unscanned("shop-app").is_empty().then_some(()),
    );
    // The credentials are used, never shown: not in any answer of the API.
    for path in [
        "/v1/images",
        "/v1/cves",
        "/v1/deployments?cluster=prod",
        "/v1/clusters",
        "/metrics",
        &format!(
            "/v1/images/{}",
            scanned["items"][0]["id"].as_str().expect("id")
        ),
    ] {
        let (status, body) = central.call("GET", path, &central.admin, Vec::new());
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body.to_string().contains("s3cret-pw"),
            "{path} shows the password"
        );
    }
}

/// Connects a Sensor for `cluster` with a bundle issued over the API and sends `messages`.
fn sensor_sends(central: &Central, cluster: &str, messages: Vec<MsgFromSensor>) -> common::Stream {
    sensor_sends_with(central, cluster, &[], messages)
}

fn sensor_sends_with(
    central: &Central,
    cluster: &str,
    capabilities: &[&str],
    messages: Vec<MsgFromSensor>,
) -> common::Stream {
    let (status, bundle) = central.call(
        "POST",
        "/v1/init-bundles",
        &central.admin,
        json!({"name": cluster}).to_string().into_bytes(),
    );
    assert_eq!(status, 201, "{bundle}");
    common::sensor_sends_with(
        &central.runtime,
        central.running.sensor_addr,
        &bundle,
        cluster,
        capabilities,
        messages,
    )
}

#[test]
fn a_moved_tag_is_rescanned_and_a_failed_rescan_keeps_the_last_scan() {
    let registry = Registry::start(&[]);
    let reference = format!("{}/base/alpine:stable", registry.host);
    let image = |musl: &str| {
        layer(&[
            ("etc/os-release", b"ID=alpine\nVERSION_ID=3.10.9\n".to_vec()),
            (
                "lib/apk/db/installed",
                format!("P:musl\nV:{musl}\nA:x86_64\no:musl\n\n").into_bytes(),
            ),
        ])
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Rescans are due at once and looked for every 50 ms.
    let central = start_central_with(
        dir.path(),
        &registry.host,
        None,
        rampart_central::images::ImageSettings {
            scan_deployments: true,
            rescan_after: Duration::ZERO,
            retry_after: Duration::from_millis(200),
            sweep_every: Duration::from_millis(50),
            ..Default::default()
        },
    );
    let (first, _) = central.runtime.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[image("1.1.22-r2")],
        "amd64",
    ));
    assert_eq!(central.import("v3.10/main.yaml").0, 200);
    assert_eq!(
        central
            .call(
                "POST",
                "/v1/policies",
                &central.admin,
                MUSL_POLICY.as_bytes().to_vec()
            )
            .0,
        201
    );
    let _stream = sensor_sends(
        &central,
        "prod",
        vec![deployment(1, "web", "shop", &reference), common::synced(2)],
    );
    central.eventually("the alert on the first image", || {
        (alerts_of_policy(&central).len() == 1).then_some(())
    });

    // The tag moves to a rebuilt image with musl fixed: the rescan finds the new digest, the
    // old image is forgotten, and the alert resolves.
    let (second, _) = central.runtime.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[image("1.1.22-r3")],
        "amd64",
    ));
    assert_ne!(first, second);
    central.eventually("the moved tag rescanned", || {
        let list = central.get("/v1/images");
        (list["total"] == 1 && list["items"][0]["id"] == second.as_str()).then_some(())
    });
    central.eventually("the alert resolved", || {
        alerts_of_policy(&central).is_empty().then_some(())
    });
    let (status, _) = central.call(
        "GET",
        &format!("/v1/images/{first}"),
        &central.admin,
        Vec::new(),
    );
    assert_eq!(status, 404, "the old image is forgotten");

    // The tag moves back and the registry goes away: the rescans fail, the last scan stays.
    central.runtime.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[image("1.1.22-r2")],
        "amd64",
    ));
    central.eventually("the alert open again", || {
        (alerts_of_policy(&central).len() == 1).then_some(())
    });
    drop(registry);
    let failures_before = failures(&central);
    central.eventually("rescans failing", || {
        (failures(&central) > failures_before + 1).then_some(())
    });
    let list = central.get("/v1/images");
    assert_eq!(list["items"][0]["status"], "SCANNED", "{list}");
    assert_eq!(list["items"][0]["id"], first.as_str());
    assert_eq!(
        alerts_of_policy(&central).len(),
        1,
        "findings kept while the registry is away"
    );
}

/// Failed image scans counted in Central's metrics.
fn failures(central: &Central) -> u64 {
    let (_, body) = central.call("GET", "/metrics", &central.admin, Vec::new());
    body.as_str()
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("rampart_image_scans_total{outcome=\"failed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A Sensor that takes image findings is told of each image its cluster runs once it is
/// scanned, and of an image no longer run (empty findings), for its admission controllers.
#[test]
fn a_sensor_is_sent_the_findings_of_the_images_its_cluster_runs_and_told_when_one_goes() {
    let registry = Registry::start(&[]);
    let reference = format!("{}/base/alpine:3.10", registry.host);
    let dir = tempfile::tempdir().expect("tempdir");
    let central = start_central(dir.path(), &registry.host, None);
    central.runtime.block_on(push_alpine(&registry, &reference));
    let mut stream = sensor_sends_with(
        &central,
        "prod",
        &[rampart_proto::capabilities::IMAGE_FINDINGS],
        vec![deployment(1, "web", "shop", &reference), common::synced(2)],
    );
    // Right after the hello, before any event: an empty first round, and its end.
    let mut image_messages = stream.passed.iter().filter(|m| {
        matches!(
            m,
            ToSensor::ImageFindings(_) | ToSensor::ImageFindingsSynced(_)
        )
    });
    assert!(
        matches!(
            image_messages.next(),
            Some(ToSensor::ImageFindingsSynced(_))
        ),
        "{:?}",
        stream.passed
    );
    // The scan may land before the events' ack or after.
    let already = stream.passed.iter().find_map(|m| match m {
        ToSensor::ImageFindings(f) => Some(f.clone()),
        _ => None,
    });
    let findings = match already {
        Some(f) => f,
        None => central.runtime.block_on(async {
            loop {
                if let ToSensor::ImageFindings(f) = common::next(&mut stream).await.expect("stream")
                {
                    return f;
                }
            }
        }),
    };
    assert_eq!(findings.reference, reference);
    let data: rampart_policy::image_data::ImageData =
        serde_json::from_slice(&findings.image_data_json).expect("ImageData");
    let mut packages: Vec<&str> = data.components.iter().map(|c| c.name.as_str()).collect();
    packages.sort();
    assert_eq!(packages.len(), 3, "{packages:?}");

    // The deployment goes: the cluster no longer runs the image.
    let gone = MsgFromSensor {
        seq: 3,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: ResourceAction::Remove as i32,
            kind: ResourceKind::Deployment as i32,
            id: "uid-web".into(),
            namespace: "shop".into(),
            name: "web".into(),
            ..ResourceEvent::default()
        })),
    };
    let forgotten = central.runtime.block_on(async {
        common::send_all(&stream, [gone]).await;
        loop {
            if let ToSensor::ImageFindings(f) = common::next(&mut stream).await.expect("stream") {
                return f;
            }
        }
    });
    assert_eq!(forgotten.reference, reference);
    assert!(forgotten.image_data_json.is_empty());

    // Checked on request (a CI pipeline's `rampart image check -e`): every cluster's admission
    // controllers get the image's findings before any workload runs it.
    let (status, body) = central.call(
        "POST",
        "/v1/images/scan",
        &central.admin,
        json!({"image": reference}).to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let requested = central.runtime.block_on(async {
        loop {
            if let ToSensor::ImageFindings(f) = common::next(&mut stream).await.expect("stream") {
                return f;
            }
        }
    });
    assert_eq!(
        requested.reference,
        rampart_policy::image::ImageName::parse(&reference).full_name
    );
    assert!(!requested.image_data_json.is_empty());
}
