//! The policy editor: every section of criteria (sections are alternatives; the criteria of a
//! section must all match; the values of one criterion are alternatives, or all required),
//! the policy's scope and its exclusions. The engine's compiler validates what is typed, the
//! dry run previews what it would flag, and the policy store saves it.
//!
//! It works without script: "Add criterion", "Add section", "Remove section", "Add scope" and
//! "Add exclusion" are submit buttons that render the form again as typed, with the change.
//! Every count the form sends is clamped, so a forged form cannot make the server build more
//! rows than the editor offers.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rampart_policy::policy::{
    BooleanOperator, EnforcementAction, EventSource, Exclusion, ExclusionDeployment,
    ExclusionImage, LabelMatch, PolicyGroup, PolicySection, PolicyValue, Scope,
};
use rampart_policy::{LifecycleStage, Severity};

use super::{SelectOption, UserView, refused, render, urlencode};
use crate::api::{ApiError, Shared};
use crate::store::Backend;

const MAX_SECTIONS: usize = 16;
const MAX_ROWS: usize = 24;
const MAX_SCOPES: usize = 16;
const MAX_EXCLUSIONS: usize = 32;
/// A section shows at least this many criterion rows.
const MIN_ROWS: usize = 3;

struct CriterionRow {
    field: String,
    values: String,
    negate: bool,
    /// Every value must match (ACS's `AND` boolean operator).
    all: bool,
}

impl CriterionRow {
    fn blank() -> CriterionRow {
        CriterionRow {
            field: String::new(),
            values: String::new(),
            negate: false,
            all: false,
        }
    }
}

struct SectionForm {
    name: String,
    rows: Vec<CriterionRow>,
}

impl SectionForm {
    fn blank() -> SectionForm {
        SectionForm {
            name: String::new(),
            rows: (0..MIN_ROWS).map(|_| CriterionRow::blank()).collect(),
        }
    }
}

#[derive(Default)]
struct ScopeRow {
    cluster: String,
    namespace: String,
    /// `key=value` (the value a regular expression, as in ACS).
    label: String,
}

#[derive(Default)]
struct ExclusionRow {
    name: String,
    deployment: String,
    cluster: String,
    namespace: String,
    image: String,
    /// RFC 3339; empty: never expires.
    expiration: String,
}

struct PolicyForm {
    name: String,
    severity: Severity,
    categories: String,
    build: bool,
    deploy: bool,
    runtime: bool,
    /// Enforcement per stage: fail the build; block or scale down at deploy; kill the pod.
    enforce_build: bool,
    enforce_deploy: bool,
    enforce_runtime: bool,
    description: String,
    rationale: String,
    remediation: String,
    sections: Vec<SectionForm>,
    scopes: Vec<ScopeRow>,
    exclusions: Vec<ExclusionRow>,
}

fn label_text(l: &Option<LabelMatch>) -> String {
    l.as_ref()
        .map(|l| format!("{}={}", l.key, l.value))
        .unwrap_or_default()
}

