//! A workload as Rampart reads it off the wire: the fields normalization uses, in Kubernetes'
//! JSON shape, decoded straight from any serde source (JSON text from the API server, a parsed
//! YAML manifest). Everything else — `status`, `managedFields`, probe bodies, the hundreds of pod
//! fields no policy looks at — is skipped unread.
//!
//! ```text
//!  Deployment, StatefulSet, DaemonSet, ReplicaSet ┐                 ┌ kind, metadata, replicas,
//!  ReplicationController, DeploymentConfig        ├ decode_workload ┤ selector, pod template
//!  Job, CronJob, Pod                              ┘                 └ (metadata + PodSpec)
//! ```
//!
//! Decoding into the full k8s-openapi types instead costs several times as much: their structs
//! are large, every optional field is moved through the deserializer, and `ObjectMeta` decodes
//! `managedFields` into JSON trees only to drop them.

use std::collections::BTreeMap;

use serde::de::{IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use crate::deployment::WorkloadKind;

mod json;
pub use json::{Spec, decode as decode_workload_json, decode_with as decode_workload_json_with};

/// `null` reads as the default (Kubernetes clients write `"labels": null` as readily as leave
/// the field out).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What Rampart reads of an object's metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub owner_references: Vec<OwnerReference>,
}

impl Meta {
    /// Whether a workload names itself the object's controller (a pod's ReplicaSet, a Job's
    /// CronJob): the object is then decided at that owner, as the Sensor rolls it up to it. A
    /// controller of any other kind — an operator's custom resource, or any object at all, as
    /// an ownerReference is only its writer's word — leaves the object to be decided itself.
    pub fn controlled(&self) -> bool {
        self.controller().is_some()
    }

    /// The workload named as the object's controller, if any ([`Meta::controlled`]).
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references
            .iter()
            .find(|o| o.controller == Some(true) && o.names_workload())
    }
}

