//! The Sensor's picture of its cluster: plain data, no IO.
//!
//! ```text
//!   watchers ──apply/delete──▶ Index ──take_changes()──▶ Central stream
//!                               │ owner roll-up, Services → port exposure,
//!                               │ RBAC → permission level, NetworkPolicies → coverage
//! ```
//!
//! Every object is kept stripped (no `managedFields`, no Secret values but image pull secrets'
//! registry credentials, no status churn). What
//! Central receives is derived on demand: top-level workloads (objects no other workload
//! controls) as deployments with their [`Context`], everything else as itself. A change marks
//! what it can affect as dirty; [`Index::take_changes`] turns dirty entries into upserts and
//! removals, skipping any whose content hash has not changed since it was last handed out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// The kinds the Sensor watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
    Pod,
    Namespace,
    Service,
    Route,
    NetworkPolicy,
    ServiceAccount,
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
    Node,
    Secret,
}

impl Kind {
    pub const ALL: [Kind; 19] = [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Job,
        Kind::CronJob,
        Kind::Pod,
        Kind::Namespace,
        Kind::Service,
        Kind::Route,
        Kind::NetworkPolicy,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::ClusterRole,
        Kind::RoleBinding,
        Kind::ClusterRoleBinding,
        Kind::Node,
        Kind::Secret,
    ];

    pub fn from_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// The Kubernetes `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Pod => "Pod",
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::Route => "Route",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Role => "Role",
            Kind::ClusterRole => "ClusterRole",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
            Kind::Node => "Node",
            Kind::Secret => "Secret",
        }
    }

    /// Kinds that run pods (and so can be, or roll up to, a deployment).
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            Kind::Deployment
                | Kind::StatefulSet
                | Kind::DaemonSet
                | Kind::ReplicaSet
                | Kind::ReplicationController
                | Kind::Job
                | Kind::CronJob
                | Kind::Pod
        )
    }
}

/// What Central is told about one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Published {
    /// A top-level workload (any workload kind), with what the cluster adds to it.
    Deployment,
    /// Any other object, as its own kind (owned workloads, ReplicaSets and Jobs included, are
    /// not sent: their top-level workload stands for them; Pods are sent as Pods).
    Resource(Kind),
}

/// The RBAC permission level of a workload's service account, lowest first (ACS's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RbacLevel {
    Default,
    ElevatedInNamespace,
    ElevatedClusterWide,
    ClusterAdmin,
}

impl RbacLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RbacLevel::Default => "DEFAULT",
            RbacLevel::ElevatedInNamespace => "ELEVATED_IN_NAMESPACE",
            RbacLevel::ElevatedClusterWide => "ELEVATED_CLUSTER_WIDE",
            RbacLevel::ClusterAdmin => "CLUSTER_ADMIN",
        }
    }
}

/// How far a container port is reachable (ACS's exposure levels, most exposed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExposureLevel {
    External,
    Route,
    Node,
    Host,
    Internal,
}

impl ExposureLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ExposureLevel::External => "EXTERNAL",
            ExposureLevel::Route => "ROUTE",
            ExposureLevel::Node => "NODE",
            ExposureLevel::Host => "HOST",
            ExposureLevel::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exposure {
    pub container: String,
    pub container_port: i32,
    pub protocol: String,
    pub level: ExposureLevel,
    pub service_name: String,
    pub service_port: i32,
    pub node_port: i32,
}

/// What the rest of the cluster says about a workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Context {
    pub rbac_level: RbacLevel,
    pub ingress_network_policy: bool,
    pub egress_network_policy: bool,
    pub exposures: Vec<Exposure>,
}

/// One change for Central.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert(Outgoing),
    Remove {
        published: Published,
        id: String,
        namespace: String,
        name: String,
    },
}

/// One object as the admission controller sees it (see [`Index::for_each_admission_entry`]).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionEntry<'a> {
    pub uid: &'a str,
    pub kind: Kind,
    pub namespace: &'a str,
    pub name: &'a str,
    /// Top-level workloads: the stripped object.
    pub object: Option<&'a std::sync::Arc<str>>,
    /// Controlled pods: the top-level workload's uid.
    pub owner_uid: &'a str,
    pub hash: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub published: Published,
    pub id: String,
    pub namespace: String,
    pub name: String,
    /// The stripped object as JSON text (shared with the index, not copied).
    pub object: std::sync::Arc<str>,
    pub context: Option<Context>,
    pub content_hash: u64,
}

