//! The normalized deployment: every workload kind reduced to what policies look at.
//!
//! ```text
//!  Deployment ┐
//!  StatefulSet│
//!  DaemonSet  │                                   ┌ containers (init flagged) ─ image, security
//!  ReplicaSet ├─ Workload ── Deployment::from ──▶ │   context (pod ⊕ container), env, mounts,
//!  RC, Job,   │   (workload.rs)                   │   ports, resources, probes
//!  CronJob,   │                                   └ labels, annotations, host namespaces, service
//!  Pod, DC    ┘                                     account, replicas, selector
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::ImageName;
use crate::quantity::bytes_to_mb;
use crate::text::text;
pub use crate::workload::Workload;
use crate::workload::{self as wire, PodTemplate};

/// The workload kinds Rampart normalizes, with their Kubernetes spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    Pod,
    DeploymentConfig,
}

impl WorkloadKind {
    /// Every kind, kept beside the enum so that a new one is added to both.
    pub const ALL: [WorkloadKind; 9] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
        WorkloadKind::Pod,
        WorkloadKind::DeploymentConfig,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Pod => "Pod",
            WorkloadKind::DeploymentConfig => "DeploymentConfig",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvSource {
    Raw,
    SecretKey,
    ConfigMapKey,
    Field,
    ResourceField,
    Unknown,
}

impl EnvSource {
    /// Every source, kept beside the enum so that a new one is added to both.
    pub const ALL: [EnvSource; 6] = [
        EnvSource::Raw,
        EnvSource::SecretKey,
        EnvSource::ConfigMapKey,
        EnvSource::Field,
        EnvSource::ResourceField,
        EnvSource::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvSource::Raw => "RAW",
            EnvSource::SecretKey => "SECRET_KEY",
            EnvSource::ConfigMapKey => "CONFIG_MAP_KEY",
            EnvSource::Field => "FIELD",
            EnvSource::ResourceField => "RESOURCE_FIELD",
            EnvSource::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvVar {
    pub name: String,
    /// The literal value for RAW, else a description of the reference (`secret/key`).
    pub value: String,
    pub source: EnvSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeccompType {
    Unconfined,
    RuntimeDefault,
    Localhost,
}

impl SeccompType {
    pub fn as_str(self) -> &'static str {
        match self {
            SeccompType::Unconfined => "UNCONFINED",
            SeccompType::RuntimeDefault => "RUNTIME_DEFAULT",
            SeccompType::Localhost => "LOCALHOST",
        }
    }
}

/// The effective security context of one container: pod-level settings merged under
/// container-level ones, as the kubelet does.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct SecurityContext {
    pub privileged: bool,
    /// Effective value; `allow_privilege_escalation_set` tells whether the manifest said so.
    pub allow_privilege_escalation: bool,
    pub allow_privilege_escalation_set: bool,
    pub read_only_root_filesystem: bool,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    /// Upper case, without `CAP_`.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// `None` when neither pod nor container sets one (the runtime then runs unconfined unless
    /// the kubelet's SeccompDefault is on).
    pub seccomp: Option<SeccompType>,
    /// `unconfined`, `runtime/default`, `localhost/<profile>`, or empty when unset.
    pub apparmor: String,
    pub proc_mount: Option<String>,
}

impl SecurityContext {
    /// True when the container cannot run as UID 0.
    pub fn runs_as_non_root(&self) -> bool {
        self.run_as_user
            .map_or(self.run_as_non_root == Some(true), |u| u > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Resources {
    /// Cores; 0 when unset, as ACS reports it.
    pub cpu_request: f64,
    pub cpu_limit: f64,
    /// MB (MiB); 0 when unset.
    pub memory_request: f64,
    pub memory_limit: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mount {
    pub name: String,
    /// Host path, secret name, config map name, claim name... empty when the type has none.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// `HostPath`, `Secret`, `ConfigMap`, `EmptyDir`, `PersistentVolumeClaim`, ...
    pub volume_type: &'static str,
    /// `NONE`, `HOSTTOCONTAINER` or `BIDIRECTIONAL`.
    pub propagation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Port {
    pub name: String,
    pub container_port: i64,
    pub protocol: String,
    /// A `hostPort` binds the port on the node: exposure level HOST.
    pub host_port: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Container {
    pub name: String,
    pub is_init: bool,
    pub image: ImageName,
    pub security_context: SecurityContext,
    pub env: Vec<EnvVar>,
    pub resources: Resources,
    pub mounts: Vec<Mount>,
    pub ports: Vec<Port>,
    pub liveness_probe: bool,
    pub readiness_probe: bool,
    /// What the scanner knows of the image; `None` until a scan is attached (image criteria are
    /// then not evaluable).
    #[serde(skip)]
    pub image_data: Option<std::sync::Arc<crate::image_data::ImageData>>,
}

impl Container {
    /// Names that appear more than once in the container's env list.
    pub fn duplicate_env_names(&self) -> Vec<&str> {
        let mut dups = Vec::new();
        // Short lists (nearly all) are compared pairwise, allocating nothing without a duplicate.
        if self.env.len() <= 32 {
            for (i, e) in self.env.iter().enumerate() {
                let name = e.name.as_str();
                if self.env[..i].iter().any(|p| p.name == name) && !dups.contains(&name) {
                    dups.push(name);
                }
            }
            return dups;
        }
        let mut seen = std::collections::BTreeSet::new();
        for e in &self.env {
            if !seen.insert(e.name.as_str()) && !dups.contains(&e.name.as_str()) {
                dups.push(e.name.as_str());
            }
        }
        dups
    }
}

/// What the rest of the cluster says about a workload (the Sensor derives it from Services,
/// RBAC and NetworkPolicies). Without it, the criteria that need it are not evaluable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterContext {
    /// `DEFAULT`, `ELEVATED_IN_NAMESPACE`, `ELEVATED_CLUSTER_WIDE` or `CLUSTER_ADMIN`.
    pub rbac_level: String,
    pub ingress_network_policy: bool,
    pub egress_network_policy: bool,
    pub exposures: Vec<PortExposure>,
}

/// One way a container port is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortExposure {
    pub container: String,
    pub container_port: i64,
    pub protocol: String,
    /// `EXTERNAL`, `NODE`, `HOST`, `INTERNAL` or `ROUTE`.
    pub level: String,
    pub service_name: String,
    pub node_port: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub name: String,
    pub namespace: String,
    pub kind: WorkloadKind,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub pod_labels: BTreeMap<String, String>,
    /// `None` for kinds without replicas (DaemonSet).
    pub replicas: Option<i64>,
    pub service_account: String,
    /// True when the pod uses the deprecated `serviceAccount` field instead of
    /// `serviceAccountName`.
    pub deprecated_service_account_field: bool,
    pub automount_service_account_token: bool,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub runtime_class: String,
    pub sysctls: Vec<(String, String)>,
    /// False when a selector is declared and does not select the pod template's labels.
    pub selector_matches_pod_labels: bool,
    pub containers: Vec<Container>,
    /// Set by whoever knows the cluster (Central, from the Sensor); `None` from a manifest.
    pub cluster: Option<ClusterContext>,
}

/// Sysctls Kubernetes considers safe (namespaced and isolated); anything else needs the kubelet's
/// `--allowed-unsafe-sysctls` and weakens node isolation.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

impl Deployment {
    pub fn unsafe_sysctls(&self) -> Vec<&str> {
        self.sysctls
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !SAFE_SYSCTLS.contains(n))
            .collect()
    }

    /// Normalizes any workload kind. `default_namespace` fills objects that name none.
    pub fn from_workload(workload: &Workload, default_namespace: &str) -> Deployment {
        Deployment::from_owned(workload.clone(), default_namespace)
    }

    /// Normalizes a workload it may take apart (the hot path: nothing is copied twice).
    pub fn from_owned(workload: Workload, default_namespace: &str) -> Deployment {
        let Workload {
            kind,
            metadata: meta,
            replicas,
            selector,
            template,
        } = workload;
        let PodTemplate {
            metadata: pod_meta,
            spec,
        } = template;
        let pod_labels = pod_meta.labels;
        let pod_annotations = pod_meta.annotations;
        let service_account_name = spec.service_account_name.unwrap_or_default();
        let deprecated_sa = spec.service_account.unwrap_or_default();
        let deprecated_service_account_field =
            !deprecated_sa.is_empty() && service_account_name.is_empty();
        let service_account = if !service_account_name.is_empty() {
            service_account_name
        } else if !deprecated_sa.is_empty() {
            deprecated_sa
        } else {
            "default".to_string()
        };
        let pod_sc = spec.security_context.unwrap_or_default();
        let volumes = spec.volumes;
        let init = spec.init_containers.into_iter().map(|c| (c, true));
        let regular = spec.containers.into_iter().map(|c| (c, false));
        let containers = init
            .chain(regular)
            .map(|(c, is_init)| convert_container(c, is_init, &pod_sc, &volumes, &pod_annotations))
            .collect();
        let mut annotations = meta.annotations;
        // Pod-template annotations also describe the workload (AppArmor and seccomp live there);
        // the object's own annotations win on conflict. Moved: the containers have read them.
        for (k, v) in pod_annotations {
            annotations.entry(k).or_insert(v);
        }
        Deployment {
            name: meta.name.unwrap_or_default(),
            namespace: meta
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| default_namespace.to_string()),
            kind,
            labels: meta.labels,
            annotations,
            replicas,
            service_account,
            deprecated_service_account_field,
            automount_service_account_token: spec.automount_service_account_token.unwrap_or(true),
            host_network: spec.host_network.unwrap_or(false),
            host_pid: spec.host_pid.unwrap_or(false),
            host_ipc: spec.host_ipc.unwrap_or(false),
            runtime_class: spec.runtime_class_name.unwrap_or_default(),
            selector_matches_pod_labels: selector.matches(&pod_labels),
            sysctls: pod_sc
                .sysctls
                .into_iter()
                .map(|s| (s.name, s.value))
                .collect(),
            pod_labels,
            containers,
            cluster: None,
        }
    }
}

/// `cap_net_raw` → `NET_RAW`, in the string's own buffer.
fn normalize_capability(mut c: String) -> String {
    let trimmed = c.trim();
    if trimmed.len() != c.len() {
        c = trimmed.to_string();
    }
    if c.as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"CAP_"))
    {
        c.drain(..4);
    }
    c.make_ascii_uppercase();
    c
}

fn seccomp_from_field(t: &str) -> Option<SeccompType> {
    match t {
        "RuntimeDefault" => Some(SeccompType::RuntimeDefault),
        "Localhost" => Some(SeccompType::Localhost),
        "Unconfined" => Some(SeccompType::Unconfined),
        _ => None,
    }
}

fn seccomp_from_annotation(v: &str) -> Option<SeccompType> {
    match v {
        "runtime/default" | "docker/default" => Some(SeccompType::RuntimeDefault),
        "unconfined" => Some(SeccompType::Unconfined),
        v if v.starts_with("localhost/") => Some(SeccompType::Localhost),
        _ => None,
    }
}

fn apparmor_from_field(p: &wire::AppArmorProfile) -> String {
    match p.type_.as_str() {
        "Unconfined" => "unconfined".to_string(),
        "RuntimeDefault" => "runtime/default".to_string(),
        "Localhost" => format!(
            "localhost/{}",
            p.localhost_profile.as_deref().unwrap_or_default()
        ),
        other => other.to_ascii_lowercase(),
    }
}

/// The value of a per-container annotation (`<prefix>/<container name>`).
fn container_annotation<'a>(
    annotations: &'a BTreeMap<String, String>,
    prefix: &str,
    container: &str,
) -> Option<&'a String> {
    // Keys sharing the prefix sit together in the sorted map: no key is built per lookup.
    annotations
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(k, _)| k.starts_with(prefix))
        .find(|(k, _)| k[prefix.len()..].strip_prefix('/') == Some(container))
        .map(|(_, v)| v)
}

