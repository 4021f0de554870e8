//! Kubernetes manifests (YAML or JSON text) → workload objects, document by document.
//!
//! A broken document is reported with its index and line and never stops the others; `kind: List`
//! is flattened; objects that are not workloads are counted by kind so a summary can say what was
//! skipped. JSON input takes serde_json directly (the fast path).

use serde_json::Value;

use crate::deployment::{Workload, WorkloadKind};
pub use crate::workload::decode_workload;
use crate::yaml::{self, DocumentText};

/// Where an object came from inside one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based document index in the stream.
    pub document: usize,
    /// 1-based line of the document (or of the stream for JSON) where the object starts.
    pub line: usize,
    /// 0-based index inside a `kind: List`.
    pub list_index: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct ManifestObject {
    pub location: Location,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub body: ObjectBody,
}

#[derive(Debug, Clone)]
pub enum ObjectBody {
    Workload(Box<Workload>),
    /// A Kubernetes kind Rampart knows but does not evaluate (Service, ConfigMap, ...).
    NotAWorkload,
    /// A kind Rampart does not know (a CRD, a typo).
    UnknownKind,
}

/// A document or object that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub document: usize,
    pub line: Option<usize>,
    pub message: String,
}

/// One document's worth of results.
#[derive(Debug, Default)]
pub struct Parsed {
    pub objects: Vec<ManifestObject>,
    pub problems: Vec<Problem>,
}

impl Parsed {
    fn extend(&mut self, other: Parsed) {
        self.objects.extend(other.objects);
        self.problems.extend(other.problems);
    }
}

/// True when the text is JSON rather than YAML (it starts with `{` or `[`).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with(['{', '['])
}

/// Splits a text into the units that can be parsed independently (and in parallel).
pub fn split(text: &str) -> Vec<DocumentText<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if looks_like_json(text) {
        vec![DocumentText {
            text,
            first_line: 1,
        }]
    } else {
        yaml::split_documents(text)
    }
}

/// Parses one unit returned by [`split`]; `document` is its 1-based index.
pub fn parse_unit(unit: DocumentText<'_>, document: usize) -> Parsed {
    if looks_like_json(unit.text) {
        let parsed = parse_json_stream(unit.text, document);
        // `{kind: Pod}` is YAML flow syntax, not JSON: when nothing parsed as JSON, read the text
        // as a YAML stream instead (sequentially; this is the rare case).
        if !parsed.objects.is_empty() || parsed.problems.is_empty() {
            return parsed;
        }
        let mut all = Parsed::default();
        for (i, doc) in yaml::split_documents(unit.text).into_iter().enumerate() {
            all.extend(parse_yaml_unit(doc, document + i));
        }
        // Neither JSON nor YAML: the JSON error describes what the author meant to write.
        return if all.objects.is_empty() { parsed } else { all };
    }
    parse_yaml_unit(unit, document)
}

fn parse_yaml_unit(unit: DocumentText<'_>, document: usize) -> Parsed {
    match yaml::parse_document(unit) {
        Ok(value) => objects_from_value(value, document, unit.content_line()),
        Err(e) => Parsed {
            objects: Vec::new(),
            problems: vec![Problem {
                document,
                line: e.line,
                message: format!("invalid YAML: {}", e.message),
            }],
        },
    }
}

/// Parses a whole text sequentially (the CLI parallelizes over [`split`] instead).
pub fn parse_text(text: &str) -> Parsed {
    let mut all = Parsed::default();
    for (i, unit) in split(text).into_iter().enumerate() {
        all.extend(parse_unit(unit, i + 1));
    }
    all
}

