//! The alert lifecycle, ACS-compatible: ACTIVE, RESOLVED, ATTEMPTED.
//!
//! Deploy-time alerts merge by policy + deployment: re-evaluating a deployment updates the active
//! alert of each violated policy (or opens one) and resolves the active alerts of policies it no
//! longer violates. A policy that cannot be evaluated (it needs data Central does not have yet)
//! neither opens nor resolves anything. ATTEMPTED alerts (admission denials) are never resolved
//! automatically. Runtime violations merge into one alert per policy + deployment, capped.
//!
//! This module decides; the caller writes the decisions in the same batch as the event that
//! caused them.

use rampart_policy::compile::CompiledPolicy;
use rampart_policy::{Outcome, Severity};
use serde::{Deserialize, Serialize};

/// Most runtime violations kept on one alert (ACS keeps 40).
pub const MAX_RUNTIME_VIOLATIONS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertState {
    Active,
    Resolved,
    Attempted,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Active => "ACTIVE",
            AlertState::Resolved => "RESOLVED",
            AlertState::Attempted => "ATTEMPTED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub id: String,
    pub policy_id: String,
    pub policy_name: String,
    pub severity: Severity,
    pub categories: Vec<String>,
    /// `DEPLOY` or `RUNTIME`.
    pub lifecycle_stage: String,
    pub cluster_id: String,
    pub namespace: String,
    pub deployment_id: String,
    pub deployment_name: String,
    pub deployment_kind: String,
    pub state: AlertState,
    pub violations: Vec<String>,
    pub first_occurred_unix_ms: i64,
    pub time_unix_ms: i64,
    pub resolved_unix_ms: Option<i64>,
    /// What was done to the workload about this alert, most recent first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enforcements: Vec<Enforcement>,
    /// Set on alerts the admission controller raised: the request they are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionRequest>,
    /// Runtime process alerts: the processes behind the violations (newest last, bounded as
    /// the violations are), for "resolve and add to baseline".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessViolation>,
}

/// One process a runtime alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessViolation {
    pub container_name: String,
    pub exec_file_path: String,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub pod_id: String,
    #[serde(default)]
    pub uid: u32,
    pub time_unix_ms: i64,
}

/// The API request an admission-controller alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// CREATE, UPDATE or CONNECT.
    pub operation: String,
    pub user: String,
    pub request_uid: String,
    /// Allowed only because of the break-glass annotation.
    #[serde(default)]
    pub break_glass: bool,
    /// For CONNECT requests (exec, attach, port-forward): the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Identical attempts this alert stands for (a retry storm the admission controller
    /// coalesced): the first at `first_occurred_unix_ms` (its `request_uid`), the last at
    /// `time_unix_ms`.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempts: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// Most enforcement records kept on one alert.
pub const MAX_ENFORCEMENTS: usize = 10;

/// One enforcement the Sensor carried out, or failed to, for an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enforcement {
    /// `SCALE_TO_ZERO_ENFORCEMENT`, `UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT`, ...
    pub action: String,
    pub succeeded: bool,
    pub message: String,
    pub time_unix_ms: i64,
    /// Set when Central ordered it; empty for the Sensor's own backstop enforcement.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub order_id: String,
}

impl AlertRecord {
    /// Records an enforcement, newest first, keeping at most [`MAX_ENFORCEMENTS`].
    /// Decided by deploy-time evaluation (and resolved by it); runtime alerts are not.
    pub fn is_deploy_time(&self) -> bool {
        self.lifecycle_stage != "RUNTIME"
    }

    pub fn record_enforcement(&mut self, e: Enforcement) {
        self.enforcements.insert(0, e);
        self.enforcements.truncate(MAX_ENFORCEMENTS);
    }
}

/// The deployment an evaluation was about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub cluster_id: &'a str,
    pub deployment_id: &'a str,
    pub deployment: &'a rampart_policy::Deployment,
}

/// What to write after evaluating one deployment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    /// New or updated ACTIVE alerts.
    pub upsert: Vec<AlertRecord>,
    /// Previously ACTIVE alerts, now RESOLVED.
    pub resolve: Vec<AlertRecord>,
}

