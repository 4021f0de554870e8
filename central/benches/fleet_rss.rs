//! Central's memory holding a fleet: a real Central (`runtime::start`, sled in a temp dir) takes
//! 50,000 deployments from 5 Sensor streams over mTLS (deploy-time detection on, alerts
//! written), then serves an alert query; prints resident memory (VmRSS) and its peak (VmHWM)
//! from /proc/self/status. Target: <= 1 GiB (ACS needs 8-12 GiB for this).
//! Run: `cargo bench -p rampart-central --bench fleet_rss`.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_client::SensorServiceClient;
use rampart_proto::v1::{
    MsgFromSensor, ResourceAction, ResourceEvent, ResourceKind, SensorHello, SyncMarker,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLUSTERS: usize = 5;
const PER_CLUSTER: u64 = 10_000;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A realistic workload: two containers, env, probes, resources, volumes (~1.5 KB of JSON).
fn object(cluster: usize, i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": format!("team-{}", i % 50),
                     "uid": format!("{cluster:02}{i:06}-0000-4000-8000-000000000000"),
                     "labels": {"app": format!("app-{i}"), "tier": "backend"},
                     "annotations": {"owner": "team@example.com"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app-{i}")}},
          "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
            "spec": {"serviceAccountName": "app",
              "containers": [
                {"name": "app", "image": format!("registry.example.com/team/app:{}.0", i % 7),
                 "ports": [{"containerPort": 8080}],
                 "env": [{"name": "MODE", "value": "prod"}, {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "securityContext": {"privileged": i.is_multiple_of(25), "runAsNonRoot": true},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                 "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
                {"name": "sidecar", "image": "envoyproxy/envoy:v1.31.0",
                 "resources": {"requests": {"cpu": "50m"}}}],
              "volumes": [{"name": "cache", "emptyDir": {}}]}}}
    }))
    .expect("json")
}

async fn stream_cluster(addr: std::net::SocketAddr, bundle: serde_json::Value, cluster: usize) {
    let sensor = bundle["certs"]
        .as_array()
        .expect("certs")
        .iter()
        .find(|c| c["service"] == "sensor")
        .expect("sensor");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(bundle["caPem"].as_str().expect("ca")))
        .identity(Identity::from_pem(
            sensor["certPem"].as_str().expect("cert"),
            sensor["keyPem"].as_str().expect("key"),
        ))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    tx.send(MsgFromSensor {
        seq: 0,
        msg: Some(FromSensor::Hello(SensorHello {
            sensor_version: "bench".into(),
            cluster_name: format!("cluster-{cluster}"),
            ..SensorHello::default()
        })),
    })
    .await
    .expect("hello");
    let mut inbound = SensorServiceClient::new(channel)
        .max_encoding_message_size(16 << 20)
        .communicate(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let sender = tokio::spawn(async move {
        for i in 1..=PER_CLUSTER {
            let msg = MsgFromSensor {
                seq: i,
                msg: Some(FromSensor::Event(ResourceEvent {
                    action: ResourceAction::Sync as i32,
                    kind: ResourceKind::Deployment as i32,
                    id: format!("{cluster:02}{i:06}-0000-4000-8000-000000000000"),
                    namespace: format!("team-{}", i % 50),
                    name: format!("app-{i}"),
                    object_json: object(cluster, i),
                    content_hash: i,
                    context: None,
                })),
            };
            if tx.send(msg).await.is_err() {
                return tx;
            }
        }
        let _ = tx
            .send(MsgFromSensor {
                seq: PER_CLUSTER + 1,
                msg: Some(FromSensor::Synced(SyncMarker::default())),
            })
            .await;
        tx
    });
    loop {
        match inbound.message().await.expect("ok").and_then(|m| m.msg) {
            Some(ToSensor::Ack(a)) if a.seq == PER_CLUSTER + 1 => break,
            Some(_) => {}
            None => panic!("stream closed"),
        }
    }
    drop(sender.await);
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rss_empty = status_kib("VmRSS:");
    let running = runtime
        .block_on(rampart_central::runtime::start(
            rampart_central::runtime::Config {
                data_dir: dir.path().to_path_buf(),
                sensor_listen: "127.0.0.1:0".parse().expect("addr"),
                api_listen: "127.0.0.1:0".parse().expect("addr"),
                server_names: vec!["localhost".into()],
                images: Default::default(),
                baselines: Default::default(),
                admin_password: None,
            },
        ))
        .expect("central");
    let ca = std::fs::read_to_string(&running.ca_file).expect("ca");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![
                    ureq::tls::Certificate::from_pem(ca.as_bytes())
                        .expect("pem")
                        .to_owned(),
                ])))
                .build(),
        )
        .build()
        .into();
    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "admin:{}",
            running.new_admin_password.as_deref().expect("password")
        ))
    );
    let base = format!("https://localhost:{}", running.api_addr.port());
    let mut bundles = Vec::new();
    for c in 0..CLUSTERS {
        let body: serde_json::Value = agent
            .post(format!("{base}/v1/init-bundles"))
            .header("Authorization", &admin)
            .send_json(serde_json::json!({"name": format!("cluster-{c}")}))
            .expect("bundle")
            .body_mut()
            .read_json()
            .expect("json");
        bundles.push(body);
    }
    let rss_started = status_kib("VmRSS:");
    let start = Instant::now();
    let addr = running.sensor_addr;
    runtime.block_on(async {
        let tasks: Vec<_> = bundles
            .into_iter()
            .enumerate()
            .map(|(c, b)| tokio::spawn(stream_cluster(addr, b, c)))
            .collect();
        for t in tasks {
            t.await.expect("cluster");
        }
    });
    let elapsed = start.elapsed();
    let rss_loaded = status_kib("VmRSS:");
    let query = Instant::now();
    let alerts: serde_json::Value = agent
        .get(format!(
            "{base}/v1/alerts?query=Severity:HIGH,MEDIUM&limit=100&sort=-Time"
        ))
        .header("Authorization", &admin)
        .call()
        .expect("alerts")
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_json()
        .expect("json");
    let query_ms = query.elapsed().as_millis();
    let rss_after_query = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    let total = CLUSTERS as u64 * PER_CLUSTER;
    println!(
        "{total} deployments from {CLUSTERS} Sensor streams in {:.1} s ({:.0} events/s, detection on)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "alert query over {} matching alerts: {query_ms} ms",
        alerts["total"]
    );
    println!(
        "RSS: before start {} MiB, started {} MiB, holding the fleet {} MiB, after the query {} MiB, peak {} MiB",
        rss_empty / 1024,
        rss_started / 1024,
        rss_loaded / 1024,
        rss_after_query / 1024,
        peak / 1024
    );
    let size: u64 = walk(dir.path());
    println!("store on disk: {} MiB", size / (1024 * 1024));
}

fn walk(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