impl Outgoing {
    /// The object parsed (for the few readers that need its fields).
    pub fn value(&self) -> Option<Value> {
        serde_json::from_str(&self.object).ok()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    namespace: String,
    name: String,
    /// What the index reads: the whole object for the small kinds; `Null` for workloads and
    /// pods (most of a cluster), which are kept whole only as `text`, plus their `shape`.
    object: Value,
    /// Workloads and pods: what the context derivation reads of their pod template.
    shape: Option<Box<PodShape>>,
    /// The stripped object as JSON text, as published.
    text: std::sync::Arc<str>,
    text_hash: u64,
    /// The workload its controller reference names (kind and uid), when its kind is one the
    /// Sensor watches: the reference is the writer's word, checked against the owner when the
    /// owner is known ([`Index::controlled_by`]).
    controller: Option<(Kind, String)>,
}

/// What the index reads of a pod template (or a pod): labels, service account, ports. Kept
/// as plain data: a parsed JSON object costs kilobytes per workload, this a few hundred bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PodShape {
    labels: Vec<(String, String)>,
    service_account: String,
    ports: Vec<PortShape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PortShape {
    container: String,
    name: String,
    container_port: i32,
    host_port: i32,
    protocol: String,
}

impl PodShape {
    /// From a pod template (`{metadata, spec}`) or a pod.
    fn of(template: Option<&Value>) -> PodShape {
        let Some(t) = template else {
            return PodShape::default();
        };
        let labels = t
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let spec = t.get("spec");
        let service_account = spec
            .and_then(|s| {
                s.get("serviceAccountName")
                    .or_else(|| s.get("serviceAccount"))
            })
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .unwrap_or("default")
            .to_string();
        let ports = spec
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                let container = c.get("name").and_then(Value::as_str).unwrap_or_default();
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(move |p| PortShape {
                        container: container.to_string(),
                        name: p
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        container_port: int(p.get("containerPort")),
                        host_port: int(p.get("hostPort")),
                        protocol: protocol(p),
                    })
            })
            .collect();
        PodShape {
            labels,
            service_account,
            ports,
        }
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<String, Entry>,
    /// (kind, namespace) → uids, for "every Service of this namespace" and the like.
    members: HashMap<(Kind, String), BTreeSet<String>>,
    /// (kind, namespace, name) → uid.
    by_name: HashMap<(Kind, String, String), String>,
    dirty: BTreeSet<String>,
    /// The same marks for the enforcer, which consumes them at its own pace (and also while
    /// Central is away).
    enforcement_dirty: BTreeSet<String>,
    /// What was last handed out per uid: how it was published and its content hash.
    handed_out: HashMap<String, (Published, String, String, u64)>,
    /// Kinds being re-listed: the uids not seen again yet are deleted when the list ends.
    relisting: HashMap<Kind, BTreeSet<String>>,
    listed: BTreeSet<Kind>,
    /// Container runtime id → (pod uid, container name), from the pods' statuses.
    containers: HashMap<String, (String, String)>,
    /// Pod IP → pod uid.
    pod_ips: HashMap<String, String>,
    /// Service cluster IP → the Service's uid (connections to a Service name its workload).
    service_ips: HashMap<String, String>,
    /// Owner uid → the workloads whose controller reference names it: an owner that arrives
    /// may turn their reference invalid.
    dependents: HashMap<String, BTreeSet<String>>,
}

/// Where a container runs, as the Collector's events need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOwner {
    pub pod_uid: String,
    pub pod_name: String,
    pub container_name: String,
    /// The top-level workload (the deployment Central knows).
    pub deployment_id: String,
}