/// Applies deploy-time outcomes to the deployment's currently active deploy-time alerts.
/// `new_id` names a new alert.
pub fn decide_deploy_time(
    subject: &Subject<'_>,
    outcomes: &[(&CompiledPolicy, Outcome)],
    active: &[AlertRecord],
    now_ms: i64,
    mut new_id: impl FnMut() -> String,
) -> Decisions {
    let mut decisions = Decisions::default();
    for (policy, outcome) in outcomes {
        let p = &policy.policy;
        let existing = active
            .iter()
            .find(|a| a.policy_id == p.id && a.state == AlertState::Active && a.is_deploy_time());
        match outcome {
            Outcome::Violated(violations) => match existing {
                Some(a) if a.violations == *violations => {}
                Some(a) => {
                    let mut a = a.clone();
                    a.violations = violations.clone();
                    a.time_unix_ms = now_ms;
                    decisions.upsert.push(a);
                }
                None => decisions.upsert.push(AlertRecord {
                    id: new_id(),
                    policy_id: p.id.clone(),
                    policy_name: p.name.clone(),
                    severity: p.severity,
                    categories: p.categories.clone(),
                    lifecycle_stage: "DEPLOY".to_string(),
                    cluster_id: subject.cluster_id.to_string(),
                    namespace: subject.deployment.namespace.clone(),
                    deployment_id: subject.deployment_id.to_string(),
                    deployment_name: subject.deployment.name.clone(),
                    deployment_kind: subject.deployment.kind.as_str().to_string(),
                    state: AlertState::Active,
                    admission: None,
                    processes: Vec::new(),
                    violations: violations.clone(),
                    first_occurred_unix_ms: now_ms,
                    time_unix_ms: now_ms,
                    resolved_unix_ms: None,
                    enforcements: Vec::new(),
                }),
            },
            Outcome::Pass | Outcome::OutOfScope | Outcome::Excluded(_) => {
                if let Some(a) = existing {
                    decisions.resolve.push(resolved(a, now_ms));
                }
            }
            // Undecidable today: leave whatever is there as it is.
            Outcome::NotEvaluable(_) => {}
        }
    }
    // Active alerts of policies that were not evaluated at all (deleted or disabled) resolve too.
    for a in active
        .iter()
        .filter(|a| a.state == AlertState::Active && a.is_deploy_time())
    {
        if !outcomes.iter().any(|(p, _)| p.policy.id == a.policy_id) {
            decisions.resolve.push(resolved(a, now_ms));
        }
    }
    decisions
}

/// An alert from the admission controller. A denial is ATTEMPTED (the object never ran, and
/// only a user resolves it); an allowed request (break-glass, or a Kubernetes event whose
/// policy does not enforce) is ACTIVE. Either stands on its own: a denied create has no
/// deployment to merge into.
pub fn from_admission(
    cluster_id: &str,
    policy: &rampart_policy::Policy,
    a: &rampart_proto::v1::AdmissionAlert,
    id: String,
    now_ms: i64,
) -> AlertRecord {
    let time = if a.time_unix_ms > 0 {
        a.time_unix_ms
    } else {
        now_ms
    };
    let last = a.last_time_unix_ms.max(time);
    let denied = !a.enforcement_action.is_empty();
    let stage = rampart_proto::v1::LifecycleStage::try_from(a.stage)
        .unwrap_or(rampart_proto::v1::LifecycleStage::Deploy);
    AlertRecord {
        id,
        policy_id: policy.id.clone(),
        policy_name: policy.name.clone(),
        severity: policy.severity,
        categories: policy.categories.clone(),
        lifecycle_stage: if stage == rampart_proto::v1::LifecycleStage::Runtime {
            "RUNTIME"
        } else {
            "DEPLOY"
        }
        .to_string(),
        cluster_id: cluster_id.to_string(),
        namespace: a.namespace.clone(),
        deployment_id: a.deployment_id.clone(),
        deployment_name: a.name.clone(),
        deployment_kind: a.kind.clone(),
        state: if denied {
            AlertState::Attempted
        } else {
            AlertState::Active
        },
        violations: a.violations.clone(),
        first_occurred_unix_ms: time,
        time_unix_ms: last,
        resolved_unix_ms: None,
        enforcements: if denied {
            vec![Enforcement {
                action: a.enforcement_action.clone(),
                succeeded: true,
                message: if a.repeats > 0 {
                    format!(
                        "the admission controller denied {} by {} {} times",
                        a.operation,
                        a.user,
                        a.repeats.saturating_add(1)
                    )
                } else {
                    format!(
                        "the admission controller denied {} by {}",
                        a.operation, a.user
                    )
                },
                time_unix_ms: last,
                order_id: String::new(),
            }]
        } else {
            Vec::new()
        },
        admission: Some(AdmissionRequest {
            operation: a.operation.clone(),
            user: a.user.clone(),
            request_uid: a.request_uid.clone(),
            break_glass: a.break_glass,
            pod: a.pod.clone(),
            attempts: a.repeats.saturating_add(1),
        }),
        processes: Vec::new(),
    }
}

