//! The ACS search syntax, the subset users type most: `Field:v1,v2+Field2:v`.
//!
//! Fields are AND-ed, a field's values OR-ed. A value matches as a case-insensitive prefix
//! (ACS's default for text), `"quoted"` exactly, `r/regex` as a whole-string regex, and `!value`
//! negates. `Severity` takes `HIGH_SEVERITY` or `high`; `Lifecycle Stage` `DEPLOY` or `RUNTIME`;
//! `Violation State` `ACTIVE`, `RESOLVED` or `ATTEMPTED`.

use crate::alerts::AlertRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Cluster,
    Namespace,
    Deployment,
    Policy,
    PolicyId,
    Severity,
    LifecycleStage,
    ViolationState,
    Category,
}

const FIELDS: &[(&str, Field)] = &[
    ("cluster", Field::Cluster),
    ("namespace", Field::Namespace),
    ("deployment", Field::Deployment),
    ("policy", Field::Policy),
    ("policy id", Field::PolicyId),
    ("severity", Field::Severity),
    ("lifecycle stage", Field::LifecycleStage),
    ("violation state", Field::ViolationState),
    ("category", Field::Category),
];

#[derive(Debug, Clone)]
enum Pattern {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
struct Value {
    negate: bool,
    pattern: Pattern,
}

impl Value {
    fn matches(&self, text: &str) -> bool {
        let hit = match &self.pattern {
            Pattern::Prefix(p) => text.to_lowercase().starts_with(p.as_str()),
            Pattern::Exact(e) => text.eq_ignore_ascii_case(e),
            Pattern::Regex(r) => r.is_match(text),
        };
        hit != self.negate
    }
}

#[derive(Debug, Clone)]
struct Term {
    field: Field,
    values: Vec<Value>,
}

/// A parsed query; the empty query matches everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid search query: {0}")]
pub struct QueryError(pub String);

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        for part in text.split('+').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, values) = part.split_once(':').ok_or_else(|| {
                QueryError(format!("'{part}' is not Field:value (e.g. Severity:HIGH)"))
            })?;
            let wanted = name.trim().to_lowercase();
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == wanted)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    QueryError(format!(
                        "unknown field '{}'; known: Cluster, Namespace, Deployment, Policy, Policy Id, Severity, Lifecycle Stage, Violation State, Category",
                        name.trim()
                    ))
                })?;
            let values = values
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| parse_value(field, v))
                .collect::<Result<Vec<_>, _>>()?;
            if values.is_empty() {
                return Err(QueryError(format!("field '{}' has no value", name.trim())));
            }
            terms.push(Term { field, values });
        }
        Ok(Query { terms })
    }

    pub fn names(&self, field: Field) -> bool {
        self.terms.iter().any(|t| t.field == field)
    }

    pub fn matches(&self, a: &AlertRecord) -> bool {
        self.matches_view(&AlertView::of(a))
    }

    /// Whether an alert, seen through its searchable fields, matches.
    pub fn matches_view(&self, a: &AlertView<'_>) -> bool {
        self.terms.iter().all(|t| {
            let texts: Vec<&str> = match t.field {
                Field::Cluster => vec![&a.cluster_id],
                Field::Namespace => vec![&a.namespace],
                Field::Deployment => vec![&a.deployment_name],
                Field::Policy => vec![&a.policy_name],
                Field::PolicyId => vec![&a.policy_id],
                Field::Severity => vec![a.severity.as_acs(), a.severity.short()],
                Field::LifecycleStage => vec![&a.lifecycle_stage],
                Field::ViolationState => vec![a.state.as_str()],
                Field::Category => a.categories.iter().map(|c| c.as_ref()).collect(),
            };
            // A negated value must hold for every text; a positive one for any.
            t.values.iter().any(|v| {
                if v.negate {
                    texts.iter().all(|x| v.matches(x))
                } else {
                    texts.iter().any(|x| v.matches(x))
                }
            })
        })
    }
}

