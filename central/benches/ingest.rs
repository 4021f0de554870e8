//! Durable ingest rate: deployment records through the group committer (4 concurrent writers,
//! each waiting for durability before it counts), printed beside a raw sled loop that inserts the
//! same records and flushes every 1,000 — the ceiling the committer should approach.
//! Then the whole path: one Sensor stream over mTLS on loopback (tonic + rustls), every event
//! stored durably before Central acknowledges it — once with resource events (pods: stored, no
//! detection) and once with workloads that each open an alert (detection in the same batch).
//! Run: `cargo bench -p rampart-central --bench ingest`.
use std::sync::Arc;
use std::time::Instant;

use rampart_central::commit::Committer;
use rampart_central::model::DeploymentRecord;
use rampart_central::store::{SledBackend, Store, WriteBatch};

/// The allocator the `rampart` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 200_000;

fn record(i: usize) -> DeploymentRecord {
    DeploymentRecord {
        cluster_id: format!("cluster-{}", i % 10),
        id: format!("{i:08}-0000-4000-8000-000000000000"),
        namespace: format!("team-{}", i % 40),
        name: format!("app-{i}"),
        kind: "Deployment".into(),
        object: serde_json::value::to_raw_value(&serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("app-{i}"), "namespace": "shop", "labels": {"app": "web"}}, "spec": {"replicas": 3}})).expect("json"),
        content_hash: i as u64,
        updated_unix_ms: 1_700_000_000_000,
        generation: 1,
        active_alerts: Vec::new(),
        context: None,
    }
}

fn raw_sled(dir: &std::path::Path, values: &[(Vec<u8>, Vec<u8>)]) -> f64 {
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let tree = db.open_tree("deployments").expect("tree");
    let start = Instant::now();
    for (n, (k, v)) in values.iter().enumerate() {
        tree.insert(k.as_slice(), v.as_slice()).expect("insert");
        if n % 1000 == 999 {
            db.flush().expect("flush");
        }
    }
    db.flush().expect("flush");
    values.len() as f64 / start.elapsed().as_secs_f64()
}

const STREAM_EVENTS: u64 = 100_000;

/// What the bench stream carries.
#[derive(Clone, Copy)]
enum Events {
    /// Deployments: each is normalized, evaluated against the default policies and opens an
    /// alert, written in the same durable batch (the worst case: every event is a new violation).
    Workloads,
    /// Pods: stored durably, no detection (most of a cluster's event volume).
    Resources,
}

