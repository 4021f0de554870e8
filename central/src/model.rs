//! What Central stores, as plain serde records (JSON in the store, so a record is readable with
//! any tool and a future PostgreSQL backend can keep it as `jsonb`).

use serde::{Deserialize, Serialize};

/// Now, in milliseconds since the Unix epoch (how every record stores time).
pub fn now_unix_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionState {
    /// No Sensor has connected yet.
    #[default]
    Never,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub created_unix_ms: i64,
    pub last_contact_unix_ms: Option<i64>,
    pub sensor_version: String,
    pub connection: ConnectionState,
    /// Highest Sensor sequence number stored durably.
    pub acked_seq: u64,
    /// Runtime events the Sensor reported dropping (its bounded buffer was full).
    pub dropped_events: u64,
    /// Runtime events the Sensor held for Central at its last health report.
    #[serde(default)]
    pub buffered_events: u64,
    /// How the cluster's collectors see processes (`proc-connector`, `proc-polling`), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub collector_mode: String,
    #[serde(default)]
    pub last_health_unix_ms: Option<i64>,
    /// Incremented at every Sensor hello; objects not refreshed in the current generation are
    /// removed when the Sensor's sync marker arrives.
    pub sync_generation: u64,
}

/// A workload as the Sensor last reported it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    pub cluster_id: String,
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    /// The Kubernetes object as the Sensor sent it (validated JSON, stored byte for byte: no
    /// re-encoding on the ingest path).
    pub object: Box<serde_json::value::RawValue>,
    pub content_hash: u64,
    pub updated_unix_ms: i64,
    /// The cluster's sync generation when the Sensor last sent (or confirmed) this object.
    #[serde(default)]
    pub generation: u64,
    /// Ids of the deployment's deploy-time alerts that were ACTIVE when this record was written
    /// (kept here rather than in an index of their own: the record is rewritten with every event
    /// anyway). A user may have resolved one since; readers check each alert's state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_alerts: Vec<String>,
    /// What the Sensor derived from the rest of the cluster (exposure, RBAC, NetworkPolicies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<rampart_policy::ClusterContext>,
}

impl DeploymentRecord {
    /// The workload as the engine sees it, with the cluster context the Sensor sent.
    pub fn normalize(&self) -> Option<rampart_policy::Deployment> {
        let mut d = rampart_policy::detect::Detector::normalize(
            self.object_value().ok()?,
            &self.namespace,
        )?;
        d.cluster = self.context.clone();
        Some(d)
    }

    /// The object as a JSON value.
    pub fn object_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(self.object.get())
    }
}

/// Any other cluster object the Sensor reports (pods, namespaces, services, RBAC, nodes...).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    pub cluster_id: String,
    /// `Pod`, `Namespace`, `NetworkPolicy`, ...
    pub kind: String,
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub object: Box<serde_json::value::RawValue>,
    pub content_hash: u64,
    #[serde(default)]
    pub generation: u64,
}

impl ResourceRecord {
    /// The object as a JSON value.
    pub fn object_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(self.object.get())
    }
}
