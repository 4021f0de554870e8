//! Validation and compilation of policies: every problem is reported with where it is, and a
//! policy that validates compiles into matchers the engine runs without re-parsing anything.

use regex::{Regex, RegexBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::criteria::{self, Criterion, Field, Needs, Target, ValueKind};
use crate::deployment::EnvSource;
use crate::policy::{BooleanOperator, EventSource, LifecycleStage, Policy, Severity};

/// Regexes are compiled with this size limit; the regex crate matches in linear time, so the only
/// risk left is size.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One problem in one policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy '{policy}': {path}{}{message}", if path.is_empty() { "" } else { ": " })]
pub struct ValidationError {
    pub policy: String,
    /// JSON path of the problem, e.g. `policySections[0].policyGroups[1].values[0]`.
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    pub fn holds(self, actual: f64, wanted: f64) -> bool {
        match self {
            Comparator::Eq => (actual - wanted).abs() < 1e-9,
            Comparator::Lt => actual < wanted,
            Comparator::Le => actual <= wanted,
            Comparator::Gt => actual > wanted,
            Comparator::Ge => actual >= wanted,
        }
    }
}

/// One compiled value of a group.
#[derive(Debug, Clone)]
pub enum Matcher {
    Bool(bool),
    Regex(Pattern),
    /// Lower-cased prefix.
    Prefix(String),
    Number(Comparator, f64),
    KeyValue {
        key: Pattern,
        value: Option<Pattern>,
    },
    Env {
        /// The sources the value's source pattern matches, one bit each by
        /// [`EnvSources::bit`]: a source is one of six names, so its pattern is matched
        /// against each once, here, instead of against every variable.
        sources: EnvSources,
        name: Option<Pattern>,
        value: Option<Pattern>,
    },
    /// Upper case, without `CAP_`.
    Capability(String),
    /// Upper case.
    Enum(String),
    /// A vulnerability severity with a comparator (`>= IMPORTANT`).
    Severity(Comparator, crate::image_data::VulnSeverity),
    /// A Dockerfile instruction (upper case) and an optional regex over its value.
    Dockerfile {
        instruction: String,
        value: Option<Pattern>,
    },
    /// A value of a criterion the engine cannot evaluate from a manifest; checked for syntax only.
    Unevaluated,
}

/// A set of environment variable sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvSources(u8);

impl EnvSources {
    fn bit(source: EnvSource) -> u8 {
        1 << (source as u8)
    }

    /// The sources whose name (`SECRET_KEY`...) the pattern matches; every source without one.
    fn matching(pattern: Option<&Pattern>) -> EnvSources {
        let Some(pattern) = pattern else {
            return EnvSources(u8::MAX);
        };
        EnvSources(
            EnvSource::ALL
                .iter()
                .filter(|s| pattern.is_match(s.as_str()))
                .fold(0, |bits, &s| bits | EnvSources::bit(s)),
        )
    }

    pub fn contains(self, source: EnvSource) -> bool {
        self.0 & EnvSources::bit(source) != 0
    }
}

impl Matcher {
    pub fn matches_str(&self, s: &str) -> bool {
        match self {
            Matcher::Regex(r) => r.is_match(s),
            Matcher::Prefix(p) => s.to_lowercase().starts_with(p.as_str()),
            Matcher::Enum(e) => s.eq_ignore_ascii_case(e),
            Matcher::Capability(c) => s.eq_ignore_ascii_case(c),
            _ => false,
        }
    }

    pub fn matches_number(&self, n: f64) -> bool {
        matches!(self, Matcher::Number(cmp, wanted) if cmp.holds(n, *wanted))
    }

    pub fn matches_bool(&self, b: bool) -> bool {
        matches!(self, Matcher::Bool(wanted) if *wanted == b)
    }
}

#[derive(Debug, Clone)]
pub struct CompiledGroup {
    pub criterion: &'static Criterion,
    pub negate: bool,
    pub operator: BooleanOperator,
    pub values: Vec<Matcher>,
    /// The values as written, for messages.
    pub raw_values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CompiledSection {
    pub name: String,
    /// Sorted by [`Stage`] (keeping the policy's order within a stage), so that each stage's
    /// groups are one slice.
    pub groups: Vec<CompiledGroup>,
    /// Where each stage's groups end in `groups`, worked out once instead of on every
    /// evaluation.
    stage_ends: [usize; Stage::COUNT],
}

/// Where a group is evaluated, in the order evaluation takes them: on the deployment (or the
/// runtime event), then per container on the container itself, on its image's vulnerable
/// components (groups that must hold for one component together), its ports, its mounts and its
/// environment variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Deployment,
    Container,
    Linked,
    Port,
    Volume,
    Env,
}

impl Stage {
    const COUNT: usize = 6;

    fn of(g: &CompiledGroup) -> Stage {
        match g.criterion.target {
            Target::Deployment | Target::Event => Stage::Deployment,
            _ if crate::engine::is_linked(g.criterion.field) => Stage::Linked,
            Target::Container => Stage::Container,
            Target::Port => Stage::Port,
            Target::Volume => Stage::Volume,
            Target::Env => Stage::Env,
        }
    }
}

impl CompiledSection {
    pub fn new(name: String, mut groups: Vec<CompiledGroup>) -> CompiledSection {
        groups.sort_by_key(Stage::of);
        let mut stage_ends = [0; Stage::COUNT];
        for (i, end) in stage_ends.iter_mut().enumerate() {
            *end = groups.iter().filter(|g| Stage::of(g) as usize <= i).count();
        }
        CompiledSection {
            name,
            groups,
            stage_ends,
        }
    }

    /// The groups evaluated at `stage`.
    pub fn stage(&self, stage: Stage) -> &[CompiledGroup] {
        let i = stage as usize;
        let start = if i == 0 { 0 } else { self.stage_ends[i - 1] };
        &self.groups[start..self.stage_ends[i]]
    }

    /// Whether any group is evaluated per container (container, image, port, mount or env).
    pub fn per_container(&self) -> bool {
        self.stage_ends[Stage::Deployment as usize] < self.groups.len()
    }
}

#[derive(Debug, Clone)]
pub struct CompiledScope {
    pub cluster: Option<String>,
    pub namespace: Option<Pattern>,
    pub label: Option<(String, Pattern)>,
    pub cluster_label: Option<(String, Pattern)>,
    pub namespace_label: Option<(String, Pattern)>,
}

#[derive(Debug, Clone)]
pub struct CompiledExclusion {
    pub name: String,
    pub deployment_name: Option<String>,
    pub scope: Option<CompiledScope>,
    pub image_name: Option<String>,
    pub expires: Option<OffsetDateTime>,
}

/// A validated policy ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub policy: Policy,
    pub sections: Vec<CompiledSection>,
    pub scopes: Vec<CompiledScope>,
    pub exclusions: Vec<CompiledExclusion>,
    pub skip_init_containers: bool,
    /// What the policy needs beyond a manifest (image data, cluster context...).
    pub needs: Vec<Needs>,
}

