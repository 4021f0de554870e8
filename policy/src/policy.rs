//! The policy model, wire-compatible with ACS policy JSON (proto3 JSON, camelCase).
//!
//! A policy exported from StackRox loads unchanged: every key ACS writes is known here, unknown
//! keys are refused with their name, and serializing gives back the same document (fields ACS
//! omits when empty are omitted here too).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LifecycleStage {
    #[serde(rename = "DEPLOY")]
    Deploy,
    #[serde(rename = "BUILD")]
    Build,
    #[serde(rename = "RUNTIME")]
    Runtime,
}

impl LifecycleStage {
    /// The name ACS's JSON gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Deploy => "DEPLOY",
            LifecycleStage::Build => "BUILD",
            LifecycleStage::Runtime => "RUNTIME",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum Severity {
    #[default]
    #[serde(rename = "UNSET_SEVERITY")]
    Unset,
    #[serde(rename = "LOW_SEVERITY")]
    Low,
    #[serde(rename = "MEDIUM_SEVERITY")]
    Medium,
    #[serde(rename = "HIGH_SEVERITY")]
    High,
    #[serde(rename = "CRITICAL_SEVERITY")]
    Critical,
}

impl Severity {
    /// `LOW`, `MEDIUM`, ... as users type them.
    pub fn short(self) -> &'static str {
        match self {
            Severity::Unset => "UNSET",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// `HIGH_SEVERITY`, as ACS JSON writes it.
    pub fn as_acs(self) -> &'static str {
        match self {
            Severity::Unset => "UNSET_SEVERITY",
            Severity::Low => "LOW_SEVERITY",
            Severity::Medium => "MEDIUM_SEVERITY",
            Severity::High => "HIGH_SEVERITY",
            Severity::Critical => "CRITICAL_SEVERITY",
        }
    }

