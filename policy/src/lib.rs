//! Rampart's domain model and policy engine. Pure: no IO, no clocks read implicitly, no network.
//!
//! ```text
//!  manifest text ─▶ manifest::parse_text ─▶ Workload ─▶ Deployment::from_workload ─▶ Deployment
//!                                                                                       │
//!  ACS policy JSON ─▶ policy::parse_policies ─▶ compile::compile ─▶ CompiledPolicy ─────┤
//!                                                                                       ▼
//!                                                         engine::evaluate ─▶ Outcome per policy
//! ```
//!
//! The same engine runs in the CLI, Central, the Sensor and the admission controller.

pub mod check;
pub mod compile;
pub mod criteria;
pub mod defaults;
pub mod deployment;
pub mod detect;
pub mod engine;
pub mod image;
pub mod image_data;
pub mod manifest;
pub mod netpol;
pub mod policy;
pub mod quantity;
pub mod risk;
pub mod scan;
mod text;
pub mod workload;
pub mod yaml;

pub use compile::{CompiledPolicy, ValidationError, compile};
pub use deployment::{ClusterContext, Container, Deployment, PortExposure, Workload, WorkloadKind};
pub use engine::{
    EvalContext, KubeEvent, Outcome, ProcessEvent, RuntimeEvent, can_violate_without_image_data,
    evaluate, evaluate_event, violations,
};
pub use policy::{LifecycleStage, Policy, Severity};

/// Namespaces Rampart never enforces in unless configured otherwise: the control plane's and
/// Rampart's own. The admission controller does not evaluate them, and the Sensor's automatic
/// enforcement (scale-down, pod kills) passes them by, so that the two agree: what the webhook
/// admitted there is not scaled down behind it, and Rampart never disables the cluster's
/// system workloads or itself. Violations there are still reported.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "rampart"];