impl PolicyForm {
    fn of(p: &rampart_policy::Policy) -> PolicyForm {
        let mut sections: Vec<SectionForm> = p
            .policy_sections
            .iter()
            .map(|s| {
                let mut rows: Vec<CriterionRow> = s
                    .policy_groups
                    .iter()
                    .map(|g| CriterionRow {
                        field: g.field_name.clone(),
                        values: g
                            .values
                            .iter()
                            .map(|v| v.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        negate: g.negate,
                        all: g.boolean_operator == BooleanOperator::And,
                    })
                    .collect();
                rows.push(CriterionRow::blank());
                while rows.len() < MIN_ROWS {
                    rows.push(CriterionRow::blank());
                }
                SectionForm {
                    name: s.section_name.clone(),
                    rows,
                }
            })
            .collect();
        if sections.is_empty() {
            sections.push(SectionForm::blank());
        }
        let mut scopes: Vec<ScopeRow> = p
            .scope
            .iter()
            .map(|s| ScopeRow {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                label: label_text(&s.label),
            })
            .collect();
        scopes.push(ScopeRow::default());
        let mut exclusions: Vec<ExclusionRow> = p
            .exclusions
            .iter()
            .map(|e| {
                let scope = e.deployment.as_ref().and_then(|d| d.scope.as_ref());
                ExclusionRow {
                    name: e.name.clone(),
                    deployment: e
                        .deployment
                        .as_ref()
                        .map(|d| d.name.clone())
                        .unwrap_or_default(),
                    cluster: scope.map(|s| s.cluster.clone()).unwrap_or_default(),
                    namespace: scope.map(|s| s.namespace.clone()).unwrap_or_default(),
                    image: e.image.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
                    expiration: e.expiration.clone().unwrap_or_default(),
                }
            })
            .collect();
        exclusions.push(ExclusionRow::default());
        PolicyForm {
            name: p.name.clone(),
            severity: p.severity,
            categories: p.categories.join(", "),
            build: p.has_stage(LifecycleStage::Build),
            deploy: p.has_stage(LifecycleStage::Deploy),
            runtime: p.has_stage(LifecycleStage::Runtime),
            enforce_build: enforces(p, LifecycleStage::Build),
            enforce_deploy: enforces(p, LifecycleStage::Deploy),
            enforce_runtime: enforces(p, LifecycleStage::Runtime),
            description: p.description.clone(),
            rationale: p.rationale.clone(),
            remediation: p.remediation.clone(),
            sections,
            scopes,
            exclusions,
        }
    }

    fn parse(form: &BTreeMap<String, String>) -> PolicyForm {
        let text = |k: &str| {
            form.get(k)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let on = |k: &str| form.get(k).is_some_and(|v| v == "on");
        let count = |k: &str, max: usize| {
            form.get(k)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, max)
        };
        let sections = (0..count("sections", MAX_SECTIONS))
            .map(|i| SectionForm {
                name: text(&format!("s{i}_name")),
                rows: (0..count(&format!("s{i}_rows"), MAX_ROWS))
                    .map(|j| CriterionRow {
                        field: text(&format!("s{i}_field{j}")),
                        values: text(&format!("s{i}_values{j}")),
                        negate: on(&format!("s{i}_negate{j}")),
                        all: on(&format!("s{i}_all{j}")),
                    })
                    .collect(),
            })
            .collect();
        let scopes = (0..count("scopes", MAX_SCOPES))
            .map(|i| ScopeRow {
                cluster: text(&format!("sc{i}_cluster")),
                namespace: text(&format!("sc{i}_namespace")),
                label: text(&format!("sc{i}_label")),
            })
            .collect();
        let exclusions = (0..count("exclusions", MAX_EXCLUSIONS))
            .map(|i| ExclusionRow {
                name: text(&format!("ex{i}_name")),
                deployment: text(&format!("ex{i}_deployment")),
                cluster: text(&format!("ex{i}_cluster")),
                namespace: text(&format!("ex{i}_namespace")),
                image: text(&format!("ex{i}_image")),
                expiration: text(&format!("ex{i}_expiration")),
            })
            .collect();
        PolicyForm {
            name: text("name"),
            severity: match text("severity").as_str() {
                "CRITICAL" => Severity::Critical,
                "HIGH" => Severity::High,
                "MEDIUM" => Severity::Medium,
                _ => Severity::Low,
            },
            categories: text("categories"),
            build: on("stage_build"),
            deploy: on("stage_deploy"),
            runtime: on("stage_runtime"),
            enforce_build: on("enforce_build"),
            enforce_deploy: on("enforce_deploy"),
            enforce_runtime: on("enforce_runtime"),
            description: text("description"),
            rationale: text("rationale"),
            remediation: text("remediation"),
            sections,
            scopes,
            exclusions,
        }
    }

    /// Applies a structural button (add or remove rows); `false` for any other action.
    fn restructure(&mut self, action: &str) -> bool {
        if action == "add-section" {
            if self.sections.len() < MAX_SECTIONS {
                self.sections.push(SectionForm::blank());
            }
        } else if action == "add-scope" {
            if self.scopes.len() < MAX_SCOPES {
                self.scopes.push(ScopeRow::default());
            }
        } else if action == "add-exclusion" {
            if self.exclusions.len() < MAX_EXCLUSIONS {
                self.exclusions.push(ExclusionRow::default());
            }
        } else if let Some(i) = action
            .strip_prefix("add-row-")
            .and_then(|i| i.parse::<usize>().ok())
        {
            if let Some(s) = self.sections.get_mut(i)
                && s.rows.len() < MAX_ROWS
            {
                s.rows.push(CriterionRow::blank());
            }
        } else if let Some(i) = action
            .strip_prefix("remove-section-")
            .and_then(|i| i.parse::<usize>().ok())
        {
            if i < self.sections.len() {
                self.sections.remove(i);
            }
            if self.sections.is_empty() {
                self.sections.push(SectionForm::blank());
            }
        } else {
            return false;
        }
        true
    }

    /// The policy the form describes, on top of `base` (an edited policy keeps its id and what
    /// the editor does not show; a default policy keeps its locked criteria). Errors are the
    /// form's own (a label without `=`); the engine's compiler checks the rest.
    fn to_policy(
        &self,
        base: Option<&rampart_policy::Policy>,
    ) -> Result<rampart_policy::Policy, Vec<String>> {
        let mut errors = Vec::new();
        let mut p = base.cloned().unwrap_or_default();
        p.name = self.name.clone();
        p.severity = self.severity;
        p.categories = split_list(&self.categories);
        p.lifecycle_stages = [
            (self.build, LifecycleStage::Build),
            (self.deploy, LifecycleStage::Deploy),
            (self.runtime, LifecycleStage::Runtime),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| s)
        .collect();
        p.description = self.description.clone();
        p.rationale = self.rationale.clone();
        p.remediation = self.remediation.clone();
        if !base.is_some_and(|b| b.criteria_locked) {
            p.policy_sections = self
                .sections
                .iter()
                .map(|s| PolicySection {
                    section_name: s.name.clone(),
                    policy_groups: s
                        .rows
                        .iter()
                        .filter(|r| !r.field.is_empty())
                        .map(|r| PolicyGroup {
                            field_name: r.field.clone(),
                            boolean_operator: if r.all {
                                BooleanOperator::And
                            } else {
                                BooleanOperator::Or
                            },
                            negate: r.negate,
                            values: split_list(&r.values)
                                .into_iter()
                                .map(|value| PolicyValue { value })
                                .collect(),
                        })
                        .collect(),
                })
                // A section left wholly empty is not part of the policy (one empty section
                // stays, for the compiler to name).
                .filter(|s| !s.policy_groups.is_empty() || self.sections.len() == 1)
                .collect();
        }
        let mut label = |text: &str, what: &str| -> Option<LabelMatch> {
            if text.is_empty() {
                return None;
            }
            match text.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => Some(LabelMatch {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                }),
                _ => {
                    errors.push(format!("{what}: label '{text}' must be key=value"));
                    None
                }
            }
        };
        p.scope = self
            .scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                !(s.cluster.is_empty() && s.namespace.is_empty() && s.label.is_empty())
            })
            .map(|(i, s)| Scope {
                cluster: s.cluster.clone(),
                namespace: s.namespace.clone(),
                label: label(&s.label, &format!("scope {}", i + 1)),
                ..Scope::default()
            })
            .collect();
        p.exclusions = self
            .exclusions
            .iter()
            .filter(|e| {
                !(e.deployment.is_empty()
                    && e.cluster.is_empty()
                    && e.namespace.is_empty()
                    && e.image.is_empty())
            })
            .map(|e| {
                let scoped = !(e.cluster.is_empty() && e.namespace.is_empty());
                let deployment =
                    (!e.deployment.is_empty() || scoped).then(|| ExclusionDeployment {
                        name: e.deployment.clone(),
                        scope: scoped.then(|| Scope {
                            cluster: e.cluster.clone(),
                            namespace: e.namespace.clone(),
                            ..Scope::default()
                        }),
                    });
                Exclusion {
                    name: if e.name.is_empty() {
                        [&e.deployment, &e.namespace, &e.image]
                            .into_iter()
                            .find(|s| !s.is_empty())
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        e.name.clone()
                    },
                    deployment,
                    image: (!e.image.is_empty()).then(|| ExclusionImage {
                        name: e.image.clone(),
                    }),
                    expiration: (!e.expiration.is_empty()).then(|| e.expiration.clone()),
                }
            })
            .collect();
        // ACS's wizard gives a runtime policy deployment events as its source (the only one
        // Rampart observes; an audit-log policy keeps its own), and other stages none.
        if !self.runtime {
            p.event_source = EventSource::NotApplicable;
        } else if p.event_source == EventSource::NotApplicable {
            p.event_source = EventSource::DeploymentEvent;
        }
        // Each stage keeps the actions it had (a deploy-time policy may fail creates only); a
        // stage newly enforced gets its usual action, read off the finished criteria (an exec
        // policy refuses the request, a process policy kills the pod).
        let enforced = [
            (LifecycleStage::Build, self.build && self.enforce_build),
            (LifecycleStage::Deploy, self.deploy && self.enforce_deploy),
            (
                LifecycleStage::Runtime,
                self.runtime && self.enforce_runtime,
            ),
        ];
        let kept = std::mem::take(&mut p.enforcement_actions);
        for (stage, on) in enforced {
            if !on {
                continue;
            }
            let had: Vec<EnforcementAction> = kept
                .iter()
                .copied()
                .filter(|a| a.stage() == Some(stage))
                .collect();
            if had.is_empty() {
                p.enforcement_actions.push(p.usual_enforcement(stage));
            } else {
                p.enforcement_actions.extend(had);
            }
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }
}

