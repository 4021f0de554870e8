//! Local detection and backstop enforcement.
//!
//! ```text
//!   Central's policies (PolicySync) ──▶ LocalPolicies (enforced deploy-time set, compiled)
//!   Index workload changes ──▶ Enforcer::observe (pure) ──▶ Decision ──▶ execute (kube API)
//!   EnforcementOrder from Central ─────────────────────────────────────▶ execute
//!                                                      every outcome ──▶ EnforcementReport
//! ```
//!
//! The admission controller is the first line; the Sensor acts behind it when the webhook failed
//! open, was disabled, or the object got in another way. Semantics users can predict (ACS's, made
//! explicit): a workload is enforced when it is *created* violating an enforced deploy-time
//! policy, or when a change makes it violate one it did not violate before. Workloads that were
//! already running when the Sensor started, or when enforcement was switched on for a policy, are
//! reported by Central but not touched — enabling enforcement never scales down a whole cluster.
//! Workloads with the break-glass annotation are never enforced automatically.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rampart_policy::compile::{CompiledPolicy, compile};
use rampart_policy::criteria::Needs;
use rampart_policy::detect::Detector;
use rampart_policy::image_data::ImageData;
use rampart_policy::policy::EnforcementAction;
use rampart_policy::{Outcome, Policy};
use serde_json::{Value, json};

use crate::index::{Context, Kind, Outgoing};

/// Annotations that exempt a workload from automatic enforcement (ACS's is honoured too, so
/// clusters migrating from ACS keep their emergency exceptions).
pub const BREAK_GLASS_ANNOTATIONS: [&str; 2] = [
    "admission.rampart.io/break-glass",
    "admission.stackrox.io/break-glass",
];

/// The node-selector key that no node carries.
pub const NODE_CONSTRAINT_KEY: &str = "BlockedByRampart";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    ScaleToZero,
    UnsatisfiableNodeConstraint,
    KillPod,
}

impl Action {
    /// Every action, kept beside the enum so that a new one is added to both.
    pub const ALL: [Action; 3] = [
        Action::ScaleToZero,
        Action::UnsatisfiableNodeConstraint,
        Action::KillPod,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleToZero => "SCALE_TO_ZERO_ENFORCEMENT",
            Action::UnsatisfiableNodeConstraint => "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT",
            Action::KillPod => "KILL_POD_ENFORCEMENT",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The deploy-time action a policy asks for (scale to zero wins when it lists both).
    pub fn of_policy(policy: &Policy) -> Option<Action> {
        let actions = &policy.enforcement_actions;
        if actions.contains(&EnforcementAction::ScaleToZero) {
            Some(Action::ScaleToZero)
        } else if actions.contains(&EnforcementAction::UnsatisfiableNodeConstraint) {
            Some(Action::UnsatisfiableNodeConstraint)
        } else {
            None
        }
    }
}

/// The policies Central sent, and the enforced deploy-time ones compiled.
#[derive(Debug, Default)]
pub struct LocalPolicies {
    pub revision: String,
    pub count: usize,
    /// Each policy's JSON by id, as Central sent it.
    raw: BTreeMap<String, Vec<u8>>,
    enforced: Detector,
    /// Shared with the Collectors' event path, which takes it per event without copying.
    runtime: std::sync::Arc<[std::sync::Arc<crate::runtime::RuntimePolicy>]>,
}

fn policy_id(raw: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(default)]
        id: String,
    }
    serde_json::from_slice::<Id>(raw)
        .map(|p| p.id)
        .map_err(|e| format!("unreadable policy: {e}"))
}

impl LocalPolicies {
    /// Replaces the set; returns the policies that could not be read or compiled (skipped).
    pub fn replace(&mut self, revision: &str, policies_json: &[Vec<u8>]) -> Vec<String> {
        let mut problems = Vec::new();
        self.raw.clear();
        for raw in policies_json {
            match policy_id(raw) {
                Ok(id) => {
                    self.raw.insert(id, raw.clone());
                }
                Err(e) => problems.push(e),
            }
        }
        self.revision = revision.to_string();
        problems.extend(self.recompile());
        problems
    }

