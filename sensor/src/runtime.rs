//! Runtime detection in the Sensor: every process a Collector reports is evaluated against the
//! enabled RUNTIME policies with process criteria, in the deployment and container that ran it.
//!
//! ```text
//!   Collector ProcessEvent ─▶ nodes (container → deployment) ─▶ Detector::on_process
//!        deployment normalized once per content hash ─┘   │ violated policies
//!                                      AlertResults (RUNTIME) ─▶ outbox ─▶ Central (merge)
//!                     kill-pod policies ─▶ kill queue ─▶ act (delete the pod) ─▶ report
//! ```
//!
//! What is sent is deduplicated: a violation already reported (same deployment, policy,
//! container, program and arguments) is not sent again for `REPEAT_AFTER` — Central has it.
//! After that a repeat is sent again, so an alert a person resolved comes back if the process
//! keeps running (Central merges repeats into the active alert).
//! A kill-pod policy kills every pod that violates it, repeats included. Workloads with the
//! break-glass annotation are reported, never killed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rampart_policy::compile::{CompiledPolicy, compile};
use rampart_policy::criteria::{Field, Target};
use rampart_policy::detect::Detector as Normalizer;
use rampart_policy::policy::EnforcementAction;
use rampart_policy::{Deployment, EvalContext, Outcome, Policy, ProcessEvent, RuntimeEvent};
use rampart_proto::v1::{Alert, AlertResults, LifecycleStage, ProcessIndicator, Violation};

use crate::index::Outgoing;

/// Violations remembered as already sent.
const REMEMBERED: usize = 16_384;
/// How long a sent violation suppresses its repeats.
pub const REPEAT_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
/// Normalized deployments kept (a cluster's workloads; beyond it the cache starts over).
const CACHED_DEPLOYMENTS: usize = 100_000;

/// An enabled RUNTIME policy with process criteria, compiled.
#[derive(Debug)]
pub struct RuntimePolicy {
    pub compiled: CompiledPolicy,
    pub kill_pod: bool,
}

/// Whether a policy is evaluated on processes: enabled, RUNTIME, with a process criterion.
pub fn is_process_policy(p: &Policy) -> bool {
    !p.disabled
        && p.has_stage(rampart_policy::LifecycleStage::Runtime)
        && p.policy_sections.iter().any(|s| {
            s.policy_groups.iter().any(|g| {
                rampart_policy::criteria::lookup(&g.field_name).is_some_and(|c| {
                    c.target == Target::Event
                        && matches!(
                            c.field,
                            Field::ProcessName
                                | Field::ProcessArguments
                                | Field::ProcessAncestor
                                | Field::ProcessUid
                                | Field::UnexpectedProcessExecuted
                        )
                })
            })
        })
}

/// Compiles the process policies of a set (the others are skipped; compile errors are the
/// policy set's problems, reported where it is received).
pub fn compile_process_policies(policies: &[Policy]) -> Vec<Arc<RuntimePolicy>> {
    policies
        .iter()
        .filter(|p| is_process_policy(p))
        .filter_map(|p| {
            compile(p).ok().map(|compiled| {
                Arc::new(RuntimePolicy {
                    kill_pod: p.enforcement_actions.contains(&EnforcementAction::KillPod),
                    compiled,
                })
            })
        })
        .collect()
}

/// A pod to delete because a process in it violated a kill-pod policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillRequest {
    pub deployment_id: String,
    pub namespace: String,
    pub pod: String,
    pub policy_id: String,
    pub policy_name: String,
}

/// What one process caused.
#[derive(Debug, Default, PartialEq)]
pub struct Detection {
    /// New violations for Central (`None`: nothing new to say).
    pub results: Option<AlertResults>,
    pub kills: Vec<KillRequest>,
    /// Kills not requested because the workload carries the break-glass annotation.
    pub break_glass_skips: u64,
    /// Kills not carried out because the pod is in an exempt namespace.
    pub exempt_skips: u64,
}

#[derive(Debug)]
struct Cached {
    content_hash: u64,
    deployment: Option<Arc<Deployment>>,
    break_glass: bool,
}

/// The Sensor's runtime detector: normalized deployments and the violations already sent.
#[derive(Debug)]
pub struct Detector {
    deployments: HashMap<String, Cached>,
    /// User-locked baselines: deployment → container → executables.
    locked: HashMap<String, HashMap<String, HashSet<String>>>,
    /// Sent violations and when they were last sent.
    sent: HashMap<u64, std::time::Instant>,
    sent_order: VecDeque<u64>,
    /// How long a sent violation suppresses its repeats (`REPEAT_AFTER`).
    pub repeat_after: std::time::Duration,
    /// Processes evaluated, and policies they violated.
    pub evaluated: u64,
    pub violations: u64,
    /// Namespaces whose pods are never killed (the Sensor's exempt namespaces).
    pub exempt_namespaces: Vec<String>,
}

impl Default for Detector {
    fn default() -> Detector {
        Detector {
            deployments: HashMap::new(),
            locked: HashMap::new(),
            sent: HashMap::new(),
            sent_order: VecDeque::new(),
            repeat_after: REPEAT_AFTER,
            evaluated: 0,
            violations: 0,
            exempt_namespaces: Vec::new(),
        }
    }
}

fn violation_key(deployment: &str, policy: &str, e: &ProcessEvent) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        deployment,
        policy,
        &e.container_name,
        &e.exec_file_path,
        &e.args,
    )
        .hash(&mut h);
    h.finish()
}

impl Detector {
    /// A detector that never kills pods in `namespaces`.
    pub fn exempting(namespaces: Vec<String>) -> Detector {
        Detector {
            exempt_namespaces: namespaces,
            ..Detector::default()
        }
    }

