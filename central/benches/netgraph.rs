//! The network graph of a cluster with 500 deployments (10 namespaces) and 20,000 observed
//! flows (deployment to deployment, and to 2,000 external addresses, some in named CIDR
//! blocks), a tenth of the deployments with locked network baselines: server time to build the
//! whole cluster's graph and one namespace's, as JSON (the API) and as the console's SVG page;
//! and to generate and simulate NetworkPolicies for the whole cluster.
//!
//! `cargo bench -p rampart-central --bench netgraph`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_central::activity::{Recent, network_ops};
use rampart_central::commit::Committer;
use rampart_central::core::Core;
use rampart_central::model::{Cluster, DeploymentRecord};
use rampart_central::store::{SledBackend, Store, WriteBatch};
use rampart_proto::v1::NetworkFlow;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEPLOYMENTS: usize = 500;
const FLOWS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(SledBackend::open(dir.path()).expect("sled")).expect("store"));
    let mut batch = WriteBatch::default();
    batch
        .put_cluster(&Cluster {
            id: "c".into(),
            name: "prod".into(),
            ..Cluster::default()
        })
        .expect("cluster");
    for i in 0..DEPLOYMENTS {
        let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{i}"), "namespace": format!("team-{}", i % 10), "uid": format!("uid-{i}")},
            "spec": {"template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        batch
            .put_deployment(&DeploymentRecord {
                cluster_id: "c".into(),
                id: format!("uid-{i}"),
                namespace: format!("team-{}", i % 10),
                name: format!("app-{i}"),
                kind: "Deployment".into(),
                object: serde_json::value::to_raw_value(&object).expect("json"),
                content_hash: i as u64,
                updated_unix_ms: 0,
                generation: 1,
                active_alerts: Vec::new(),
                context: None,
            })
            .expect("deployment");
    }
    rampart_central::netgraph::set_cidr_blocks(
        &[rampart_central::netgraph::CidrBlock {
            name: "partner".into(),
            cidr: "203.0.113.0/24".into(),
        }],
        &mut batch,
    )
    .expect("blocks");
    store.apply(&batch).expect("apply");
    let flows: Vec<NetworkFlow> = (0..FLOWS)
        .map(|i| {
            let external = i % 4 == 0;
            NetworkFlow {
                source_deployment_id: format!("uid-{}", i % DEPLOYMENTS),
                // Every flow distinct: 40 peers per deployment, each on its own port.
                destination_deployment_id: if external {
                    String::new()
                } else {
                    format!(
                        "uid-{}",
                        (i % DEPLOYMENTS + 1 + (i / DEPLOYMENTS) * 13) % DEPLOYMENTS
                    )
                },
                external_peer: if external {
                    match i % 3 {
                        0 => format!("203.0.113.{}", i % 250),
                        1 => format!("10.200.{}.{}", i % 200, i % 250),
                        _ => format!("198.51.{}.{}", i % 200, i % 250),
                    }
                } else {
                    String::new()
                },
                port: 8000 + (i / DEPLOYMENTS) as u32,
                protocol: "TCP".into(),
                first_seen_unix_ms: i as i64,
                last_seen_unix_ms: i as i64 + 1000,
                closed: i % 2 == 0,
                process_exe_path: "/app".into(),
            }
        })
        .collect();
    let mut recent = Recent::default();
    for chunk in flows.chunks(1000) {
        let mut batch = WriteBatch::default();
        network_ops(&store, &mut recent, "c", chunk, &[], &mut batch).expect("flows");
        store.apply(&batch).expect("apply");
    }
    store.flush().expect("flush");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (committer, _task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
        let core = Core::new(
            Arc::clone(&store),
            committer,
            rampart_policy::defaults::default_policies(),
        )
        .expect("core");
        // Every tenth deployment's baseline: its first flows, then locked.
        let mut batch = WriteBatch::default();
        for f in flows.iter().take(2_000) {
            core.netbaselines
                .observe(
                    "c",
                    &f.source_deployment_id,
                    rampart_central::netbaselines::Peer {
                        ingress: false,
                        peer: f.destination_deployment_id.clone(),
                        port: f.port,
                        protocol: f.protocol.clone(),
                    },
                    0,
                    &mut batch,
                )
                .expect("observe");
        }
        for i in (0..DEPLOYMENTS).step_by(10) {
            core.netbaselines
                .set_lock("c", &format!("uid-{i}"), true, 1, &mut batch)
                .expect("lock");
        }
        println!("| graph | runs | nodes | edges | anomalous | p50 | p99 |");
        println!("|---|---|---|---|---|---|---|");
        for (what, namespace, svg) in [
            ("whole cluster, JSON", None, false),
            ("namespace team-3, JSON", Some("team-3"), false),
            ("whole cluster, SVG page", None, true),
            ("namespace team-3, SVG page", Some("team-3"), true),
        ] {
            let mut times = Vec::new();
            let mut shape = (0, 0, 0);
            for _ in 0..20 {
                let t = Instant::now();
                let graph = rampart_central::netgraph::build(
                    &core.store,
                    "c",
                    namespace,
                    |d, peer, port, protocol, ingress| {
                        let as_peer = |id: String| rampart_central::netbaselines::Peer {
                            ingress,
                            peer: id,
                            port,
                            protocol: protocol.to_string(),
                        };
                        core.netbaselines.is_anomalous(
                            "c",
                            d,
                            &as_peer(peer.id.clone()),
                            rampart_central::netgraph::broader(peer)
                                .map(as_peer)
                                .as_ref(),
                        )
                    },
                )
                .expect("graph");
                let body = if svg {
                    rampart_central::ui::network_svg(&graph, "c").into_bytes()
                } else {
                    serde_json::to_vec(&graph).expect("json")
                };
                times.push(t.elapsed());
                shape = (
                    graph.nodes.len(),
                    graph.edges.len(),
                    graph.edges.iter().filter(|e| e.anomalous).count(),
                );
                std::hint::black_box(body);
            }
            times.sort();
            println!(
                "| {what} | 20 | {} | {} | {} | {:.1} ms | {:.1} ms |",
                shape.0,
                shape.1,
                shape.2,
                percentile(&times, 0.5).as_secs_f64() * 1000.0,
                percentile(&times, 0.99).as_secs_f64() * 1000.0
            );
        }

        println!();
        println!(
            "| NetworkPolicies | runs | policies | flows simulated | blocked after | p50 | p99 |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (what, source) in [
            (
                "from observed flows",
                rampart_central::netpolicies::Source::Flows,
            ),
            (
                "from network baselines",
                rampart_central::netpolicies::Source::Baselines,
            ),
        ] {
            let mut times = Vec::new();
            let mut shape = (0, 0, 0);
            for _ in 0..5 {
                let t = Instant::now();
                let report = rampart_central::netpolicies::generate(
                    &core,
                    "c",
                    None,
                    source,
                    true,
                    "2026-12-06T00:00:00Z".into(),
                )
                .expect("generate");
                times.push(t.elapsed());
                shape = (
                    report.policies.len(),
                    report.flows,
                    report.blocked_after.len(),
                );
                std::hint::black_box(report);
            }
            times.sort();
            println!(
                "| {what} | 5 | {} | {} | {} | {:.0} ms | {:.0} ms |",
                shape.0,
                shape.1,
                shape.2,
                percentile(&times, 0.5).as_secs_f64() * 1000.0,
                percentile(&times, 0.99).as_secs_f64() * 1000.0
            );
        }
    });
}