/// The deployment is gone: its deploy-time alerts resolve. Its runtime alerts stay ACTIVE (as in
/// ACS): they record something that happened, which a person must look at.
pub fn decide_removed(active: &[AlertRecord], now_ms: i64) -> Vec<AlertRecord> {
    active
        .iter()
        .filter(|a| a.state == AlertState::Active && a.is_deploy_time())
        .map(|a| resolved(a, now_ms))
        .collect()
}

fn resolved(a: &AlertRecord, now_ms: i64) -> AlertRecord {
    let mut a = a.clone();
    a.state = AlertState::Resolved;
    a.resolved_unix_ms = Some(now_ms);
    a.time_unix_ms = now_ms;
    a
}

/// What a runtime detection does to the deployment's alerts.
#[derive(Debug, PartialEq, Eq)]
pub enum RuntimeDecision {
    /// A new ACTIVE alert of the policy.
    Open(AlertRecord),
    /// The policy's ACTIVE runtime alert with the new violations merged in.
    Merge(AlertRecord),
    /// Everything reported is in the active alert already.
    Unchanged,
}

/// Applies a runtime detection of `policy` (its violation messages) to the deployment's active
/// alerts: merged into the policy's ACTIVE runtime alert (newest `MAX_RUNTIME_VIOLATIONS`
/// kept), or a new alert.
pub fn decide_runtime(
    subject: &RuntimeSubject<'_>,
    policy: &rampart_policy::Policy,
    violations: &[String],
    processes: &[ProcessViolation],
    active: &[AlertRecord],
    now_ms: i64,
    new_id: impl FnOnce() -> String,
) -> RuntimeDecision {
    if let Some(existing) = active
        .iter()
        .find(|a| a.policy_id == policy.id && a.state == AlertState::Active && !a.is_deploy_time())
    {
        let mut merged = existing.clone();
        let added = merge_runtime(&mut merged, violations, now_ms);
        if merge_processes(&mut merged.processes, processes) {
            merged.time_unix_ms = now_ms;
        }
        return if added || merged.processes != existing.processes {
            RuntimeDecision::Merge(merged)
        } else {
            RuntimeDecision::Unchanged
        };
    }
    let mut violations = violations.to_vec();
    if violations.len() > MAX_RUNTIME_VIOLATIONS {
        violations.drain(..violations.len() - MAX_RUNTIME_VIOLATIONS);
    }
    let mut kept = Vec::new();
    merge_processes(&mut kept, processes);
    RuntimeDecision::Open(AlertRecord {
        id: new_id(),
        policy_id: policy.id.clone(),
        policy_name: policy.name.clone(),
        severity: policy.severity,
        categories: policy.categories.clone(),
        lifecycle_stage: "RUNTIME".to_string(),
        cluster_id: subject.cluster_id.to_string(),
        namespace: subject.namespace.to_string(),
        deployment_id: subject.deployment_id.to_string(),
        deployment_name: subject.deployment_name.to_string(),
        deployment_kind: subject.deployment_kind.to_string(),
        state: AlertState::Active,
        violations,
        first_occurred_unix_ms: now_ms,
        time_unix_ms: now_ms,
        resolved_unix_ms: None,
        enforcements: Vec::new(),
        admission: None,
        processes: kept,
    })
}