/// A value matched against a whole string, case-insensitively, as ACS reads policy values. Most
/// values are plain words (`latest`, `kube-system`) or `.*`: those are compared directly, which
/// is many times cheaper than running the regex, with the regex kept for what a direct
/// comparison cannot decide exactly (non-ASCII input, whose case folding is Unicode's).
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `.*`: any string without a line break (`.` does not match `\n`).
    Any,
    /// `.+`: any non-empty string without a line break.
    NonEmpty,
    /// ASCII letters, digits and punctuation without regex meaning.
    Literal(String, Regex),
    /// Alternatives that are each a literal (`owner|team`, `sh|bash|dash`): process names and
    /// label keys are often matched against such lists.
    Words(Vec<String>, Regex),
    Regex(Regex),
}

impl Pattern {
    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Any => !s.contains('\n'),
            Pattern::NonEmpty => !s.is_empty() && !s.contains('\n'),
            Pattern::Literal(word, _) if s.is_ascii() => s.eq_ignore_ascii_case(word),
            Pattern::Words(words, _) if s.is_ascii() => {
                words.iter().any(|w| s.eq_ignore_ascii_case(w))
            }
            Pattern::Literal(_, r) | Pattern::Words(_, r) | Pattern::Regex(r) => r.is_match(s),
        }
    }
}

fn whole_regex(pattern: &str) -> Result<Pattern, String> {
    let regex = RegexBuilder::new(&format!("^(?:{pattern})$"))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            format!(
                "invalid regular expression '{pattern}': {}",
                first_line(&e.to_string())
            )
        })?;
    let literal = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_/:@,=%!'\"<>; ".contains(c))
    };
    Ok(if pattern == ".*" {
        Pattern::Any
    } else if pattern == ".+" {
        Pattern::NonEmpty
    } else if literal(pattern) {
        Pattern::Literal(pattern.to_string(), regex)
    } else if pattern.split('|').all(literal) {
        Pattern::Words(pattern.split('|').map(str::to_string).collect(), regex)
    } else {
        Pattern::Regex(regex)
    })
}

