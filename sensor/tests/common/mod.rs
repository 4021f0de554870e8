//! What the Sensor's end-to-end tests share: the test API server with a `shop` namespace, a
//! real Central in a temp dir, and an init bundle for cluster `prod`.
#![allow(dead_code)]

use rampart_central::pki::{InitBundle, IssuedCert, Service, persist};
use rampart_central::runtime::{Config as CentralRuntime, Running, start};
use rampart_sensor::{CentralConfig, Config};
use rampart_test_support::ApiServer;
use serde_json::json;

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub api: ApiServer,
    pub central: Running,
    pub bundle: InitBundle,
}

pub async fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = ApiServer::start().await.expect("api server");
    api.write_kubeconfig(&dir.path().join("kubeconfig"))
        .expect("kubeconfig");
    let central = start(CentralRuntime {
        data_dir: dir.path().join("central"),
        sensor_listen: "127.0.0.1:0".parse().expect("addr"),
        api_listen: "127.0.0.1:0".parse().expect("addr"),
        server_names: vec!["localhost".into()],
        images: Default::default(),
        baselines: Default::default(),
        admin_password: None,
    })
    .await
    .expect("central");
    let now = time::OffsetDateTime::now_utc();
    let ca = persist::load_or_create_ca(&central.core.store, now).expect("ca");
    let bundle = persist::issue_bundle(&central.core.store, &ca, "prod", now).expect("bundle");
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
        .expect("namespace");
    Setup {
        dir,
        api,
        central,
        bundle,
    }
}

impl Setup {
    pub fn cert(&self, service: Service) -> &IssuedCert {
        self.bundle
            .certs
            .iter()
            .find(|c| c.service == service)
            .expect("certificate")
    }

    /// The Sensor of cluster `prod`, watching the test API server.
    pub fn sensor_config(&self, collector_listen: Option<std::net::SocketAddr>) -> Config {
        let cert = self.cert(Service::Sensor);
        Config {
            central: CentralConfig {
                endpoint: format!("https://{}", self.central.sensor_addr),
                server_name: "localhost".into(),
                ca_pem: self.bundle.ca_pem.clone(),
                cert_pem: cert.cert_pem.clone(),
                key_pem: cert.key_pem.clone(),
                cluster_name: "prod".into(),
            },
            kubeconfig: Some(self.dir.path().join("kubeconfig")),
            collector_listen,
            health_listen: Some("127.0.0.1:0".parse().expect("addr")),
            exempt_namespaces: rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec(),
        }
    }
}

/// Calls Central's HTTPS API as admin.
pub async fn admin_call(
    central: &Running,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let ca = std::fs::read_to_string(&central.ca_file).expect("ca.pem");
    let password = central.new_admin_password.clone().expect("first start");
    let url = format!("https://localhost:{}{path}", central.api_addr.port());
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let agent = rampart_test_support::https_agent(&ca).expect("agent");
        let request = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(url)
            .header(
                "Authorization",
                rampart_test_support::basic_auth("admin", &password),
            )
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).expect("json"))
            .expect("request");
        let mut response = agent.run(request).expect("response");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    })
    .await
    .expect("call")
}

/// GETs plain-HTTP `paths` of a probe endpoint (the kubelet's view): each status and body.
pub async fn probe(addr: std::net::SocketAddr, paths: &[&'static str]) -> Vec<(u16, String)> {
    let paths = paths.to_vec();
    tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .map(|path| {
                let mut r = ureq::get(format!("http://{addr}{path}"))
                    .config()
                    .http_status_as_error(false)
                    .build()
                    .call()
                    .expect("response");
                (
                    r.status().as_u16(),
                    r.body_mut().read_to_string().expect("body"),
                )
            })
            .collect()
    })
    .await
    .expect("probe")
}
