//! Deploy-time detection in Central: a Sensor-reported Kubernetes object is normalized with the
//! same code as the CLI and evaluated against the enabled deploy-time policies.

use rampart_policy::compile::{CompiledPolicy, compile};
use rampart_policy::manifest::{ObjectBody, objects_from_value};
use rampart_policy::{Deployment, EvalContext, LifecycleStage, Outcome, Policy, evaluate};

/// Central detects with the enabled deploy-time policies that have an id (alerts are keyed by it).
fn detects(p: &Policy) -> bool {
    !p.disabled && p.has_stage(LifecycleStage::Deploy) && !p.id.is_empty()
}

#[derive(Debug, Default)]
pub struct Detector {
    policies: Vec<CompiledPolicy>,
}

impl Detector {
    /// Keeps the enabled policies with the DEPLOY stage (and an id, which alerts are keyed by);
    /// policies that do not compile are skipped and logged.
    pub fn new(policies: &[Policy]) -> Detector {
        let policies = policies
            .iter()
            .filter(|p| detects(p))
            .filter_map(|p| match compile(p) {
                Ok(c) => Some(c),
                Err(errors) => {
                    tracing::warn!(policy = %p.name, ?errors, "policy does not compile; not evaluated");
                    None
                }
            })
            .collect();
        Detector { policies }
    }

    /// Keeps the enabled deploy-time policies (with an id) of an already compiled set.
    pub fn from_compiled(compiled: &[CompiledPolicy]) -> Detector {
        Detector {
            policies: compiled
                .iter()
                .filter(|c| detects(&c.policy))
                .cloned()
                .collect(),
        }
    }

    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    /// Normalizes a workload object; `None` when it is not a workload Rampart understands.
    pub fn normalize(object: serde_json::Value, namespace: &str) -> Option<Deployment> {
        let parsed = objects_from_value(object, 1, 1);
        parsed.objects.into_iter().find_map(|o| match o.body {
            ObjectBody::Workload(w) => Some(Deployment::from_workload(&w, namespace)),
            _ => None,
        })
    }

    /// Evaluates every deploy-time policy.
    pub fn evaluate<'a>(
        &'a self,
        deployment: &Deployment,
        cluster: &str,
    ) -> Vec<(&'a CompiledPolicy, Outcome)> {
        let ctx = EvalContext {
            cluster: Some(cluster),
            ..EvalContext::default()
        };
        self.policies
            .iter()
            .map(|p| (p, evaluate(p, deployment, &ctx)))
            .collect()
    }
}