/// The runtime id of a `containerStatuses[].containerID` (`containerd://<id>`).
fn runtime_id(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

fn meta<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// What the Sensor keeps of an object: no managed fields, no Secret values (but an image pull
/// secret's registry credentials), no status churn
/// (only what Rampart reads: pod IPs and container ids, node addresses and info).
pub fn strip(kind: Kind, object: Value) -> Value {
    let controlled = kind == Kind::Pod && controller_of(&object).is_some();
    strip_as(kind, object, controlled)
}

/// [`strip`], for a pod `controlled` or not: a controlled pod keeps only what says where and
/// what it runs.
fn strip_as(kind: Kind, mut object: Value, controlled: bool) -> Value {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    let Some(o) = object.as_object_mut() else {
        return object;
    };
    match kind {
        Kind::Secret => {
            // Image pull secrets keep their registry credentials: Central pulls the images
            // deployments run with them (and keeps them out of its API and logs). No other
            // Secret value ever leaves the cluster.
            let keep = match o.get("type").and_then(Value::as_str) {
                Some("kubernetes.io/dockerconfigjson") => Some(".dockerconfigjson"),
                Some("kubernetes.io/dockercfg") => Some(".dockercfg"),
                _ => None,
            };
            o.remove("stringData");
            match (keep, o.get_mut("data").and_then(Value::as_object_mut)) {
                (Some(key), Some(data)) => data.retain(|k, _| k == key),
                _ => {
                    o.remove("data");
                }
            }
        }
        Kind::Pod => {
            // A controlled pod is its workload's template, which the workload carries: keep
            // what says where and what it runs (Central's pod inventory), not the whole spec
            // again. A bare pod is its own workload and keeps everything.
            if controlled && let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                spec.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "nodeName"
                            | "hostNetwork"
                            | "hostPID"
                            | "hostIPC"
                            | "serviceAccountName"
                            | "serviceAccount"
                            | "containers"
                            | "initContainers"
                    )
                });
                for key in ["containers", "initContainers"] {
                    for c in spec
                        .get_mut(key)
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(c) = c.as_object_mut() {
                            c.retain(|k, _| matches!(k.as_str(), "name" | "image" | "ports"));
                        }
                    }
                }
            }
            if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
                status.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "podIP" | "podIPs" | "hostIP" | "phase" | "containerStatuses"
                    )
                });
                if let Some(cs) = status
                    .get_mut("containerStatuses")
                    .and_then(Value::as_array_mut)
                {
                    for c in cs {
                        if let Some(c) = c.as_object_mut() {
                            c.retain(|k, _| {
                                matches!(k.as_str(), "name" | "containerID" | "imageID" | "image")
                            });
                        }
                    }
                }
            }
        }
        Kind::Node => {
            if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
                status.retain(|k, _| matches!(k.as_str(), "addresses" | "nodeInfo"));
            }
        }
        _ => {
            o.remove("status");
        }
    }
    object
}

fn controller_of(object: &Value) -> Option<(Kind, String)> {
    object
        .get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| {
            let kind = Kind::from_kind(r.get("kind")?.as_str()?)?;
            kind.is_workload()
                .then(|| Some((kind, r.get("uid")?.as_str()?.to_string())))
                .flatten()
        })
}

fn hash_of(text_hash: u64, context: Option<&Context>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text_hash.hash(&mut h);
    context.hash(&mut h);
    h.finish()
}