    pub fn parse_short(s: &str) -> Option<Severity> {
        let upper = s.trim().to_ascii_uppercase();
        let upper = upper.strip_suffix("_SEVERITY").unwrap_or(&upper);
        match upper {
            "UNSET" => Some(Severity::Unset),
            "LOW" => Some(Severity::Low),
            "MEDIUM" => Some(Severity::Medium),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EnforcementAction {
    #[serde(rename = "UNSET_ENFORCEMENT")]
    Unset,
    #[serde(rename = "SCALE_TO_ZERO_ENFORCEMENT")]
    ScaleToZero,
    #[serde(rename = "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT")]
    UnsatisfiableNodeConstraint,
    #[serde(rename = "KILL_POD_ENFORCEMENT")]
    KillPod,
    #[serde(rename = "FAIL_BUILD_ENFORCEMENT")]
    FailBuild,
    #[serde(rename = "FAIL_KUBE_REQUEST_ENFORCEMENT")]
    FailKubeRequest,
    #[serde(rename = "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT")]
    FailDeploymentCreate,
    #[serde(rename = "FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT")]
    FailDeploymentUpdate,
}

impl EnforcementAction {
    /// The name ACS's JSON gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Unset => "UNSET_ENFORCEMENT",
            EnforcementAction::ScaleToZero => "SCALE_TO_ZERO_ENFORCEMENT",
            EnforcementAction::UnsatisfiableNodeConstraint => {
                "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT"
            }
            EnforcementAction::KillPod => "KILL_POD_ENFORCEMENT",
            EnforcementAction::FailBuild => "FAIL_BUILD_ENFORCEMENT",
            EnforcementAction::FailKubeRequest => "FAIL_KUBE_REQUEST_ENFORCEMENT",
            EnforcementAction::FailDeploymentCreate => "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT",
            EnforcementAction::FailDeploymentUpdate => "FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT",
        }
    }

    pub fn stage(self) -> Option<LifecycleStage> {
        match self {
            EnforcementAction::Unset => None,
            EnforcementAction::FailBuild => Some(LifecycleStage::Build),
            EnforcementAction::ScaleToZero
            | EnforcementAction::UnsatisfiableNodeConstraint
            | EnforcementAction::FailDeploymentCreate
            | EnforcementAction::FailDeploymentUpdate => Some(LifecycleStage::Deploy),
            EnforcementAction::KillPod | EnforcementAction::FailKubeRequest => {
                Some(LifecycleStage::Runtime)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum EventSource {
    #[default]
    #[serde(rename = "NOT_APPLICABLE")]
    NotApplicable,
    #[serde(rename = "DEPLOYMENT_EVENT")]
    DeploymentEvent,
    #[serde(rename = "AUDIT_LOG_EVENT")]
    AuditLogEvent,
    #[serde(rename = "NODE_EVENT")]
    NodeEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum BooleanOperator {
    #[default]
    #[serde(rename = "OR")]
    Or,
    #[serde(rename = "AND")]
    And,
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyValue {
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyGroup {
    pub field_name: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub boolean_operator: BooleanOperator,
    #[serde(default, skip_serializing_if = "is_default")]
    pub negate: bool,
    #[serde(default)]
    pub values: Vec<PolicyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySection {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub section_name: String,
    #[serde(default)]
    pub policy_groups: Vec<PolicyGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelMatch {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_label: Option<LabelMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_label: Option<LabelMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionDeployment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionImage {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exclusion {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<ExclusionDeployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ExclusionImage>,
    /// RFC 3339 timestamp after which the exclusion no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MitreAttackVector {
    #[serde(default)]
    pub tactic: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluationFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_container_types: Vec<String>,
}

/// One policy, as ACS writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rationale: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remediation: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default)]
    pub lifecycle_stages: Vec<LifecycleStage>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub event_source: EventSource,
    /// `whitelists` is the pre-1.1 name of the same list.
    #[serde(default, alias = "whitelists", skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<Exclusion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<Scope>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enforcement_actions: Vec<EnforcementAction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifiers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(default, rename = "SORTName", skip_serializing_if = "String::is_empty")]
    pub sort_name: String,
    #[serde(
        default,
        rename = "SORTLifecycleStage",
        skip_serializing_if = "String::is_empty"
    )]
    pub sort_lifecycle_stage: String,
    #[serde(
        default,
        rename = "SORTEnforcement",
        skip_serializing_if = "is_default"
    )]
    pub sort_enforcement: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_version: String,
    #[serde(default)]
    pub policy_sections: Vec<PolicySection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre_attack_vectors: Vec<MitreAttackVector>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub criteria_locked: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub mitre_vectors_locked: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub is_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_filter: Option<EvaluationFilter>,
}

impl Policy {
    pub fn has_stage(&self, stage: LifecycleStage) -> bool {
        self.lifecycle_stages.contains(&stage)
    }

    /// Deploy-time enforcement: the policy breaks a `deployment check` and is enforced by the
    /// admission controller.
    pub fn enforces_at_deploy(&self) -> bool {
        self.enforcement_actions.iter().any(|a| {
            matches!(
                a,
                EnforcementAction::ScaleToZero | EnforcementAction::UnsatisfiableNodeConstraint
            )
        })
    }

    pub fn enforces_at_build(&self) -> bool {
        self.enforcement_actions
            .contains(&EnforcementAction::FailBuild)
    }

    /// A runtime policy on Kubernetes events (exec, attach, port-forward): one whose section
    /// tests Kubernetes Resource, on deployment events. The admission controller decides these
    /// requests; enforcing such a policy refuses them.
    pub fn tests_kube_events(&self) -> bool {
        self.has_stage(LifecycleStage::Runtime)
            && self.event_source == EventSource::DeploymentEvent
            && self.policy_sections.iter().any(|s| {
                s.policy_groups
                    .iter()
                    .any(|g| g.field_name.eq_ignore_ascii_case("Kubernetes Resource"))
            })
    }

    /// The action that enforces the policy at `stage` when none is named, as ACS's policy
    /// editor sets it: fail the build; scale the deployment to zero (which the admission
    /// controller turns into a refusal of the request); refuse the Kubernetes request for an
    /// event policy, or kill the pod for a process or network one.
    pub fn usual_enforcement(&self, stage: LifecycleStage) -> EnforcementAction {
        match stage {
            LifecycleStage::Build => EnforcementAction::FailBuild,
            LifecycleStage::Deploy => EnforcementAction::ScaleToZero,
            LifecycleStage::Runtime if self.tests_kube_events() => {
                EnforcementAction::FailKubeRequest
            }
            LifecycleStage::Runtime => EnforcementAction::KillPod,
        }
    }

    /// The stages the policy is enforced at, in its own order of stages.
    pub fn enforced_stages(&self) -> Vec<LifecycleStage> {
        self.lifecycle_stages
            .iter()
            .copied()
            .filter(|stage| {
                self.enforcement_actions
                    .iter()
                    .any(|a| a.stage() == Some(*stage))
            })
            .collect()
    }

    /// Enforces the policy at `stage` (an action of that stage it has is kept, else the usual
    /// one is added) or stops enforcing it there (its actions of that stage removed). A stage
    /// the policy does not have cannot be enforced: the error says which it has.
    pub fn set_enforced(&mut self, stage: LifecycleStage, enforced: bool) -> Result<(), String> {
        if enforced && !self.has_stage(stage) {
            let stages: Vec<&str> = self.lifecycle_stages.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "'{}' has no {} stage to enforce (its stages: {})",
                self.name,
                stage.as_str(),
                if stages.is_empty() {
                    "none".to_string()
                } else {
                    stages.join(", ")
                }
            ));
        }
        let has = self
            .enforcement_actions
            .iter()
            .any(|a| a.stage() == Some(stage));
        if enforced && !has {
            let usual = self.usual_enforcement(stage);
            self.enforcement_actions.push(usual);
        } else if !enforced {
            self.enforcement_actions
                .retain(|a| a.stage().is_some_and(|s| s != stage));
        }
        Ok(())
    }

    /// Why `actions` cannot be this policy's: an action of a stage it does not have, or
    /// `UNSET_ENFORCEMENT`.
    pub fn check_enforcement(&self, actions: &[EnforcementAction]) -> Result<(), String> {
        for a in actions {
            match a.stage() {
                None => return Err(format!("{} is not an enforcement action", a.as_str())),
                Some(stage) if !self.has_stage(stage) => {
                    return Err(format!(
                        "{} enforces the {} stage, which '{}' does not have",
                        a.as_str(),
                        stage.as_str(),
                        self.name
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The policy name as a lower-case slug: `Latest tag` → `latest-tag`.
    pub fn slug(&self) -> String {
        slugify(&self.name)
    }
}

/// Lower-case, ASCII alphanumerics kept, everything else collapsed to single dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// The `{"policies": [...]}` envelope ACS exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyList {
    pub policies: Vec<Policy>,
}

/// Why a policy document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid policy JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
}

/// Reads one policy or a `{"policies": [...]}` export.
pub fn parse_policies(text: &str) -> Result<Vec<Policy>, LoadError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    let result = if value
        .get("policies")
        .is_some_and(serde_json::Value::is_array)
    {
        serde_json::from_str::<PolicyList>(text).map(|l| l.policies)
    } else {
        serde_json::from_str::<Policy>(text).map(|p| vec![p])
    };
    result.map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> LoadError {
    let message = e.to_string();
    // serde_json appends " at line X column Y"; the position is reported separately.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.clone(), |(m, _)| m.to_string());
    LoadError::Json {
        line: e.line(),
        column: e.column(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Latest tag"), "latest-tag");
        assert_eq!(
            slugify(
                "Docker CIS 5.9 and 5.20: Ensure that the host's network namespace is not shared"
            ),
            "docker-cis-5-9-and-5-20-ensure-that-the-host-s-network-namespace-is-not-shared"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse_policies(
            r#"{"name": "x", "lifecycleStages": ["DEPLOY"], "sevrity": "LOW_SEVERITY"}"#,
        )
        .expect_err("typo");
        assert!(err.to_string().contains("unknown field `sevrity`"), "{err}");
    }

    fn policy(json: &str) -> Policy {
        parse_policies(json).expect("policy").remove(0)
    }

    #[test]
    fn enforcing_a_stage_adds_its_usual_action_and_keeps_a_chosen_one() {
        let mut p = policy(r#"{"name": "p", "lifecycleStages": ["BUILD", "DEPLOY"]}"#);
        p.set_enforced(LifecycleStage::Deploy, true)
            .expect("deploy");
        assert_eq!(p.enforcement_actions, [EnforcementAction::ScaleToZero]);
        assert_eq!(p.enforced_stages(), [LifecycleStage::Deploy]);
        // Again: nothing added twice.
        p.set_enforced(LifecycleStage::Deploy, true)
            .expect("deploy");
        p.set_enforced(LifecycleStage::Build, true).expect("build");
        assert_eq!(
            p.enforcement_actions,
            [EnforcementAction::ScaleToZero, EnforcementAction::FailBuild]
        );
        // A deploy-time action chosen by hand (refuse creates only) stays as it is.
        let mut creates = policy(
            r#"{"name": "c", "lifecycleStages": ["DEPLOY"],
                "enforcementActions": ["FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"]}"#,
        );
        creates
            .set_enforced(LifecycleStage::Deploy, true)
            .expect("deploy");
        assert_eq!(
            creates.enforcement_actions,
            [EnforcementAction::FailDeploymentCreate]
        );
        // Off removes every action of that stage and no other.
        p.set_enforced(LifecycleStage::Deploy, false).expect("off");
        assert_eq!(p.enforcement_actions, [EnforcementAction::FailBuild]);
        assert_eq!(p.enforced_stages(), [LifecycleStage::Build]);
    }

    #[test]
    fn a_runtime_policy_on_kubernetes_events_is_enforced_by_refusing_the_request() {
        let mut exec = policy(
            r#"{"name": "Exec", "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
                "policySections": [{"policyGroups": [{"fieldName": "Kubernetes Resource",
                    "values": [{"value": "PODS_EXEC"}]}]}]}"#,
        );
        assert!(exec.tests_kube_events());
        exec.set_enforced(LifecycleStage::Runtime, true)
            .expect("runtime");
        assert_eq!(
            exec.enforcement_actions,
            [EnforcementAction::FailKubeRequest]
        );
        let mut process = policy(
            r#"{"name": "nmap", "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
                "policySections": [{"policyGroups": [{"fieldName": "Process Name",
                    "values": [{"value": "nmap"}]}]}]}"#,
        );
        assert!(!process.tests_kube_events());
        process
            .set_enforced(LifecycleStage::Runtime, true)
            .expect("runtime");
        assert_eq!(process.enforcement_actions, [EnforcementAction::KillPod]);
    }

    #[test]
    fn a_stage_the_policy_lacks_is_refused_with_the_stages_it_has() {
        let mut p = policy(r#"{"name": "Latest tag", "lifecycleStages": ["BUILD", "DEPLOY"]}"#);
        let e = p
            .set_enforced(LifecycleStage::Runtime, true)
            .expect_err("no runtime stage");
        assert_eq!(
            e,
            "'Latest tag' has no RUNTIME stage to enforce (its stages: BUILD, DEPLOY)"
        );
        assert!(p.enforcement_actions.is_empty());
        // Not enforcing a stage it lacks is no change, not an error.
        p.set_enforced(LifecycleStage::Runtime, false)
            .expect("nothing to do");
        assert_eq!(
            p.check_enforcement(&[EnforcementAction::KillPod]),
            Err(
                "KILL_POD_ENFORCEMENT enforces the RUNTIME stage, which 'Latest tag' does not have"
                    .into()
            )
        );
        assert_eq!(
            p.check_enforcement(&[EnforcementAction::Unset]),
            Err("UNSET_ENFORCEMENT is not an enforcement action".into())
        );
        assert_eq!(
            p.check_enforcement(&[
                EnforcementAction::FailBuild,
                EnforcementAction::FailDeploymentUpdate
            ]),
            Ok(())
        );
    }

    #[test]
    fn action_names_are_acs_names() {
        for a in [
            EnforcementAction::Unset,
            EnforcementAction::ScaleToZero,
            EnforcementAction::UnsatisfiableNodeConstraint,
            EnforcementAction::KillPod,
            EnforcementAction::FailBuild,
            EnforcementAction::FailKubeRequest,
            EnforcementAction::FailDeploymentCreate,
            EnforcementAction::FailDeploymentUpdate,
        ] {
            assert_eq!(serde_json::to_value(a).expect("json"), a.as_str());
        }
        for s in [
            LifecycleStage::Build,
            LifecycleStage::Deploy,
            LifecycleStage::Runtime,
        ] {
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
    }

    #[test]
    fn whitelists_is_read_as_exclusions() {
        let p = parse_policies(
            r#"{"name": "x", "whitelists": [{"name": "w", "deployment": {"name": "d"}}]}"#,
        )
        .expect("old export");
        assert_eq!(p[0].exclusions[0].name, "w");
    }
}