impl OwnerReference {
    /// Whether the owner is of a workload kind (by its group and kind).
    pub fn names_workload(&self) -> bool {
        let group = crate::manifest::group_of(&self.api_version);
        crate::manifest::workload_kind_in_group(group, &self.kind).is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    pub controller: Option<bool>,
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// Whether these labels are selected (an empty selector selects everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let exprs_ok = self.match_expressions.iter().all(|e| {
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| e.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
        exprs_ok
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

/// The selector a workload declares, in the form its kind uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Selector {
    /// None declared, or generated by the controller (Jobs, CronJobs, Pods).
    #[default]
    None,
    /// ReplicationController and DeploymentConfig: plain equality on labels.
    Map(BTreeMap<String, String>),
    Label(LabelSelector),
}

impl Selector {
    /// Whether the selector selects these labels (an absent one selects everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::None => true,
            Selector::Map(m) => m.iter().all(|(k, v)| labels.get(k) == Some(v)),
            Selector::Label(s) => s.matches(labels),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodTemplate {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Meta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub service_account_name: Option<String>,
    pub service_account: Option<String>,
    pub automount_service_account_token: Option<bool>,
    pub host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    pub runtime_class_name: Option<String>,
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
    #[serde(default, deserialize_with = "nullable")]
    pub init_containers: Vec<Container>,
    #[serde(default, deserialize_with = "nullable")]
    pub containers: Vec<Container>,
    /// Added to a running pod through its `ephemeralcontainers` subresource (`kubectl
    /// debug`); never part of a workload's template. Only the admission controller reads
    /// them, for that subresource.
    #[serde(default, deserialize_with = "nullable")]
    pub ephemeral_containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub seccomp_profile: Option<SeccompProfile>,
    pub app_armor_profile: Option<AppArmorProfile>,
    #[serde(default, deserialize_with = "nullable")]
    pub sysctls: Vec<Sysctl>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Sysctl {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SeccompProfile {
    #[serde(rename = "type", default)]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppArmorProfile {
    #[serde(rename = "type", default)]
    pub type_: String,
    pub localhost_profile: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    pub image: Option<String>,
    pub security_context: Option<ContainerSecurityContext>,
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<Env>,
    pub resources: Option<ResourceRequirements>,
    #[serde(default, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default, deserialize_with = "nullable")]
    pub ports: Vec<ContainerPort>,
    /// Only whether a probe is declared matters; its body is skipped.
    pub liveness_probe: Option<IgnoredAny>,
    pub readiness_probe: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    pub privileged: Option<bool>,
    pub capabilities: Option<Capabilities>,
    pub allow_privilege_escalation: Option<bool>,
    pub seccomp_profile: Option<SeccompProfile>,
    pub app_armor_profile: Option<AppArmorProfile>,
    pub read_only_root_filesystem: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub proc_mount: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Capabilities {
    #[serde(default, deserialize_with = "nullable")]
    pub add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Env {
    pub name: String,
    pub value: Option<String>,
    /// Boxed: most variables have a plain value, and an `Env` is moved and defaulted by the
    /// dozen in every decode.
    pub value_from: Option<Box<EnvSourceRef>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvSourceRef {
    pub secret_key_ref: Option<KeyRef>,
    pub config_map_key_ref: Option<KeyRef>,
    pub field_ref: Option<FieldRef>,
    pub resource_field_ref: Option<ResourceFieldRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KeyRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    #[serde(default)]
    pub field_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ResourceFieldRef {
    #[serde(default)]
    pub resource: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ResourceRequirements {
    #[serde(default, deserialize_with = "nullable")]
    pub requests: CpuMemory,
    #[serde(default, deserialize_with = "nullable")]
    pub limits: CpuMemory,
}

/// The resources policies look at; others (`ephemeral-storage`, extended resources) are
/// skipped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CpuMemory {
    pub cpu: Option<Quantity>,
    pub memory: Option<Quantity>,
}

/// A resource quantity, read as its value in base units (`250m` is 0.25 cores, `1Gi`
/// 1,073,741,824 bytes); `None` when the text is no quantity (ACS then reports 0). Written as a
/// string or as a bare number, which YAML and kubectl accept as readily.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quantity(pub Option<f64>);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity (a string such as \"250m\" or a number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(crate::quantity::parse_quantity(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(Some(v as f64)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(Some(v as f64)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(Some(v)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    pub read_only: Option<bool>,
    pub mount_propagation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: i32,
    pub protocol: Option<String>,
    pub host_port: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default)]
    pub name: String,
    pub host_path: Option<PathSource>,
    pub secret: Option<SecretSource>,
    pub config_map: Option<NamedSource>,
    pub empty_dir: Option<IgnoredAny>,
    pub persistent_volume_claim: Option<ClaimSource>,
    pub projected: Option<IgnoredAny>,
    #[serde(rename = "downwardAPI")]
    pub downward_api: Option<IgnoredAny>,
    pub nfs: Option<NfsSource>,
    pub csi: Option<CsiSource>,
    pub ephemeral: Option<IgnoredAny>,
    pub image: Option<ImageSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PathSource {
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NamedSource {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    #[serde(default)]
    pub claim_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NfsSource {
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CsiSource {
    #[serde(default)]
    pub driver: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ImageSource {
    pub reference: Option<String>,
}

/// A workload of any supported kind, reduced to what normalization reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub metadata: Meta,
    /// `replicas` (or a Job's `parallelism`), defaulted as Kubernetes does; `None` for kinds
    /// without replicas (DaemonSet).
    pub replicas: Option<i64>,
    pub selector: Selector,
    pub template: PodTemplate,
}

impl Workload {
    pub fn metadata(&self) -> &Meta {
        &self.metadata
    }
}

/// The top level of an object: `status` and the rest are skipped unread.
#[derive(Deserialize)]
struct Object<S> {
    #[serde(default, deserialize_with = "nullable")]
    metadata: Meta,
    #[serde(default = "Option::default")]
    spec: Option<S>,
}

/// Deployment, StatefulSet, DaemonSet and ReplicaSet select with a `LabelSelector`;
/// ReplicationController and DeploymentConfig with a plain map.
#[derive(Deserialize)]
struct ControllerSpec<Sel> {
    replicas: Option<i32>,
    selector: Option<Sel>,
    #[serde(default, deserialize_with = "nullable")]
    template: PodTemplate,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobSpec {
    parallelism: Option<i32>,
    manual_selector: Option<bool>,
    selector: Option<LabelSelector>,
    #[serde(default, deserialize_with = "nullable")]
    template: PodTemplate,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    job_template: Option<JobTemplate>,
}

#[derive(Deserialize)]
struct JobTemplate {
    spec: Option<JobSpec>,
}

impl Workload {
    fn controller<Sel>(
        kind: WorkloadKind,
        o: Object<ControllerSpec<Sel>>,
        selector: fn(Sel) -> Selector,
    ) -> Workload {
        let (replicas, selector, template) = match o.spec {
            Some(s) => (
                s.replicas,
                s.selector.map_or(Selector::None, selector),
                s.template,
            ),
            None => (None, Selector::None, PodTemplate::default()),
        };
        Workload {
            kind,
            metadata: o.metadata,
            replicas: (kind != WorkloadKind::DaemonSet).then(|| i64::from(replicas.unwrap_or(1))),
            selector,
            template,
        }
    }

    fn pod(metadata: Meta, spec: Option<PodSpec>) -> Workload {
        // A pod is its own template.
        let template = PodTemplate {
            metadata: Meta {
                labels: metadata.labels.clone(),
                annotations: metadata.annotations.clone(),
                ..Meta::default()
            },
            spec: spec.unwrap_or_default(),
        };
        Workload {
            kind: WorkloadKind::Pod,
            metadata,
            replicas: Some(1),
            selector: Selector::None,
            template,
        }
    }

    fn job(kind: WorkloadKind, metadata: Meta, spec: Option<JobSpec>) -> Workload {
        let (replicas, selector, template) = match spec {
            Some(s) => (
                s.parallelism,
                // Jobs generate their selector unless manualSelector is set.
                if s.manual_selector == Some(true) {
                    s.selector.map_or(Selector::None, Selector::Label)
                } else {
                    Selector::None
                },
                s.template,
            ),
            None => (None, Selector::None, PodTemplate::default()),
        };
        Workload {
            kind,
            metadata,
            replicas: Some(i64::from(replicas.unwrap_or(1))),
            selector,
            template,
        }
    }
}

/// Decodes a workload of a known kind from any serde source (a parsed YAML value, or JSON text
/// straight from the wire), reading only what normalization uses.
pub fn decode_workload<'de, D: Deserializer<'de>>(
    kind: WorkloadKind,
    d: D,
) -> Result<Workload, D::Error> {
    use WorkloadKind::*;
    Ok(match kind {
        Deployment | StatefulSet | DaemonSet | ReplicaSet => {
            Workload::controller(kind, Object::deserialize(d)?, Selector::Label)
        }
        ReplicationController | DeploymentConfig => {
            Workload::controller(kind, Object::deserialize(d)?, Selector::Map)
        }
        Job => {
            let o: Object<JobSpec> = Object::deserialize(d)?;
            Workload::job(kind, o.metadata, o.spec)
        }
        CronJob => {
            let o: Object<CronJobSpec> = Object::deserialize(d)?;
            let spec = o.spec.and_then(|s| s.job_template).and_then(|t| t.spec);
            Workload::job(kind, o.metadata, spec)
        }
        Pod => {
            let o: Object<PodSpec> = Object::deserialize(d)?;
            Workload::pod(o.metadata, o.spec)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_numbers_and_the_kinds_own_selector_shapes() {
        let rc = serde_json::json!({
            "metadata": {"name": "rc", "labels": null, "ownerReferences": null},
            "spec": {"selector": {"app": "a"}, "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "resources": {"limits": {"cpu": 2, "memory": "1Gi"}},
                    "livenessProbe": {"exec": {"command": ["true"]}}, "readinessProbe": null,
                    "env": null}],
                  "hostPID": true, "volumes": [{"name": "d", "downwardAPI": {"items": []}}]}}}
        });
        let w = decode_workload(WorkloadKind::ReplicationController, &rc).expect("decodes");
        assert_eq!(w.replicas, Some(1), "defaulted");
        assert!(w.metadata.labels.is_empty());
        assert_eq!(
            w.selector,
            Selector::Map(BTreeMap::from([("app".into(), "a".into())]))
        );
        assert!(w.selector.matches(&w.template.metadata.labels));
        let c = &w.template.spec.containers[0];
        let limits = &c.resources.as_ref().expect("resources").limits;
        assert_eq!(limits.cpu, Some(Quantity(Some(2.0))));
        assert_eq!(
            limits.memory,
            Some(Quantity(Some(1024.0 * 1024.0 * 1024.0)))
        );
        assert!(c.liveness_probe.is_some() && c.readiness_probe.is_none());
        assert_eq!(w.template.spec.host_pid, Some(true));
        assert!(w.template.spec.volumes[0].downward_api.is_some());

        let daemon = serde_json::json!({"spec": {"replicas": 4, "selector": {
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}}});
        let w = decode_workload(WorkloadKind::DaemonSet, &daemon).expect("decodes");
        assert_eq!(w.replicas, None, "a DaemonSet has no replicas");
        assert!(!w.selector.matches(&BTreeMap::new()));
        assert!(
            w.selector
                .matches(&BTreeMap::from([("tier".into(), "web".into())]))
        );

        let job = serde_json::json!({"spec": {"jobTemplate": {"spec": {"parallelism": 3,
            "selector": {"matchLabels": {"x": "y"}}}}}});
        let w = decode_workload(WorkloadKind::CronJob, &job).expect("decodes");
        assert_eq!(w.replicas, Some(3));
        assert_eq!(
            w.selector,
            Selector::None,
            "generated unless manualSelector"
        );
    }

    #[test]
    fn a_wrong_type_is_an_error() {
        let bad = serde_json::json!({"spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": "http"}]}]}});
        assert!(decode_workload(WorkloadKind::Pod, &bad).is_err());
        let bad = serde_json::json!({"spec": {"hostNetwork": "yes"}});
        assert!(decode_workload(WorkloadKind::Pod, &bad).is_err());
    }
}
