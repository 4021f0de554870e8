//! Checking manifests: what `rampart deployment check` runs locally and Central's
//! `/v1/detect/deploy/yaml` runs for `--remote`, so both give the same report.
//!
//! ```text
//!  sources ─split─▶ (source, document) units ──rayon──▶ parse ▶ normalize ▶ evaluate ──▶ Report
//! ```
//! Units are independent, so both cores parse and evaluate; results are reassembled in input
//! order so output is deterministic.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compile::CompiledPolicy;
use crate::manifest::{self, ObjectBody};
use crate::policy::Policy;
use crate::{Deployment, EvalContext, LifecycleStage, Outcome, Severity, evaluate};

/// One input text and the name reports use for it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user can find it again (relative when given relative), or `<stdin>`.
    pub name: String,
    pub text: String,
}

/// Annotation prefix that suppresses a policy on one object: `rampart.io/ignore-policy.<id-or-slug>: reason`.
pub const IGNORE_PREFIX: &str = "rampart.io/ignore-policy.";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub policy_id: String,
    pub policy: String,
    pub severity: Severity,
    pub breaks_build: bool,
    pub violations: Vec<String>,
    pub remediation: String,
    /// The reason from the suppression annotation, when the object suppresses this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotEvaluated {
    pub policy: String,
    pub needs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectReport {
    pub file: String,
    pub document: usize,
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_index: Option<usize>,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub findings: Vec<Finding>,
    pub not_evaluated: Vec<NotEvaluated>,
}

impl ObjectReport {
    /// `Deployment shop/checkout`
    pub fn display(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputProblem {
    pub file: String,
    pub document: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub objects: Vec<ObjectReport>,
    pub problems: Vec<InputProblem>,
    /// Non-workload kinds found and skipped, with counts.
    pub skipped_kinds: BTreeMap<String, usize>,
    /// Kinds Rampart does not know at all (CRDs, typos), with counts.
    pub unknown_kinds: BTreeMap<String, usize>,
    pub policies_evaluated: usize,
}

impl Report {
    pub fn active_findings(&self) -> impl Iterator<Item = (&ObjectReport, &Finding)> {
        self.objects.iter().flat_map(|o| {
            o.findings
                .iter()
                .filter(|f| f.suppressed.is_none())
                .map(move |f| (o, f))
        })
    }
}

/// What one document yields: evaluated objects, problems, and (kind, unknown?) of the rest.
type UnitResult = (Vec<ObjectReport>, Vec<InputProblem>, Vec<(String, bool)>);

/// Evaluates every workload in the sources against the policies.
pub fn run_check(sources: &[Source], policies: &[CompiledPolicy], ctx: &EvalContext<'_>) -> Report {
    let units: Vec<(usize, usize, crate::yaml::DocumentText<'_>)> = sources
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            manifest::split(&s.text)
                .into_iter()
                .enumerate()
                .map(move |(di, u)| (si, di + 1, u))
        })
        .collect();
    let per_unit: Vec<UnitResult> = units
        .par_iter()
        .map(|(si, doc, unit)| {
            let file = &sources[*si].name;
            let parsed = manifest::parse_unit(*unit, *doc);
            let mut objects = Vec::new();
            let mut kinds = Vec::new();
            for object in parsed.objects {
                match &object.body {
                    ObjectBody::Workload(w) => {
                        let deployment = Deployment::from_workload(w, "default");
                        objects.push(evaluate_object(
                            file,
                            &object.location,
                            &deployment,
                            policies,
                            ctx,
                        ));
                    }
                    ObjectBody::NotAWorkload => kinds.push((object.kind.clone(), false)),
                    ObjectBody::UnknownKind => kinds.push((object.kind.clone(), true)),
                }
            }
            let problems = parsed
                .problems
                .into_iter()
                .map(|p| InputProblem {
                    file: file.clone(),
                    document: p.document,
                    line: p.line,
                    message: p.message,
                })
                .collect();
            (objects, problems, kinds)
        })
        .collect();
    let mut report = Report {
        policies_evaluated: policies.len(),
        ..Report::default()
    };
    for (objects, problems, kinds) in per_unit {
        report.objects.extend(objects);
        report.problems.extend(problems);
        for (kind, unknown) in kinds {
            let map = if unknown {
                &mut report.unknown_kinds
            } else {
                &mut report.skipped_kinds
            };
            *map.entry(kind).or_default() += 1;
        }
    }
    report
}

fn suppression<'a>(deployment: &'a Deployment, policy: &CompiledPolicy) -> Option<&'a str> {
    let slug = policy.policy.slug();
    // Annotation name parts are capped at 63 characters, so long slugs match on their prefix.
    let short_slug = slug.get(..63).unwrap_or(&slug).trim_end_matches('-');
    deployment.annotations.iter().find_map(|(k, v)| {
        let wanted = k.strip_prefix(IGNORE_PREFIX)?;
        let hit = (!policy.policy.id.is_empty() && wanted == policy.policy.id)
            || wanted == slug
            || wanted == short_slug;
        hit.then_some(v.as_str())
    })
}