fn hash_text(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An object was created or changed (or listed).
    pub fn apply(&mut self, kind: Kind, object: Value) {
        let uid = meta(&object, "uid").to_string();
        if uid.is_empty() {
            return;
        }
        if let Some(pending) = self.relisting.get_mut(&kind) {
            pending.remove(&uid);
        }
        let namespace = meta(&object, "namespace").to_string();
        let controller = if kind.is_workload() {
            controller_of(&object)
        } else {
            None
        };
        // A pod whose reference does not hold keeps its whole spec: it is its own workload.
        let controlled = kind == Kind::Pod
            && controller
                .as_ref()
                .is_some_and(|(k, owner)| self.reference_holds(*k, owner, &namespace));
        let object = strip_as(kind, object, controlled);
        let name = meta(&object, "name").to_string();
        let known_before = self.entries.contains_key(&uid);
        let old_controller = self.entries.get(&uid).and_then(|e| e.controller.clone());
        if old_controller != controller {
            if let Some((_, owner)) = &old_controller {
                self.forget_dependent(owner, &uid);
            }
            if let Some((_, owner)) = &controller {
                self.dependents
                    .entry(owner.clone())
                    .or_default()
                    .insert(uid.clone());
            }
        }
        // A new owner may show its dependents' references to be invalid (another namespace,
        // another kind): they are then published on their own.
        if !known_before && let Some(deps) = self.dependents.get(&uid) {
            self.dirty.extend(deps.iter().cloned());
            self.enforcement_dirty.extend(deps.iter().cloned());
        }
        if let Some(old) = self.entries.get(&uid)
            && (old.namespace != namespace || old.name != name)
        {
            self.by_name
                .remove(&(old.kind, old.namespace.clone(), old.name.clone()));
        }
        self.members
            .entry((kind, namespace.clone()))
            .or_default()
            .insert(uid.clone());
        self.by_name
            .insert((kind, namespace.clone(), name.clone()), uid.clone());
        self.mark_affected(kind, &namespace);
        self.dirty.insert(uid.clone());
        self.enforcement_dirty.insert(uid.clone());
        if kind == Kind::Pod {
            self.forget_pod(&uid);
            self.learn_pod(&uid, &object);
        }
        if kind == Kind::Service {
            self.service_ips.retain(|_, svc| *svc != uid);
            let ips = object
                .pointer("/spec/clusterIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .chain(object.pointer("/spec/clusterIP").and_then(Value::as_str))
                .filter(|ip| !ip.is_empty() && *ip != "None");
            for ip in ips {
                self.service_ips.insert(ip.to_string(), uid.clone());
            }
        }
        let text: std::sync::Arc<str> = object.to_string().into();
        let (object, shape) = if kind.is_workload() {
            let shape = PodShape::of(pod_template(kind, &object));
            (Value::Null, Some(Box::new(shape)))
        } else {
            (object, None)
        };
        self.entries.insert(
            uid,
            Entry {
                kind,
                namespace,
                name,
                object,
                shape,
                text_hash: hash_text(&text),
                text,
                controller,
            },
        );
    }

    /// An object was deleted.
    pub fn delete(&mut self, kind: Kind, object: &Value) {
        let uid = meta(object, "uid").to_string();
        self.remove(kind, &uid);
    }

    fn remove(&mut self, kind: Kind, uid: &str) {
        let Some(entry) = self.entries.remove(uid) else {
            return;
        };
        if let Some((_, owner)) = &entry.controller {
            self.forget_dependent(owner, uid);
        }
        if let Some(m) = self.members.get_mut(&(kind, entry.namespace.clone())) {
            m.remove(uid);
        }
        self.by_name
            .remove(&(kind, entry.namespace.clone(), entry.name.clone()));
        self.mark_affected(kind, &entry.namespace);
        self.dirty.insert(uid.to_string());
        self.enforcement_dirty.insert(uid.to_string());
        if kind == Kind::Pod {
            self.forget_pod(uid);
        }
        if kind == Kind::Service {
            self.service_ips.retain(|_, svc| svc != uid);
        }
    }

    fn forget_dependent(&mut self, owner: &str, uid: &str) {
        if let Some(deps) = self.dependents.get_mut(owner) {
            deps.remove(uid);
            if deps.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    /// The uid of the workload that controls `entry`, by its controller reference. Kubernetes
    /// lets anyone write an ownerReference, and its garbage collector treats one naming an owner
    /// in another namespace as absent: so does the Sensor, and for an owner of another kind than
    /// the reference says. A pod claiming a kube-system workload's uid is thus its own
    /// deployment, not hidden under (and excluded with) that workload. An owner not known
    /// (yet) is taken at its word: the chain stops there, and an owner that never comes is
    /// the garbage collector's to act on.
    fn controlled_by<'a>(&self, entry: &'a Entry) -> Option<&'a str> {
        let (kind, owner) = entry.controller.as_ref()?;
        self.reference_holds(*kind, owner, &entry.namespace)
            .then_some(owner.as_str())
    }

    /// Whether a reference to `owner` of `kind`, from an object in `namespace`, holds: the
    /// owner is of that kind and in that namespace, or not known (yet).
    fn reference_holds(&self, kind: Kind, owner: &str, namespace: &str) -> bool {
        self.entries
            .get(owner)
            .is_none_or(|o| o.kind == kind && o.namespace == namespace)
    }

    /// A watcher starts a full list of `kind` (first start, or after its watch expired).
    pub fn begin_relist(&mut self, kind: Kind) {
        let current = self
            .entries
            .iter()
            .filter(|(_, e)| e.kind == kind)
            .map(|(uid, _)| uid.clone())
            .collect();
        self.relisting.insert(kind, current);
    }

    /// The list of `kind` is complete: what it did not contain was deleted meanwhile.
    pub fn end_relist(&mut self, kind: Kind) {
        for uid in self.relisting.remove(&kind).unwrap_or_default() {
            self.remove(kind, &uid);
        }
        self.listed.insert(kind);
    }

    /// Every kind in `kinds` has been listed at least once (the picture is complete).
    pub fn is_synced(&self, kinds: &[Kind]) -> bool {
        kinds.iter().all(|k| self.listed.contains(k))
    }

    /// Context-bearing kinds change the context of the workloads they can select.
    fn mark_affected(&mut self, kind: Kind, namespace: &str) {
        let scope: Option<&str> = match kind {
            Kind::Service | Kind::Route | Kind::NetworkPolicy | Kind::Role | Kind::RoleBinding => {
                Some(namespace)
            }
            Kind::ClusterRole | Kind::ClusterRoleBinding => None,
            _ => return,
        };
        // Only top-level workloads carry a context; a namespaced change looks up that
        // namespace's members instead of walking the whole index.
        let affected: Vec<String> = match scope {
            Some(ns) => Kind::ALL
                .into_iter()
                .filter(|k| k.is_workload())
                .filter_map(|k| self.members.get(&(k, ns.to_string())))
                .flatten()
                .filter(|uid| {
                    self.entries
                        .get(*uid)
                        .is_some_and(|e| self.controlled_by(e).is_none())
                })
                .cloned()
                .collect(),
            None => self
                .entries
                .iter()
                .filter(|(_, e)| self.is_top_level(e))
                .map(|(uid, _)| uid.clone())
                .collect(),
        };
        self.enforcement_dirty.extend(affected.iter().cloned());
        self.dirty.extend(affected);
    }

    fn is_top_level(&self, entry: &Entry) -> bool {
        entry.kind.is_workload() && self.controlled_by(entry).is_none()
    }

    /// How an entry is published, if at all.
    fn published(&self, entry: &Entry) -> Option<Published> {
        if entry.kind.is_workload() {
            if self.is_top_level(entry) {
                Some(Published::Deployment)
            } else if entry.kind == Kind::Pod {
                Some(Published::Resource(Kind::Pod))
            } else {
                None
            }
        } else {
            Some(Published::Resource(entry.kind))
        }
    }

    /// The top-level workload a workload rolls up to (itself when it is top-level).
    pub fn top_level(&self, uid: &str) -> Option<&str> {
        let mut current = uid;
        for _ in 0..8 {
            let entry = self.entries.get(current)?;
            match self.controlled_by(entry) {
                Some(owner) if self.entries.contains_key(owner) => current = owner,
                // The owner is not known (yet): the chain stops at what is known.
                Some(_) | None => return Some(self.entries.get_key_value(current)?.0),
            }
        }
        None
    }

    /// The published form of one object, as it is now.
    pub fn outgoing(&self, uid: &str) -> Option<Outgoing> {
        let entry = self.entries.get(uid)?;
        let published = self.published(entry)?;
        let context = (published == Published::Deployment).then(|| self.context(entry));
        Some(Outgoing {
            content_hash: hash_of(entry.text_hash, context.as_ref()),
            published,
            id: uid.to_string(),
            namespace: entry.namespace.clone(),
            name: entry.name.clone(),
            object: std::sync::Arc::clone(&entry.text),
            context,
        })
    }

    /// Everything published now (for a full resync).
    pub fn snapshot(&mut self) -> Vec<Outgoing> {
        self.dirty.clear();
        let mut uids: Vec<&String> = self.entries.keys().collect();
        uids.sort();
        let out: Vec<Outgoing> = uids.into_iter().filter_map(|u| self.outgoing(u)).collect();
        self.handed_out = out
            .iter()
            .map(|o| {
                (
                    o.id.clone(),
                    (
                        o.published.clone(),
                        o.namespace.clone(),
                        o.name.clone(),
                        o.content_hash,
                    ),
                )
            })
            .collect();
        out
    }

    /// What changed since the last call (or snapshot), unchanged content skipped.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes = Vec::new();
        for uid in dirty {
            match (self.outgoing(&uid), self.handed_out.get(&uid)) {
                (Some(o), Some((_, _, _, hash))) if *hash == o.content_hash => {}
                (Some(o), _) => {
                    self.handed_out.insert(
                        uid,
                        (
                            o.published.clone(),
                            o.namespace.clone(),
                            o.name.clone(),
                            o.content_hash,
                        ),
                    );
                    changes.push(Change::Upsert(o));
                }
                (None, Some(_)) => {
                    if let Some((published, namespace, name, _)) = self.handed_out.remove(&uid) {
                        changes.push(Change::Remove {
                            published,
                            id: uid,
                            namespace,
                            name,
                        });
                    }
                }
                (None, None) => {}
            }
        }
        changes
    }

    /// The top-level workloads changed since the last call, as they are now (`None`: gone).
    pub fn take_workload_changes(&mut self) -> Vec<(String, Option<Outgoing>)> {
        let dirty = std::mem::take(&mut self.enforcement_dirty);
        dirty
            .into_iter()
            .filter_map(|uid| match self.entries.get(&uid) {
                Some(e) if self.is_top_level(e) => {
                    let o = self.outgoing(&uid);
                    Some((uid, o))
                }
                Some(_) => None,
                None => Some((uid, None)),
            })
            .collect()
    }

    /// Visits what the admission controller needs: every top-level workload (bare pods
    /// included) with its object, and every controlled pod with the workload it rolls up to.
    /// `hash` changes when what the controller would receive changes.
    pub fn for_each_admission_entry(&self, mut f: impl FnMut(AdmissionEntry<'_>)) {
        for (uid, e) in &self.entries {
            if !e.kind.is_workload() {
                continue;
            }
            if self.is_top_level(e) {
                f(AdmissionEntry {
                    uid,
                    kind: e.kind,
                    namespace: &e.namespace,
                    name: &e.name,
                    object: Some(&e.text),
                    owner_uid: "",
                    hash: e.text_hash,
                });
            } else if e.kind == Kind::Pod {
                let owner = self.top_level(uid).unwrap_or_default();
                f(AdmissionEntry {
                    uid,
                    kind: e.kind,
                    namespace: &e.namespace,
                    name: &e.name,
                    object: None,
                    owner_uid: owner,
                    hash: hash_text(owner),
                });
            }
        }
    }

    /// Forgets the workload changes not taken yet (nobody needs them).
    pub fn discard_workload_changes(&mut self) {
        self.enforcement_dirty.clear();
    }

    /// Every top-level workload now.
    pub fn workloads(&self) -> Vec<Outgoing> {
        self.entries
            .iter()
            .filter(|(_, e)| self.is_top_level(e))
            .filter_map(|(uid, _)| self.outgoing(uid))
            .collect()
    }

    fn forget_pod(&mut self, uid: &str) {
        self.containers.retain(|_, (pod, _)| pod != uid);
        self.pod_ips.retain(|_, pod| pod != uid);
    }

    fn learn_pod(&mut self, uid: &str, pod: &Value) {
        let statuses = ["containerStatuses", "initContainerStatuses"];
        for key in statuses {
            for c in pod
                .pointer(&format!("/status/{key}"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = c.get("containerID").and_then(Value::as_str).unwrap_or("");
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if !id.is_empty() {
                    self.containers.insert(
                        runtime_id(id).to_string(),
                        (uid.to_string(), name.to_string()),
                    );
                }
            }
        }
        // Host-network pods share the node's address: it names no one pod.
        let host_network = pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !host_network {
            let ips = pod
                .pointer("/status/podIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("ip").and_then(Value::as_str))
                .chain(pod.pointer("/status/podIP").and_then(Value::as_str));
            for ip in ips {
                self.pod_ips.insert(ip.to_string(), uid.to_string());
            }
        }
    }

    /// The pod, container and deployment of a container the Collector saw; `pod_hint` is the
    /// pod UID from the cgroup path, used while the pod's status does not list the container yet.
    pub fn container_owner(&self, container_id: &str, pod_hint: &str) -> Option<ContainerOwner> {
        let (pod_uid, container_name) = match self.containers.get(container_id) {
            Some((pod, name)) => (pod.clone(), name.clone()),
            None if !pod_hint.is_empty() => (pod_hint.to_string(), String::new()),
            None => return None,
        };
        let pod = self.entries.get(&pod_uid)?;
        Some(ContainerOwner {
            deployment_id: self.top_level(&pod_uid)?.to_string(),
            pod_name: pod.name.clone(),
            pod_uid,
            container_name,
        })
    }

    /// The deployment a pod IP belongs to.
    /// The workload an address belongs to: a pod's IP, or a Service's cluster IP (the workload
    /// its selector picks; the first, when several match).
    pub fn deployment_of_ip(&self, ip: &str) -> Option<&str> {
        if let Some(pod) = self.pod_ips.get(ip) {
            return self.top_level(pod);
        }
        let svc = self.entries.get(self.service_ips.get(ip)?)?;
        let selector = svc.object.pointer("/spec/selector")?.as_object()?;
        if selector.is_empty() {
            return None;
        }
        let mut pods: Vec<(&String, &Entry)> = self
            .members
            .get(&(Kind::Pod, svc.namespace.clone()))
            .into_iter()
            .flatten()
            .filter_map(|uid| Some((uid, self.entries.get(uid)?)))
            .filter(|(_, e)| {
                e.shape
                    .as_deref()
                    .is_some_and(|shape| labels_match(selector, |k| shape.label(k)))
            })
            .collect();
        pods.sort_by(|a, b| a.0.cmp(b.0));
        pods.first().and_then(|(uid, _)| self.top_level(uid))
    }

    /// (namespace, name) of the pods that roll up to a workload.
    pub fn pods_of(&self, uid: &str) -> Vec<(String, String)> {
        let Some(workload) = self.entries.get(uid) else {
            return Vec::new();
        };
        self.members
            .get(&(Kind::Pod, workload.namespace.clone()))
            .into_iter()
            .flatten()
            .filter(|pod_uid| self.top_level(pod_uid) == Some(uid))
            .filter_map(|pod_uid| self.entries.get(pod_uid))
            .map(|pod| (pod.namespace.clone(), pod.name.clone()))
            .collect()
    }

    /// The kind of an object the index holds.
    pub fn kind_of(&self, uid: &str) -> Option<Kind> {
        self.entries.get(uid).map(|e| e.kind)
    }

    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    fn namespace_members(&self, kind: Kind, namespace: &str) -> impl Iterator<Item = &Entry> {
        self.members
            .get(&(kind, namespace.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|uid| self.entries.get(uid))
    }

    fn context(&self, workload: &Entry) -> Context {
        let empty = PodShape::default();
        let shape = workload.shape.as_deref().unwrap_or(&empty);
        let mut ingress = false;
        let mut egress = false;
        for np in self.namespace_members(Kind::NetworkPolicy, &workload.namespace) {
            let Some(np_spec) = np.object.get("spec") else {
                continue;
            };
            if !selector_matches(np_spec.get("podSelector"), |k| shape.label(k)) {
                continue;
            }
            let (i, e) = policy_types(np_spec);
            ingress |= i;
            egress |= e;
        }
        Context {
            rbac_level: self.rbac_level(workload, &shape.service_account),
            ingress_network_policy: ingress,
            egress_network_policy: egress,
            exposures: self.exposures(workload, shape),
        }
    }

    fn exposures(&self, workload: &Entry, shape: &PodShape) -> Vec<Exposure> {
        let mut out = BTreeMap::new();
        for p in &shape.ports {
            if p.host_port > 0 {
                let e = Exposure {
                    container: p.container.clone(),
                    container_port: p.container_port,
                    protocol: p.protocol.clone(),
                    level: ExposureLevel::Host,
                    service_name: String::new(),
                    service_port: 0,
                    node_port: p.host_port,
                };
                out.insert(
                    (
                        e.level,
                        e.container.clone(),
                        e.container_port,
                        String::new(),
                    ),
                    e,
                );
            }
        }
        for svc in self.namespace_members(Kind::Service, &workload.namespace) {
            let Some(svc_spec) = svc.object.get("spec") else {
                continue;
            };
            // A Service without a selector selects nothing (its endpoints are managed by hand).
            let Some(selector) = svc_spec.get("selector").and_then(Value::as_object) else {
                continue;
            };
            if selector.is_empty() || !labels_match(selector, |k| shape.label(k)) {
                continue;
            }
            let level = match svc_spec
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP")
            {
                "LoadBalancer" => ExposureLevel::External,
                "NodePort" => ExposureLevel::Node,
                "ExternalName" => continue,
                _ => ExposureLevel::Internal,
            };
            for sp in svc_spec
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let service_port = int(sp.get("port"));
                let target = sp.get("targetPort").cloned().unwrap_or(Value::Null);
                for p in &shape.ports {
                    let selected = match &target {
                        Value::Null => p.container_port == service_port,
                        Value::Number(n) => n.as_i64() == Some(i64::from(p.container_port)),
                        Value::String(s) => {
                            p.name == *s || s.parse::<i32>().ok() == Some(p.container_port)
                        }
                        _ => false,
                    };
                    if selected && p.protocol == protocol(sp) {
                        let e = Exposure {
                            container: p.container.clone(),
                            container_port: p.container_port,
                            protocol: p.protocol.clone(),
                            level,
                            service_name: svc.name.clone(),
                            service_port,
                            node_port: int(sp.get("nodePort")),
                        };
                        out.insert(
                            (
                                level,
                                e.container.clone(),
                                p.container_port,
                                svc.name.clone(),
                            ),
                            e,
                        );
                    }
                }
            }
        }
        out.into_values().collect()
    }

    fn rbac_level(&self, workload: &Entry, account: &str) -> RbacLevel {
        let ns = workload.namespace.as_str();
        let binds = |binding: &Value| {
            binding
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|s| {
                    let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
                    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
                    match kind {
                        "ServiceAccount" => {
                            name == account
                                && s.get("namespace").and_then(Value::as_str).unwrap_or(ns) == ns
                        }
                        "Group" => {
                            name == "system:serviceaccounts"
                                || name == format!("system:serviceaccounts:{ns}")
                        }
                        _ => false,
                    }
                })
        };
        let mut level = RbacLevel::Default;
        for crb in self.namespace_members(Kind::ClusterRoleBinding, "") {
            if !binds(&crb.object) {
                continue;
            }
            match self.role_rules(&crb.object, "") {
                Some(rules) if is_admin(rules) => return RbacLevel::ClusterAdmin,
                Some(rules) if !rules.is_empty() => level = RbacLevel::ElevatedClusterWide,
                _ => {}
            }
        }
        if level == RbacLevel::Default {
            for rb in self.namespace_members(Kind::RoleBinding, ns) {
                if binds(&rb.object)
                    && self
                        .role_rules(&rb.object, ns)
                        .is_some_and(|r| !r.is_empty())
                {
                    level = RbacLevel::ElevatedInNamespace;
                    break;
                }
            }
        }
        level
    }

    /// The rules of the role a binding refers to (a RoleBinding may refer to a ClusterRole).
    fn role_rules(&self, binding: &Value, namespace: &str) -> Option<&Vec<Value>> {
        let role_ref = binding.get("roleRef")?;
        let name = role_ref.get("name")?.as_str()?.to_string();
        let uid = match role_ref.get("kind")?.as_str()? {
            "ClusterRole" => self
                .by_name
                .get(&(Kind::ClusterRole, String::new(), name))?,
            "Role" => self
                .by_name
                .get(&(Kind::Role, namespace.to_string(), name))?,
            _ => return None,
        };
        self.entries.get(uid)?.object.get("rules")?.as_array()
    }
}

fn is_admin(rules: &[Value]) -> bool {
    let all = |rule: &Value, field: &str| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|x| x.as_str() == Some("*")))
    };
    rules
        .iter()
        .any(|r| all(r, "verbs") && all(r, "resources") && all(r, "apiGroups"))
}

