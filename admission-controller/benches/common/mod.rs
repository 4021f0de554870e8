//! What the admission benchmarks share: the policy set and the review they send.

use std::time::SystemTime;

use rampart_admission::policies::PolicySet;
use rampart_policy::LifecycleStage;
use rampart_policy::defaults::default_policies;
use serde_json::{Value, json};

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

/// A typical Deployment as the API server sends it, in an UPDATE review.
pub fn typical_review() -> Vec<u8> {
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
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "checkout", "namespace": "shop", "operation": "UPDATE",
        "userInfo": {"username": "system:serviceaccount:ci:deployer", "uid": "a1b2", "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]},
        "object": object, "oldObject": object, "dryRun": false,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}}});
    serde_json::to_vec(&review).expect("json")
}
