//! What the Collectors saw, as Central keeps it: processes per deployment and container (one
//! record per executable and arguments, with first and last seen and a count — ACS's process
//! indicators, deduplicated), listening endpoints, and network flows between deployments or to
//! peers outside the cluster (one record per peer pair, port and protocol).
//!
//! Keys, in [`Table::Activity`]:
//! `p/<cluster>\0<deployment>\0<container>\0<exe>\0<args hash>`,
//! `l/<cluster>\0<deployment>\0<protocol>\0<port>`,
//! `f/<cluster>\0<source>\0<destination or external peer>\0<protocol>\0<port>`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rampart_proto::v1::{ListenEndpoint, NetworkFlow, ProcessIndicator};
use serde::{Deserialize, Serialize};

use crate::store::{Backend, Result, Store, Table, WriteBatch};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRecord {
    pub cluster_id: String,
    pub deployment_id: String,
    pub pod_id: String,
    pub container_name: String,
    pub container_id: String,
    pub exec_file_path: String,
    pub name: String,
    pub args: String,
    pub uid: u32,
    pub gid: u32,
    pub lineage: Vec<String>,
    pub last_pid: u32,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenRecord {
    pub cluster_id: String,
    pub deployment_id: String,
    pub pod_id: String,
    pub container_name: String,
    pub address: String,
    pub port: u32,
    pub protocol: String,
    pub process_exe_path: String,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRecord {
    pub cluster_id: String,
    /// Empty when the source is outside the cluster (then `external_peer` names it).
    pub source_deployment_id: String,
    /// Empty when the destination is outside the cluster.
    pub destination_deployment_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_peer: String,
    pub port: u32,
    pub protocol: String,
    pub process_exe_path: String,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    pub active: bool,
}

fn args_hash(args: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    args.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Key parts must not contain the separator; anything else is allowed.
fn part(s: &str) -> String {
    s.replace('\0', "")
}

pub fn process_key(cluster: &str, p: &ProcessIndicator) -> String {
    format!(
        "p/{}\0{}\0{}\0{}\0{}",
        part(cluster),
        part(&p.deployment_id),
        part(&p.container_name),
        part(&p.exec_file_path),
        args_hash(&p.args)
    )
}

fn listen_key(cluster: &str, l: &ListenEndpoint) -> String {
    format!(
        "l/{}\0{}\0{}\0{}",
        part(cluster),
        part(&l.deployment_id),
        part(&l.protocol),
        l.port
    )
}

fn flow_key(cluster: &str, f: &NetworkFlow) -> String {
    let source = if f.source_deployment_id.is_empty() {
        &f.external_peer
    } else {
        &f.source_deployment_id
    };
    let destination = if f.destination_deployment_id.is_empty() {
        &f.external_peer
    } else {
        &f.destination_deployment_id
    };
    format!(
        "f/{}\0{}\0{}\0{}\0{}",
        part(cluster),
        part(source),
        part(destination),
        part(&f.protocol),
        f.port
    )
}

/// Records written by this stream and not necessarily durable yet, so that read-modify-write
/// sees its own writes (bounded; cleared when full — the store is the truth a moment later).
#[derive(Debug, Default)]
pub struct Recent {
    records: HashMap<String, Vec<u8>>,
}

const RECENT_MAX: usize = 10_000;

impl Recent {
    fn get<T: for<'de> Deserialize<'de>, B: Backend>(
        &self,
        store: &Store<B>,
        key: &str,
    ) -> Result<Option<T>> {
        match self.records.get(key) {
            Some(v) => Ok(serde_json::from_slice(v).ok()),
            None => store.get_record(Table::Activity, key),
        }
    }

    fn put<T: Serialize>(&mut self, batch: &mut WriteBatch, key: String, value: &T) -> Result<()> {
        let parts: Vec<&str> = key.split('\0').collect();
        batch.put_parts(Table::Activity, &parts, value)?;
        if self.records.len() >= RECENT_MAX {
            self.records.clear();
        }
        if let Ok(v) = serde_json::to_vec(value) {
            self.records.insert(key, v);
        }
        Ok(())
    }
}

pub fn process_ops<B: Backend>(
    store: &Store<B>,
    recent: &mut Recent,
    cluster: &str,
    p: &ProcessIndicator,
    batch: &mut WriteBatch,
) -> Result<()> {
    let key = process_key(cluster, p);
    let record = match recent.get::<ProcessRecord, B>(store, &key)? {
        Some(mut r) => {
            r.last_seen_unix_ms = r.last_seen_unix_ms.max(p.time_unix_ms);
            r.first_seen_unix_ms = r.first_seen_unix_ms.min(p.time_unix_ms);
            r.count += 1;
            r.last_pid = p.pid;
            r.pod_id = p.pod_id.clone();
            r.container_id = p.container_id.clone();
            r.lineage = p.lineage.clone();
            r
        }
        None => ProcessRecord {
            cluster_id: cluster.to_string(),
            deployment_id: p.deployment_id.clone(),
            pod_id: p.pod_id.clone(),
            container_name: p.container_name.clone(),
            container_id: p.container_id.clone(),
            exec_file_path: p.exec_file_path.clone(),
            name: p.name.clone(),
            args: p.args.clone(),
            uid: p.uid,
            gid: p.gid,
            lineage: p.lineage.clone(),
            last_pid: p.pid,
            first_seen_unix_ms: p.time_unix_ms,
            last_seen_unix_ms: p.time_unix_ms,
            count: 1,
        },
    };
    recent.put(batch, key, &record)
}

pub fn network_ops<B: Backend>(
    store: &Store<B>,
    recent: &mut Recent,
    cluster: &str,
    flows: &[NetworkFlow],
    listens: &[ListenEndpoint],
    batch: &mut WriteBatch,
) -> Result<()> {
    for l in listens {
        let key = listen_key(cluster, l);
        let first = recent
            .get::<ListenRecord, B>(store, &key)?
            .map_or(l.first_seen_unix_ms, |r| {
                r.first_seen_unix_ms.min(l.first_seen_unix_ms)
            });
        let record = ListenRecord {
            cluster_id: cluster.to_string(),
            deployment_id: l.deployment_id.clone(),
            pod_id: l.pod_id.clone(),
            container_name: l.container_name.clone(),
            address: l.address.clone(),
            port: l.port,
            protocol: l.protocol.clone(),
            process_exe_path: l.process_exe_path.clone(),
            first_seen_unix_ms: first,
            last_seen_unix_ms: l.last_seen_unix_ms,
            active: !l.closed,
        };
        recent.put(batch, key, &record)?;
    }
    for f in flows {
        let key = flow_key(cluster, f);
        let first = recent
            .get::<FlowRecord, B>(store, &key)?
            .map_or(f.first_seen_unix_ms, |r| {
                r.first_seen_unix_ms.min(f.first_seen_unix_ms)
            });
        let record = FlowRecord {
            cluster_id: cluster.to_string(),
            source_deployment_id: f.source_deployment_id.clone(),
            destination_deployment_id: f.destination_deployment_id.clone(),
            external_peer: f.external_peer.clone(),
            port: f.port,
            protocol: f.protocol.clone(),
            process_exe_path: f.process_exe_path.clone(),
            first_seen_unix_ms: first,
            last_seen_unix_ms: f.last_seen_unix_ms,
            active: !f.closed,
        };
        recent.put(batch, key, &record)?;
    }
    Ok(())
}

/// Everything seen of one deployment.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentActivity {
    pub processes: Vec<ProcessRecord>,
    pub listening: Vec<ListenRecord>,
    pub flows: Vec<FlowRecord>,
}

pub fn of_deployment<B: Backend>(
    store: &Store<B>,
    cluster: &str,
    deployment: &str,
) -> Result<DeploymentActivity> {
    let mut a = DeploymentActivity::default();
    let deployment_prefix = format!("{}\0{}\0", part(cluster), part(deployment));
    store.for_each_record::<ProcessRecord>(
        Table::Activity,
        &format!("p/{deployment_prefix}"),
        |_, r| {
            a.processes.push(r);
            Ok(())
        },
    )?;
    store.for_each_record::<ListenRecord>(
        Table::Activity,
        &format!("l/{deployment_prefix}"),
        |_, r| {
            a.listening.push(r);
            Ok(())
        },
    )?;
    store.for_each_record::<FlowRecord>(
        Table::Activity,
        &format!("f/{}\0", part(cluster)),
        |_, r| {
            if r.source_deployment_id == deployment || r.destination_deployment_id == deployment {
                a.flows.push(r);
            }
            Ok(())
        },
    )?;
    Ok(a)
}
