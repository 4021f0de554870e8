//! The web console in real headless Chromium (Debian's chromium and chromedriver, over
//! WebDriver) against a real Central (`runtime::start`, TLS, a Sensor stream seeding
//! violations): log in, see and filter violations, open one, resolve it; toggle a policy as
//! Admin and be refused as Analyst; a form without its CSRF token is refused. Screenshots of
//! each page land in `target/tmp/ui-screenshots/`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rampart_central::runtime::{Config, Running, start};
use rampart_proto::v1::ResourceAction;
use rampart_test_support::webdriver::Browser;
use serde_json::{Value, json};

struct Central {
    running: Running,
    runtime: tokio::runtime::Runtime,
    agent: ureq::Agent,
    base: String,
    admin: String,
    password: String,
    ca: String,
    _dir: tempfile::TempDir,
}

fn start_central(registry: &str) -> Central {
    rampart_test_support::registry::install_crypto();
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
            images: rampart_central::images::ImageSettings {
                scan_deployments: true,
                pull: rampart_scanner::registry::PullOptions {
                    insecure: vec![registry.to_string()],
                    ..Default::default()
                },
                ..Default::default()
            },
            baselines: Default::default(),
            admin_password: None,
        }))
        .expect("central");
    let ca = std::fs::read_to_string(&running.ca_file).expect("ca");
    let password = running.new_admin_password.clone().expect("password");
    Central {
        base: format!("https://localhost:{}", running.api_addr.port()),
        agent: rampart_test_support::https_agent(&ca).expect("agent"),
        ca: ca.clone(),
        admin: rampart_test_support::basic_auth("admin", &password),
        password,
        running,
        runtime,
        _dir: dir,
    }
}

impl Central {
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", &self.admin)
            .header("Content-Type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .expect("request");
        let mut response = self.agent.run(request).expect("response");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// An HTTPS client trusting Central's CA that does not follow redirects (the console
    /// answers forms with them).
    fn console_agent(&self) -> ureq::Agent {
        let cert = ureq::tls::Certificate::from_pem(self.ca.as_bytes())
            .expect("ca")
            .to_owned();
        ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        cert,
                    ])))
                    .build(),
            )
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into()
    }

    /// A console session for `form` (urlencoded login fields), outside the browser: its cookie.
    fn session(&self, form: &str) -> String {
        let agent = self.console_agent();
        let response = agent
            .post(format!("{}/ui/login", self.base))
            .content_type("application/x-www-form-urlencoded")
            .send(form)
            .expect("login");
        assert_eq!(response.status().as_u16(), 303, "login redirects");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("Secure")
                && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().expect("name=value").to_string()
    }

    /// A console request with a session cookie: (status, body).
    fn page(&self, method: &str, path: &str, cookie: &str, form: &str) -> (u16, String) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Cookie", cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .expect("request");
        let agent = self.console_agent();
        let mut response = agent.run(request).expect("response");
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The CSRF token a console page carries in its forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().expect("token").to_string()
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

