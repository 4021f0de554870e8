//! Central's store: a narrow key-value [`Backend`] (sled today; PostgreSQL can implement the same
//! five operations) under a typed [`Store`] that owns schema versions and migrations.
//!
//! Durability model: [`Backend::apply`] is atomic; [`Backend::flush`] is the durability point.
//! Ingest applies many batches and flushes once per group before acknowledging them all — a flush
//! per message would cap ingest at the disk's sync rate.

mod sled_backend;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use sled_backend::SledBackend;

use crate::model::{Cluster, DeploymentRecord, ResourceRecord};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("corrupt record {table}/{key}: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "store schema version {found} is newer than this Central understands ({supported}); upgrade Central"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("invalid key {0:?}: keys must be non-empty and must not contain NUL")]
    InvalidKey(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The tables Central keeps. Keys are strings; values are JSON records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Meta,
    Clusters,
    /// Key: `cluster_id \0 deployment_id`, so one cluster's deployments are one prefix.
    Deployments,
    Policies,
    Alerts,
    Pki,
    /// Key: `cluster_id \0 kind \0 id`.
    Resources,
    /// The admin password hash and API tokens (hashes only).
    Auth,
    /// What the Collectors saw: processes, listening endpoints and network flows per cluster.
    Activity,
    /// Scanned images by manifest digest: what the scan read (facts and packages), never the
    /// matched vulnerabilities, which follow the vulnerability data.
    Images,
    /// Process baselines (`proc \0 cluster \0 deployment \0 container`) and network baselines
    /// (`net \0 cluster \0 deployment`).
    Baselines,
}

impl Table {
    pub const ALL: [Table; 11] = [
        Table::Meta,
        Table::Clusters,
        Table::Deployments,
        Table::Policies,
        Table::Alerts,
        Table::Pki,
        Table::Resources,
        Table::Auth,
        Table::Activity,
        Table::Images,
        Table::Baselines,
    ];

    /// Position in [`Table::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Clusters => "clusters",
            Table::Deployments => "deployments",
            Table::Policies => "policies",
            Table::Alerts => "alerts",
            Table::Pki => "pki",
            Table::Resources => "resources",
            Table::Auth => "auth",
            Table::Activity => "activity",
            Table::Images => "images",
            Table::Baselines => "baselines",
        }
    }
}

/// Writes applied together or not at all.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
    /// Deployments (`cluster_id \0 deployment_id`) whose derived views this batch changes: the
    /// record itself, or one of its alerts. Readers of [`Store::take_touched`] see them once the
    /// batch is applied.
    pub touched: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Op {
    Put {
        table: Table,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: String,
    },
}

impl Op {
    pub fn table(&self) -> Table {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } => *table,
        }
    }
}

impl WriteBatch {
    pub fn put<T: Serialize>(&mut self, table: Table, key: &str, value: &T) -> Result<()> {
        check_key(key)?;
        self.put_unchecked(table, key.to_string(), value)
    }

    /// Puts under a key joined from parts with `\0` (so one prefix selects a group); a part
    /// holding `\0` itself is refused.
    pub fn put_parts<T: Serialize>(
        &mut self,
        table: Table,
        parts: &[&str],
        value: &T,
    ) -> Result<()> {
        if let Some(bad) = parts.iter().find(|p| p.contains('\0')) {
            return Err(Error::InvalidKey((*bad).to_string()));
        }
        self.put_unchecked(table, parts.join("\0"), value)
    }

    /// Deletes the key joined from parts with `\0` (see [`WriteBatch::put_parts`]).
    pub fn delete_parts(&mut self, table: Table, parts: &[&str]) -> Result<()> {
        if let Some(bad) = parts.iter().find(|p| p.contains('\0')) {
            return Err(Error::InvalidKey((*bad).to_string()));
        }
        self.ops.push(Op::Delete {
            table,
            key: parts.join("\0"),
        });
        Ok(())
    }

    pub fn delete(&mut self, table: Table, key: &str) -> Result<()> {
        check_key(key)?;
        self.ops.push(Op::Delete {
            table,
            key: key.to_string(),
        });
        Ok(())
    }

