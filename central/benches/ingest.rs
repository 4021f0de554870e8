//! Durable ingest rate: deployment records through the group committer (4 concurrent writers,
//! each waiting for durability before it counts), printed beside a raw sled loop that inserts the
//! same records and flushes every 1,000 — the ceiling the committer should approach.
//! Run: `cargo bench -p rampart-central --bench ingest`.
use std::sync::Arc;
use std::time::Instant;

use rampart_central::commit::Committer;
use rampart_central::model::DeploymentRecord;
use rampart_central::store::{SledBackend, Store, WriteBatch};

const RECORDS: usize = 200_000;

fn record(i: usize) -> DeploymentRecord {
    DeploymentRecord {
        cluster_id: format!("cluster-{}", i % 10),
        id: format!("{i:08}-0000-4000-8000-000000000000"),
        namespace: format!("team-{}", i % 40),
        name: format!("app-{i}"),
        kind: "Deployment".into(),
        object: serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("app-{i}"), "namespace": "shop", "labels": {"app": "web"}}, "spec": {"replicas": 3}}),
        content_hash: i as u64,
        updated_unix_ms: 1_700_000_000_000,
        generation: 1,
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

fn main() {
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
    println!("raw sled, flush every 1,000 inserts: {raw:>9.0} records/s");
    println!(
        "group committer, durable, 4 writers:  {committed:>9.0} records/s ({:.0} % of raw)",
        100.0 * committed / raw
    );
}