/// Adds processes not listed yet (same container, executable and arguments), keeping the
/// newest `MAX_RUNTIME_VIOLATIONS`. Returns whether any was added.
fn merge_processes(into: &mut Vec<ProcessViolation>, new: &[ProcessViolation]) -> bool {
    let before = into.len();
    for p in new {
        if !into.iter().any(|x| {
            x.container_name == p.container_name
                && x.exec_file_path == p.exec_file_path
                && x.args == p.args
        }) {
            into.push(p.clone());
        }
    }
    let added = into.len() > before;
    if into.len() > MAX_RUNTIME_VIOLATIONS {
        let excess = into.len() - MAX_RUNTIME_VIOLATIONS;
        into.drain(..excess);
    }
    added
}

/// The deployment a runtime detection was in, as Central stores it.
#[derive(Debug, Clone)]
pub struct RuntimeSubject<'a> {
    pub cluster_id: &'a str,
    pub deployment_id: &'a str,
    pub namespace: &'a str,
    pub deployment_name: &'a str,
    pub deployment_kind: &'a str,
}

/// Merges new runtime violations into an alert, keeping the newest `MAX_RUNTIME_VIOLATIONS`.
/// Returns whether anything new was added (worth notifying).
pub fn merge_runtime(alert: &mut AlertRecord, new: &[String], now_ms: i64) -> bool {
    let before = alert.violations.len();
    for v in new {
        if !alert.violations.contains(v) {
            alert.violations.push(v.clone());
        }
    }
    let added = alert.violations.len() > before;
    if alert.violations.len() > MAX_RUNTIME_VIOLATIONS {
        let excess = alert.violations.len() - MAX_RUNTIME_VIOLATIONS;
        alert.violations.drain(..excess);
    }
    if added {
        alert.time_unix_ms = now_ms;
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_policy::compile::compile;
    use rampart_policy::manifest::{ObjectBody, parse_text};
    use rampart_policy::policy::parse_policies;
    use rampart_policy::{Deployment, EvalContext, evaluate};

    fn deployment(privileged: bool) -> Deployment {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: shop}}\nspec: {{containers: [{{name: app, image: nginx:1, securityContext: {{privileged: {privileged}}}}}]}}\n"
        );
        match &parse_text(&yaml).objects[0].body {
            ObjectBody::Workload(w) => Deployment::from_workload(w, "default"),
            _ => panic!("workload"),
        }
    }

    fn privileged_policy() -> CompiledPolicy {
        let p = parse_policies(
            r#"{"id":"p1","name":"Privileged","severity":"HIGH_SEVERITY","lifecycleStages":["DEPLOY"],
               "policySections":[{"policyGroups":[{"fieldName":"Privileged Container","values":[{"value":"true"}]}]}]}"#,
        )
        .expect("policy")
        .remove(0);
        compile(&p).expect("compiles")
    }

    fn decide(
        d: &Deployment,
        policy: &CompiledPolicy,
        active: &[AlertRecord],
        now: i64,
    ) -> Decisions {
        let outcome = evaluate(policy, d, &EvalContext::default());
        let subject = Subject {
            cluster_id: "c1",
            deployment_id: "uid-1",
            deployment: d,
        };
        let mut n = 0;
        decide_deploy_time(&subject, &[(policy, outcome)], active, now, || {
            n += 1;
            format!("alert-{n}")
        })
    }

    #[test]
    fn an_alert_opens_updates_merges_and_resolves() {
        let policy = privileged_policy();
        let bad = deployment(true);
        let opened = decide(&bad, &policy, &[], 100);
        assert_eq!(opened.upsert.len(), 1);
        let alert = opened.upsert[0].clone();
        assert_eq!(
            (
                alert.state,
                alert.policy_name.as_str(),
                alert.namespace.as_str()
            ),
            (AlertState::Active, "Privileged", "shop")
        );
        assert_eq!(
            alert.violations,
            vec!["Container 'app' is privileged".to_string()]
        );

        // Same violations again: nothing to write (merge by policy + deployment, no duplicate).
        assert_eq!(
            decide(&bad, &policy, std::slice::from_ref(&alert), 200),
            Decisions::default()
        );

        // Fixed: the alert resolves, keeping its id and first occurrence.
        let fixed = decide(
            &deployment(false),
            &policy,
            std::slice::from_ref(&alert),
            300,
        );
        assert!(fixed.upsert.is_empty());
        assert_eq!(fixed.resolve.len(), 1);
        assert_eq!(fixed.resolve[0].id, alert.id);
        assert_eq!(
            (fixed.resolve[0].state, fixed.resolve[0].resolved_unix_ms),
            (AlertState::Resolved, Some(300))
        );
        assert_eq!(fixed.resolve[0].first_occurred_unix_ms, 100);
    }

    #[test]
    fn not_evaluable_neither_opens_nor_resolves_and_attempted_stays() {
        let policy = privileged_policy();
        let d = deployment(true);
        let subject = Subject {
            cluster_id: "c1",
            deployment_id: "uid-1",
            deployment: &d,
        };
        let alert = decide(&d, &policy, &[], 1).upsert.remove(0);
        let undecided = decide_deploy_time(
            &subject,
            &[(&policy, Outcome::NotEvaluable(vec!["image scan data"]))],
            std::slice::from_ref(&alert),
            2,
            || unreachable!("no new alert"),
        );
        assert_eq!(undecided, Decisions::default());
        let mut attempted = alert.clone();
        attempted.state = AlertState::Attempted;
        assert!(
            decide_removed(&[attempted], 3).is_empty(),
            "attempted alerts are resolved by users only"
        );
        // A deleted deployment resolves its active alerts.
        assert_eq!(
            decide_removed(std::slice::from_ref(&alert), 3)[0].state,
            AlertState::Resolved
        );
        // A policy no longer evaluated (disabled or deleted) resolves its alert.
        let gone = decide_deploy_time(&subject, &[], std::slice::from_ref(&alert), 4, || {
            unreachable!("no new alert")
        });
        assert_eq!(gone.resolve.len(), 1);
    }

    #[test]
    fn runtime_violations_merge_with_a_cap() {
        let policy = privileged_policy();
        let mut alert = decide(&deployment(true), &policy, &[], 1).upsert.remove(0);
        assert!(
            !merge_runtime(&mut alert, &["Container 'app' is privileged".into()], 2),
            "nothing new"
        );
        let new: Vec<String> = (0..50).map(|i| format!("process /bin/sh #{i}")).collect();
        assert!(merge_runtime(&mut alert, &new, 3));
        assert_eq!(alert.violations.len(), MAX_RUNTIME_VIOLATIONS);
        assert_eq!(
            alert.violations.last().map(String::as_str),
            Some("process /bin/sh #49"),
            "the newest are kept"
        );
    }

    #[test]
    fn an_admission_alert_stands_for_its_coalesced_attempts() {
        let policy = privileged_policy().policy;
        let attempt = rampart_proto::v1::AdmissionAlert {
            policy_id: "p1".into(),
            violations: vec!["Container 'app' is privileged".into()],
            namespace: "shop".into(),
            name: "web".into(),
            kind: "Deployment".into(),
            operation: "UPDATE".into(),
            user: "system:serviceaccount:argocd:argocd-application-controller".into(),
            request_uid: "u-first".into(),
            enforcement_action: "FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT".into(),
            time_unix_ms: 1_000,
            ..Default::default()
        };
        let alone = from_admission("c1", &policy, &attempt, "a1".into(), 9_000);
        let request = alone.admission.as_ref().expect("request");
        assert_eq!(request.attempts, 1);
        assert_eq!(
            (alone.first_occurred_unix_ms, alone.time_unix_ms),
            (1_000, 1_000)
        );
        let stored = serde_json::to_value(&alone).expect("json");
        assert!(
            stored["admission"].get("attempts").is_none(),
            "one attempt is the default, left out"
        );

        let storm = rampart_proto::v1::AdmissionAlert {
            repeats: 36,
            last_time_unix_ms: 61_000,
            ..attempt
        };
        let alert = from_admission("c1", &policy, &storm, "a2".into(), 90_000);
        assert_eq!(alert.state, AlertState::Attempted);
        let request = alert.admission.as_ref().expect("request");
        assert_eq!(request.attempts, 37);
        assert_eq!(request.request_uid, "u-first");
        assert_eq!(
            (alert.first_occurred_unix_ms, alert.time_unix_ms),
            (1_000, 61_000)
        );
        assert_eq!(alert.enforcements[0].time_unix_ms, 61_000);
        assert!(
            alert.enforcements[0].message.ends_with(" 37 times"),
            "{}",
            alert.enforcements[0].message
        );
        // Stored and read back, as Central keeps it.
        let back: AlertRecord =
            serde_json::from_value(serde_json::to_value(&alert).expect("json")).expect("reads");
        assert_eq!(back, alert);
        let old: AlertRecord = serde_json::from_value(stored).expect("an alert stored before");
        assert_eq!(old.admission.map(|r| r.attempts), Some(1));
    }
}