    /// For composite keys whose parts were checked by the caller.
    fn put_unchecked<T: Serialize>(&mut self, table: Table, key: String, value: &T) -> Result<()> {
        let value = serde_json::to_vec(value)
            .map_err(|e| Error::Backend(format!("serialize {}: {e}", table.name())))?;
        self.ops.push(Op::Put { table, key, value });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.touched.is_empty()
    }

    /// Marks a deployment's derived views (its risk) as changed without writing its record (an
    /// alert of it changed, or the image data it runs on).
    pub fn touch_deployment(&mut self, cluster_id: &str, id: &str) {
        self.touched.push(deployment_key(cluster_id, id));
    }

    /// Adds another batch's writes after this one's.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
        self.touched.extend(other.touched);
    }

    /// Drops every write that a later write to the same key overrides (same result, fewer
    /// writes): a merged group rewrites each cluster's position once, not once per message.
    pub fn compact(&mut self) {
        let mut keep = vec![false; self.ops.len()];
        {
            let mut seen = std::collections::HashSet::with_capacity(self.ops.len());
            for (i, op) in self.ops.iter().enumerate().rev() {
                let (table, key) = match op {
                    Op::Put { table, key, .. } | Op::Delete { table, key } => {
                        (*table, key.as_str())
                    }
                };
                keep[i] = seen.insert((table, key));
            }
        }
        let mut keep = keep.into_iter();
        self.ops.retain(|_| keep.next().unwrap_or(true));
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('\0') {
        return Err(Error::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// The storage operations Central needs, and no more.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order, after `after`.
    fn scan(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Applies the batch atomically (not yet durably).
    fn apply(&self, batch: &WriteBatch) -> Result<()>;
    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<()>;
}

/// Typed access over a backend.
#[derive(Debug)]
pub struct Store<B: Backend> {
    backend: B,
    touched: std::sync::Mutex<Touched>,
}

/// Deployments changed since the last [`Store::take_touched`]; past [`Touched::LIMIT`] keys only
/// "everything" is remembered, so the set stays bounded whatever the write rate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// More than `LIMIT` deployments changed: treat every one as changed.
    pub everything: bool,
    /// `cluster_id \0 deployment_id` keys.
    pub keys: std::collections::HashSet<String>,
}

impl Touched {
    pub const LIMIT: usize = 10_000;

    fn add(&mut self, keys: &[String]) {
        if self.everything {
            return;
        }
        self.keys.extend(keys.iter().cloned());
        if self.keys.len() > Self::LIMIT {
            self.everything = true;
            self.keys = Default::default();
        }
    }

    /// The `(cluster_id, deployment_id)` pairs.
    pub fn deployments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys.iter().filter_map(|k| k.split_once('\0'))
    }
}

/// A schema migration: from version `to - 1` to `to`.
struct Migration {
    to: u32,
    run: fn(&dyn Backend) -> Result<()>,
}

const MIGRATIONS: &[Migration] = &[
    // Version 1 is the first schema: nothing to transform, only the version to record.
    Migration {
        to: 1,
        run: |_| Ok(()),
    },
    Migration {
        to: 2,
        run: fold_active_alert_index,
    },
];

/// Version 2: the index `active/<cluster>\0<deployment>\0<policy>` → alert id (one entry per
/// active alert) moves into the deployment record's `activeAlerts`, one write per event instead of
/// one per alert.
fn fold_active_alert_index(backend: &dyn Backend) -> Result<()> {
    const PREFIX: &str = "active/";
    loop {
        // Each round removes the entries it folded, so the scan starts over from the prefix.
        let page = backend.scan(Table::Alerts, PREFIX, None, 1000)?;
        if page.is_empty() {
            return Ok(());
        }
        let mut folded: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut batch = WriteBatch::default();
        for (key, value) in page {
            let mut parts = key[PREFIX.len()..].split('\0');
            if let (Some(cluster), Some(deployment), Ok(id)) = (
                parts.next(),
                parts.next(),
                serde_json::from_slice::<String>(&value),
            ) {
                folded
                    .entry(deployment_key(cluster, deployment))
                    .or_default()
                    .push(id);
            }
            batch.ops.push(Op::Delete {
                table: Table::Alerts,
                key,
            });
        }
        for (key, ids) in folded {
            let Some(bytes) = backend.get(Table::Deployments, &key)? else {
                continue; // The deployment is gone; its index entries go with it.
            };
            let mut record: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
                    table: Table::Deployments.name(),
                    key: key.clone(),
                    source,
                })?;
            if let Some(fields) = record.as_object_mut() {
                let list = fields
                    .entry("activeAlerts")
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                if let Some(list) = list.as_array_mut() {
                    list.extend(ids.into_iter().map(serde_json::Value::String));
                }
            }
            batch.put_unchecked(Table::Deployments, key, &record)?;
        }
        backend.apply(&batch)?;
    }
}

