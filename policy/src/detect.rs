//! Deploy-time detection on live objects (Central on ingest, the Sensor for enforcement): a
//! reported Kubernetes object is normalized with the same code as the CLI and evaluated against
//! the enabled deploy-time policies.

use crate::compile::CompiledPolicy;
use crate::manifest::{ObjectBody, objects_from_value};
use crate::{Deployment, EvalContext, LifecycleStage, Outcome, Policy, evaluate};

/// Central detects with the enabled deploy-time policies that have an id (alerts are keyed by it).
fn detects(p: &Policy) -> bool {
    !p.disabled && p.has_stage(LifecycleStage::Deploy) && !p.id.is_empty()
}

#[derive(Debug, Default)]
pub struct Detector {
    policies: Vec<CompiledPolicy>,
}

impl Detector {
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