fn convert_container(
    c: wire::Container,
    is_init: bool,
    pod_sc: &wire::PodSecurityContext,
    volumes: &[wire::Volume],
    pod_annotations: &BTreeMap<String, String>,
) -> Container {
    let sc = c.security_context.unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let caps = sc.capabilities.unwrap_or_default();
    // Collected in place: the lists keep their buffers.
    let add_capabilities: Vec<String> = caps.add.into_iter().map(normalize_capability).collect();
    let drop_capabilities: Vec<String> = caps.drop.into_iter().map(normalize_capability).collect();
    let ape_set = sc.allow_privilege_escalation;
    // Kubernetes lets a process gain privileges unless told otherwise, and always when privileged
    // or holding CAP_SYS_ADMIN.
    let allow_privilege_escalation = privileged
        || add_capabilities
            .iter()
            .any(|c| c == "SYS_ADMIN" || c == "ALL")
        || ape_set.unwrap_or(true);
    let seccomp = sc
        .seccomp_profile
        .as_ref()
        .and_then(|p| seccomp_from_field(&p.type_))
        .or_else(|| {
            container_annotation(
                pod_annotations,
                "container.seccomp.security.alpha.kubernetes.io",
                &c.name,
            )
            .and_then(|v| seccomp_from_annotation(v))
        })
        .or_else(|| {
            pod_sc
                .seccomp_profile
                .as_ref()
                .and_then(|p| seccomp_from_field(&p.type_))
        })
        .or_else(|| {
            pod_annotations
                .get("seccomp.security.alpha.kubernetes.io/pod")
                .and_then(|v| seccomp_from_annotation(v))
        });
    let apparmor = sc
        .app_armor_profile
        .as_ref()
        .map(apparmor_from_field)
        .or_else(|| {
            container_annotation(
                pod_annotations,
                "container.apparmor.security.beta.kubernetes.io",
                &c.name,
            )
            .cloned()
        })
        .or_else(|| pod_sc.app_armor_profile.as_ref().map(apparmor_from_field))
        .unwrap_or_default();
    let security_context = SecurityContext {
        privileged,
        allow_privilege_escalation,
        allow_privilege_escalation_set: ape_set.is_some(),
        read_only_root_filesystem: sc.read_only_root_filesystem.unwrap_or(false),
        run_as_user: sc.run_as_user.or(pod_sc.run_as_user),
        run_as_group: sc.run_as_group.or(pod_sc.run_as_group),
        run_as_non_root: sc.run_as_non_root.or(pod_sc.run_as_non_root),
        add_capabilities,
        drop_capabilities,
        seccomp,
        apparmor,
        proc_mount: sc.proc_mount,
    };
    let env = c
        .env
        .into_iter()
        .map(|e| {
            let (source, value) = match e.value_from {
                None => (EnvSource::Raw, e.value.unwrap_or_default()),
                Some(from) => {
                    let from = *from;
                    if let Some(s) = from.secret_key_ref {
                        (EnvSource::SecretKey, text!(s.name, "/", s.key))
                    } else if let Some(s) = from.config_map_key_ref {
                        (EnvSource::ConfigMapKey, text!(s.name, "/", s.key))
                    } else if let Some(s) = from.field_ref {
                        (EnvSource::Field, s.field_path)
                    } else if let Some(s) = from.resource_field_ref {
                        (EnvSource::ResourceField, s.resource)
                    } else {
                        (EnvSource::Unknown, String::new())
                    }
                }
            };
            EnvVar {
                name: e.name,
                value,
                source,
            }
        })
        .collect();
    let quantity = |q: &Option<wire::Quantity>| q.and_then(|q| q.0).unwrap_or(0.0);
    let res = c.resources.unwrap_or_default();
    let resources = Resources {
        cpu_request: quantity(&res.requests.cpu),
        cpu_limit: quantity(&res.limits.cpu),
        memory_request: bytes_to_mb(quantity(&res.requests.memory)),
        memory_limit: bytes_to_mb(quantity(&res.limits.memory)),
    };
    let mounts = c
        .volume_mounts
        .into_iter()
        .map(|m| {
            let volume = volumes.iter().find(|v| v.name == m.name);
            let (volume_type, source) = volume.map(describe_volume).unwrap_or_default();
            Mount {
                name: m.name,
                source,
                destination: m.mount_path,
                read_only: m.read_only.unwrap_or(false),
                volume_type,
                propagation: match m.mount_propagation.as_deref() {
                    Some("Bidirectional") => "BIDIRECTIONAL",
                    Some("HostToContainer") => "HOSTTOCONTAINER",
                    _ => "NONE",
                },
            }
        })
        .collect();
    let ports = c
        .ports
        .into_iter()
        .map(|p| Port {
            name: p.name.unwrap_or_default(),
            container_port: p.container_port.into(),
            protocol: match p.protocol {
                Some(mut proto) => {
                    proto.make_ascii_uppercase();
                    proto
                }
                None => "TCP".to_string(),
            },
            host_port: p.host_port.filter(|h| *h > 0).map(i64::from),
        })
        .collect();
    Container {
        is_init,
        image: ImageName::parse_owned(c.image.unwrap_or_default()),
        name: c.name,
        security_context,
        env,
        resources,
        mounts,
        ports,
        liveness_probe: c.liveness_probe.is_some(),
        readiness_probe: c.readiness_probe.is_some(),
        image_data: None,
    }
}