#[test]
fn a_person_logs_in_finds_a_violation_resolves_it_and_roles_and_csrf_hold() {
    // An Alpine image with a musl that Alpine's real secdb says is vulnerable, in a real registry.
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let image = format!("{}/base/alpine:3.10", registry.host);
    let central = start_central(&registry.host);
    central
        .runtime
        .block_on(rampart_test_support::registry::push(
            &registry.client(),
            &oci_client::secrets::RegistryAuth::Anonymous,
            &image,
            &[rampart_test_support::registry::layer(&[
                (
                    "etc/os-release",
                    b"ID=alpine\nVERSION_ID=3.10.9\nPRETTY_NAME=\"Alpine Linux v3.10\"\n".to_vec(),
                ),
                (
                    "lib/apk/db/installed",
                    b"P:musl\nV:1.1.22-r2\no:musl\n\n".to_vec(),
                ),
            ])],
            "amd64",
        ));
    let secdb = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/alpine-secdb/v3.10/main.yaml"),
    )
    .expect("secdb");
    let request = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/v1/vulndb/import?name=main.yaml", central.base))
        .header("Authorization", &central.admin)
        .body(secdb)
        .expect("request");
    assert_eq!(
        central
            .agent
            .run(request)
            .expect("import")
            .status()
            .as_u16(),
        200
    );
    // A Sensor reports two workloads; "web" is privileged.
    let (status, bundle) = central.api("POST", "/v1/init-bundles", Some(json!({"name": "prod"})));
    assert_eq!(status, 201, "{bundle}");
    let cache_event = deployment_event(3, "cache", &image);
    let mut stream = common::sensor_sends(
        &central.runtime,
        central.running.sensor_addr,
        &bundle,
        "prod",
        vec![
            common::workload_event(1, "web", true, ResourceAction::Sync),
            common::workload_event(2, "api", false, ResourceAction::Sync),
            cache_event,
            common::synced(4),
        ],
    );

    let browser = Browser::start();
    let shots = screenshots();
    // Any page sends a stranger to the login form, and back after logging in.
    browser.goto(&format!("{}/ui/violations", central.base));
    assert!(
        browser.url().contains("/ui/login?next="),
        "{}",
        browser.url()
    );
    browser.type_into(&browser.find("#password"), "not the password");
    browser.click_and_wait(&browser.find("#login"));
    assert!(
        browser.text(&browser.find(".error")).contains("not valid"),
        "a wrong password is said"
    );
    browser.screenshot(&shots, "login");
    browser.type_into(&browser.find("#password"), &central.password);
    browser.click_and_wait(&browser.find("#login"));
    assert!(
        browser.url().ends_with("/ui/violations"),
        "{}",
        browser.url()
    );

    // The Violations page lists the active violations; the ACS query narrows them.
    let all = browser.text(&browser.find("#count"));
    browser.screenshot(&shots, "violations");
    browser.type_into(&browser.find("#query"), "Policy:\"Privileged Container\"");
    browser.click_and_wait(&browser.find("#search"));
    assert_eq!(
        browser.text(&browser.find("#count")),
        "1 violations",
        "was: {all}"
    );
    let rows = browser.find_all("#violations tbody tr");
    assert_eq!(rows.len(), 1);
    let row = browser.text(&rows[0]);
    assert!(
        row.contains("Privileged Container") && row.contains("web"),
        "{row}"
    );
    // A broken query is said, not a blank page.
    browser.type_into(&browser.find("#query"), "Nonsense:x");
    browser.click_and_wait(&browser.find("#search"));
    assert!(
        browser.find_all(".error").len() == 1,
        "{}",
        browser.source()
    );
    browser.type_into(&browser.find("#query"), "Policy:\"Privileged Container\"");
    browser.click_and_wait(&browser.find("#search"));

    // Open it: the messages, the policy's remediation, and Resolve.
    browser.click_and_wait(&browser.find("#violations tbody a"));
    assert!(
        browser
            .text(&browser.find("#messages"))
            .to_lowercase()
            .contains("privileged"),
        "{}",
        browser.source()
    );
    assert!(!browser.text(&browser.find("#remediation")).is_empty());
    // The deployment's configuration, the privileged flag marked.
    let risky: Vec<String> = browser
        .find_all("#deployment-facts tr.risky th")
        .iter()
        .map(|e| browser.text(e))
        .collect();
    assert!(risky.iter().any(|t| t == "Privileged"), "{risky:?}");
    assert!(
        browser
            .text(&browser.find("#deployment-facts"))
            .contains("nginx:1.27")
    );
    browser.screenshot(&shots, "violation");
    browser.script("document.getElementById('deployment-facts').scrollIntoView(); return null;");
    browser.screenshot(&shots, "violation-deployment");
    let id = browser.url().rsplit('/').next().expect("id").to_string();
    browser.click_and_wait(&browser.find("#resolve"));
    assert_eq!(browser.text(&browser.find("#state")), "RESOLVED");
    let (_, alert) = central.api("GET", &format!("/v1/alerts/{id}"), None);
    assert_eq!(alert["alert"]["state"], "RESOLVED", "{alert}");

    // The dashboard counts what is left, and its counts follow new violations without a reload.
    browser.goto(&format!("{}/ui/", central.base));
    assert!(browser.source().contains("Active violations by severity"));
    let medium = browser.find("[data-live='severity-Medium']");
    let before: usize = browser.text(&medium).parse().expect("a count");
    eventually("the nav badge filled", || {
        !browser.text(&browser.find(".badge")).is_empty()
    });
    browser.script("window.__rampartOldPage = true;");
    central.runtime.block_on(async {
        common::send_all(
            &stream,
            [common::workload_event(
                5,
                "batch",
                true,
                ResourceAction::Sync,
            )],
        )
        .await;
        common::until_ack(&mut stream, 5).await;
    });
    eventually("the Medium tile updated in place", || {
        browser
            .text(&medium)
            .parse::<usize>()
            .is_ok_and(|n| n > before)
    });
    assert_eq!(
        browser.script("return window.__rampartOldPage === true;"),
        Value::Bool(true),
        "the page was not reloaded"
    );
    browser.screenshot(&shots, "dashboard");
    // The trend: 14 days, today's bar carrying every violation opened today; the riskiest first.
    browser.goto(&format!("{}/ui/", central.base));
    let bars = browser.find_all("#trend-chart rect");
    assert_eq!(bars.len(), 14);
    let today = browser.script(
        "var r = document.querySelectorAll('#trend-chart rect'); return r[r.length - 1].textContent;",
    );
    let opened: usize = today
        .as_str()
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("today's count");
    let (_, all) = central.api(
        "GET",
        "/v1/alerts?query=Violation%20State%3AACTIVE,RESOLVED&limit=1",
        None,
    );
    assert_eq!(
        opened as u64,
        all["total"].as_u64().expect("total"),
        "{all}"
    );
    assert!(!browser.find_all("#riskiest-table tbody tr").is_empty());

    // Risk: the privileged "web" ranks above "api", the same workload unprivileged; the old,
    // scanned "cache" image weighs too. Each page says why.
    browser.goto(&format!("{}/ui/risk", central.base));
    let rows: Vec<String> = browser
        .find_all("#risk tbody tr")
        .iter()
        .map(|r| browser.text(r))
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let at = |name: &str| {
        rows.iter()
            .position(|r| r.split(' ').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} ranked: {rows:?}"))
    };
    assert!(at("web") < at("api"), "{rows:?}");
    assert!(rows[at("cache")].contains("Image Freshness"), "{rows:?}");
    browser.screenshot(&shots, "risk");
    browser.click_and_wait(&browser.find("#risk a[href$='/uid-web']"));
    let page = browser.text(&browser.find("main"));
    assert!(
        page.contains("Service Configuration") && page.contains("privileged container(s): app"),
        "{page}"
    );
    assert!(page.contains("Policy Violations"), "{page}");
    browser.screenshot(&shots, "risk-detail");

    // Vulnerabilities: the image, its CVE and the deployment it affects.
    eventually("the image scanned", || {
        central.api("GET", "/v1/images?status=scanned", None).1["total"] == 1
    });
    browser.goto(&format!(
        "{}/ui/images?severity=&fixable=true",
        central.base
    ));
    let images = browser.text(&browser.find("#images"));
    assert!(
        images.contains(&image) && images.contains("Alpine Linux v3.10"),
        "{images}"
    );
    assert!(
        browser
            .text(&browser.find("#cves"))
            .contains("CVE-2019-14697")
    );
    browser.screenshot(&shots, "vulnerabilities");
    browser.click_and_wait(&browser.find("#images tbody a"));
    let components = browser.text(&browser.find("#components"));
    assert!(
        components.contains("musl") && components.contains("1.1.22-r3"),
        "{components}"
    );
    assert!(
        browser
            .text(&browser.find("#image-deployments"))
            .contains("shop/cache")
    );
    browser.screenshot(&shots, "image");
    browser.click_and_wait(&browser.find("#components a[href*='CVE-2019-14697']"));
    assert!(
        browser
            .text(&browser.find("#affected-deployments"))
            .contains("cache")
    );
    browser.screenshot(&shots, "cve");

    // Deployments: the inventory, and a deployment's page with its images and violations.
    browser.goto(&format!(
        "{}/ui/deployments?cluster=prod&namespace=shop",
        central.base
    ));
    let inventory = browser.text(&browser.find("#deployments"));
    for name in ["api", "cache", "web"] {
        assert!(inventory.contains(name), "{inventory}");
    }
    browser.screenshot(&shots, "deployments");
    browser.click_and_wait(&browser.find("#deployments a[href$='/uid-cache']"));
    assert!(
        browser
            .text(&browser.find("#deployment-images"))
            .contains(&image)
    );
    assert!(!browser.find_all("#deployment-violations li").is_empty());
    browser.screenshot(&shots, "deployment");

    // Clusters: health at a glance, and an init bundle for a new cluster (shown once).
    browser.goto(&format!("{}/ui/clusters", central.base));
    assert!(
        browser
            .text(&browser.find("#clusters"))
            .contains("Connected")
    );
    browser.type_into(&browser.find("#bundle-name"), "staging");
    browser.click_and_wait(&browser.find("#generate"));
    let yaml = browser.script("return document.getElementById('bundle').value;");
    let yaml = yaml.as_str().expect("bundle text");
    assert!(
        yaml.contains("kind: Secret") && yaml.contains("BEGIN CERTIFICATE"),
        "{yaml}"
    );
    browser.screenshot(&shots, "clusters");
    let (_, bundles) = central.api("GET", "/v1/init-bundles", None);
    assert!(bundles.to_string().contains("staging"), "{bundles}");

    // Policies: an Admin disables one with its toggle.
    browser.goto(&format!("{}/ui/policies", central.base));
    browser.screenshot(&shots, "policies");
    browser.click_and_wait(&browser.find("#policy-latest-tag button"));
    let (_, list) = central.api("GET", "/v1/policies", None);
    let latest = list["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["name"] == "Latest tag")
        .expect("Latest tag")
        .clone();
    assert_eq!(latest["disabled"], true, "{latest}");
    assert!(
        browser
            .text(&browser.find("#policy-latest-tag"))
            .contains("Disabled")
    );

    // The editor: criteria validated as the engine validates them, a dry run before saving.
    browser.click_and_wait(&browser.find("#new-policy"));
    browser.type_into(&browser.find("#name"), "No privileged web");
    browser.click(&browser.find("#s0-field0 option[value='Privileged Container']"));
    browser.type_into(&browser.find("#s0-values0"), "maybe");
    browser.click_and_wait(&browser.find("#preview"));
    let errors = browser.text(&browser.find("#errors"));
    assert!(errors.contains("'maybe' is not a boolean"), "{errors}");
    browser.screenshot(&shots, "policy-invalid");
    browser.type_into(&browser.find("#s0-values0"), "true");
    browser.click_and_wait(&browser.find("#preview"));
    assert_eq!(
        browser.text(&browser.find("#dry-summary")),
        "2 of 4 deployments would be flagged."
    );
    assert!(browser.text(&browser.find("#dry-hits")).contains("web"));
    // A second section is an alternative: privileged, or running nginx 1.27. What was typed
    // stays when the form grows.
    browser.click_and_wait(&browser.find("#add-section"));
    assert_eq!(
        browser.script("return document.getElementById('s0-values0').value;"),
        json!("true")
    );
    browser.script("document.getElementById('criteria').scrollIntoView(); return null;");
    browser.screenshot(&shots, "policy-sections");
    browser.click(&browser.find("#s1-field0 option[value='Image Tag']"));
    browser.type_into(&browser.find("#s1-values0"), "1.27");
    browser.click_and_wait(&browser.find("#preview"));
    assert_eq!(
        browser.text(&browser.find("#dry-summary")),
        "3 of 4 deployments would be flagged."
    );
    // An exclusion takes one out.
    browser.type_into(&browser.find("#ex0-deployment"), "batch");
    browser.click_and_wait(&browser.find("#preview"));
    assert_eq!(
        browser.text(&browser.find("#dry-summary")),
        "2 of 4 deployments would be flagged."
    );
    let hits = browser.text(&browser.find("#dry-hits"));
    assert!(hits.contains("api") && !hits.contains("batch"), "{hits}");
    browser.screenshot(&shots, "policy-dry-run");
    let (_, before) = central.api("GET", "/v1/policies", None);
    assert!(
        !before.to_string().contains("No privileged web"),
        "a preview saves nothing"
    );
    browser.click_and_wait(&browser.find("#save"));
    assert!(
        browser
            .text(&browser.find("#message"))
            .contains("No privileged web")
    );
    let (_, after) = central.api("GET", "/v1/policies", None);
    let created = after["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["name"] == "No privileged web")
        .expect("saved")
        .clone();
    let (_, created) = central.api(
        "GET",
        &format!("/v1/policies/{}", created["id"].as_str().expect("id")),
        None,
    );
    assert_eq!(
        created["policySections"].as_array().map(Vec::len),
        Some(2),
        "{created}"
    );
    assert_eq!(
        created["exclusions"][0]["deployment"]["name"], "batch",
        "{created}"
    );
    assert_eq!(created["severity"], "MEDIUM_SEVERITY", "{created}");
    // Export carries it; importing an ACS policy pasted in the page adds another.
    let exporter = central.session(&format!("username=admin&password={}", central.password));
    let (status, export) = central.page("GET", "/ui/policies/export", &exporter, "");
    assert_eq!(status, 200);
    let export: Value = serde_json::from_str(&export).expect("export is JSON");
    assert!(
        export["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .any(|p| p["name"] == "No privileged web")
    );
    let acs = json!({"policies": [{"name": "Imported from ACS", "severity": "LOW_SEVERITY",
        "lifecycleStages": ["DEPLOY"], "categories": ["DevOps Best Practices"],
        "policySections": [{"policyGroups": [{"fieldName": "Image Tag", "values": [{"value": "latest"}]}]}]}]});
    browser.type_into(&browser.find("#import-json"), &acs.to_string());
    browser.click_and_wait(&browser.find("#import-button"));
    assert!(
        browser
            .text(&browser.find("#message"))
            .contains("Imported 1 of 1"),
        "{}",
        browser.text(&browser.find("#message"))
    );

    // Process baselines: the Sensor reports what web's container ran; the deployment page shows
    // the learned baseline, an Admin locks it; a runtime alert about a process outside it is
    // resolved and its process added to the baseline in one click.
    let (cluster_id, java_shell) = {
        let cluster = central
            .running
            .core
            .store
            .clusters()
            .expect("clusters")
            .into_iter()
            .find(|c| c.name == "prod")
            .map(|c| c.id)
            .expect("cluster");
        let policy = central
            .running
            .core
            .policies
            .current()
            .policies
            .iter()
            .find(|p| p.name == "Shell Spawned by Java Application")
            .map(|p| p.id.clone())
            .expect("policy");
        (cluster, policy)
    };
    let process = |seq: u64, exe: &str| rampart_proto::v1::MsgFromSensor {
        seq,
        msg: Some(rampart_proto::v1::msg_from_sensor::Msg::Process(
            rampart_proto::v1::ProcessIndicator {
                deployment_id: "uid-web".into(),
                pod_id: "web-1".into(),
                container_name: "app".into(),
                exec_file_path: exe.into(),
                name: exe.rsplit('/').next().unwrap_or(exe).into(),
                args: "-g daemon off;".into(),
                ..Default::default()
            },
        )),
    };
    central.runtime.block_on(async {
        common::send_all(&stream, [process(20, "/usr/sbin/nginx")]).await;
        common::until_ack(&mut stream, 20).await;
    });
    browser.goto(&format!("{}/ui/risk/{cluster_id}/uid-web", central.base));
    assert!(
        browser
            .text(&browser.find("#baseline-app"))
            .contains("/usr/sbin/nginx")
    );
    browser.click_and_wait(&browser.find("#lock-all"));
    assert!(
        browser
            .text(&browser.find("#baselines"))
            .contains("Locked: a process outside it raises an alert")
    );
    let shell_alert = rampart_proto::v1::MsgFromSensor {
        seq: 21,
        msg: Some(rampart_proto::v1::msg_from_sensor::Msg::AlertResults(
            rampart_proto::v1::AlertResults {
                deployment_id: "uid-web".into(),
                stage: rampart_proto::v1::LifecycleStage::Runtime as i32,
                alerts: vec![rampart_proto::v1::Alert {
                    policy_id: java_shell,
                    violations: vec![rampart_proto::v1::Violation {
                        message: "Binary '/bin/sh' executed with arguments '-c id' under user ID 0"
                            .into(),
                        attributes: [
                            ("container", "app"),
                            ("exec_file_path", "/bin/sh"),
                            ("args", "-c id"),
                            ("pod", "web-1"),
                            ("uid", "0"),
                        ]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                        time_unix_ms: 1,
                    }],
                    ..Default::default()
                }],
                policy_revision: String::new(),
            },
        )),
    };
    central.runtime.block_on(async {
        common::send_all(&stream, [shell_alert]).await;
        common::until_ack(&mut stream, 21).await;
    });
    browser.goto(&format!(
        "{}/ui/violations?query={}",
        central.base, "Lifecycle%20Stage%3ARUNTIME"
    ));
    browser.click_and_wait(&browser.find("#violations tbody a"));
    assert!(
        browser
            .text(&browser.find("#processes"))
            .contains("/bin/sh")
    );
    browser.screenshot(&shots, "runtime-violation");
    browser.click_and_wait(&browser.find("#resolve-add"));
    assert_eq!(browser.text(&browser.find("#state")), "RESOLVED");
    browser.goto(&format!("{}/ui/risk/{cluster_id}/uid-web", central.base));
    let baseline = browser.text(&browser.find("#baseline-app"));
    assert!(
        baseline.contains("/bin/sh") && baseline.contains("added"),
        "{baseline}"
    );
    browser.script("document.getElementById('baselines').scrollIntoView(); return null;");
    browser.screenshot(&shots, "deployment-baselines");

    // The network graph: web talks to api and the Internet; its network baseline is locked,
    // then a flow to cache is anomalous — drawn red, listed first, and blocked by the policies
    // generated from the baselines.
    central.runtime.block_on(async {
        common::send_all(
            &stream,
            [
                common::flow(22, "uid-web", "uid-api", "", 8080),
                common::flow(23, "uid-web", "", "93.184.216.34", 443),
            ],
        )
        .await;
        common::until_ack(&mut stream, 23).await;
    });
    let (status, locked) = central.api(
        "PUT",
        &format!("/v1/deployments/{cluster_id}/uid-web/networkbaseline/lock"),
        Some(json!({"locked": true})),
    );
    assert_eq!(status, 200, "{locked}");
    central.runtime.block_on(async {
        common::send_all(
            &stream,
            [common::flow(24, "uid-web", "uid-cache", "", 6379)],
        )
        .await;
        common::until_ack(&mut stream, 24).await;
    });
    browser.click_and_wait(&browser.find("nav a[href='/ui/network']"));
    assert_eq!(
        browser.find_all("#graph circle").len(),
        4,
        "web, api, cache, batch"
    );
    for id in ["uid-web", "uid-api", "uid-cache", "uid-batch"] {
        browser.find(&format!("#graph g[data-id='{id}'] circle"));
    }
    assert_eq!(
        browser.find_all("#graph .ns rect").len(),
        1,
        "one namespace box"
    );
    assert_eq!(browser.find_all("#graph line.edge").len(), 3);
    assert_eq!(browser.find_all("#graph line.edge.anomalous").len(), 1);
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.contains("1 anomalous"), "{summary}");
    let first = browser.text(&browser.find("#flows tbody tr"));
    assert!(
        first.contains("shop/cache") && first.contains("Anomalous"),
        "anomalous first: {first}"
    );
    browser.screenshot(&shots, "network");
    browser.click(&browser.find("#only-anomalous"));
    browser.click_and_wait(&browser.find("#show"));
    assert_eq!(browser.find_all("#graph line.edge").len(), 1);
    assert_eq!(browser.find_all("#graph circle").len(), 2);
    browser.click_and_wait(&browser.find("#generate"));
    browser.script("document.getElementById('from').value = 'baseline'; return null;");
    browser.click_and_wait(&browser.find("#regenerate"));
    let blocked = browser.text(&browser.find("#blocked"));
    assert!(
        blocked.contains("shop/web → shop/cache on 6379/TCP"),
        "{blocked}"
    );
    assert!(
        !blocked.contains("shop/api"),
        "baseline flows pass: {blocked}"
    );
    assert!(
        browser
            .text(&browser.find("#np-shop-rampart-generated-web"))
            .contains("Would block")
    );
    browser.screenshot(&shots, "network-policies");
    // On web's page the network baseline lists the flow to cache as anomalous; adding it to
    // the baseline clears the graph.
    browser.goto(&format!("{}/ui/risk/{cluster_id}/uid-web", central.base));
    assert!(
        browser
            .text(&browser.find("#network-baseline-state"))
            .starts_with("Locked")
    );
    let peers = browser.text(&browser.find("#network-peers"));
    assert!(
        peers.contains("outgoing to shop/cache 6379/TCP anomalous"),
        "{peers}"
    );
    assert!(
        peers.contains("outgoing to shop/api 8080/TCP learned"),
        "{peers}"
    );
    browser.script("document.getElementById('network-baseline').scrollIntoView(); return null;");
    browser.screenshot(&shots, "deployment-network-baseline");
    browser.click_and_wait(&browser.find("#network-peers tr.risky button"));
    let peers = browser.text(&browser.find("#network-peers"));
    assert!(
        peers.contains("outgoing to shop/cache 6379/TCP accepted"),
        "{peers}"
    );
    let (_, graph) = central.api("GET", "/v1/networkgraph?cluster=prod", None);
    assert!(
        graph["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .all(|e| e["anomalous"] == false),
        "{graph}"
    );

    // Logging out ends the session.
    browser.click_and_wait(&browser.find(".who button"));
    browser.goto(&format!("{}/ui/policies", central.base));
    assert!(browser.url().contains("/ui/login"), "{}", browser.url());

    // An Analyst (by API token) reads but cannot change: no toggles, and a forged one is refused.
    let (_, token) = central.api(
        "POST",
        "/v1/tokens",
        Some(json!({"name": "ana", "role": "analyst"})),
    );
    let analyst = central.session(&format!(
        "token={}",
        token["token"].as_str().expect("token")
    ));
    let (status, html) = central.page("GET", "/ui/policies", &analyst, "");
    assert_eq!(status, 200);
    assert!(!html.contains("/toggle"), "an Analyst sees no toggle");
    // An Analyst reads a policy's detail, its criteria in words, and gets no Edit link.
    let (status, html) = central.page(
        "GET",
        &format!("/ui/policies/{}", latest["id"].as_str().expect("id")),
        &analyst,
        "",
    );
    assert_eq!(status, 200);
    assert!(html.contains("Image Tag is latest"), "{html}");
    assert!(!html.contains("id=\"edit\""), "{html}");
    let (_, html) = central.page("GET", "/ui/clusters", &analyst, "");
    assert!(
        !html.contains("init-bundle"),
        "an Analyst cannot issue bundles"
    );
    let policy_id = latest["id"].as_str().expect("id");
    let csrf = csrf_of(&html);
    let (status, html) = central.page(
        "POST",
        &format!("/ui/policies/{policy_id}/toggle"),
        &analyst,
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("Analyst, may not"), "{html}");

    // An Admin's form without its CSRF token, or with another session's, changes nothing.
    let admin = central.session(&format!("username=admin&password={}", central.password));
    let (status, html) = central.page(
        "POST",
        &format!("/ui/policies/{policy_id}/toggle"),
        &admin,
        "",
    );
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("security token"), "{html}");
    let (status, _) = central.page(
        "POST",
        &format!("/ui/policies/{policy_id}/toggle"),
        &admin,
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 403, "another session's token");
    let (_, again) = central.api("GET", &format!("/v1/policies/{policy_id}"), None);
    assert_eq!(again["disabled"], true, "unchanged: {again}");
    // With its own token the same form works.
    let (_, html) = central.page("GET", "/ui/policies", &admin, "");
    let (status, _) = central.page(
        "POST",
        &format!("/ui/policies/{policy_id}/toggle"),
        &admin,
        &format!("csrf={}", csrf_of(&html)),
    );
    assert_eq!(status, 303);
    eventually("the policy enabled again", || {
        // ACS's JSON leaves `disabled: false` out.
        central
            .api("GET", &format!("/v1/policies/{policy_id}"), None)
            .1["disabled"]
            != true
    });
    // The generated policies download as one YAML file.
    let (status, yaml) = central.page(
        "GET",
        "/ui/network/policies.yaml?cluster=prod&from=baseline",
        &admin,
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(yaml.matches("kind: NetworkPolicy").count(), 4, "{yaml}");
    // Pages carry a strict content security policy and nothing from elsewhere.
    let (_, html) = central.page("GET", "/ui/", &admin, "");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}

/// A Deployment in `shop` running `image`, as the Sensor reports it.
fn deployment_event(seq: u64, name: &str, image: &str) -> rampart_proto::v1::MsgFromSensor {
    use rampart_proto::v1::msg_from_sensor::Msg;
    let object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image,
                "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}}}
    });
    rampart_proto::v1::MsgFromSensor {
        seq,
        msg: Some(Msg::Event(rampart_proto::v1::ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: rampart_proto::v1::ResourceKind::Deployment as i32,
            id: format!("uid-{name}"),
            namespace: "shop".into(),
            name: name.into(),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: seq,
            context: None,
        })),
    }
}