fn evaluate_object(
    file: &str,
    location: &manifest::Location,
    deployment: &Deployment,
    policies: &[CompiledPolicy],
    ctx: &EvalContext<'_>,
) -> ObjectReport {
    let mut findings = Vec::new();
    let mut not_evaluated = Vec::new();
    for policy in policies {
        match evaluate(policy, deployment, ctx) {
            Outcome::Violated(violations) => findings.push(Finding {
                policy_id: policy.policy.id.clone(),
                policy: policy.policy.name.clone(),
                severity: policy.policy.severity,
                breaks_build: policy.policy.enforces_at_deploy(),
                violations,
                remediation: policy.policy.remediation.clone(),
                suppressed: suppression(deployment, policy).map(|r| {
                    if r.is_empty() {
                        "no reason given".to_string()
                    } else {
                        r.to_string()
                    }
                }),
            }),
            Outcome::NotEvaluable(needs) => not_evaluated.push(NotEvaluated {
                policy: policy.policy.name.clone(),
                needs: needs.iter().map(|n| (*n).to_string()).collect(),
            }),
            Outcome::Pass | Outcome::OutOfScope | Outcome::Excluded(_) => {}
        }
    }
    // Same order whatever order the policies came in (local files or Central's store).
    not_evaluated.sort_by(|a: &NotEvaluated, b: &NotEvaluated| a.policy.cmp(&b.policy));
    // Most severe first, then by name, so every output lists findings the same way.
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.policy.cmp(&b.policy))
    });
    ObjectReport {
        file: file.to_string(),
        document: location.document,
        line: location.line,
        list_index: location.list_index,
        kind: deployment.kind.as_str().to_string(),
        name: deployment.name.clone(),
        namespace: deployment.namespace.clone(),
        findings,
        not_evaluated,
    }
}

/// Which policies a check runs: the command line's (or the API request's) filters.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub stage: LifecycleStage,
    pub categories: &'a [String],
    pub severity_at_least: Option<Severity>,
    pub include: &'a [String],
    pub exclude: &'a [String],
}

/// Whether `wanted` names the policy by id, name (case-insensitive) or slug.
pub fn names_policy(wanted: &str, p: &Policy) -> bool {
    let w = wanted.trim();
    (!p.id.is_empty() && w == p.id) || w.eq_ignore_ascii_case(&p.name) || w == p.slug()
}

/// Naming a policy that does not exist is an error, not a silent no-op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no policy named '{0}'")]
pub struct UnknownPolicy(pub String);

/// Applies the filters; an include or exclude that names no policy is an error.
pub fn select(
    all: Vec<CompiledPolicy>,
    sel: &Selection<'_>,
) -> Result<Vec<CompiledPolicy>, UnknownPolicy> {
    for wanted in sel.include.iter().chain(sel.exclude) {
        if !all.iter().any(|p| names_policy(wanted, &p.policy)) {
            return Err(UnknownPolicy(wanted.clone()));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| {
            let p = &c.policy;
            let included = if sel.include.is_empty() {
                !p.disabled
            } else {
                sel.include.iter().any(|w| names_policy(w, p))
            };
            included
                && p.has_stage(sel.stage)
                && !sel.exclude.iter().any(|w| names_policy(w, p))
                && sel.severity_at_least.is_none_or(|s| p.severity >= s)
                && (sel.categories.is_empty()
                    || p.categories.iter().any(|c| {
                        sel.categories
                            .iter()
                            .any(|w| w.trim().eq_ignore_ascii_case(c))
                    }))
        })
        .collect())
}