fn enforces(p: &rampart_policy::Policy, stage: LifecycleStage) -> bool {
    p.enforcement_actions
        .iter()
        .any(|a| a.stage() == Some(stage))
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

struct DryHit {
    name: String,
    namespace: String,
    cluster: String,
    violations: String,
}

struct DryView {
    summary: String,
    hits: Vec<DryHit>,
}

#[derive(Template)]
#[template(path = "policy_edit.html")]
struct PolicyEditPage {
    user: Option<UserView>,
    page: &'static str,
    editing: bool,
    action: String,
    csrf: String,
    f: PolicyForm,
    severities: Vec<SelectOption>,
    criteria: Vec<&'static str>,
    errors: Vec<String>,
    /// A default policy: criteria shown, not editable.
    criteria_locked: bool,
    dry: Option<DryView>,
}

fn editor(
    user: UserView,
    id: Option<&str>,
    f: PolicyForm,
    base: Option<&rampart_policy::Policy>,
    errors: Vec<String>,
    dry: Option<DryView>,
    status: StatusCode,
) -> Response {
    let mut criteria: Vec<&'static str> = rampart_policy::criteria::CRITERIA
        .iter()
        .map(|c| c.name)
        .collect();
    criteria.sort_unstable();
    let severity = f.severity;
    render(
        &PolicyEditPage {
            editing: id.is_some(),
            action: match id {
                Some(id) => format!("/ui/policies/{}/edit", urlencode(id)),
                None => "/ui/policies/new".into(),
            },
            csrf: user.csrf.clone(),
            user: Some(user),
            page: "policies",
            severities: [
                (Severity::Low, "LOW", "Low"),
                (Severity::Medium, "MEDIUM", "Medium"),
                (Severity::High, "HIGH", "High"),
                (Severity::Critical, "CRITICAL", "Critical"),
            ]
            .into_iter()
            .map(|(s, value, label)| SelectOption {
                value,
                label,
                selected: s == severity,
            })
            .collect(),
            criteria,
            f,
            errors,
            criteria_locked: base.is_some_and(|b| b.criteria_locked),
            dry,
        },
        status,
    )
}

pub(super) async fn new_policy(axum::Extension(user): axum::Extension<UserView>) -> Response {
    let blank = rampart_policy::Policy {
        severity: Severity::Medium,
        lifecycle_stages: vec![LifecycleStage::Deploy],
        ..rampart_policy::Policy::default()
    };
    editor(
        user,
        None,
        PolicyForm::of(&blank),
        None,
        Vec::new(),
        None,
        StatusCode::OK,
    )
}

pub(super) async fn edit_policy<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    Path(id): Path<String>,
) -> Response {
    let state = api.core.policies.current();
    let Some(p) = state.get(&id) else {
        return refused(
            Some(user),
            StatusCode::NOT_FOUND,
            format!("No policy {id}."),
        );
    };
    editor(
        user,
        Some(&id),
        PolicyForm::of(p),
        Some(p),
        Vec::new(),
        None,
        StatusCode::OK,
    )
}