/// Events/s of one mTLS Sensor stream, from the first event to the ack of the last.
async fn stream_ingest(events: u64, carrying: Events) -> f64 {
    use rampart_central::pki::{CertificateAuthority, Revocations, Service};
    use rampart_central::server::SensorListener;
    use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
    use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
    use rampart_proto::v1::sensor_service_client::SensorServiceClient;
    use rampart_proto::v1::{
        MsgFromSensor, ResourceAction, ResourceEvent, ResourceKind, SensorHello,
    };
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store"));
    let (committer, _task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::generate(now).expect("ca");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let core = rampart_central::core::Core::new(
        store,
        committer,
        rampart_policy::defaults::default_policies(),
    )
    .expect("core");
    let (addr, _server) = SensorListener {
        core,
        revocations: Revocations::default(),
        server_names: vec!["localhost".into()],
    }
    .start(&ca, listener)
    .expect("listener");
    let bundle = ca.issue_bundle("bench", now).expect("bundle");
    let sensor = bundle
        .certs
        .iter()
        .find(|c| c.service == Service::Sensor)
        .expect("sensor");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&bundle.ca_pem))
        .identity(Identity::from_pem(&sensor.cert_pem, &sensor.key_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let mut client = SensorServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(8192);
    tx.send(MsgFromSensor {
        seq: 0,
        msg: Some(FromSensor::Hello(SensorHello {
            sensor_version: "bench".into(),
            cluster_name: "bench".into(),
            ..SensorHello::default()
        })),
    })
    .await
    .expect("hello");
    let mut inbound = client
        .communicate(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    // ~325-byte objects, as in the ceiling measured for one tonic mTLS stream.
    let (kind, api) = match carrying {
        Events::Workloads => (ResourceKind::Deployment, ("apps/v1", "Deployment")),
        Events::Resources => (ResourceKind::Pod, ("v1", "Pod")),
    };
    let object = move |i: u64| {
        format!(r#"{{"apiVersion":"{}","kind":"{}","metadata":{{"name":"app-{i}","namespace":"team-{}","uid":"{i:08}-0000-4000-8000-000000000000","labels":{{"app":"app-{i}"}}}},"spec":{{"replicas":2}}}}"#, api.0, api.1, i % 40)
            .into_bytes()
    };
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 1..=events {
            let msg = MsgFromSensor {
                seq: i,
                msg: Some(FromSensor::Event(ResourceEvent {
                    action: ResourceAction::Sync as i32,
                    kind: kind as i32,
                    id: format!("{i:08}-0000-4000-8000-000000000000"),
                    namespace: format!("team-{}", i % 40),
                    name: format!("app-{i}"),
                    object_json: object(i),
                    content_hash: i,
                    context: None,
                })),
            };
            if tx.send(msg).await.is_err() {
                break;
            }
        }
        tx
    });
    loop {
        match inbound
            .message()
            .await
            .expect("stream ok")
            .and_then(|m| m.msg)
        {
            Some(ToSensor::Ack(a)) if a.seq == events => break,
            Some(_) => {}
            None => panic!("stream closed before the last ack"),
        }
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    drop(sender.await);
    rate
}

fn main() {
    // `INGEST_STREAM_ONLY=1` runs only the mTLS stream of workloads (for profiling it alone).
    if std::env::var_os("INGEST_STREAM_ONLY").is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let rate = runtime.block_on(stream_ingest(STREAM_EVENTS, Events::Workloads));
        println!("one Sensor stream over mTLS, durable:  {rate:>9.0} events/s");
        return;
    }
    let records: Vec<DeploymentRecord> = (0..RECORDS).map(record).collect();
    let raw_values: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                format!("{}\0{}", r.cluster_id, r.id).into_bytes(),
                serde_json::to_vec(r).expect("json"),
            )
        })
        .collect();
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_sled(raw_dir.path(), &raw_values);

    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let records = Arc::new(records);
    let committed = runtime.block_on(async {
        let (committer, _task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
        let start = Instant::now();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let committer = committer.clone();
                let records = Arc::clone(&records);
                tokio::spawn(async move {
                    let mut pending = std::collections::VecDeque::new();
                    for r in records.iter().skip(w).step_by(4) {
                        let mut batch = WriteBatch::default();
                        batch.put_deployment(r).expect("put");
                        pending.push_back(committer.submit(batch).await.expect("submit"));
                        // A stream keeps a bounded window of unacknowledged messages.
                        if pending.len() >= 1024 {
                            pending
                                .pop_front()
                                .expect("non-empty")
                                .wait()
                                .await
                                .expect("durable");
                        }
                    }
                    for p in pending {
                        p.wait().await.expect("durable");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        RECORDS as f64 / start.elapsed().as_secs_f64()
    });
    let resources = runtime.block_on(stream_ingest(STREAM_EVENTS, Events::Resources));
    let workloads = runtime.block_on(stream_ingest(STREAM_EVENTS, Events::Workloads));
    println!("raw sled, flush every 1,000 inserts: {raw:>9.0} records/s");
    println!(
        "one Sensor stream over mTLS, durable, resource events:  {resources:>9.0} events/s ({:.0} % of raw)",
        100.0 * resources / raw
    );
    println!(
        "one Sensor stream over mTLS, durable, workloads each opening an alert:  {workloads:>9.0} events/s ({:.0} % of raw)",
        100.0 * workloads / raw
    );
    println!(
        "group committer, durable, 4 writers:  {committed:>9.0} records/s ({:.0} % of raw)",
        100.0 * committed / raw
    );
}