fn parse_value(field: Field, raw: &str) -> Result<Value, QueryError> {
    let (negate, rest) = match raw.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, raw),
    };
    let pattern = if let Some(re) = rest.strip_prefix("r/") {
        let re = regex::RegexBuilder::new(&format!("^(?:{re})$"))
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| QueryError(format!("bad regex '{re}': {e}")))?;
        Pattern::Regex(re)
    } else if rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"') {
        Pattern::Exact(rest[1..rest.len() - 1].to_string())
    } else if matches!(
        field,
        Field::Severity | Field::LifecycleStage | Field::ViolationState
    ) {
        // Enumerations match whole words: "high" must not match "HIGH_SEVERITY"'s neighbours.
        Pattern::Exact(rest.to_string())
    } else {
        Pattern::Prefix(rest.to_lowercase())
    };
    Ok(Value { negate, pattern })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertState;
    use rampart_policy::Severity;

    fn alert(policy: &str, severity: Severity, ns: &str, state: AlertState) -> AlertRecord {
        AlertRecord {
            id: "a".into(),
            policy_id: "p".into(),
            policy_name: policy.into(),
            severity,
            categories: vec!["Security Best Practices".into(), "Privileges".into()],
            lifecycle_stage: "DEPLOY".into(),
            cluster_id: "prod-eu".into(),
            namespace: ns.into(),
            deployment_id: "d".into(),
            deployment_name: "checkout".into(),
            deployment_kind: "Deployment".into(),
            state,
            violations: vec![],
            first_occurred_unix_ms: 0,
            time_unix_ms: 0,
            resolved_unix_ms: None,
            enforcements: Vec::new(),
            admission: None,
            processes: Vec::new(),
        }
    }

    #[test]
    fn the_acs_syntax_matches_as_users_expect() {
        let a = alert(
            "Privileged Container",
            Severity::High,
            "shop",
            AlertState::Active,
        );
        let cases = [
            ("", true),
            ("Severity:HIGH_SEVERITY", true),
            ("severity:high", true),
            ("Severity:critical,high", true),
            ("Severity:low", false),
            ("Policy:privileged", true),
            ("Policy:\"privileged\"", false),
            ("Policy:\"Privileged Container\"", true),
            ("Policy:r/.*container", true),
            ("Namespace:shop+Cluster:prod", true),
            ("Namespace:shop+Cluster:dev", false),
            ("Namespace:!kube-system", true),
            ("Namespace:!shop", false),
            ("Category:privileges", true),
            ("Category:!privileges", false),
            ("Violation State:ACTIVE", true),
            ("Violation State:resolved", false),
            ("Lifecycle Stage:DEPLOY", true),
            ("Deployment:check", true),
            ("Policy Id:p", true),
        ];
        for (q, expected) in cases {
            let parsed = Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(parsed.matches(&a), expected, "{q}");
        }
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        for (q, says) in [
            ("Severity", "is not Field:value"),
            ("Colour:red", "unknown field 'Colour'"),
            ("Policy:", "has no value"),
            ("Policy:r/(", "bad regex"),
        ] {
            let err = Query::parse(q).expect_err(q).to_string();
            assert!(err.contains(says), "{q}: {err}");
        }
    }
}

/// The fields of a stored alert that searching and sorting read, borrowed from its stored
/// JSON where it can be (no violation messages, enforcements or admission details decoded): a
/// list page reads every alert this way and decodes only the page's in full.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub policy_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub policy_name: std::borrow::Cow<'a, str>,
    pub severity: rampart_policy::Severity,
    #[serde(borrow, default)]
    pub categories: Vec<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub lifecycle_stage: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub cluster_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub namespace: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub deployment_name: std::borrow::Cow<'a, str>,
    pub state: crate::alerts::AlertState,
    pub time_unix_ms: i64,
    #[serde(default)]
    pub first_occurred_unix_ms: i64,
}

impl<'a> AlertView<'a> {
    pub fn of(a: &'a AlertRecord) -> AlertView<'a> {
        use std::borrow::Cow::Borrowed;
        AlertView {
            id: Borrowed(&a.id),
            policy_id: Borrowed(&a.policy_id),
            policy_name: Borrowed(&a.policy_name),
            severity: a.severity,
            categories: a.categories.iter().map(|c| Borrowed(c.as_str())).collect(),
            lifecycle_stage: Borrowed(&a.lifecycle_stage),
            cluster_id: Borrowed(&a.cluster_id),
            namespace: Borrowed(&a.namespace),
            deployment_name: Borrowed(&a.deployment_name),
            state: a.state,
            time_unix_ms: a.time_unix_ms,
            first_occurred_unix_ms: a.first_occurred_unix_ms,
        }
    }
}