fn parse_json_stream(text: &str, first_document: usize) -> Parsed {
    let mut all = Parsed::default();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut document = first_document;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let skipped_ws = text[start..].len() - text[start..].trim_start().len();
                let line = line_of(text, start + skipped_ws);
                // A top-level JSON array is a list of objects.
                if let Value::Array(items) = value {
                    for (i, item) in items.into_iter().enumerate() {
                        let mut parsed = objects_from_value(item, document, line);
                        parsed
                            .objects
                            .iter_mut()
                            .for_each(|o| o.location.list_index = Some(i));
                        all.extend(parsed);
                    }
                } else {
                    all.extend(objects_from_value(value, document, line));
                }
                document += 1;
            }
            Some(Err(e)) => {
                all.problems.push(Problem {
                    document,
                    line: Some(e.line()),
                    message: format!("invalid JSON: {e}"),
                });
                break;
            }
        }
    }
    all
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Turns one document's value into objects (several for `kind: List`).
pub fn objects_from_value(value: Value, document: usize, line: usize) -> Parsed {
    let mut parsed = Parsed::default();
    match value {
        Value::Null => {}
        Value::Object(_) => {
            // `List` and typed lists (`DeploymentList`) carry their objects in `items`.
            if str_field(&value, "kind").ends_with("List")
                && value.get("items").is_some_and(Value::is_array)
            {
                let items = match value {
                    Value::Object(mut m) => m.remove("items"),
                    _ => None,
                };
                for (i, item) in items
                    .and_then(|v| match v {
                        Value::Array(a) => Some(a),
                        _ => None,
                    })
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    match classify(item, document, line) {
                        Ok(mut o) => {
                            o.location.list_index = Some(i);
                            parsed.objects.push(o);
                        }
                        Err(message) => parsed.problems.push(Problem {
                            document,
                            line: Some(line),
                            message: format!("item {i} of the List: {message}"),
                        }),
                    }
                }
            } else {
                match classify(value, document, line) {
                    Ok(o) => parsed.objects.push(o),
                    Err(message) => parsed.problems.push(Problem {
                        document,
                        line: Some(line),
                        message,
                    }),
                }
            }
        }
        other => parsed.problems.push(Problem {
            document,
            line: Some(line),
            message: format!(
                "expected a Kubernetes object (a mapping), found {}",
                type_name(&other)
            ),
        }),
    }
    parsed
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Kinds that are part of Kubernetes (or common add-ons) but are not workloads.
const KNOWN_NON_WORKLOADS: &[&str] = &[
    "APIService",
    "CSIDriver",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "CustomResourceDefinition",
    "Endpoints",
    "EndpointSlice",
    "Gateway",
    "HTTPRoute",
    "HorizontalPodAutoscaler",
    "Ingress",
    "IngressClass",
    "Kustomization",
    "Lease",
    "LimitRange",
    "MutatingWebhookConfiguration",
    "Namespace",
    "NetworkPolicy",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "PodTemplate",
    "PriorityClass",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "Route",
    "RuntimeClass",
    "Secret",
    "Service",
    "ServiceAccount",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VerticalPodAutoscaler",
    "VolumeAttachment",
];

pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn classify(value: Value, document: usize, line: usize) -> Result<ManifestObject, String> {
    let api_version = str_field(&value, "apiVersion").to_string();
    let kind = str_field(&value, "kind").to_string();
    if kind.is_empty() {
        return Err("object has no `kind`".to_string());
    }
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let body = match workload_kind(&api_version, &kind) {
        Some(k) => ObjectBody::Workload(Box::new(decode(k, &value)?)),
        None if KNOWN_NON_WORKLOADS.contains(&kind.as_str()) => ObjectBody::NotAWorkload,
        None => ObjectBody::UnknownKind,
    };
    Ok(ManifestObject {
        location: Location {
            document,
            line,
            list_index: None,
        },
        api_version,
        kind,
        name,
        namespace,
        body,
    })
}

/// The workload kind an object's `apiVersion` and `kind` name, if Rampart normalizes it.
pub fn workload_kind(api_version: &str, kind: &str) -> Option<WorkloadKind> {
    workload_kind_in_group(group_of(api_version), kind)
}