/// A structural button, preview (dry run) or save, from the editor's form.
pub(super) async fn save_policy<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    id: Option<Path<String>>,
    body: axum::body::Bytes,
) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let id = id.map(|Path(id)| id);
    let state = api.core.policies.current();
    let base = match &id {
        Some(id) => match state.get(id) {
            Some(p) => Some(p.clone()),
            None => {
                return refused(
                    Some(user),
                    StatusCode::NOT_FOUND,
                    format!("No policy {id}."),
                );
            }
        },
        None => None,
    };
    let mut f = PolicyForm::parse(&form);
    let action = form.get("action").map(String::as_str).unwrap_or("save");
    if f.restructure(action) {
        return editor(
            user,
            id.as_deref(),
            f,
            base.as_ref(),
            Vec::new(),
            None,
            StatusCode::OK,
        );
    }
    let invalid = |f: PolicyForm, errors: Vec<String>, status: StatusCode| {
        editor(
            user.clone(),
            id.as_deref(),
            f,
            base.as_ref(),
            errors,
            None,
            status,
        )
    };
    let policy = match f.to_policy(base.as_ref()) {
        Ok(p) => p,
        Err(errors) => return invalid(f, errors, StatusCode::UNPROCESSABLE_ENTITY),
    };
    if let Err(errors) = rampart_policy::compile::compile(&policy) {
        let errors = errors.iter().map(ToString::to_string).collect();
        return invalid(f, errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    if action == "preview" {
        let core = Arc::clone(&api.core);
        let candidate = policy.clone();
        let dry =
            tokio::task::spawn_blocking(move || crate::reassess::dry_run(&core, &candidate, 100))
                .await;
        let dry = match dry {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return ApiError::from(e).into_response(),
            Err(e) => return ApiError::Internal(e.to_string()).into_response(),
        };
        let mut summary = format!(
            "{} of {} deployments would be flagged",
            dry.violating, dry.deployments_evaluated
        );
        if dry.not_evaluable > 0 {
            summary.push_str(&format!(
                "; {} cannot be decided without {}",
                dry.not_evaluable,
                dry.needs.join(", ")
            ));
        }
        if dry.truncated {
            summary.push_str(" (the first 100 are shown)");
        }
        summary.push('.');
        let view = DryView {
            summary,
            hits: dry
                .hits
                .into_iter()
                .map(|h| DryHit {
                    name: h.deployment_name,
                    namespace: h.namespace,
                    cluster: h.cluster_id,
                    violations: h.violations.join("; "),
                })
                .collect(),
        };
        return editor(
            user,
            id.as_deref(),
            f,
            base.as_ref(),
            Vec::new(),
            Some(view),
            StatusCode::OK,
        );
    }
    let saved = match &id {
        Some(id) => api.core.policies.update(id, policy).await,
        None => api.core.policies.create(policy).await,
    };
    match saved {
        Ok(p) => {
            tracing::info!(policy = %p.name, user = %user.name, "policy saved in the console");
            Redirect::to(&format!("/ui/policies?saved={}", urlencode(&p.name))).into_response()
        }
        Err(crate::policies::PolicyError::Invalid(errors)) => {
            let errors = errors.iter().map(ToString::to_string).collect();
            invalid(f, errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(crate::policies::PolicyError::Conflict(m)) => invalid(f, vec![m], StatusCode::CONFLICT),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_policy_survives_the_form_both_ways() {
        let original = rampart_policy::policy::parse_policies(
            r#"{"policies": [{"name": "Two ways", "severity": "HIGH_SEVERITY",
                "lifecycleStages": ["DEPLOY"], "categories": ["A", "B"],
                "policySections": [
                  {"sectionName": "root", "policyGroups": [
                    {"fieldName": "Privileged Container", "values": [{"value": "true"}]}]},
                  {"policyGroups": [
                    {"fieldName": "Image Tag", "negate": true, "values": [{"value": "v1"}, {"value": "v2"}]},
                    {"fieldName": "Add Capabilities", "booleanOperator": "AND", "values": [{"value": "NET_ADMIN"}, {"value": "SYS_ADMIN"}]}]}],
                "scope": [{"cluster": "prod", "namespace": "team-a", "label": {"key": "app", "value": "web"}}],
                "exclusions": [{"name": "legacy", "deployment": {"name": "old", "scope": {"namespace": "team-b"}}, "expiration": "2030-01-01T00:00:00Z"},
                               {"name": "base", "image": {"name": "docker.io/library/busybox"}}]}]}"#,
        )
        .expect("policy")
        .remove(0);
        let again = PolicyForm::of(&original)
            .to_policy(None)
            .expect("round trip");
        assert_eq!(again.policy_sections, original.policy_sections);
        assert_eq!(again.scope, original.scope);
        assert_eq!(again.exclusions, original.exclusions);
        assert_eq!(again.categories, original.categories);
        assert_eq!(again.severity, original.severity);
    }

    #[test]
    fn every_default_policy_survives_the_form() {
        for p in rampart_policy::defaults::default_policies() {
            let again = PolicyForm::of(&p).to_policy(Some(&p)).expect("valid");
            assert_eq!(again, p, "{}", p.name);
            let unlocked = rampart_policy::Policy {
                criteria_locked: false,
                ..p.clone()
            };
            let again = PolicyForm::of(&unlocked).to_policy(None).expect("valid");
            assert_eq!(again.policy_sections, p.policy_sections, "{}", p.name);
        }
    }

    #[test]
    fn buttons_restructure_and_counts_are_clamped() {
        let mut f = PolicyForm::parse(&form(&[
            ("sections", "2"),
            ("s0_rows", "1"),
            ("s0_field0", "Image Tag"),
            ("s0_values0", "latest"),
            ("s1_rows", "1000000"),
            ("scopes", "0"),
        ]));
        assert_eq!(f.sections.len(), 2);
        assert_eq!(
            f.sections[1].rows.len(),
            MAX_ROWS,
            "a forged count is clamped"
        );
        assert_eq!(f.scopes.len(), 1);
        assert!(f.restructure("add-row-0"));
        assert_eq!(f.sections[0].rows.len(), 2);
        assert!(f.restructure("remove-section-1"));
        assert!(f.restructure("add-section"));
        assert_eq!(f.sections.len(), 2);
        assert!(f.sections[1].rows.iter().all(|r| r.field.is_empty()));
        assert!(!f.restructure("preview"));
        // The empty second section is dropped; the first keeps its criterion.
        let p = f.to_policy(None).expect("valid");
        assert_eq!(p.policy_sections.len(), 1);
        assert_eq!(
            p.policy_sections[0].policy_groups[0].field_name,
            "Image Tag"
        );
    }

    #[test]
    fn a_new_runtime_policy_gets_deployment_events_and_the_action_its_criteria_call_for() {
        let runtime = |field: &str, value: &str| {
            PolicyForm::parse(&form(&[
                ("name", "new"),
                ("stage_runtime", "on"),
                ("enforce_runtime", "on"),
                ("sections", "1"),
                ("s0_rows", "1"),
                ("s0_field0", field),
                ("s0_values0", value),
            ]))
            .to_policy(None)
            .expect("valid")
        };
        let exec = runtime("Kubernetes Resource", "PODS_EXEC");
        assert_eq!(exec.event_source, EventSource::DeploymentEvent);
        // The admission controller refuses exec for this action; a pod kill would not.
        assert_eq!(
            exec.enforcement_actions,
            [EnforcementAction::FailKubeRequest]
        );
        rampart_policy::compile::compile(&exec).expect("an ACS-valid runtime policy");
        let process = runtime("Process Name", "nmap");
        assert_eq!(process.enforcement_actions, [EnforcementAction::KillPod]);
        // Taken off runtime, the policy has no event source (ACS refuses one elsewhere).
        let mut f = PolicyForm::of(&exec);
        f.runtime = false;
        f.deploy = true;
        f.sections[0].rows[0].field = "Privileged Container".into();
        f.sections[0].rows[0].values = "true".into();
        let deploy = f.to_policy(Some(&exec)).expect("valid");
        assert_eq!(deploy.event_source, EventSource::NotApplicable);
        assert!(deploy.enforcement_actions.is_empty());
    }

    #[test]
    fn a_label_without_equals_is_named() {
        let f = PolicyForm::parse(&form(&[("scopes", "1"), ("sc0_label", "app")]));
        let errors = f.to_policy(None).expect_err("invalid label");
        assert_eq!(errors, vec!["scope 1: label 'app' must be key=value"]);
    }

    #[test]
    fn locked_criteria_stay_as_they_were() {
        let base = rampart_policy::defaults::default_policies()
            .into_iter()
            .find(|p| p.criteria_locked)
            .expect("a default policy");
        let mut f = PolicyForm::of(&base);
        f.sections = vec![SectionForm::blank()];
        f.exclusions[0].namespace = "kube-system".into();
        let p = f.to_policy(Some(&base)).expect("valid");
        assert_eq!(p.policy_sections, base.policy_sections);
        assert_eq!(p.exclusions.len(), base.exclusions.len() + 1);
    }
}
