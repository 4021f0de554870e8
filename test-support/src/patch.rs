//! The patch types the API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! the part of Kubernetes' strategic merge patch that clients send for workloads — lists of
//! named things (containers, env, ports, volumes, volume mounts) merge by their key, `null`
//! removes a field, `$patch: delete` removes a list element; other lists are replaced.

use serde_json::Value;

/// The merge key of a list field, as Kubernetes' workload types declare it.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "tolerations" => "key",
        _ => return None,
    })
}

pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (field, value) in patch {
        if field.starts_with("$setElementOrder/") || field == "$retainKeys" {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(field);
            }
            Value::Array(items) => match (merge_key(field), target.get_mut(field)) {
                (Some(key), Some(Value::Array(existing))) => merge_list(existing, items, key),
                _ => {
                    let kept = items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect();
                    target.insert(field.clone(), Value::Array(kept));
                }
            },
            Value::Object(_) => {
                strategic_merge(target.entry(field.clone()).or_insert(Value::Null), value);
            }
            other => {
                target.insert(field.clone(), other.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => existing.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_null_removes_and_plain_lists_replace() {
        let mut target = json!({"spec": {"replicas": 3, "nodeSelector": {"a": "b"},
            "args": ["x"],
            "containers": [{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "envoy"}]}});
        strategic_merge(
            &mut target,
            &json!({"spec": {"replicas": 0, "nodeSelector": null, "args": ["y"],
                "containers": [{"name": "app", "image": "nginx:2"}, {"name": "side", "$patch": "delete"}]}}),
        );
        assert_eq!(
            target,
            json!({"spec": {"replicas": 0, "args": ["y"],
                "containers": [{"name": "app", "image": "nginx:2"}]}})
        );
    }
}