    /// Adds or replaces one policy.
    pub fn upsert(&mut self, revision: &str, policy_json: &[u8]) -> Result<(), String> {
        let id = policy_id(policy_json)?;
        self.raw.insert(id, policy_json.to_vec());
        self.revision = revision.to_string();
        match self.recompile().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every policy as Central sent it.
    pub fn raw_policies(&self) -> Vec<Vec<u8>> {
        self.raw.values().cloned().collect()
    }

    pub fn delete(&mut self, revision: &str, id: &str) {
        self.raw.remove(id);
        self.revision = revision.to_string();
        self.recompile();
    }

    fn recompile(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut compiled: Vec<CompiledPolicy> = Vec::new();
        let mut runtime: Vec<Policy> = Vec::new();
        for raw in self.raw.values() {
            let policy: Policy = match serde_json::from_slice(raw) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("unreadable policy: {e}"));
                    continue;
                }
            };
            if crate::runtime::is_process_policy(&policy) {
                runtime.push(policy);
                continue;
            }
            if !policy.enforces_at_deploy() {
                continue;
            }
            match compile(&policy) {
                Ok(c) => compiled.push(c),
                Err(errors) => problems.push(format!(
                    "policy '{}' does not compile: {}",
                    policy.name,
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            }
        }
        self.count = self.raw.len();
        self.enforced = Detector::from_compiled(&compiled);
        self.runtime = crate::runtime::compile_process_policies(&runtime).into();
        if self.runtime.len() < runtime.len() {
            problems.push(format!(
                "{} runtime policies do not compile",
                runtime.len() - self.runtime.len()
            ));
        }
        problems
    }

    /// The enabled RUNTIME policies with process criteria, compiled.
    pub fn runtime(&self) -> std::sync::Arc<[std::sync::Arc<crate::runtime::RuntimePolicy>]> {
        std::sync::Arc::clone(&self.runtime)
    }

    /// The enabled deploy-time policies with an enforcement action.
    pub fn enforced(&self) -> &Detector {
        &self.enforced
    }
}

/// A workload to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uid: String,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// Replicas before enforcement, when the kind has them.
    pub replicas: Option<i64>,
}

impl Target {
    pub fn of(o: &Outgoing) -> Option<Target> {
        Target::of_value(o, &o.value()?)
    }

    fn of_value(o: &Outgoing, object: &Value) -> Option<Target> {
        let kind = Kind::from_kind(object.get("kind")?.as_str()?)?;
        Some(Target {
            uid: o.id.clone(),
            kind,
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            replicas: object.pointer("/spec/replicas").and_then(Value::as_i64),
        })
    }

    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.name(), self.namespace, self.name)
    }
}

/// One policy to enforce on one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub target: Target,
    pub policy_id: String,
    pub policy_name: String,
    pub action: Action,
}

/// Converts the index's context into what the engine reads.
pub fn cluster_context(c: &Context) -> rampart_policy::ClusterContext {
    rampart_policy::ClusterContext {
        rbac_level: c.rbac_level.as_str().to_string(),
        ingress_network_policy: c.ingress_network_policy,
        egress_network_policy: c.egress_network_policy,
        exposures: c
            .exposures
            .iter()
            .map(|e| rampart_policy::PortExposure {
                container: e.container.clone(),
                container_port: i64::from(e.container_port),
                protocol: e.protocol.clone(),
                level: e.level.as_str().to_string(),
                service_name: e.service_name.clone(),
                node_port: i64::from(e.node_port),
            })
            .collect(),
    }
}

/// Central's findings for the images workloads run, for enforced policies on image data (CVEs,
/// components, image age): each image decoded once per use of this view (a baseline of every
/// workload decodes each image once). An image without findings leaves those criteria
/// unknown, so the Sensor never enforces for want of a scan: a scan may simply be pending.
pub struct Images<'a> {
    store: Option<&'a crate::images::ImageFindingsStore>,
    decoded: std::cell::RefCell<HashMap<String, Option<std::sync::Arc<ImageData>>>>,
}

impl<'a> Images<'a> {
    pub fn of(store: &'a crate::images::ImageFindingsStore) -> Images<'a> {
        Images {
            store: Some(store),
            decoded: Default::default(),
        }
    }

    /// No findings at all.
    pub fn none() -> Images<'static> {
        Images {
            store: None,
            decoded: Default::default(),
        }
    }

    fn get(&self, reference: &str) -> Option<std::sync::Arc<ImageData>> {
        let store = self.store?;
        self.decoded
            .borrow_mut()
            .entry(reference.to_string())
            .or_insert_with(|| store.image_data(reference))
            .clone()
    }
}

