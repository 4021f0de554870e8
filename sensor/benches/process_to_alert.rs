//! Process → alert, end to end: a Collector's process event (a shell whose ancestor is Java)
//! goes over mTLS gRPC to the Sensor, which maps the container to its pod, evaluates every
//! default runtime policy and sends the alert to a real Central (sled store, group commit);
//! measured until the violation is in Central's store.
//!
//! The Collector is played by this bench speaking the Collector protocol (`CollectorService`),
//! so a sample starts when the event is sent, not when a kernel notices an exec. Each sample
//! carries distinct arguments (the Sensor suppresses repeats) and waits for its violation
//! before the next; a second run keeps 2,000 benign process events per second flowing beside
//! the samples. Target (runtime issue): p99 ≤ 500 ms.
//!
//! `cargo bench -p rampart-sensor --bench process_to_alert`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_central::pki::Service;
use rampart_proto::collector::collector_message::Msg;
use rampart_proto::collector::collector_service_client::CollectorServiceClient;
use rampart_proto::collector::{CollectorHello, CollectorMessage, ProcessEvent};
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[path = "../tests/common/mod.rs"]
mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: usize = 300;
const BACKGROUND_PER_SECOND: u64 = 2_000;
const CONTAINER: &str = "5f1c0de5a11ce0ffee5f1c0de5a11ce0ffee5f1c0de5a11ce0ffee5f1c0de5a1";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn shell(i: u64, args: String, lineage: Vec<String>, exe: &str) -> Msg {
    Msg::Process(ProcessEvent {
        container_id: CONTAINER.into(),
        pod_uid: String::new(),
        pid: 1000 + (i % 30_000) as u32,
        ppid: 1,
        exe_path: exe.into(),
        name: exe.rsplit('/').next().unwrap_or(exe).into(),
        args,
        uid: 0,
        gid: 0,
        lineage,
        time_unix_ms: 0,
    })
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let setup = common::setup().await;
    let (api, central, bundle) = (&setup.api, &setup.central, &setup.bundle);
    let cert = |s: Service| setup.cert(s);
    api.apply(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "billing", "namespace": "shop", "labels": {"app": "billing"}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/shop/billing:1.0"}]},
        "status": {"phase": "Running", "podIP": "10.1.2.9", "podIPs": [{"ip": "10.1.2.9"}],
            "containerStatuses": [{"name": "app", "containerID": format!("containerd://{CONTAINER}"),
                "image": "registry.example/shop/billing:1.0"}]}}))
    .expect("pod");
    let sensor =
        rampart_sensor::start(setup.sensor_config(Some("127.0.0.1:0".parse().expect("addr"))))
            .await
            .expect("sensor");

    // The Collector's stream.
    let collector = cert(Service::Collector);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&bundle.ca_pem))
        .identity(Identity::from_pem(&collector.cert_pem, &collector.key_pem))
        .domain_name("sensor.rampart.svc");
    let channel = Channel::from_shared(format!(
        "https://{}",
        sensor.collector_addr.expect("collector endpoint")
    ))
    .expect("endpoint")
    .tls_config(tls)
    .expect("tls")
    .connect()
    .await
    .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel::<CollectorMessage>(4096);
    let seq = Arc::new(AtomicU64::new(0));
    tx.send(CollectorMessage {
        seq: 0,
        msg: Some(Msg::Hello(CollectorHello {
            node_name: "node-1".into(),
            collector_version: "bench".into(),
            mode: "proc-connector".into(),
        })),
    })
    .await
    .expect("hello");
    let mut acks = CollectorServiceClient::new(channel)
        .push(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("push")
        .into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = acks.message().await {} });
    let send = {
        let tx = tx.clone();
        let seq = Arc::clone(&seq);
        move |msg: Msg| {
            let tx = tx.clone();
            let seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                tx.send(CollectorMessage {
                    seq,
                    msg: Some(msg),
                })
                .await
                .expect("send");
            }
        }
    };
    let java = vec!["/usr/bin/java".to_string()];
    let store = Arc::clone(&central.core.store);
    let find = |marker: &str| {
        rampart_central::alerts::persist::all(&store)
            .expect("alerts")
            .into_iter()
            .find(|a| a.violations.iter().any(|v| v.contains(marker)))
    };
    // Warm up: the Sensor has synced the pod and holds the policies once a first alert lands.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alert_id = loop {
        send(shell(0, "-c warmup".into(), java.clone(), "/bin/sh")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(a) = find("-c warmup") {
            break a.id;
        }
        assert!(Instant::now() < deadline, "no alert after 60 s");
    };
    let alert_has = |marker: &str| {
        rampart_central::alerts::persist::get(&store, &alert_id)
            .expect("alert")
            .is_some_and(|a| a.violations.iter().any(|v| v.contains(marker)))
    };

    println!("| load beside the samples | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let mut n = 0u64;
    for background in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let noise = background.then(|| {
            let stop = Arc::clone(&stop);
            let send = send.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    for _ in 0..BACKGROUND_PER_SECOND / 100 {
                        i += 1;
                        // Benign: the application's own worker, distinct arguments.
                        send(shell(
                            i,
                            format!("--worker {i}"),
                            Vec::new(),
                            "/usr/local/bin/billing",
                        ))
                        .await;
                    }
                }
            })
        });
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            n += 1;
            let marker = format!("-c id-{n}'");
            let t = Instant::now();
            send(shell(n, format!("-c id-{n}"), java.clone(), "/bin/sh")).await;
            loop {
                if alert_has(&marker) {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "sample {n} never arrived"
                );
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            times.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(task) = noise {
            let _ = task.await;
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {} | {SAMPLES} | {:.1} ms | {:.1} ms | {:.1} ms |",
            if background {
                "2,000 benign process events/s"
            } else {
                "none"
            },
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().expect("samples"))
        );
    }
    drop(sensor);
}
