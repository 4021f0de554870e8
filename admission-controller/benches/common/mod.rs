//! What the admission benchmarks share: the policy set and the review they send.

use std::time::SystemTime;

use rampart_admission::policies::PolicySet;
use rampart_policy::LifecycleStage;
use rampart_policy::defaults::default_policies;
use serde_json::{Value, json};

#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub mod train;

/// Every default deploy-time policy, enforced, as the JSON the Sensor sends.
pub fn all_enforced_json() -> Vec<Vec<u8>> {
    default_policies()
        .into_iter()
        .map(|mut p| {
            if p.has_stage(LifecycleStage::Deploy) {
                p.disabled = false;
                p.enforcement_actions = vec![
                    serde_json::from_value(json!("SCALE_TO_ZERO_ENFORCEMENT")).expect("action"),
                ];
            }
            serde_json::to_vec(&p).expect("json")
        })
        .collect()
}

/// The same as a policy set in use.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn all_enforced() -> PolicySet {
    PolicySet::build("bench", "prod", SystemTime::now(), &all_enforced_json())
}

/// Every default deploy-time policy enabled and none enforced: the controller refuses nothing
/// and answers with a warning for each one violated.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn all_warned() -> PolicySet {
    let json: Vec<Vec<u8>> = default_policies()
        .into_iter()
        .map(|mut p| {
            if p.has_stage(LifecycleStage::Deploy) {
                p.disabled = false;
                p.enforcement_actions.clear();
            }
            serde_json::to_vec(&p).expect("json")
        })
        .collect();
    PolicySet::build("bench", "prod", SystemTime::now(), &json)
}

/// The typical Deployment as the API server holds it: managedFields, status.
pub fn typical_object() -> Value {
    let text = include_str!("../../../policy/benches/fixtures/typical-deployment.yaml");
    let docs = rampart_policy::yaml::split_documents(text);
    let mut object: Value =
        rampart_policy::yaml::parse_document(docs.into_iter().next().expect("doc")).expect("yaml");
    object["metadata"]["uid"] = json!("6f2c9a8e-3f0b-4d8e-9a43-1b2c3d4e5f60");
    object["metadata"]["resourceVersion"] = json!("48213377");
    object["metadata"]["managedFields"] = json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-11-20T10:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:owner": {}}, "f:labels": {".": {}, "f:team": {}}},
                      "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"checkout\"}": {".": {}, "f:image": {}, "f:env": {}}}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-11-20T10:00:05Z", "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": {"f:status": {"f:availableReplicas": {}, "f:conditions": {}, "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:updatedReplicas": {}}}}
    ]);
    object["status"] = json!({"observedGeneration": 42, "replicas": 3, "updatedReplicas": 3,
        "readyReplicas": 3, "availableReplicas": 3, "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": "2026-11-20T10:00:05Z", "lastTransitionTime": "2026-11-20T10:00:05Z"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet \"checkout-7d9f\" has successfully progressed.", "lastUpdateTime": "2026-11-20T10:00:05Z", "lastTransitionTime": "2026-11-20T10:00:00Z"}]});
    object
}

/// A review of `operation` on `object`, as the API server writes it.
pub fn review(
    kind: Value,
    resource: Value,
    operation: &str,
    user: &str,
    object: &Value,
    old: Option<&Value>,
) -> Vec<u8> {
    let name = object["metadata"]["name"].clone();
    // A service account's groups, as the API server adds them; a person's from their
    // identity provider.
    let groups = match user.strip_prefix("system:serviceaccount:") {
        Some(rest) => json!([
            "system:serviceaccounts",
            format!(
                "system:serviceaccounts:{}",
                rest.split(':').next().unwrap_or_default()
            ),
            "system:authenticated"
        ]),
        None => json!(["developers", "system:authenticated"]),
    };
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
        "name": name, "namespace": "shop", "operation": operation,
        "userInfo": {"username": user, "uid": "a1b2", "groups": groups},
        "object": object, "oldObject": old, "dryRun": false,
        "options": {"kind": format!("{}Options", if operation == "CREATE" { "Create" } else { "Update" }),
                    "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}});
    if old.is_none() {
        request["oldObject"] = Value::Null;
    }
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    serde_json::to_vec(&review).expect("json")
}

/// The review of `user` creating `pod`.
fn pod_create(user: &str, pod: &Value) -> Vec<u8> {
    review(
        json!({"group": "", "version": "v1", "kind": "Pod"}),
        json!({"group": "", "version": "v1", "resource": "pods"}),
        "CREATE",
        user,
        pod,
        None,
    )
}

fn deployment_kind() -> (Value, Value) {
    (
        json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
        json!({"group": "apps", "version": "v1", "resource": "deployments"}),
    )
}

/// A typical Deployment as the API server sends it, in an UPDATE review: 7 enforced policies
/// violated, so the answer is a denial naming them.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn typical_review() -> Vec<u8> {
    let object = typical_object();
    let (kind, resource) = deployment_kind();
    review(
        kind,
        resource,
        "UPDATE",
        "system:serviceaccount:ci:deployer",
        &object,
        Some(&object),
    )
}