fn optional_regex(pattern: &str) -> Result<Option<Pattern>, String> {
    if pattern.is_empty() {
        Ok(None)
    } else {
        whole_regex(pattern).map(Some)
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn parse_comparator(value: &str) -> (Comparator, &str) {
    let v = value.trim();
    for (prefix, cmp) in [
        ("<=", Comparator::Le),
        (">=", Comparator::Ge),
        ("<", Comparator::Lt),
        (">", Comparator::Gt),
        ("=", Comparator::Eq),
    ] {
        if let Some(rest) = v.strip_prefix(prefix) {
            return (cmp, rest.trim());
        }
    }
    (Comparator::Eq, v)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

const DOCKERFILE_INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];
const VULN_SEVERITIES: &[&str] = &["UNKNOWN", "LOW", "MODERATE", "IMPORTANT", "CRITICAL"];

/// Compiles one value of a criterion, or says precisely what is wrong with it.
pub fn compile_value(criterion: &Criterion, value: &str) -> Result<Matcher, String> {
    let matcher = match criterion.kind {
        ValueKind::Bool => Matcher::Bool(
            parse_bool(value)
                .ok_or_else(|| format!("'{value}' is not a boolean (true or false)"))?,
        ),
        ValueKind::Regex => {
            if value.is_empty() {
                return Err("value is empty".to_string());
            }
            Matcher::Regex(whole_regex(value)?)
        }
        ValueKind::Prefix => {
            if value.is_empty() {
                return Err("value is empty".to_string());
            }
            Matcher::Prefix(value.to_lowercase())
        }
        ValueKind::Number | ValueKind::Integer => {
            let (cmp, number) = parse_comparator(value);
            let n: f64 = number
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| {
                    format!("'{value}' is not a number with an optional comparator (<, <=, >, >=)")
                })?;
            if criterion.kind == ValueKind::Integer && n.fract() != 0.0 {
                return Err(format!("'{value}' is not a whole number"));
            }
            Matcher::Number(cmp, n)
        }
        ValueKind::KeyValue => {
            let (key, val) = value.split_once('=').unwrap_or((value, ""));
            if key.is_empty() {
                return Err(format!("'{value}' has an empty key; expected key=value"));
            }
            Matcher::KeyValue {
                key: whole_regex(key)?,
                value: optional_regex(val)?,
            }
        }
        ValueKind::EnvVar => {
            let mut parts = value.splitn(3, '=');
            let source = parts.next().unwrap_or_default();
            let name = parts.next().unwrap_or_default();
            let val = parts.next().unwrap_or_default();
            const SOURCES: &[&str] = &[
                "UNSET",
                "RAW",
                "SECRET_KEY",
                "CONFIG_MAP_KEY",
                "FIELD",
                "RESOURCE_FIELD",
                "UNKNOWN",
            ];
            if !source.is_empty() && !SOURCES.contains(&source.to_ascii_uppercase().as_str()) {
                return Err(format!(
                    "'{source}' is not an environment variable source; expected one of {}",
                    SOURCES.join(", ")
                ));
            }
            if source.is_empty() && name.is_empty() && val.is_empty() {
                return Err("value is empty; expected SOURCE=NAME=VALUE".to_string());
            }
            Matcher::Env {
                sources: EnvSources::matching(optional_regex(source)?.as_ref()),
                name: optional_regex(name)?,
                value: optional_regex(val)?,
            }
        }
        ValueKind::Capability => {
            let cap = value.trim().to_ascii_uppercase();
            let cap = cap.strip_prefix("CAP_").unwrap_or(&cap).to_string();
            let valid = !cap.is_empty()
                && cap
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
            if !valid {
                return Err(format!("'{value}' is not a Linux capability name"));
            }
            Matcher::Capability(cap)
        }
        ValueKind::Enum(allowed) => {
            let upper = value.trim().to_ascii_uppercase();
            if !allowed.contains(&upper.as_str()) {
                return Err(format!("'{value}' is not one of {}", allowed.join(", ")));
            }
            Matcher::Enum(upper)
        }
        ValueKind::DockerfileLine => {
            let (instruction, rest) = value.split_once('=').unwrap_or((value, ""));
            if !DOCKERFILE_INSTRUCTIONS.contains(&instruction.to_ascii_uppercase().as_str()) {
                return Err(format!("'{instruction}' is not a Dockerfile instruction"));
            }
            Matcher::Dockerfile {
                instruction: instruction.to_ascii_uppercase(),
                value: optional_regex(rest)?,
            }
        }
        ValueKind::Severity => {
            let (cmp, sev) = parse_comparator(value);
            if !VULN_SEVERITIES.contains(&sev.to_ascii_uppercase().as_str()) {
                return Err(format!(
                    "'{value}' is not a severity; expected an optional comparator and one of {}",
                    VULN_SEVERITIES.join(", ")
                ));
            }
            let severity = crate::image_data::VulnSeverity::parse(sev).unwrap_or_default();
            Matcher::Severity(cmp, severity)
        }
    };
    // Image criteria whose data the scanner does not produce yet keep their syntax check only
    // (Central's first-discovery history, NVD's own score, signatures).
    if matches!(
        criterion.field,
        Field::DaysSinceCveFirstDiscoveredInImage
            | Field::DaysSinceCveFirstDiscoveredInSystem
            | Field::NvdCvss
            | Field::ImageSignatureVerifiedBy
    ) {
        return Ok(Matcher::Unevaluated);
    }
    Ok(matcher)
}

fn compile_scope(scope: &crate::policy::Scope) -> Result<CompiledScope, String> {
    let label =
        |l: &Option<crate::policy::LabelMatch>| -> Result<Option<(String, Pattern)>, String> {
            match l {
                Some(l) if !l.key.is_empty() => {
                    let value = if l.value.is_empty() {
                        ".*"
                    } else {
                        l.value.as_str()
                    };
                    Ok(Some((l.key.clone(), whole_regex(value)?)))
                }
                Some(_) => Err("label has an empty key".to_string()),
                None => Ok(None),
            }
        };
    if !scope.cluster.is_empty() && scope.cluster_label.is_some() {
        return Err("cluster and clusterLabel cannot both be set".to_string());
    }
    if !scope.namespace.is_empty() && scope.namespace_label.is_some() {
        return Err("namespace and namespaceLabel cannot both be set".to_string());
    }
    Ok(CompiledScope {
        cluster: Some(scope.cluster.clone()).filter(|c| !c.is_empty()),
        namespace: optional_regex(&scope.namespace)?,
        label: label(&scope.label)?,
        cluster_label: label(&scope.cluster_label)?,
        namespace_label: label(&scope.namespace_label)?,
    })
}

/// Validates a policy and compiles it. All problems are returned, not just the first.
pub fn compile(policy: &Policy) -> Result<CompiledPolicy, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let name = if policy.name.is_empty() {
        policy.id.clone()
    } else {
        policy.name.clone()
    };
    let mut err = |path: String, message: String| {
        errors.push(ValidationError {
            policy: name.clone(),
            path,
            message,
        });
    };
    if policy.name.trim().is_empty() {
        err("name".into(), "policy has no name".into());
    }
    if policy.lifecycle_stages.is_empty() {
        err(
            "lifecycleStages".into(),
            "at least one lifecycle stage is required (BUILD, DEPLOY, RUNTIME)".into(),
        );
    }
    if policy.severity == Severity::Unset {
        err("severity".into(), "severity is required (LOW_SEVERITY, MEDIUM_SEVERITY, HIGH_SEVERITY, CRITICAL_SEVERITY)".into());
    }
    let runtime = policy.has_stage(LifecycleStage::Runtime);
    match (runtime, policy.event_source) {
        (true, EventSource::NotApplicable) => err(
            "eventSource".into(),
            "a RUNTIME policy needs an event source (DEPLOYMENT_EVENT, AUDIT_LOG_EVENT or NODE_EVENT)".into(),
        ),
        (false, src) if src != EventSource::NotApplicable => err(
            "eventSource".into(),
            "event source must be NOT_APPLICABLE for BUILD and DEPLOY policies".into(),
        ),
        _ => {}
    }
    for (i, action) in policy.enforcement_actions.iter().enumerate() {
        if let Some(stage) = action.stage()
            && !policy.has_stage(stage)
        {
            err(
                format!("enforcementActions[{i}]"),
                format!(
                    "enforcement {action:?} needs the {stage:?} lifecycle stage, which the policy does not have"
                ),
            );
        }
    }
    if policy.policy_sections.is_empty() {
        err(
            "policySections".into(),
            "policy has no criteria (policySections is empty)".into(),
        );
    }
    let mut sections = Vec::new();
    let mut needs = Vec::new();
    let mut has_runtime_criterion = false;
    for (si, section) in policy.policy_sections.iter().enumerate() {
        if section.policy_groups.is_empty() {
            err(
                format!("policySections[{si}]"),
                "section has no criteria".into(),
            );
        }
        let mut groups = Vec::new();
        for (gi, group) in section.policy_groups.iter().enumerate() {
            let path = format!("policySections[{si}].policyGroups[{gi}]");
            let Some(criterion) = criteria::lookup(&group.field_name) else {
                let hint = criteria::suggest(&group.field_name)
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                err(
                    format!("{path}.fieldName"),
                    format!("unknown field name '{}'{hint}", group.field_name),
                );
                continue;
            };
            if criterion.target == Target::Event {
                has_runtime_criterion = true;
            }
            for stage in &policy.lifecycle_stages {
                let allowed = match stage {
                    // BUILD evaluates images only, as ACS's image-only matcher does.
                    LifecycleStage::Build => criterion.stages.contains(&LifecycleStage::Build),
                    s => criterion.stages.contains(s),
                };
                if !allowed {
                    err(
                        format!("{path}.fieldName"),
                        format!(
                            "criterion '{}' is not allowed in a {stage:?} policy",
                            criterion.name
                        ),
                    );
                }
            }
            if group.negate && criterion.negate_forbidden {
                err(
                    format!("{path}.negate"),
                    format!("criterion '{}' cannot be negated", criterion.name),
                );
            }
            if group.values.is_empty() {
                err(
                    format!("{path}.values"),
                    format!("criterion '{}' has no values", criterion.name),
                );
            }
            if criterion.single_value
                && (group.values.len() > 1 || group.boolean_operator == BooleanOperator::And)
            {
                err(
                    format!("{path}.values"),
                    format!(
                        "criterion '{}' takes exactly one value and no AND/OR operator",
                        criterion.name
                    ),
                );
            }
            let mut values = Vec::new();
            for (vi, v) in group.values.iter().enumerate() {
                match compile_value(criterion, &v.value) {
                    Ok(m) => values.push(m),
                    Err(message) => err(format!("{path}.values[{vi}]"), message),
                }
            }
            if criterion.needs != Needs::Manifest && !needs.contains(&criterion.needs) {
                needs.push(criterion.needs);
            }
            groups.push(CompiledGroup {
                criterion,
                negate: group.negate,
                operator: group.boolean_operator,
                values,
                raw_values: group.values.iter().map(|v| v.value.clone()).collect(),
            });
        }
        sections.push(CompiledSection::new(section.section_name.clone(), groups));
    }
    if runtime && !has_runtime_criterion && !policy.policy_sections.is_empty() {
        err(
            "policySections".into(),
            "a RUNTIME policy needs at least one runtime criterion (process, network flow, Kubernetes event, audit log or file)".into(),
        );
    }
    let mut scopes = Vec::new();
    for (i, s) in policy.scope.iter().enumerate() {
        match compile_scope(s) {
            Ok(s) => scopes.push(s),
            Err(m) => err(format!("scope[{i}]"), m),
        }
    }
    let mut exclusions = Vec::new();
    let deploy_or_runtime = policy.has_stage(LifecycleStage::Deploy) || runtime;
    for (i, e) in policy.exclusions.iter().enumerate() {
        let path = format!("exclusions[{i}]");
        if e.deployment.is_some() && !deploy_or_runtime {
            err(
                path.clone(),
                "deployment exclusions apply only to DEPLOY and RUNTIME policies".into(),
            );
        }
        if e.image.is_some() && !policy.has_stage(LifecycleStage::Build) {
            err(
                path.clone(),
                "image exclusions apply only to BUILD policies".into(),
            );
        }
        let scope = match e.deployment.as_ref().and_then(|d| d.scope.as_ref()) {
            Some(s) if s.cluster_label.is_some() || s.namespace_label.is_some() => {
                err(
                    format!("{path}.deployment.scope"),
                    "exclusion scopes cannot use cluster or namespace labels".into(),
                );
                None
            }
            Some(s) => match compile_scope(s) {
                Ok(s) => Some(s),
                Err(m) => {
                    err(format!("{path}.deployment.scope"), m);
                    None
                }
            },
            None => None,
        };
        let expires = match &e.expiration {
            Some(t) => match OffsetDateTime::parse(t, &Rfc3339) {
                Ok(t) => Some(t),
                Err(_) => {
                    err(
                        format!("{path}.expiration"),
                        format!("'{t}' is not an RFC 3339 timestamp"),
                    );
                    None
                }
            },
            None => None,
        };
        exclusions.push(CompiledExclusion {
            name: e.name.clone(),
            deployment_name: e
                .deployment
                .as_ref()
                .map(|d| d.name.clone())
                .filter(|n| !n.is_empty()),
            scope,
            image_name: e
                .image
                .as_ref()
                .map(|i| i.name.clone())
                .filter(|n| !n.is_empty()),
            expires,
        });
    }
    let skip_init_containers = policy.evaluation_filter.as_ref().is_some_and(|f| {
        f.skip_container_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("INIT"))
    });
    if errors.is_empty() {
        Ok(CompiledPolicy {
            policy: policy.clone(),
            sections,
            scopes,
            exclusions,
            skip_init_containers,
            needs,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_source_pattern_is_matched_against_each_source_once() {
        let sources = |pattern: Option<&str>| -> Vec<&str> {
            let pattern = pattern.map(|p| whole_regex(p).expect("pattern"));
            let set = EnvSources::matching(pattern.as_ref());
            EnvSource::ALL
                .iter()
                .filter(|s| set.contains(**s))
                .map(|s| s.as_str())
                .collect()
        };
        assert_eq!(sources(Some("SECRET_KEY")), ["SECRET_KEY"]);
        assert_eq!(
            sources(Some("secret_key")),
            ["SECRET_KEY"],
            "case-insensitive"
        );
        assert_eq!(
            sources(Some("RAW|CONFIG_MAP_KEY")),
            ["RAW", "CONFIG_MAP_KEY"]
        );
        assert_eq!(sources(Some(".*FIELD")), ["FIELD", "RESOURCE_FIELD"]);
        assert_eq!(sources(Some("NONE")), Vec::<&str>::new());
        assert_eq!(sources(None).len(), 6, "no pattern: every source");
        assert_eq!(sources(Some(".*")).len(), 6);
    }

    #[test]
    fn direct_comparisons_agree_with_the_regex_they_replace() {
        let patterns = [
            ".*",
            "latest",
            "kube-system",
            "Kube-System",
            "a.b",
            "ALL",
            "x|y",
            "é",
            ".+",
            "owner|team",
            "OWNER|Team",
            "sh|bash|dash",
            "a||b",
            "|a",
            "kube-system|kube-public",
        ];
        let inputs = [
            "latest",
            "LATEST",
            "kube-system",
            "KUBE-SYSTEM",
            "kube-systems",
            "",
            "a.b",
            "axb",
            "line\nbreak",
            "\u{212A}ube-system", // KELVIN SIGN folds to k
            "all",
            "x",
            "É",
            "owner",
            "TEAM",
            "team ",
            "teams",
            "bash",
            "sh",
            "SH",
            "dash",
            "a",
            "b",
            "kube-public",
            "\u{212A}ube-public",
        ];
        for p in patterns {
            let pattern = whole_regex(p).expect("valid");
            let regex = RegexBuilder::new(&format!("^(?:{p})$"))
                .case_insensitive(true)
                .build()
                .expect("valid");
            for s in inputs {
                assert_eq!(pattern.is_match(s), regex.is_match(s), "{p:?} on {s:?}");
            }
        }
        assert!(matches!(whole_regex(".*"), Ok(Pattern::Any)));
        assert!(matches!(
            whole_regex("kube-system"),
            Ok(Pattern::Literal(..))
        ));
        assert!(matches!(whole_regex("a.b"), Ok(Pattern::Regex(_))));
        assert!(matches!(whole_regex(".+"), Ok(Pattern::NonEmpty)));
        assert!(matches!(whole_regex("owner|team"), Ok(Pattern::Words(..))));
        // An empty alternative matches the empty string: left to the regex.
        assert!(matches!(whole_regex("a||b"), Ok(Pattern::Regex(_))));
    }
}