/// The same from the API group alone (`apps`, or empty for the core group), as an
/// AdmissionReview's request names it.
pub fn workload_kind_in_group(group: &str, kind: &str) -> Option<WorkloadKind> {
    let apps_group = matches!(group, "apps" | "extensions");
    Some(match (group, kind) {
        (g, "Deployment") if apps_group || g.is_empty() => WorkloadKind::Deployment,
        (_, "StatefulSet") if apps_group => WorkloadKind::StatefulSet,
        (_, "DaemonSet") if apps_group => WorkloadKind::DaemonSet,
        (_, "ReplicaSet") if apps_group => WorkloadKind::ReplicaSet,
        ("", "ReplicationController") => WorkloadKind::ReplicationController,
        ("", "Pod") => WorkloadKind::Pod,
        ("batch", "Job") => WorkloadKind::Job,
        ("batch", "CronJob") => WorkloadKind::CronJob,
        ("apps.openshift.io" | "", "DeploymentConfig") => WorkloadKind::DeploymentConfig,
        _ => return None,
    })
}

/// Decodes from a borrowed value; on failure, decodes again tracking the path so the error says
/// which field is wrong (the happy path pays nothing for it).
fn decode(kind: WorkloadKind, value: &Value) -> Result<Workload, String> {
    match decode_workload(kind, value) {
        Ok(v) => Ok(v),
        Err(_) => {
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(value, &mut track);
            match decode_workload(kind, tracked) {
                Ok(v) => Ok(v),
                Err(e) => Err(format!(
                    "invalid {}: {}: {}",
                    str_field(value, "kind"),
                    track.path(),
                    e
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_documents_do_not_hide_good_ones() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {}\n  template: {spec: {containers: [{name: c, image: nginx}]}}\n---\nkind: [oops\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    ports: [{containerPort: notanumber}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
        let parsed = parse_text(text);
        let kinds: Vec<_> = parsed
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.location.document))
            .collect();
        assert_eq!(
            kinds,
            vec![("Deployment", 1), ("Service", 4), ("Widget", 5)]
        );
        assert!(matches!(parsed.objects[2].body, ObjectBody::UnknownKind));
        assert_eq!(parsed.problems.len(), 2, "{:?}", parsed.problems);
        assert_eq!(parsed.problems[0].document, 2);
        assert!(
            parsed.problems[0].message.starts_with("invalid YAML"),
            "{:?}",
            parsed.problems[0]
        );
        assert_eq!(parsed.problems[1].document, 3);
        assert_eq!(parsed.problems[1].line, Some(10));
        assert!(
            parsed.problems[1]
                .message
                .contains("spec.containers[0].ports[0].containerPort"),
            "{:?}",
            parsed.problems[1]
        );
    }

    #[test]
    fn lists_and_json_streams() {
        let list = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}]}
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"c"}}"#;
        let parsed = parse_text(list);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let names: Vec<_> = parsed
            .objects
            .iter()
            .map(|o| {
                (
                    o.name.as_str(),
                    o.location.document,
                    o.location.line,
                    o.location.list_index,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", 1, 1, Some(0)),
                ("b", 1, 1, Some(1)),
                ("c", 2, 2, None)
            ]
        );
    }

    #[test]
    fn yaml_flow_mappings_are_not_mistaken_for_json() {
        let parsed = parse_text(
            "{apiVersion: v1, kind: Pod, metadata: {name: flow}}\n---\n{apiVersion: v1, kind: Pod, metadata: {name: two}}\n",
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let names: Vec<_> = parsed
            .objects
            .iter()
            .map(|o| (o.name.as_str(), o.location.document))
            .collect();
        assert_eq!(names, vec![("flow", 1), ("two", 2)]);
        // Broken JSON is still reported as a problem.
        let broken = parse_text("{\"kind\": \"Pod\"");
        assert_eq!(broken.problems.len(), 1, "{:?}", broken.problems);
        assert!(
            broken.problems[0].message.starts_with("invalid JSON"),
            "{:?}",
            broken.problems
        );
    }

    #[test]
    fn a_scalar_document_is_a_problem_not_a_crash() {
        let parsed = parse_text("just a string\n");
        assert_eq!(
            parsed.problems[0].message,
            "expected a Kubernetes object (a mapping), found a string"
        );
    }
}