/// Whether any of the policies reads image data.
fn reads_image_data(policies: &Detector) -> bool {
    policies.policies().iter().any(policy_reads_image_data)
}

fn policy_reads_image_data(p: &CompiledPolicy) -> bool {
    p.needs.contains(&Needs::ImageData)
}

/// The ids of the enforced policies a workload violates now.
pub fn violated(
    policies: &Detector,
    o: &Outgoing,
    cluster: &str,
    images: &Images<'_>,
) -> BTreeSet<String> {
    if policies.policies().is_empty() {
        return BTreeSet::new();
    }
    o.value()
        .map(|v| violated_value(policies, o, v, cluster, images))
        .unwrap_or_default()
}

fn violated_value(
    policies: &Detector,
    o: &Outgoing,
    object: Value,
    cluster: &str,
    images: &Images<'_>,
) -> BTreeSet<String> {
    let Some(mut deployment) = Detector::normalize(object, &o.namespace) else {
        return BTreeSet::new();
    };
    deployment.cluster = o.context.as_ref().map(cluster_context);
    if reads_image_data(policies) {
        for c in &mut deployment.containers {
            c.image_data = images.get(&c.image.full_name);
        }
    }
    policies
        .evaluate(&deployment, cluster)
        .into_iter()
        .filter(|(_, outcome)| matches!(outcome, Outcome::Violated(_)))
        .map(|(p, _)| p.policy.id.clone())
        .collect()
}

pub fn has_break_glass(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| BREAK_GLASS_ANNOTATIONS.iter().any(|k| a.contains_key(*k)))
}

/// Decides what to enforce from the changes it observes; pure.
#[derive(Debug, Default)]
pub struct Enforcer {
    /// Enforced policies each known workload violated when last seen.
    seen: HashMap<String, BTreeSet<String>>,
    armed: bool,
    /// Namespaces never enforced in ([`rampart_policy::SYSTEM_NAMESPACES`] by default).
    pub exempt_namespaces: Vec<String>,
    /// Enforcements not carried out because of the break-glass annotation.
    pub break_glass_skips: u64,
    /// Enforcements not carried out because the workload is in an exempt namespace.
    pub exempt_skips: u64,
}

impl Enforcer {
    /// An enforcer that never acts in `namespaces`.
    pub fn exempting(namespaces: Vec<String>) -> Enforcer {
        Enforcer {
            exempt_namespaces: namespaces,
            ..Enforcer::default()
        }
    }

    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Records what the given workloads violate without acting, and acts on changes from now on
    /// (called once the Sensor's picture is complete, and again when the policies change).
    pub fn baseline<'a>(
        &mut self,
        policies: &Detector,
        workloads: impl IntoIterator<Item = &'a Outgoing>,
        cluster: &str,
        images: &Images<'_>,
    ) {
        if policies.policies().is_empty() {
            // Nothing violated is remembered; the next set of enforced policies takes its own
            // baseline of every workload.
            self.seen.clear();
        }
        for o in workloads {
            self.seen
                .insert(o.id.clone(), violated(policies, o, cluster, images));
        }
        self.armed = true;
    }

    /// A workload changed (`None`: it is gone). Returns what to enforce.
    pub fn observe(
        &mut self,
        policies: &Detector,
        uid: &str,
        workload: Option<&Outgoing>,
        cluster: &str,
        images: &Images<'_>,
    ) -> Vec<Decision> {
        let Some(o) = workload else {
            self.seen.remove(uid);
            return Vec::new();
        };
        let value = if policies.policies().is_empty() {
            None
        } else {
            o.value()
        };
        let now = value
            .clone()
            .map(|v| violated_value(policies, o, v, cluster, images))
            .unwrap_or_default();
        let before = self.seen.insert(uid.to_string(), now.clone());
        if !self.armed {
            return Vec::new();
        }
        // A violation of a policy on image data counts at a creation only: on a change it may
        // come from findings that arrived since the workload was last seen (a scan done, new
        // vulnerability data), not from the change, and a running workload is not scaled down
        // for that.
        let new: Vec<&String> = match &before {
            None => now.iter().collect(),
            Some(before) => now
                .difference(before)
                .filter(|id| {
                    policies
                        .policies()
                        .iter()
                        .find(|p| &&p.policy.id == id)
                        .is_some_and(|p| !policy_reads_image_data(p))
                })
                .collect(),
        };
        if new.is_empty() {
            return Vec::new();
        }
        let Some(value) = value else {
            return Vec::new();
        };
        let Some(target) = Target::of_value(o, &value) else {
            return Vec::new();
        };
        if has_break_glass(&value) {
            tracing::warn!(workload = %target.describe(), policies = ?new, "break-glass annotation: not enforcing");
            self.break_glass_skips += 1;
            return Vec::new();
        }
        if self.exempt_namespaces.contains(&target.namespace) {
            tracing::info!(workload = %target.describe(), policies = ?new, "exempt namespace: not enforcing");
            self.exempt_skips += 1;
            return Vec::new();
        }
        policies
            .policies()
            .iter()
            .filter(|p| new.contains(&&p.policy.id))
            .filter_map(|p| {
                Some(Decision {
                    target: target.clone(),
                    policy_id: p.policy.id.clone(),
                    policy_name: p.policy.name.clone(),
                    action: Action::of_policy(&p.policy)?,
                })
            })
            .collect()
    }
}