fn int(v: Option<&Value>) -> i32 {
    v.and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0)
}

fn protocol(port: &Value) -> String {
    port.get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
        .to_string()
}

/// The pod template of a workload (the pod itself for a Pod).
pub fn pod_template(kind: Kind, object: &Value) -> Option<&Value> {
    match kind {
        Kind::Pod => Some(object),
        Kind::CronJob => object
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template"),
        _ => object.get("spec")?.get("template"),
    }
}

fn policy_types(spec: &Value) -> (bool, bool) {
    match spec.get("policyTypes").and_then(Value::as_array) {
        Some(types) => (
            types.iter().any(|t| t.as_str() == Some("Ingress")),
            types.iter().any(|t| t.as_str() == Some("Egress")),
        ),
        // Without policyTypes: Ingress always, Egress when egress rules are given.
        None => (true, spec.get("egress").is_some()),
    }
}

fn labels_match<'a>(
    wanted: &serde_json::Map<String, Value>,
    label: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    wanted
        .iter()
        .all(|(k, v)| v.as_str().is_some_and(|v| label(k) == Some(v)))
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`); empty selects everything.
pub fn selector_matches<'a>(
    selector: Option<&Value>,
    label: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    if let Some(wanted) = selector.get("matchLabels").and_then(Value::as_object)
        && !labels_match(wanted, &label)
    {
        return false;
    }
    let value = |k: &str| label(k);
    selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default()
            {
                "In" => value(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => value(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => value(key).is_some(),
                "DoesNotExist" => value(key).is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests;