fn deployment_key(cluster_id: &str, deployment_id: &str) -> String {
    format!("{cluster_id}\0{deployment_id}")
}

impl<B: Backend> Store<B> {
    /// Opens the store and migrates it to [`SCHEMA_VERSION`]; refuses a newer schema.
    pub fn open(backend: B) -> Result<Store<B>> {
        let store = Store {
            backend,
            touched: Default::default(),
        };
        let found: u32 = store.get(Table::Meta, "schema_version")?.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(Error::TooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.to > found) {
            (m.run)(&store.backend)?;
            let mut batch = WriteBatch::default();
            batch.put(Table::Meta, "schema_version", &m.to)?;
            store.backend.apply(&batch)?;
        }
        store.backend.flush()?;
        Ok(store)
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn schema_version(&self) -> Result<u32> {
        Ok(self.get(Table::Meta, "schema_version")?.unwrap_or(0))
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        match self.backend.get(table, key)? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| Error::Corrupt {
                        table: table.name(),
                        key: key.to_string(),
                        source,
                    })
            }
        }
    }

    fn scan_typed<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>> {
        self.backend
            .scan(table, prefix, after, limit)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|source| Error::Corrupt {
                        table: table.name(),
                        key: k,
                        source,
                    })
            })
            .collect()
    }

    /// A record of any table by key.
    pub fn get_record<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        self.get(table, key)
    }

    /// Every record of a table under a key prefix (for small tables such as `pki`).
    pub fn scan_records<T: DeserializeOwned>(&self, table: Table, prefix: &str) -> Result<Vec<T>> {
        Ok(self
            .scan_typed(table, prefix, None, usize::MAX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    pub fn apply(&self, batch: &WriteBatch) -> Result<()> {
        self.backend.apply(batch)?;
        if !batch.touched.is_empty() {
            self.touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .add(&batch.touched);
        }
        Ok(())
    }

    /// The deployments applied batches touched since the last call (for the risk ranking, the
    /// one reader), and forgets them.
    pub fn take_touched(&self) -> Touched {
        std::mem::take(
            &mut *self
                .touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn flush(&self) -> Result<()> {
        self.backend.flush()
    }

    pub fn cluster(&self, id: &str) -> Result<Option<Cluster>> {
        self.get(Table::Clusters, id)
    }

    pub fn clusters(&self) -> Result<Vec<Cluster>> {
        Ok(self
            .scan_typed(Table::Clusters, "", None, usize::MAX)?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    pub fn deployment(&self, cluster_id: &str, id: &str) -> Result<Option<DeploymentRecord>> {
        self.get(Table::Deployments, &deployment_key(cluster_id, id))
    }

    /// One page of a cluster's deployments, in id order, after the id `after`.
    pub fn deployments(
        &self,
        cluster_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentRecord>> {
        let prefix = format!("{cluster_id}\0");
        let after = after.map(|a| deployment_key(cluster_id, a));
        Ok(self
            .scan_typed(Table::Deployments, &prefix, after.as_deref(), limit)?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    pub fn resource(
        &self,
        cluster_id: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<ResourceRecord>> {
        self.get(Table::Resources, &resource_key(cluster_id, kind, id))
    }

    /// Visits every raw entry under a prefix, page by page: memory stays bounded by the page,
    /// not by the fleet.
    pub fn for_each_raw(
        &self,
        table: Table,
        prefix: &str,
        mut f: impl FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let page = self.backend.scan(table, prefix, after.as_deref(), 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            let last = last.clone();
            for (k, v) in &page {
                f(k, v)?;
            }
            after = Some(last);
        }
    }

    /// Visits every record under a prefix, page by page (memory bounded by the page).
    pub fn for_each_record<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
        mut f: impl FnMut(&str, T) -> Result<()>,
    ) -> Result<()> {
        self.for_each_raw(table, prefix, |k, v| {
            let t = serde_json::from_slice(v).map_err(|source| Error::Corrupt {
                table: table.name(),
                key: k.to_string(),
                source,
            })?;
            f(k, t)
        })
    }

    /// Visits every stored record of a cluster, deployments and other resources. `f` gets
    /// (table, key, generation).
    pub fn for_each_cluster_object(
        &self,
        cluster_id: &str,
        mut f: impl FnMut(Table, &str, u64),
    ) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Generation {
            #[serde(default)]
            generation: u64,
        }
        let prefix = format!("{cluster_id}\0");
        for table in [Table::Deployments, Table::Resources] {
            self.for_each_raw(table, &prefix, |k, v| {
                let g: Generation = serde_json::from_slice(v).map_err(|source| Error::Corrupt {
                    table: table.name(),
                    key: k.to_string(),
                    source,
                })?;
                f(table, k, g.generation);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The ids of a deployment's active alerts, as its record lists them (without decoding the
    /// object it carries).
    pub fn deployment_alert_ids(&self, cluster_id: &str, id: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Refs {
            #[serde(default)]
            active_alerts: Vec<String>,
        }
        Ok(self
            .get::<Refs>(Table::Deployments, &deployment_key(cluster_id, id))?
            .map(|r| r.active_alerts)
            .unwrap_or_default())
    }

    /// The ids of every deployment stored for a cluster.
    pub fn for_each_deployment_id(&self, cluster_id: &str, mut f: impl FnMut(&str)) -> Result<()> {
        let prefix = format!("{cluster_id}\0");
        self.for_each_raw(Table::Deployments, &prefix, |k, _| {
            f(&k[prefix.len()..]);
            Ok(())
        })
    }
}

fn resource_key(cluster_id: &str, kind: &str, id: &str) -> String {
    format!("{cluster_id}\0{kind}\0{id}")
}

/// Writes for deployments, so callers never build keys by hand.
impl WriteBatch {
    pub fn put_resource(&mut self, r: &ResourceRecord) -> Result<()> {
        check_key(&r.cluster_id)?;
        check_key(&r.kind)?;
        check_key(&r.id)?;
        self.put_unchecked(
            Table::Resources,
            resource_key(&r.cluster_id, &r.kind, &r.id),
            r,
        )
    }

    pub fn delete_resource(&mut self, cluster_id: &str, kind: &str, id: &str) -> Result<()> {
        check_key(cluster_id)?;
        check_key(kind)?;
        check_key(id)?;
        self.ops.push(Op::Delete {
            table: Table::Resources,
            key: resource_key(cluster_id, kind, id),
        });
        Ok(())
    }

    pub fn put_deployment(&mut self, d: &DeploymentRecord) -> Result<()> {
        check_key(&d.cluster_id)?;
        check_key(&d.id)?;
        self.touch_deployment(&d.cluster_id, &d.id);
        self.put_unchecked(Table::Deployments, deployment_key(&d.cluster_id, &d.id), d)
    }

    pub fn delete_deployment(&mut self, cluster_id: &str, id: &str) -> Result<()> {
        check_key(cluster_id)?;
        check_key(id)?;
        self.touch_deployment(cluster_id, id);
        self.ops.push(Op::Delete {
            table: Table::Deployments,
            key: deployment_key(cluster_id, id),
        });
        Ok(())
    }

    pub fn put_cluster(&mut self, c: &Cluster) -> Result<()> {
        self.put(Table::Clusters, &c.id, c)
    }
}

#[cfg(test)]
mod tests;
