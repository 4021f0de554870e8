//! The Sensor against a large cluster: the test API server holds 10,000 Deployments (each with
//! its ReplicaSet) and 30,000 Pods; a real Central runs in this process; the Sensor runs as a
//! child process (this same binary, re-executed) so that its memory is its own.
//!
//! Measures (targets from the Sensor issue):
//! - initial sync: Sensor start → Central holds every deployment and pod (≤ 10 s);
//! - the Sensor's resident memory after the sync and its peak (≤ 250 MiB);
//! - change → alert: a deployment made privileged in the API server → the alert is active in
//!   Central's store, median and p99 over 200 changes (p99 ≤ 250 ms).
//!
//! Run: `cargo bench -p rampart-sensor --bench sensor_sync` (`SENSOR_SYNC_DEPLOYMENTS=N` for
//! a smaller cluster).

use std::time::{Duration, Instant};

use rampart_central::pki::{Service, persist};
use rampart_central::runtime::{Config as CentralRuntime, start};
use rampart_test_support::ApiServer;
use serde_json::{Value, json};

// As in the `rampart` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "RAMPART_BENCH_SENSOR_CHILD";
const PODS_PER_DEPLOYMENT: usize = 3;
const CHANGES: usize = 200;

fn deployment(i: usize, privileged: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": format!("team-{}", i % 20),
            "labels": {"app": format!("app-{i}"), "tier": "backend"},
            "annotations": {"owner": "team@example.com"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"serviceAccountName": "default", "containers": [
                    {"name": "app", "image": format!("registry.example.com/team/app:{}.0", i % 7),
                     "ports": [{"containerPort": 8080}],
                     "env": [{"name": "MODE", "value": "prod"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                   "limits": {"cpu": "1", "memory": "256Mi"}},
                     "securityContext": {"privileged": privileged, "runAsNonRoot": true},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}},
                    {"name": "sidecar", "image": "envoyproxy/envoy:v1.31.0",
                     "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                   "limits": {"cpu": "200m", "memory": "128Mi"}}}]}}}})
}

fn owned(kind: &str, api_version: &str, name: String, ns: &str, owner: &Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": owner["spec"]["selector"]["matchLabels"].clone(),
            "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true}]},
        "spec": owner["spec"].clone()})
}

fn kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child: only the Sensor, configured from the environment.
fn child() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::path::PathBuf::from(std::env::var(CHILD_ENV).expect("dir"));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("file");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _sensor = rampart_sensor::start(rampart_sensor::Config {
            central: rampart_sensor::CentralConfig {
                endpoint: read("endpoint"),
                server_name: "localhost".into(),
                ca_pem: read("ca.pem"),
                cert_pem: read("sensor.pem"),
                key_pem: read("sensor-key.pem"),
                cluster_name: "bench".into(),
            },
            kubeconfig: Some(dir.join("kubeconfig")),
            collector_listen: None,
            health_listen: None,
            exempt_namespaces: rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec(),
        })
        .await
        .expect("sensor");
        // Exit normally (so tools like massif write their output) when asked to.
        while !dir.join("stop").exists() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        std::process::exit(0);
    });
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deployments: usize = std::env::var("SENSOR_SYNC_DEPLOYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = ApiServer::start().await.expect("api server");
        let seeding = Instant::now();
        for ns in 0..20 {
            api.apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("team-{ns}")}}))
                .expect("namespace");
        }
        let mut uids = Vec::with_capacity(deployments);
        for i in 0..deployments {
            let d = api.apply(deployment(i, false)).expect("deployment");
            let ns = format!("team-{}", i % 20);
            uids.push(d["metadata"]["uid"].as_str().unwrap_or_default().to_string());
            let rs = api
                .apply(owned("ReplicaSet", "apps/v1", format!("app-{i}-7d9f"), &ns, &d))
                .expect("replicaset");
            for p in 0..PODS_PER_DEPLOYMENT {
                let mut pod = owned("Pod", "v1", format!("app-{i}-7d9f-{p}"), &ns, &rs);
                pod["spec"] = rs["spec"]["template"]["spec"].clone();
                pod["status"] = json!({"phase": "Running", "podIP": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)});
                api.apply(pod).expect("pod");
            }
        }
        println!(
            "seeded {} deployments, {} replicasets, {} pods in {:.1} s",
            deployments,
            deployments,
            deployments * PODS_PER_DEPLOYMENT,
            seeding.elapsed().as_secs_f64()
        );

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
        let bundle = persist::issue_bundle(&central.core.store, &ca, "bench", now).expect("bundle");
        let cert = bundle
            .certs
            .iter()
            .find(|c| c.service == Service::Sensor)
            .expect("sensor cert");
        let child_dir = dir.path().join("sensor");
        std::fs::create_dir_all(&child_dir).expect("dir");
        std::fs::write(child_dir.join("ca.pem"), &bundle.ca_pem).expect("write");
        std::fs::write(child_dir.join("sensor.pem"), &cert.cert_pem).expect("write");
        std::fs::write(child_dir.join("sensor-key.pem"), &cert.key_pem).expect("write");
        std::fs::write(
            child_dir.join("endpoint"),
            format!("https://{}", central.sensor_addr),
        )
        .expect("write");
        api.write_kubeconfig(&child_dir.join("kubeconfig"))
            .expect("kubeconfig");

        let started = Instant::now();
        // SENSOR_SYNC_WRAP runs the Sensor under a tool (e.g. `valgrind --tool=massif`).
        let exe = std::env::current_exe().expect("exe");
        let wrap = std::env::var("SENSOR_SYNC_WRAP").unwrap_or_default();
        let mut words: Vec<std::ffi::OsString> =
            wrap.split_whitespace().map(Into::into).collect();
        words.push(exe.into_os_string());
        let mut sensor = std::process::Command::new(&words[0])
            .args(&words[1..])
            .env(CHILD_ENV, &child_dir)
            .spawn()
            .expect("sensor child");
        let pid = sensor.id();
        let store = std::sync::Arc::clone(&central.core.store);
        let pods_expected = deployments * PODS_PER_DEPLOYMENT;
        let cluster = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(started.elapsed() < Duration::from_secs(300), "sync never finished");
            let Some(c) = store
                .clusters()
                .expect("clusters")
                .into_iter()
                .find(|c| c.name == "bench")
            else {
                continue;
            };
            let (mut d, mut p) = (0usize, 0usize);
            store
                .for_each_cluster_object(&c.id, |table, key, _| {
                    if table == rampart_central::store::Table::Deployments {
                        d += 1;
                    } else if key.contains("\0Pod\0") {
                        p += 1;
                    }
                })
                .expect("scan");
            if d == deployments && p == pods_expected {
                break c.id;
            }
        };
        let sync = started.elapsed();
        let (rss, hwm) = (kib(pid, "VmRSS:"), kib(pid, "VmHWM:"));
        println!(
            "initial sync: {:.2} s for {} deployments + {} pods; Sensor RSS {} MiB, peak {} MiB",
            sync.as_secs_f64(),
            deployments,
            pods_expected,
            rss / 1024,
            hwm / 1024
        );

        let mut latencies = Vec::with_capacity(CHANGES);
        for (i, uid) in uids.iter().enumerate().take(CHANGES) {
            let t0 = Instant::now();
            api.apply(deployment(i, true)).expect("update");
            loop {
                let active = rampart_central::alerts::persist::active_for(&store, &cluster, uid)
                    .expect("alerts");
                if active.iter().any(|a| a.policy_name == "Privileged Container") {
                    break;
                }
                assert!(t0.elapsed() < Duration::from_secs(30), "no alert for app-{i}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            latencies.push(t0.elapsed());
        }
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "change → alert in Central ({} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3
        );
        println!(
            "Sensor after the changes: RSS {} MiB, peak {} MiB",
            kib(pid, "VmRSS:") / 1024,
            kib(pid, "VmHWM:") / 1024
        );
        std::fs::write(child_dir.join("stop"), "").expect("stop");
        let deadline = Instant::now() + Duration::from_secs(120);
        while sensor.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = sensor.kill();
        let _ = sensor.wait();
    });
}
