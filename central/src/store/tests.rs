use super::*;
use crate::model::{Cluster, ConnectionState, DeploymentRecord};

fn open(dir: &std::path::Path) -> Store<SledBackend> {
    Store::open(SledBackend::open(dir).expect("backend")).expect("store")
}

fn deployment(cluster: &str, id: &str) -> DeploymentRecord {
    DeploymentRecord {
        cluster_id: cluster.into(),
        id: id.into(),
        namespace: "shop".into(),
        name: format!("web-{id}"),
        kind: "Deployment".into(),
        object: serde_json::value::to_raw_value(
            &serde_json::json!({"kind": "Deployment", "metadata": {"name": format!("web-{id}")}}),
        )
        .expect("json"),
        content_hash: 1,
        updated_unix_ms: 0,
        generation: 0,
        active_alerts: Vec::new(),
        context: None,
    }
}

#[test]
fn a_new_store_records_its_schema_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        open(dir.path()).schema_version().expect("version"),
        SCHEMA_VERSION
    );
}

#[test]
fn a_newer_schema_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let mut batch = WriteBatch::default();
        batch
            .put(Table::Meta, "schema_version", &(SCHEMA_VERSION + 1))
            .expect("put");
        store.apply(&batch).expect("apply");
        store.flush().expect("flush");
    }
    let err = Store::open(SledBackend::open(dir.path()).expect("backend")).expect_err("too new");
    assert!(
        matches!(err, Error::TooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
}

#[test]
fn flushed_batches_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let mut batch = WriteBatch::default();
        batch
            .put_cluster(&Cluster {
                id: "c1".into(),
                name: "prod".into(),
                connection: ConnectionState::Connected,
                acked_seq: 7,
                ..Cluster::default()
            })
            .expect("cluster");
        for i in 0..3 {
            batch
                .put_deployment(&deployment("c1", &format!("d{i}")))
                .expect("deployment");
        }
        store.apply(&batch).expect("apply");
        store.flush().expect("flush");
    }
    let store = open(dir.path());
    assert_eq!(
        store
            .cluster("c1")
            .expect("get")
            .expect("present")
            .acked_seq,
        7
    );
    assert_eq!(store.deployments("c1", None, 10).expect("list").len(), 3);
}

#[test]
fn pages_and_prefixes_do_not_leak_across_clusters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = WriteBatch::default();
    for i in 0..25 {
        batch
            .put_deployment(&deployment("c1", &format!("d{i:02}")))
            .expect("put");
    }
    batch
        .put_deployment(&deployment("c10", "other"))
        .expect("put");
    store.apply(&batch).expect("apply");
    let first = store.deployments("c1", None, 10).expect("page 1");
    let second = store
        .deployments("c1", Some(&first[9].id), 10)
        .expect("page 2");
    let third = store
        .deployments("c1", Some(&second[9].id), 10)
        .expect("page 3");
    assert_eq!((first.len(), second.len(), third.len()), (10, 10, 5));
    assert_eq!(second[0].id, "d10");
    let mut ids = Vec::new();
    store
        .for_each_deployment_id("c1", |id| ids.push(id.to_string()))
        .expect("ids");
    assert_eq!(ids.len(), 25, "c10's deployment is not c1's");
}

#[test]
fn deletes_apply_with_the_rest_of_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = WriteBatch::default();
    batch.put_deployment(&deployment("c1", "a")).expect("put");
    batch.put_deployment(&deployment("c1", "b")).expect("put");
    store.apply(&batch).expect("apply");
    let mut batch = WriteBatch::default();
    batch.delete_deployment("c1", "a").expect("delete");
    batch.put_deployment(&deployment("c1", "c")).expect("put");
    store.apply(&batch).expect("apply");
    let ids: Vec<_> = store
        .deployments("c1", None, 10)
        .expect("list")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, vec!["b", "c"]);
}

#[test]
fn bad_keys_and_corrupt_records_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut batch = WriteBatch::default();
    assert!(matches!(
        batch.delete_deployment("c\0x", "a"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        batch.put(Table::Clusters, "", &1),
        Err(Error::InvalidKey(_))
    ));
    batch.ops.push(Op::Put {
        table: Table::Clusters,
        key: "broken".into(),
        value: b"{not json".to_vec(),
    });
    store.apply(&batch).expect("apply");
    let err = store.cluster("broken").expect_err("corrupt");
    assert!(
        err.to_string()
            .starts_with("corrupt record clusters/broken"),
        "{err}"
    );
}

#[test]
fn compaction_keeps_the_last_write_per_key_in_order() {
    let mut batch = WriteBatch::default();
    batch.put(Table::Clusters, "c1", &1).expect("put");
    batch.put(Table::Policies, "p", &"x").expect("put");
    batch.put(Table::Clusters, "c1", &2).expect("put");
    batch.delete(Table::Policies, "p").expect("delete");
    batch.put(Table::Clusters, "c2", &3).expect("put");
    batch.compact();
    let summary: Vec<String> = batch
        .ops
        .iter()
        .map(|op| match op {
            Op::Put { table, key, value } => format!(
                "put {}/{key}={}",
                table.name(),
                String::from_utf8_lossy(value)
            ),
            Op::Delete { table, key } => format!("delete {}/{key}", table.name()),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "put clusters/c1=2",
            "delete policies/p",
            "put clusters/c2=3"
        ]
    );
}

#[test]
fn version_1_active_alert_index_folds_into_deployment_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // A version-1 store as an older Central left it: one index entry per active alert.
        let backend = SledBackend::open(dir.path()).expect("backend");
        let mut batch = WriteBatch::default();
        batch
            .put(Table::Meta, "schema_version", &1u32)
            .expect("put");
        batch.put_deployment(&deployment("c1", "d1")).expect("put");
        batch.put_deployment(&deployment("c1", "d2")).expect("put");
        for (deployment, policy, id) in [
            ("d1", "p1", "alert-1"),
            ("d1", "p2", "alert-2"),
            ("d2", "p1", "alert-3"),
            ("gone", "p1", "alert-4"),
        ] {
            batch.ops.push(Op::Put {
                table: Table::Alerts,
                key: format!("active/c1\0{deployment}\0{policy}"),
                value: serde_json::to_vec(id).expect("json"),
            });
        }
        backend.apply(&batch).expect("apply");
        backend.flush().expect("flush");
    }
    let store = open(dir.path());
    assert_eq!(store.schema_version().expect("version"), 2);
    assert_eq!(
        store.deployment_alert_ids("c1", "d1").expect("ids"),
        vec!["alert-1", "alert-2"]
    );
    assert_eq!(
        store
            .deployment("c1", "d2")
            .expect("get")
            .expect("kept")
            .active_alerts,
        vec!["alert-3"]
    );
    assert!(
        store
            .backend()
            .scan(Table::Alerts, "active/", None, 10)
            .expect("scan")
            .is_empty(),
        "the old index is gone"
    );
}