/// Where alerts live in the store: `a/<id>` holds each alert (ids are UUIDv7, so keys sort by
/// creation time and new alerts append to the tree instead of landing all over it). The ids of a
/// deployment's active alerts live in its [`DeploymentRecord`](crate::model::DeploymentRecord).
pub mod persist {
    use super::{AlertRecord, AlertState};
    use crate::store::{Backend, Result, Store, Table, WriteBatch};

    fn record_key(id: &str) -> String {
        format!("a/{id}")
    }

    /// The active alerts of one deployment, as the store has them: the deploy-time ones its
    /// record lists and its runtime ones.
    pub fn active_for<B: Backend>(
        store: &Store<B>,
        cluster: &str,
        deployment: &str,
    ) -> Result<Vec<AlertRecord>> {
        let mut ids = store.deployment_alert_ids(cluster, deployment)?;
        ids.extend(runtime_ids(store, cluster, deployment)?);
        load_active(store, &ids)
    }

    /// The active alerts of a deployment whose record is at hand (no second read of it).
    pub fn active_of_record<B: Backend>(
        store: &Store<B>,
        record: &crate::model::DeploymentRecord,
    ) -> Result<Vec<AlertRecord>> {
        let mut ids = record.active_alerts.clone();
        ids.extend(runtime_ids(store, &record.cluster_id, &record.id)?);
        load_active(store, &ids)
    }