/// (type, source) of a pod volume, in ACS's vocabulary.
fn describe_volume(v: &wire::Volume) -> (&'static str, String) {
    if let Some(h) = &v.host_path {
        ("HostPath", h.path.clone())
    } else if let Some(s) = &v.secret {
        ("Secret", s.secret_name.clone().unwrap_or_default())
    } else if let Some(c) = &v.config_map {
        ("ConfigMap", c.name.clone())
    } else if v.empty_dir.is_some() {
        ("EmptyDir", String::new())
    } else if let Some(p) = &v.persistent_volume_claim {
        ("PersistentVolumeClaim", p.claim_name.clone())
    } else if v.projected.is_some() {
        ("Projected", String::new())
    } else if v.downward_api.is_some() {
        ("DownwardAPI", String::new())
    } else if let Some(n) = &v.nfs {
        ("NFS", text!(n.server, ":", n.path))
    } else if let Some(c) = &v.csi {
        ("CSI", c.driver.clone())
    } else if v.ephemeral.is_some() {
        ("Ephemeral", String::new())
    } else if let Some(i) = &v.image {
        ("Image", i.reference.clone().unwrap_or_default())
    } else {
        ("Unknown", String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_kind_is_in_all_at_its_own_position() {
        for (i, kind) in WorkloadKind::ALL.iter().enumerate() {
            // A new variant fails to compile here until it is placed in `ALL`.
            let position = match kind {
                WorkloadKind::Deployment => 0,
                WorkloadKind::StatefulSet => 1,
                WorkloadKind::DaemonSet => 2,
                WorkloadKind::ReplicaSet => 3,
                WorkloadKind::ReplicationController => 4,
                WorkloadKind::Job => 5,
                WorkloadKind::CronJob => 6,
                WorkloadKind::Pod => 7,
                WorkloadKind::DeploymentConfig => 8,
            };
            assert_eq!(i, position);
            assert_eq!(*kind as usize, position);
        }
    }

    #[test]
    fn every_env_source_is_in_all_at_its_own_position() {
        for (i, source) in EnvSource::ALL.iter().enumerate() {
            // A new variant fails to compile here until it is placed in `ALL`.
            let position = match source {
                EnvSource::Raw => 0,
                EnvSource::SecretKey => 1,
                EnvSource::ConfigMapKey => 2,
                EnvSource::Field => 3,
                EnvSource::ResourceField => 4,
                EnvSource::Unknown => 5,
            };
            assert_eq!(i, position);
            assert_eq!(*source as usize, position);
        }
    }

    #[test]
    fn capabilities_are_named_without_their_prefix_in_capitals() {
        for (given, want) in [
            ("NET_RAW", "NET_RAW"),
            ("net_raw", "NET_RAW"),
            ("CAP_SYS_ADMIN", "SYS_ADMIN"),
            (" cap_chown ", "CHOWN"),
            ("Cap_", ""),
            ("CAP", "CAP"),
            ("all", "ALL"),
            ("é_cap", "é_CAP"),
        ] {
            assert_eq!(normalize_capability(given.to_string()), want, "{given:?}");
        }
    }

    #[test]
    fn duplicate_env_names_short_and_long_lists_alike() {
        let container = |names: &[String]| {
            let env: Vec<serde_json::Value> = names
                .iter()
                .map(|n| serde_json::json!({"name": n, "value": "x"}))
                .collect();
            let pod = serde_json::json!({"metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "nginx", "env": env}]}});
            let w = crate::workload::decode_workload(WorkloadKind::Pod, &pod).expect("pod");
            Deployment::from_owned(w, "ns").containers.remove(0)
        };
        let short: Vec<String> = ["a", "b", "a", "c", "b", "a"].map(String::from).into();
        assert_eq!(container(&short).duplicate_env_names(), ["a", "b"]);
        // Past the pairwise limit: the same answer, in the same order (first repeat first).
        let long: Vec<String> = (0..40)
            .map(|i| format!("V{}", if i >= 34 { (i - 34) % 4 + 2 } else { i }))
            .collect();
        assert_eq!(
            container(&long).duplicate_env_names(),
            ["V2", "V3", "V4", "V5"]
        );
        assert!(container(&long[..34]).duplicate_env_names().is_empty());
    }

    #[test]
    fn per_container_annotations_are_found_by_exact_name() {
        let p = "container.apparmor.security.beta.kubernetes.io";
        let annotations: BTreeMap<String, String> = [
            (format!("{p}x/web"), "wrong prefix"),
            (format!("{p}/web2"), "longer name"),
            (format!("{p}/we"), "shorter name"),
            (format!("{p}/web"), "runtime/default"),
            ("a/web".to_string(), "other"),
            ("zzz".to_string(), "other"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let get = |c| container_annotation(&annotations, p, c).map(String::as_str);
        assert_eq!(get("web"), Some("runtime/default"));
        assert_eq!(get("web2"), Some("longer name"));
        assert_eq!(get("we"), Some("shorter name"));
        assert_eq!(get("db"), None);
        assert_eq!(container_annotation(&BTreeMap::new(), p, "web"), None);
    }
}