/// The typical Deployment with what the default policies ask for (an owner's email, no secret
/// in the environment, the sidecar's capabilities dropped, read-only root filesystem and
/// probes), created: every policy is evaluated and none is violated.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn compliant_create_review() -> Vec<u8> {
    let (kind, resource) = deployment_kind();
    review(
        kind,
        resource,
        "CREATE",
        "system:serviceaccount:ci:deployer",
        &compliant_object(),
        None,
    )
}

/// A pod of the compliant Deployment's template created by a person, with no owner (as the
/// published load tests of other admission controllers create pods): decided on itself, every
/// policy evaluated, allowed.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn user_pod_create_review() -> Vec<u8> {
    let template = compliant_object()["spec"]["template"].clone();
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"],
        "spec": template["spec"]});
    pod["metadata"]["name"] = json!("checkout-debug");
    pod["metadata"]["namespace"] = json!("shop");
    pod["metadata"]["annotations"]["email"] = json!("payments-team@example.com");
    pod["metadata"]["annotations"]["owner"] = json!("payments-team@example.com");
    pod["metadata"]["labels"]["team"] = json!("payments");
    pod_create("alice@example.com", &pod)
}

/// [`typical_object`] with what every default policy asks for.
fn compliant_object() -> Value {
    let mut object = typical_object();
    object["metadata"]["annotations"]["email"] = json!("payments-team@example.com");
    object["status"] = json!({});
    let spec = &mut object["spec"]["template"]["spec"];
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().expect("containers") {
            if let Some(env) = c["env"].as_array_mut() {
                env.retain(|e| e["valueFrom"]["secretKeyRef"].is_null());
            }
        }
    }
    let envoy = &mut spec["containers"][1];
    envoy["securityContext"] = json!({"allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true, "runAsUser": 101, "capabilities": {"drop": ["ALL"]}});
    envoy["livenessProbe"] = json!({"httpGet": {"path": "/ready", "port": 15001}});
    envoy["readinessProbe"] = json!({"httpGet": {"path": "/ready", "port": 15001}});
    object
}

/// A pod of the typical Deployment as its ReplicaSet's controller creates it: the most common
/// review in a cluster, allowed because the Deployment it belongs to is what is decided.
#[allow(dead_code)] // each bench target compiles this module and uses a part of it
pub fn pod_create_review() -> Vec<u8> {
    let template = typical_object()["spec"]["template"].clone();
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"],
        "spec": template["spec"], "status": {"phase": "Pending", "qosClass": "Burstable"}});
    pod["metadata"]["name"] = json!("checkout-7d9f6c5b8-x2x4q");
    pod["metadata"]["generateName"] = json!("checkout-7d9f6c5b8-");
    pod["metadata"]["namespace"] = json!("shop");
    pod["metadata"]["labels"]["pod-template-hash"] = json!("7d9f6c5b8");
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "checkout-7d9f6c5b8", "uid": "0c6d2c9e-1f0a-4b8e-8a43-2b2c3d4e5f61",
        "controller": true, "blockOwnerDeletion": true}]);
    pod["metadata"]["managedFields"] = json!([{"manager": "kube-controller-manager",
        "operation": "Update", "apiVersion": "v1", "time": "2026-11-20T10:00:01Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:generateName": {},
        "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}},
        "f:ownerReferences": {".": {}, "k:{\"uid\":\"0c6d2c9e-1f0a-4b8e-8a43-2b2c3d4e5f61\"}": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"checkout\"}": {".": {}, "f:image": {}}}}}}]);
    pod_create(
        "system:serviceaccount:kube-system:replicaset-controller",
        &pod,
    )
}