    fn runtime_prefix(cluster: &str, deployment: &str) -> String {
        format!("rt/{cluster}\0{deployment}\0")
    }

    /// The ids of a deployment's runtime alerts, one per policy (the latest; a user may have
    /// resolved it since). Runtime alerts are indexed apart from the deployment record, which
    /// only deploy-time decisions rewrite.
    pub fn runtime_ids<B: Backend>(
        store: &Store<B>,
        cluster: &str,
        deployment: &str,
    ) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        store.for_each_raw(
            Table::Alerts,
            &runtime_prefix(cluster, deployment),
            |_, bytes| {
                if let Ok(id) = serde_json::from_slice::<String>(bytes) {
                    ids.push(id);
                }
                Ok(())
            },
        )?;
        Ok(ids)
    }

    /// Writes a runtime alert and indexes it as its deployment's alert of that policy.
    pub fn put_runtime(batch: &mut WriteBatch, a: &AlertRecord) -> Result<()> {
        put(batch, a)?;
        batch.put_parts(
            Table::Alerts,
            &[
                &format!("rt/{}", a.cluster_id),
                &a.deployment_id,
                &a.policy_id,
            ],
            &a.id,
        )
    }

    /// The alerts among `ids` that are still ACTIVE (a user may have resolved one since the ids
    /// were written).
    pub fn load_active<B: Backend>(store: &Store<B>, ids: &[String]) -> Result<Vec<AlertRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(a) = get(store, id)?
                && a.state == AlertState::Active
            {
                out.push(a);
            }
        }
        Ok(out)
    }

    pub fn get<B: Backend>(store: &Store<B>, id: &str) -> Result<Option<AlertRecord>> {
        store.get_record(Table::Alerts, &record_key(id))
    }

    /// Every alert (small installations, tests); the API pages through `a/` instead.
    pub fn all<B: Backend>(store: &Store<B>) -> Result<Vec<AlertRecord>> {
        store.scan_records(Table::Alerts, "a/")
    }

    /// Writes an alert (new, updated or resolved).
    pub fn put(batch: &mut WriteBatch, a: &AlertRecord) -> Result<()> {
        batch.touch_deployment(&a.cluster_id, &a.deployment_id);
        batch.put(Table::Alerts, &record_key(&a.id), a)
    }
}