    /// Replaces the user-locked baselines (Central sends them whole).
    pub fn set_locked_baselines(&mut self, baselines: Vec<rampart_proto::v1::LockedBaseline>) {
        self.locked.clear();
        for b in baselines {
            self.locked
                .entry(b.deployment_id)
                .or_default()
                .insert(b.container_name, b.exec_file_paths.into_iter().collect());
        }
    }

    /// The executables of a container's user-locked baseline, when it has one.
    pub fn locked_paths(&self, deployment: &str, container: &str) -> Option<Vec<String>> {
        self.locked
            .get(deployment)
            .and_then(|containers| containers.get(container))
            .map(|paths| {
                let mut v: Vec<String> = paths.iter().cloned().collect();
                v.sort();
                v
            })
    }

    /// The process's container has a user-locked baseline that lacks its executable.
    fn outside_locked_baseline(&self, p: &ProcessIndicator) -> bool {
        self.locked
            .get(&p.deployment_id)
            .and_then(|containers| containers.get(&p.container_name))
            .is_some_and(|paths| !paths.contains(&p.exec_file_path))
    }

    /// The deployment as the engine sees it, normalized once per content hash.
    fn deployment(&mut self, o: &Outgoing) -> (Option<Arc<Deployment>>, bool) {
        if let Some(c) = self.deployments.get(&o.id)
            && c.content_hash == o.content_hash
        {
            return (c.deployment.clone(), c.break_glass);
        }
        if self.deployments.len() >= CACHED_DEPLOYMENTS {
            self.deployments.clear();
        }
        let value = o.value();
        let break_glass = value.as_ref().is_some_and(crate::enforce::has_break_glass);
        let deployment = value
            .and_then(|v| Normalizer::normalize(v, &o.namespace))
            .map(|mut d| {
                d.cluster = o.context.as_ref().map(crate::enforce::cluster_context);
                Arc::new(d)
            });
        self.deployments.insert(
            o.id.clone(),
            Cached {
                content_hash: o.content_hash,
                deployment: deployment.clone(),
                break_glass,
            },
        );
        (deployment, break_glass)
    }

    /// Evaluates one process of the deployment `o` (the top-level workload that owns its pod).
    pub fn on_process(
        &mut self,
        policies: &[Arc<RuntimePolicy>],
        o: &Outgoing,
        process: &ProcessIndicator,
        cluster: &str,
        revision: &str,
    ) -> Detection {
        let mut detection = Detection::default();
        if policies.is_empty() {
            return detection;
        }
        let (Some(deployment), break_glass) = self.deployment(o) else {
            return detection;
        };
        self.evaluated += 1;
        let event = ProcessEvent {
            container_name: process.container_name.clone(),
            name: process.name.clone(),
            exec_file_path: process.exec_file_path.clone(),
            args: process.args.clone(),
            uid: process.uid,
            lineage: process.lineage.clone(),
            outside_locked_baseline: self.outside_locked_baseline(process),
        };
        let ctx = EvalContext {
            cluster: Some(cluster),
            ..EvalContext::default()
        };
        let mut alerts = Vec::new();
        for p in policies {
            let Outcome::Violated(messages) = rampart_policy::evaluate_event(
                &p.compiled,
                &deployment,
                RuntimeEvent::Process(&event),
                &ctx,
            ) else {
                continue;
            };
            self.violations += 1;
            let policy = &p.compiled.policy;
            let exempt = self.exempt_namespaces.contains(&o.namespace);
            let kill = p.kill_pod && !break_glass && !exempt;
            if p.kill_pod && break_glass {
                detection.break_glass_skips += 1;
            } else if p.kill_pod && exempt {
                detection.exempt_skips += 1;
            }
            if kill {
                detection.kills.push(KillRequest {
                    deployment_id: o.id.clone(),
                    namespace: o.namespace.clone(),
                    pod: process.pod_id.clone(),
                    policy_id: policy.id.clone(),
                    policy_name: policy.name.clone(),
                });
            }
            let key = violation_key(&o.id, &policy.id, &event);
            if !self.remember(key) && !kill {
                continue; // Central has this one already
            }
            alerts.push(Alert {
                policy_id: policy.id.clone(),
                violations: vec![Violation {
                    message: messages.join("; "),
                    attributes: [
                        ("container", process.container_name.as_str()),
                        ("pod", process.pod_id.as_str()),
                        ("exec_file_path", process.exec_file_path.as_str()),
                        ("args", process.args.as_str()),
                        ("uid", &process.uid.to_string()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                    time_unix_ms: process.time_unix_ms,
                }],
                enforcement_action: if kill {
                    "KILL_POD_ENFORCEMENT".into()
                } else {
                    String::new()
                },
                enforcement_message: if kill {
                    format!("pod {} is deleted", process.pod_id)
                } else {
                    String::new()
                },
                attempted: false,
            });
        }
        if !alerts.is_empty() {
            detection.results = Some(AlertResults {
                deployment_id: o.id.clone(),
                stage: LifecycleStage::Runtime as i32,
                alerts,
                policy_revision: revision.to_string(),
            });
        }
        detection
    }

    /// Remembers a sent violation; false when it was sent less than `repeat_after` ago.
    fn remember(&mut self, key: u64) -> bool {
        let now = std::time::Instant::now();
        if let Some(at) = self.sent.get_mut(&key) {
            if now.duration_since(*at) < self.repeat_after {
                return false;
            }
            *at = now;
            return true;
        }
        self.sent.insert(key, now);
        self.sent_order.push_back(key);
        if self.sent_order.len() > REMEMBERED
            && let Some(old) = self.sent_order.pop_front()
        {
            self.sent.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests;