/// One API call that carries out an action on a workload.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `PATCH .../{name}/scale` with this body (merge patch).
    PatchScale(Value),
    /// Merge patch on the object itself.
    Patch(Value),
    DeletePod {
        namespace: String,
        name: String,
    },
    Delete,
}

/// What executing `action` on `target` means, per kind; pure. Kinds without replicas fall back
/// to what stops them from running: a DaemonSet gets the node constraint, a Job zero
/// parallelism, a CronJob is suspended, a bare Pod is deleted.
pub fn plan(
    target: &Target,
    action: Action,
    policy_id: &str,
    pods: &[(String, String)],
) -> Vec<Operation> {
    let node_selector = |path: &[&str]| {
        let mut v = json!({ NODE_CONSTRAINT_KEY: policy_id });
        v = json!({ "nodeSelector": v });
        for key in path.iter().rev() {
            v = json!({ *key: v });
        }
        Operation::Patch(v)
    };
    match (action, target.kind) {
        (Action::KillPod, Kind::Pod) => vec![Operation::Delete],
        (Action::KillPod, _) => pods
            .iter()
            .map(|(namespace, name)| Operation::DeletePod {
                namespace: namespace.clone(),
                name: name.clone(),
            })
            .collect(),
        (_, Kind::Pod) => vec![Operation::Delete],
        (
            Action::ScaleToZero,
            Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet | Kind::ReplicationController,
        ) => vec![Operation::PatchScale(json!({"spec": {"replicas": 0}}))],
        (Action::ScaleToZero, Kind::Job) => {
            vec![Operation::Patch(json!({"spec": {"parallelism": 0}}))]
        }
        (Action::ScaleToZero, Kind::CronJob) => {
            vec![Operation::Patch(json!({"spec": {"suspend": true}}))]
        }
        (_, Kind::CronJob) => vec![node_selector(&[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "spec",
        ])],
        (_, _) => vec![node_selector(&["spec", "template", "spec"])],
    }
}

/// What a successful action did, in words for the alert.
pub fn describe_outcome(target: &Target, action: Action, policy_name: &str) -> String {
    let what = target.describe();
    match (action, target.kind) {
        (Action::KillPod, Kind::Pod) | (_, Kind::Pod) => {
            format!("{what} deleted (policy '{policy_name}')")
        }
        (Action::KillPod, _) => format!("pods of {what} deleted (policy '{policy_name}')"),
        (
            Action::ScaleToZero,
            Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet | Kind::ReplicationController,
        ) => match target.replicas {
            Some(n) => format!("{what} scaled from {n} to 0 replicas (policy '{policy_name}')"),
            None => format!("{what} scaled to 0 replicas (policy '{policy_name}')"),
        },
        (Action::ScaleToZero, Kind::Job) => {
            format!("{what} set to parallelism 0 (policy '{policy_name}')")
        }
        (Action::ScaleToZero, Kind::CronJob) => {
            format!("{what} suspended (policy '{policy_name}')")
        }
        _ => format!(
            "{what} given the node selector {NODE_CONSTRAINT_KEY} that no node matches (policy '{policy_name}')"
        ),
    }
}

#[cfg(test)]
mod tests;
