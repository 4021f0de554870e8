use std::time::SystemTime;

use rampart_proto::v1::AdmissionResource;
use serde_json::{Value, json};

use super::*;
use crate::review;

fn policies() -> PolicySet {
    PolicySet::build("r1", "prod", SystemTime::now(), &policies_json())
}

/// The policies of [`policies`] as the Sensor sends them.
fn policies_json() -> Vec<Vec<u8>> {
    let doc = |v: Value| serde_json::to_vec(&v).expect("json");
    vec![
        doc(json!({
            "id": "priv", "name": "No privileged containers", "severity": "HIGH_SEVERITY",
            "description": "Privileged containers own the node.",
            "rationale": "A privileged container can do anything the host can.",
            "remediation": "Remove securityContext.privileged.",
            "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
            "policySections": [{"policyGroups": [{"fieldName": "Privileged Container", "values": [{"value": "true"}]}]}]
        })),
        doc(json!({
            "id": "replicas", "name": "At most 10 replicas", "severity": "LOW_SEVERITY",
            "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
            "policySections": [{"policyGroups": [{"fieldName": "Replicas", "values": [{"value": "> 10"}]}]}]
        })),
        doc(json!({
            "id": "exec", "name": "No exec", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
            "enforcementActions": ["FAIL_KUBE_REQUEST_ENFORCEMENT"],
            "policySections": [{"policyGroups": [{"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}]}]}]
        })),
        doc(json!({
            "id": "attach", "name": "Attach noticed", "severity": "MEDIUM_SEVERITY",
            "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
            "policySections": [{"policyGroups": [{"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_ATTACH"}]}]}]
        })),
    ]
}

fn pod_spec(privileged: bool) -> Value {
    json!({"containers": [{"name": "app", "image": "registry.example.com/web:1",
        "securityContext": {"privileged": privileged}}]})
}

/// A workload object of any kind around a pod spec.
fn object(kind: &str, privileged: bool, annotations: Value) -> (Value, &'static str, &'static str) {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(privileged)});
    let metadata = json!({"name": "web", "namespace": "shop", "annotations": annotations});
    let (group, version, spec) = match kind {
        "Pod" => ("", "v1", pod_spec(privileged)),
        "ReplicationController" => ("", "v1", json!({"replicas": 2, "template": template})),
        "Job" => ("batch", "v1", json!({"template": template})),
        "CronJob" => (
            "batch",
            "v1",
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}),
        ),
        "DeploymentConfig" => ("apps.openshift.io", "v1", json!({"template": template})),
        _ => (
            "apps",
            "v1",
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template}),
        ),
    };
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    (
        json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}),
        group,
        version,
    )
}

fn review_body(kind: &str, operation: &str, object: &Value, extra: Value) -> Vec<u8> {
    let group = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g);
    let request = json!({
        "uid": "uid-1",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
        "name": "web", "namespace": "shop", "operation": operation,
        "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]},
        "object": object,
    });
    wrap(request, extra)
}

/// A review around `request`, with `extra`'s fields set on the request.
fn wrap(mut request: Value, extra: Value) -> Vec<u8> {
    if let (Some(r), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(
        &json!({"apiVersion": review::V1, "kind": "AdmissionReview", "request": request}),
    )
    .expect("json")
}

struct World {
    settings: Settings,
    policies: Option<PolicySet>,
    resources: Resources,
    scan_wants: crate::scan_wants::ScanWants,
}

impl World {
    fn new() -> World {
        World {
            settings: Settings::default(),
            policies: Some(policies()),
            resources: Resources::default(),
            scan_wants: Default::default(),
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            settings: &self.settings,
            policies: self.policies.as_ref(),
            resources: &self.resources,
            now_unix_ms: 1_700_000_000_000,
            scan_wants: Some(&self.scan_wants),
        }
    }

    fn validate(&self, body: &[u8]) -> Decision {
        let (_, mut req) = review::decode(body).expect("a valid review");
        validate(&mut req, self.inputs())
    }

    fn event(&self, body: &[u8]) -> Decision {
        let (_, req) = review::decode(body).expect("a valid review");
        event(&req, self.inputs())
    }
}

#[test]
fn every_kind_and_operation_is_allowed_clean_and_denied_privileged() {
    let w = World::new();
    for kind in rampart_policy::WorkloadKind::ALL.map(|k| k.as_str()) {
        for op in ["CREATE", "UPDATE"] {
            let (clean, _, _) = object(kind, false, json!({}));
            let d = w.validate(&review_body(kind, op, &clean, json!({})));
            assert_eq!(d.outcome, Outcome::Allowed, "{kind} {op}: {d:?}");
            assert!(d.answer.allowed && d.alerts.is_empty());

            let (bad, _, _) = object(kind, true, json!({}));
            let d = w.validate(&review_body(kind, op, &bad, json!({})));
            assert_eq!(d.outcome, Outcome::Denied, "{kind} {op}: {d:?}");
            assert!(!d.answer.allowed);
            assert_eq!(d.violated, vec!["No privileged containers"]);
            assert_eq!(d.alerts.len(), 1);
            let a = &d.alerts.to_alerts()[0];
            assert_eq!(
                (
                    a.policy_id.as_str(),
                    a.kind.as_str(),
                    a.namespace.as_str(),
                    a.name.as_str()
                ),
                ("priv", kind, "shop", "web")
            );
            assert_eq!(a.operation, op);
            assert_eq!(a.user, "alice");
            assert_eq!(a.request_uid, "uid-1");
            assert_eq!(
                a.enforcement_action,
                format!("FAIL_DEPLOYMENT_{op}_ENFORCEMENT")
            );
        }
    }
}

#[test]
fn policies_without_ids_are_each_named_with_their_own_texts() {
    let doc = |name: &str, remediation: &str, field: &str, value: &str| {
        serde_json::to_vec(&json!({
            "name": name, "severity": "HIGH_SEVERITY", "remediation": remediation,
            "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
            "policySections": [{"policyGroups": [{"fieldName": field, "values": [{"value": value}]}]}]
        }))
        .expect("json")
    };
    let set = PolicySet::build(
        "r1",
        "prod",
        SystemTime::now(),
        &[
            doc(
                "No privileged",
                "Drop privileged.",
                "Privileged Container",
                "true",
            ),
            doc(
                "Named app",
                "Rename the container.",
                "Container Name",
                "app",
            ),
        ],
    );
    let mut w = World::new();
    w.policies = Some(set);
    let (bad, _, _) = object("Deployment", true, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    let m = d.answer.message.to_text();
    for part in [
        "Policy: No privileged (severity HIGH)\n- Remediation: Drop privileged.",
        "Policy: Named app (severity HIGH)\n- Remediation: Rename the container.",
    ] {
        assert!(m.contains(part), "missing {part:?} in:\n{m}");
    }
}

#[test]
fn the_denial_names_policy_violation_remediation_and_break_glass() {
    let w = World::new();
    let (bad, _, _) = object("Deployment", true, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    let m = d.answer.message.to_text();
    for part in [
        "Rampart denied the create of Deployment shop/web: it violates 1 enforced policy.",
        "Policy: No privileged containers (severity HIGH)",
        "- Rationale: A privileged container can do anything the host can.",
        "- Remediation: Remove securityContext.privileged.",
        "    - Container 'app' is privileged",
        "admission.rampart.io/break-glass=<reason or ticket>",
    ] {
        assert!(m.contains(part), "missing {part:?} in:\n{m}");
    }
    let mut no_bypass = World::new();
    no_bypass.settings.break_glass = false;
    let d = no_bypass.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    let m = d.answer.message.to_text();
    assert!(!m.contains("break-glass"), "{m}");
}

#[test]
fn break_glass_allows_with_an_alert_unless_disabled() {
    let mut w = World::new();
    for annotation in BREAK_GLASS {
        let (bad, _, _) = object("Deployment", true, json!({annotation: "INC-1234"}));
        let body = review_body("Deployment", "CREATE", &bad, json!({}));
        let d = w.validate(&body);
        assert_eq!(d.outcome, Outcome::BreakGlass, "{annotation}");
        assert!(d.answer.allowed);
        assert!(d.answer.warnings[0].contains("No privileged containers"));
        assert_eq!(d.alerts.len(), 1);
        assert!(d.alerts.to_alerts()[0].break_glass);
        assert!(d.alerts.to_alerts()[0].enforcement_action.is_empty());
    }
    w.settings.break_glass = false;
    let (bad, _, _) = object(
        "Deployment",
        true,
        json!({"admission.rampart.io/break-glass": "x"}),
    );
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    assert_eq!(d.outcome, Outcome::Denied);
}

#[test]
fn exclusions_and_bypasses_are_not_evaluated() {
    let (bad, _, _) = object("Deployment", true, json!({}));
    let mut w = World::new();
    w.settings.bypass_users = vec!["ci-robot".into()];
    w.settings.bypass_groups = vec!["sre".into()];
    let cases = [
        (json!({"namespace": "kube-system"}), "namespace kube-system"),
        (json!({"namespace": "rampart"}), "namespace rampart"),
        (
            json!({"userInfo": {"username": "ci-robot"}}),
            "user ci-robot",
        ),
        (
            json!({"userInfo": {"username": "bob", "groups": ["sre"]}}),
            "group sre",
        ),
        (
            json!({"userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"}}),
            "excluded namespace",
        ),
        (json!({"subResource": "status"}), "subresource status"),
        (json!({"operation": "DELETE"}), "operation DELETE"),
    ];
    for (extra, reason) in cases {
        let d = w.validate(&review_body("Deployment", "CREATE", &bad, extra.clone()));
        assert_eq!(d.outcome, Outcome::Bypassed, "{extra}");
        assert!(d.answer.allowed);
        assert!(d.reason.contains(reason), "{reason} vs {}", d.reason);
    }
    // A service account elsewhere is evaluated like anyone.
    let d = w.validate(&review_body(
        "Deployment",
        "CREATE",
        &bad,
        json!({"userInfo": {"username": "system:serviceaccount:shop:deployer"}}),
    ));
    assert_eq!(d.outcome, Outcome::Denied);
}

#[test]
fn creates_and_updates_are_enforced_separately() {
    let (bad, _, _) = object("Deployment", true, json!({}));
    let mut w = World::new();
    w.settings.enforce_on_updates = false;
    assert_eq!(
        w.validate(&review_body("Deployment", "UPDATE", &bad, json!({})))
            .outcome,
        Outcome::Bypassed
    );
    assert_eq!(
        w.validate(&review_body("Deployment", "CREATE", &bad, json!({})))
            .outcome,
        Outcome::Denied
    );
    w.settings.enforce_on_updates = true;
    w.settings.enforce_on_creates = false;
    assert_eq!(
        w.validate(&review_body("Deployment", "CREATE", &bad, json!({})))
            .outcome,
        Outcome::Bypassed
    );
    assert_eq!(
        w.validate(&review_body("Deployment", "UPDATE", &bad, json!({})))
            .outcome,
        Outcome::Denied
    );
}

#[test]
fn dry_run_decides_the_same_without_alerts() {
    let w = World::new();
    let (bad, _, _) = object("Deployment", true, json!({}));
    let d = w.validate(&review_body(
        "Deployment",
        "CREATE",
        &bad,
        json!({"dryRun": true}),
    ));
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(d.alerts.is_empty());
}

#[test]
fn what_cannot_be_decided_follows_the_failure_mode() {
    let (bad, _, _) = object("Deployment", true, json!({}));
    let malformed = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": "nope"}}}});
    for mode in [FailureMode::Open, FailureMode::Closed] {
        let mut w = World::new();
        w.settings.failure_mode = mode;
        let want = if mode == FailureMode::Open {
            Outcome::FailedOpen
        } else {
            Outcome::FailedClosed
        };
        let d = w.validate(&review_body("Deployment", "CREATE", &malformed, json!({})));
        assert_eq!(d.outcome, want, "{d:?}");
        assert!(d.reason.contains("does not decode"), "{}", d.reason);
        let d = w.validate(&review_body(
            "Deployment",
            "CREATE",
            &Value::Null,
            json!({}),
        ));
        assert_eq!(d.outcome, want);
        assert!(d.reason.contains("no object"), "{}", d.reason);
        w.policies = None;
        let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
        assert_eq!(d.outcome, want);
        assert_eq!(d.reason, "no policy set received yet");
        match mode {
            FailureMode::Open => {
                assert!(d.answer.allowed);
                assert!(d.answer.warnings[0].contains("fails open"));
            }
            FailureMode::Closed => {
                assert!(!d.answer.allowed);
                assert!(
                    d.answer
                        .message
                        .to_text()
                        .contains("no policy set received yet")
                );
            }
        }
    }
}

/// The request's user, for `review_body`'s `extra`.
fn by(user: &str) -> Value {
    json!({"userInfo": {"username": user, "groups": ["system:authenticated"]}})
}

#[test]
fn controlled_objects_are_decided_at_their_owner() {
    let mut w = World::new();
    // Not kube-system's accounts' exclusion but the controllers' own trust is tested.
    w.settings.excluded_namespaces.clear();
    let (mut pod, _, _) = object("Pod", true, json!({}));
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-7d9f", "uid": "rs-1", "controller": true}]);
    for controller in [
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:kube-controller-manager",
    ] {
        for operation in ["CREATE", "UPDATE"] {
            let d = w.validate(&review_body("Pod", operation, &pod, by(controller)));
            assert_eq!(
                d.outcome,
                Outcome::Bypassed,
                "{controller} {operation}: {d:?}"
            );
            assert!(d.reason.contains("ReplicaSet web-7d9f"), "{}", d.reason);
        }
    }
    // A controller that is no workload (an operator's resource, or any object at all: an
    // ownerReference is its writer's word) does not stand for the object, decided itself.
    for (api_version, kind) in [
        ("monitoring.coreos.com/v1", "Prometheus"),
        ("v1", "ConfigMap"),
    ] {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
            "name": "owner", "uid": "o-1", "controller": true}]);
        let d = w.validate(&review_body(
            "Pod",
            "CREATE",
            &pod,
            by("system:serviceaccount:kube-system:replicaset-controller"),
        ));
        assert_eq!(d.outcome, Outcome::Denied, "{kind}: {d:?}");
    }
    // Nor does a workload that owns the object without controlling it.
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-7d9f", "uid": "rs-1", "controller": false}]);
    let d = w.validate(&review_body("Pod", "CREATE", &pod, json!({})));
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
}

/// An ownerReference is its writer's word: anyone who may create pods could name a ReplicaSet
/// as their pod's controller. Written by someone who is not a workload controller, a
/// controlled object is decided itself, whatever it claims.
#[test]
fn an_object_claiming_a_controller_is_decided_itself_unless_a_controller_wrote_it() {
    let mut w = World::new();
    w.settings.excluded_namespaces.clear();
    let owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
        "uid": "rs-1", "controller": true}]);
    for kind in ["Pod", "Deployment", "Job"] {
        for operation in ["CREATE", "UPDATE"] {
            let (mut bad, _, _) = object(kind, true, json!({}));
            bad["metadata"]["ownerReferences"] = owner.clone();
            let d = w.validate(&review_body(kind, operation, &bad, by("alice")));
            assert_eq!(d.outcome, Outcome::Denied, "{kind} {operation}: {d:?}");
            assert_eq!(d.violated, ["No privileged containers"], "{kind}");
            let message = d.answer.message.to_text();
            assert!(
                message.contains(&format!(
                    "The {kind} names ReplicaSet web-7d9f as its controller, but alice is not a workload controller, so the {kind} itself was evaluated."
                )),
                "{message}"
            );
            let (mut good, _, _) = object(kind, false, json!({}));
            good["metadata"]["ownerReferences"] = owner.clone();
            let d = w.validate(&review_body(kind, operation, &good, by("alice")));
            assert_eq!(d.outcome, Outcome::Allowed, "{kind} {operation}: {d:?}");
        }
    }
    // An update of such an object that leaves its spec as it was (`kubectl label pod`, or
    // the break-glass annotation added before `kubectl debug`) is its controller's business;
    // one that changes the spec (`kubectl set image pod/...`) is decided itself.
    for kind in ["Pod", "Deployment"] {
        let (mut before, _, _) = object(kind, true, json!({}));
        before["metadata"]["ownerReferences"] = owner.clone();
        let mut relabelled = before.clone();
        relabelled["metadata"]["labels"] = json!({"debug": "yes"});
        relabelled["metadata"]["annotations"] =
            json!({"admission.rampart.io/break-glass": "INC-9"});
        let d = w.validate(&review_body(
            kind,
            "UPDATE",
            &relabelled,
            json!({"userInfo": {"username": "alice"}, "oldObject": before}),
        ));
        assert_eq!(d.outcome, Outcome::Bypassed, "{kind}: {d:?}");
        assert!(
            d.reason.contains("leaves the spec as it was"),
            "{}",
            d.reason
        );
        let (mut clean, _, _) = object(kind, false, json!({}));
        clean["metadata"]["ownerReferences"] = owner.clone();
        let d = w.validate(&review_body(
            kind,
            "UPDATE",
            &before,
            json!({"userInfo": {"username": "alice"}, "oldObject": clean}),
        ));
        assert_eq!(d.outcome, Outcome::Denied, "{kind}: {d:?}");
    }
    // The metadata after the spec: the spec was read in the same pass all the same.
    let spec_first =
        serde_json::to_vec(&json!({"apiVersion": review::V1, "kind": "AdmissionReview",
        "request": {"uid": "u-2", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec(true),
                "metadata": {"name": "web", "namespace": "shop", "ownerReferences": owner}}}}))
        .expect("json");
    assert_eq!(w.validate(&spec_first).outcome, Outcome::Denied);
    // Accounts named in any namespace; other names are not controllers.
    w.settings.controller_users = vec!["system:serviceaccount:*:deployer".into()];
    let (mut bad, _, _) = object("Pod", true, json!({}));
    bad["metadata"]["ownerReferences"] = owner;
    for (user, outcome) in [
        ("system:serviceaccount:shop:deployer", Outcome::Bypassed),
        ("system:serviceaccount:other:deployer", Outcome::Bypassed),
        ("system:serviceaccount:shop:deployer-2", Outcome::Denied),
        ("system:serviceaccount:deployer", Outcome::Denied),
        ("deployer", Outcome::Denied),
        // No longer listed.
        (
            "system:serviceaccount:kube-system:replicaset-controller",
            Outcome::Denied,
        ),
    ] {
        let d = w.validate(&review_body("Pod", "CREATE", &bad, by(user)));
        assert_eq!(d.outcome, outcome, "{user}: {d:?}");
    }
}

#[test]
fn scale_is_decided_against_the_cached_workload() {
    let mut w = World::new();
    let (clean, _, _) = object("Deployment", false, json!({}));
    w.resources.apply(AdmissionResource {
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "web".into(),
        uid: "d1".into(),
        object_json: serde_json::to_vec(&clean).expect("json"),
        ..Default::default()
    });
    let scale = |replicas: i64| {
        let object = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": replicas}});
        let mut body: Value = serde_json::from_slice(&review_body(
            "Scale",
            "UPDATE",
            &object,
            json!({"subResource": "scale"}),
        ))
        .expect("json");
        body["request"]["kind"] = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        body["request"]["resource"] =
            json!({"group": "apps", "version": "v1", "resource": "deployments"});
        serde_json::to_vec(&body).expect("json")
    };
    assert_eq!(w.validate(&scale(3)).outcome, Outcome::Allowed);
    let d = w.validate(&scale(50));
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    assert_eq!(d.violated, vec!["At most 10 replicas"]);
    assert_eq!(
        d.alerts.to_alerts()[0].deployment_id,
        "",
        "the Scale object carries no uid"
    );
    assert_eq!(w.validate(&scale(0)).outcome, Outcome::Allowed);
    w.resources.clear();
    assert_eq!(w.validate(&scale(50)).outcome, Outcome::FailedOpen);
}

fn connect(sub: &str, pod: &str, extra: Value) -> Vec<u8> {
    let request = json!({
        "uid": "uid-2",
        "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": sub, "name": pod, "namespace": "shop", "operation": "CONNECT",
        "userInfo": {"username": "mallory", "groups": ["system:authenticated"]},
        "object": {"kind": "PodExecOptions", "apiVersion": "v1", "command": ["sh"], "stdin": true},
    });
    wrap(request, extra)
}

impl World {
    /// The Sensor reported Deployment shop/web (uid d1) and one of its pods.
    fn with_web(&mut self, annotations: Value, pod: &str) {
        let (web, _, _) = object("Deployment", false, annotations);
        self.resources.apply(AdmissionResource {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
            uid: "d1".into(),
            object_json: serde_json::to_vec(&web).expect("json"),
            ..Default::default()
        });
        self.resources.apply(AdmissionResource {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: pod.into(),
            uid: "p1".into(),
            owner_uid: "d1".into(),
            ..Default::default()
        });
    }
}

#[test]
fn exec_attach_and_port_forward() {
    let mut w = World::new();
    w.with_web(json!({}), "web-7d9f-abcde");
    let d = w.event(&connect("exec", "web-7d9f-abcde", json!({})));
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    let m = d.answer.message.to_text();
    assert!(
        m.starts_with("Rampart denied exec into pod shop/web-7d9f-abcde"),
        "{m}"
    );
    assert!(m.contains("request from user 'mallory'"));
    let a = &d.alerts.to_alerts()[0];
    assert_eq!(
        (a.deployment_id.as_str(), a.name.as_str(), a.pod.as_str()),
        ("d1", "web", "web-7d9f-abcde")
    );
    assert_eq!(a.enforcement_action, "FAIL_KUBE_REQUEST_ENFORCEMENT");

    // Not enforced: allowed, and still an alert.
    let d = w.event(&connect("attach", "web-7d9f-abcde", json!({})));
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!(d.alerts.len(), 1);
    assert!(d.alerts.to_alerts()[0].enforcement_action.is_empty());

    // No policy about port-forward.
    let d = w.event(&connect("portforward", "web-7d9f-abcde", json!({})));
    assert_eq!(d.outcome, Outcome::Allowed);
    assert!(d.alerts.is_empty());

    // An unknown pod is decided on its name and namespace.
    let d = w.event(&connect("exec", "stranger", json!({})));
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.alerts.to_alerts()[0].deployment_id, "");

    // Dry-run, excluded namespace, event enforcement off.
    let d = w.event(&connect("exec", "web-7d9f-abcde", json!({"dryRun": true})));
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(d.alerts.is_empty());
    let d = w.event(&connect("exec", "x", json!({"namespace": "kube-system"})));
    assert_eq!(d.outcome, Outcome::Bypassed);
    w.settings.enforce_events = false;
    let d = w.event(&connect("exec", "web-7d9f-abcde", json!({})));
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!(d.alerts.len(), 1, "still raised as an alert");
}

#[test]
fn the_bypass_annotation_exempts_a_workloads_pods_from_event_enforcement() {
    let mut w = World::new();
    w.with_web(
        json!({"admission.rampart.io/bypass-kube-event-enforcement": "debugging INC-9"}),
        "web-1",
    );
    let d = w.event(&connect("exec", "web-1", json!({})));
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!(d.alerts.len(), 1);
}

/// A container as `kubectl debug` adds one.
fn debug_container(name: &str, privileged: bool) -> Value {
    json!({"name": name, "image": "busybox:1.36", "stdin": true, "tty": true,
        "targetContainerName": "app", "securityContext": {"privileged": privileged}})
}

/// The `pods/ephemeralcontainers` review of the pod `web` (its own container privileged or
/// not) going from the `before` ephemeral containers to `after`.
fn debug_review(app_privileged: bool, before: &[Value], after: &[Value], extra: Value) -> Vec<u8> {
    let pod = |ephemeral: &[Value]| {
        let mut spec = pod_spec(app_privileged);
        spec["ephemeralContainers"] = json!(ephemeral);
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "uid": "pod-1",
                "annotations": extra.get("annotations").cloned().unwrap_or(json!({}))},
            "spec": spec, "status": {"phase": "Running"}})
    };
    let mut request = json!({
        "uid": "uid-debug",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": "ephemeralcontainers",
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "name": "web", "namespace": "shop", "operation": "UPDATE",
        "userInfo": {"username": "alice", "groups": ["devs", "system:authenticated"]},
        "object": pod(after), "oldObject": pod(before), "dryRun": false,
    });
    if let Some(dry_run) = extra.get("dryRun") {
        request["dryRun"] = dry_run.clone();
    }
    wrap(request, json!({}))
}

/// `kubectl debug` adds a container to a running pod through a subresource that would
/// otherwise pass unevaluated: a privileged debugging container is a privileged container.
#[test]
fn an_ephemeral_container_added_to_a_pod_is_decided_by_the_container_policies() {
    let mut w = World::new();
    let doc = |v: Value| serde_json::to_vec(&v).expect("json");
    let mut set = policies_json();
    // On workloads or on what an ephemeral container cannot have: not evaluated for one.
    set.push(doc(json!({
        "id": "probe", "name": "Liveness probe", "severity": "LOW_SEVERITY",
        "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
        "policySections": [{"policyGroups": [{"fieldName": "Liveness Probe Defined", "values": [{"value": "false"}]}]}]
    })));
    set.push(doc(json!({
        "id": "owner", "name": "Owner label", "severity": "LOW_SEVERITY",
        "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
        "policySections": [{"policyGroups": [{"fieldName": "Required Label", "values": [{"value": "owner=.+"}]}]}]
    })));
    w.policies = Some(PolicySet::build("r2", "prod", SystemTime::now(), &set));
    w.resources.apply(AdmissionResource {
        kind: "Pod".into(),
        namespace: "shop".into(),
        name: "web".into(),
        uid: "pod-1".into(),
        owner_uid: "d1".into(),
        ..Default::default()
    });
    let (deployment, _, _) = object("Deployment", false, json!({}));
    w.resources.apply(AdmissionResource {
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "web".into(),
        uid: "d1".into(),
        object_json: serde_json::to_vec(&deployment).expect("json"),
        ..Default::default()
    });

    let privileged = debug_container("debugger-x7", true);
    let d = w.validate(&debug_review(
        false,
        &[],
        std::slice::from_ref(&privileged),
        json!({}),
    ));
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    assert_eq!(d.violated, ["No privileged containers"]);
    let message = d.answer.message.to_text();
    for part in [
        "Rampart denied the update of Pod shop/web: it violates 1 enforced policy.",
        "Evaluated: the ephemeral container 'debugger-x7' being added to the running Pod (kubectl debug)",
        "Container 'debugger-x7' is privileged",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    // The ATTEMPTED alert is the pod's workload's, naming the pod.
    let alert = &d.alerts.to_alerts()[0];
    assert_eq!(
        (
            alert.kind.as_str(),
            alert.name.as_str(),
            alert.deployment_id.as_str()
        ),
        ("Deployment", "web", "d1")
    );
    assert_eq!(alert.pod, "web");
    assert_eq!(
        alert.enforcement_action,
        "FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT"
    );

    // A plain debugging container passes, though it has no probe and the pod no owner label.
    let plain = debug_container("debugger-p2", false);
    let d = w.validate(&debug_review(
        false,
        &[],
        std::slice::from_ref(&plain),
        json!({}),
    ));
    assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
    // Only what the request adds is decided: not a privileged one added before Rampart was
    // enforcing, nor the pod's own containers, decided with their workload.
    let d = w.validate(&debug_review(
        true,
        std::slice::from_ref(&privileged),
        &[privileged.clone(), plain.clone()],
        json!({}),
    ));
    assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
    let d = w.validate(&debug_review(
        true,
        std::slice::from_ref(&plain),
        std::slice::from_ref(&plain),
        json!({}),
    ));
    assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
    assert_eq!(d.reason, "no ephemeral container added");
    // Two added, one privileged: the denial names both as evaluated.
    let d = w.validate(&debug_review(
        false,
        &[],
        &[plain.clone(), privileged.clone()],
        json!({}),
    ));
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    assert!(
        d.answer
            .message
            .to_text()
            .contains("the ephemeral containers 'debugger-p2', 'debugger-x7' being added")
    );
    // A dry run decides the same and raises nothing; the pod's break-glass annotation lets it
    // in with an alert.
    let d = w.validate(&debug_review(
        false,
        &[],
        std::slice::from_ref(&privileged),
        json!({"dryRun": true}),
    ));
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(d.alerts.is_empty());
    let d = w.validate(&debug_review(
        false,
        &[],
        &[privileged],
        json!({"annotations": {"admission.rampart.io/break-glass": "INC-7"}}),
    ));
    assert_eq!(d.outcome, Outcome::BreakGlass, "{d:?}");
    assert_eq!(d.alerts.len(), 1);
}

/// Central's findings for `registry.example.com/web:1`: one package with a vulnerability of
/// `severity`, fixed in a later version when `fixed`.
fn findings(severity: &str, fixed: bool) -> rampart_proto::v1::ImageFindings {
    let data = json!({"scanned": true, "scan_time": 1_700_000_000, "os": "debian:12",
        "components": [{"name": "openssl", "version": "3.0.11-1~deb12u1", "vulns": [
            {"cve": "CVE-2024-5535", "cvss": 9.1, "severity": severity,
             "fixed_by": if fixed { json!("3.0.13-1~deb12u1") } else { Value::Null }}]}]});
    rampart_proto::v1::ImageFindings {
        reference: "registry.example.com/web:1".into(),
        image_data_json: serde_json::to_vec(&data).expect("json"),
    }
}

/// An enforced policy on image data alone (ACS's "Fixable Severity at least Important") is
/// decided from the findings Central has for the workload's image, and cannot be violated by
/// an image it has none for.
#[test]
fn policies_on_image_data_are_decided_from_centrals_findings() {
    let mut w = World::new();
    let doc = |v: Value| serde_json::to_vec(&v).expect("json");
    let mut set = policies_json();
    set.push(doc(json!({
        "id": "fixable", "name": "Fixable Severity at least Important", "severity": "HIGH_SEVERITY",
        "remediation": "Rebuild the image on a base with the fixes.",
        "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
        "policySections": [{"policyGroups": [
            {"fieldName": "Fixed By", "values": [{"value": ".*"}]},
            {"fieldName": "Severity", "values": [{"value": ">= IMPORTANT"}]}]}]
    })));
    let set = PolicySet::build("r3", "prod", SystemTime::now(), &set);
    assert_eq!(set.on_image_data().len(), 1);
    w.policies = Some(set);
    let (clean, _, _) = object("Deployment", false, json!({}));
    let body = review_body("Deployment", "CREATE", &clean, json!({}));
    assert_eq!(w.validate(&body).outcome, Outcome::Allowed, "no findings");
    assert_eq!(
        w.scan_wants.take(),
        ["registry.example.com/web:1"],
        "asked to be scanned"
    );

    w.resources
        .apply_image(findings("CRITICAL", true))
        .expect("kept");
    let d = w.validate(&body);
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    assert_eq!(d.violated, ["Fixable Severity at least Important"]);
    let message = d.answer.message.to_text();
    for part in ["CVE-2024-5535", "openssl", "Rebuild the image"] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    // Counted on the policy's own series, past the policies every request evaluates.
    let index = w.policies.as_ref().expect("set").image_from;
    assert_eq!(d.violated_deploy, [index]);

    for (severity, fixed) in [("CRITICAL", false), ("MODERATE", true)] {
        w.resources
            .apply_image(findings(severity, fixed))
            .expect("kept");
        assert_eq!(
            w.validate(&body).outcome,
            Outcome::Allowed,
            "{severity} {fixed}"
        );
    }
    // Forgotten (empty findings): nothing to decide the image criteria on.
    w.resources
        .apply_image(findings("CRITICAL", true))
        .expect("kept");
    w.resources
        .apply_image(rampart_proto::v1::ImageFindings {
            reference: "registry.example.com/web:1".into(),
            image_data_json: Vec::new(),
        })
        .expect("forgotten");
    assert_eq!(w.resources.images(), 0);
    assert_eq!(w.validate(&body).outcome, Outcome::Allowed);
}

/// The set of [`policies_on_image_data_are_decided_from_centrals_findings`], its image policy
/// enforced.
fn with_an_image_policy() -> World {
    let mut w = World::new();
    let mut set = policies_json();
    set.push(
        serde_json::to_vec(&json!({
            "id": "fixable", "name": "Fixable Severity at least Important", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
            "policySections": [{"policyGroups": [
                {"fieldName": "Fixed By", "values": [{"value": ".*"}]},
                {"fieldName": "Severity", "values": [{"value": ">= IMPORTANT"}]}]}]
        }))
        .expect("json"),
    );
    w.policies = Some(PolicySet::build("r4", "prod", SystemTime::now(), &set));
    w
}

/// [`with_an_image_policy`], and ACS's "Images with no scans" (the default policy, as
/// shipped) enforced.
fn enforcing_images_with_no_scans() -> World {
    let mut w = with_an_image_policy();
    let mut set = policies_json();
    let fixable = w.policies.as_ref().expect("set").on_image_data()[0]
        .policy
        .clone();
    set.push(serde_json::to_vec(&fixable).expect("json"));
    let (_, no_scans) = rampart_policy::defaults::FILES
        .iter()
        .find(|(name, _)| *name == "no_scans.json")
        .expect("the default policy");
    let mut no_scans: Value = serde_json::from_str(no_scans).expect("json");
    no_scans["disabled"] = json!(false);
    no_scans["enforcementActions"] = json!(["SCALE_TO_ZERO_ENFORCEMENT"]);
    set.push(serde_json::to_vec(&no_scans).expect("json"));
    w.policies = Some(PolicySet::build("r5", "prod", SystemTime::now(), &set));
    w
}

#[test]
fn an_enforced_images_with_no_scans_refuses_an_unscanned_image_until_its_scan() {
    let mut w = enforcing_images_with_no_scans();
    assert!(w.policies.as_ref().expect("set").tests_unscanned);
    let (clean, _, _) = object("Deployment", false, json!({}));
    let body = review_body("Deployment", "CREATE", &clean, json!({}));
    // Before the Sensor's view has arrived, no image is known to be unscanned.
    assert_eq!(w.validate(&body).outcome, Outcome::Allowed);
    w.scan_wants = Default::default();
    w.resources.synced = true;
    let d = w.validate(&body);
    assert_eq!(d.outcome, Outcome::Denied, "{d:?}");
    assert!(!d.answer.allowed);
    assert_eq!(d.violated, ["Images with no scans"]);
    // A denial like any other: an ATTEMPTED alert for the policy, with the violation.
    assert_eq!(d.alerts.policies.len(), 1, "{:?}", d.alerts);
    assert_eq!(
        d.alerts.policies[0].policy_id,
        "094dd1e5-ec4d-5f80-885d-b03017fe4dc7"
    );
    assert_eq!(
        d.alerts.policies[0].enforcement_action,
        "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"
    );
    let message = d.answer.message.to_text();
    for part in [
        "Policy: Images with no scans (severity MEDIUM)",
        "Image of container 'app' has not been scanned",
        "Central has not scanned registry.example.com/web:1 yet. Rampart has asked Central to scan it; retry once the scan is done",
        "admission.rampart.io/break-glass",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    assert_eq!(w.scan_wants.take(), ["registry.example.com/web:1"]);
    // A dry run is refused the same way but asks for nothing and raises no alert (no side
    // effects on dry runs).
    let dry = review_body("Deployment", "CREATE", &clean, json!({"dryRun": true}));
    w.scan_wants = Default::default();
    let d = w.validate(&dry);
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(d.alerts.is_empty());
    assert!(
        d.answer
            .message
            .to_text()
            .contains("A dry run asks for no scan"),
        "{d:?}"
    );
    assert!(w.scan_wants.take().is_empty());
    w.validate(&body);
    assert_eq!(w.scan_wants.take(), ["registry.example.com/web:1"]);
    // Asked for once a minute, however often it is retried.
    assert_eq!(w.validate(&body).outcome, Outcome::Denied);
    assert!(w.scan_wants.take().is_empty());

    // Once Central's findings have come (clean here), it is decided on them.
    w.resources
        .apply_image(findings("MODERATE", true))
        .expect("kept");
    assert_eq!(w.validate(&body).outcome, Outcome::Allowed);
    // Or denied for what they show, and no longer for want of a scan.
    w.resources
        .apply_image(findings("CRITICAL", true))
        .expect("kept");
    let d = w.validate(&body);
    assert_eq!(d.violated, ["Fixable Severity at least Important"]);
    assert!(
        !d.answer.message.to_text().contains("has not scanned"),
        "{d:?}"
    );

    // Break-glass admits it unscanned, with a warning and an alert.
    w.resources
        .apply_image(rampart_proto::v1::ImageFindings {
            reference: "registry.example.com/web:1".into(),
            image_data_json: Vec::new(),
        })
        .expect("forgotten");
    let (glass, _, _) = object(
        "Deployment",
        false,
        json!({"admission.rampart.io/break-glass": "INC-7"}),
    );
    let d = w.validate(&review_body("Deployment", "CREATE", &glass, json!({})));
    assert_eq!(d.outcome, Outcome::BreakGlass, "{d:?}");
    assert!(d.answer.allowed);
    assert!(
        d.answer.warnings[0].contains("Images with no scans"),
        "{:?}",
        d.answer.warnings
    );
    assert_eq!(d.alerts.policies.len(), 1);

    // A workload that violates something else is denied for that too, in one answer.
    let (privileged, _, _) = object("Deployment", true, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &privileged, json!({})));
    assert_eq!(
        d.violated,
        ["No privileged containers", "Images with no scans"]
    );
}

#[test]
fn unscanned_images_are_asked_for_but_refused_only_by_an_enforced_policy() {
    // The image policy alone is enforced: an unscanned image cannot violate it (and is not
    // marked as one, which would only make the policies on image data evaluated for nothing).
    let mut w = with_an_image_policy();
    assert!(!w.policies.as_ref().expect("set").tests_unscanned);
    w.resources.synced = true;
    let (clean, _, _) = object("Deployment", false, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &clean, json!({})));
    assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
    assert_eq!(w.scan_wants.take(), ["registry.example.com/web:1"]);
}

#[test]
fn without_a_policy_on_image_data_no_image_is_asked_for_or_waits() {
    let mut w = World::new();
    assert!(!w.policies.as_ref().expect("set").tests_image_data);
    w.resources.synced = true;
    let (clean, _, _) = object("Deployment", false, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &clean, json!({})));
    assert_eq!(d.outcome, Outcome::Allowed, "{d:?}");
    assert!(w.scan_wants.take().is_empty());
}

#[test]
fn image_findings_are_bounded_and_unreadable_ones_refused() {
    let mut r = Resources::default();
    let one = findings("CRITICAL", true);
    let size = one.image_data_json.len();
    r.bound_images(2 * size + size / 2);
    r.apply_image(one.clone()).expect("first");
    // The same image again replaces its findings: no more held.
    r.apply_image(one.clone()).expect("replaced");
    let mut other = one.clone();
    other.reference = "registry.example.com/api:2".into();
    r.apply_image(other.clone()).expect("second");
    let mut third = one;
    third.reference = "registry.example.com/worker:3".into();
    assert_eq!(
        r.apply_image(third.clone()),
        Err(crate::resources::FindingsRefused::Full {
            held: 2 * size,
            more: size,
            bound: 2 * size + size / 2
        })
    );
    assert_eq!(r.images(), 2);
    // Room again once one is forgotten.
    other.image_data_json.clear();
    r.apply_image(other).expect("forgotten");
    r.apply_image(third).expect("third");
    let broken = rampart_proto::v1::ImageFindings {
        reference: "registry.example.com/bad:1".into(),
        image_data_json: b"{\"components\": 7}".to_vec(),
    };
    assert!(matches!(
        r.apply_image(broken),
        Err(crate::resources::FindingsRefused::Unreadable(_))
    ));
    assert_eq!(r.images(), 2);
}

/// [`policies_json`] and enabled deploy-time policies that are not enforced: one the
/// privileged workload violates, one with a long name, and a disabled one.
fn with_unenforced(extra: usize) -> PolicySet {
    let doc = |v: Value| serde_json::to_vec(&v).expect("json");
    let mut json = policies_json();
    json.push(doc(json!({
        "id": "host-pid", "name": "Run as root noticed", "severity": "MEDIUM_SEVERITY",
        "lifecycleStages": ["DEPLOY"],
        "policySections": [{"policyGroups": [{"fieldName": "Privileged Container", "values": [{"value": "true"}]}]}]
    })));
    json.push(doc(json!({
        "id": "off", "name": "Disabled one", "severity": "LOW_SEVERITY", "disabled": true,
        "lifecycleStages": ["DEPLOY"],
        "policySections": [{"policyGroups": [{"fieldName": "Image Tag", "values": [{"value": "1"}]}]}]
    })));
    for i in 0..extra {
        json.push(doc(json!({
            "id": format!("tag-{i}"), "name": format!("Tag one noticed {i} {}", "é".repeat(150)),
            "severity": "LOW_SEVERITY", "lifecycleStages": ["BUILD", "DEPLOY"],
            "policySections": [{"policyGroups": [{"fieldName": "Image Tag", "values": [{"value": "1"}]}]}]
        })));
    }
    PolicySet::build("r2", "prod", SystemTime::now(), &json)
}

#[test]
fn policies_enabled_but_not_enforced_are_warned_of_and_refuse_nothing() {
    let mut w = World::new();
    w.policies = Some(with_unenforced(0));
    // Violating only a policy not enforced: admitted, with a warning naming it; no alert.
    let (clean, _, _) = object("Deployment", false, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &clean, json!({})));
    assert_eq!(d.outcome, Outcome::Allowed);
    assert!(d.answer.warnings.is_empty(), "{:?}", d.answer.warnings);
    let (bad, _, _) = object("Deployment", true, json!({}));
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    assert_eq!(
        d.outcome,
        Outcome::Denied,
        "the enforced policy still refuses"
    );
    assert_eq!(d.violated, vec!["No privileged containers"]);
    assert_eq!(
        d.answer.warnings,
        [
            "Rampart: violates \"Run as root noticed\" (MEDIUM, not enforced): Container 'app' is privileged"
        ]
    );
    assert_eq!(d.alerts.len(), 1, "only the enforced policy's alert");
    // Its enforcement switched off for creates: admitted, the same warning.
    w.settings.enforce_on_creates = false;
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    assert!(d.answer.allowed);
    w.settings.enforce_on_creates = true;
    // Break-glass: its own warning first, then the policies not enforced.
    let (glass, _, _) = object(
        "Deployment",
        true,
        json!({"admission.rampart.io/break-glass": "INC-1"}),
    );
    let d = w.validate(&review_body("Deployment", "CREATE", &glass, json!({})));
    assert_eq!(d.outcome, Outcome::BreakGlass);
    assert_eq!(d.answer.warnings.len(), 2, "{:?}", d.answer.warnings);
    assert!(d.answer.warnings[1].contains("Run as root noticed"));
    // Switched off: no warning.
    w.settings.warn_unenforced = false;
    let d = w.validate(&review_body("Deployment", "CREATE", &bad, json!({})));
    assert!(d.answer.warnings.is_empty());
}

#[test]
fn warnings_are_few_and_short_whatever_the_policies() {
    let mut w = World::new();
    w.policies = Some(with_unenforced(12));
    // registry.example.com/web:1 violates the twelve "Tag one" policies (the disabled one is
    // never evaluated): eight warnings, the last of them saying how many more.
    let (clean, _, _) = object("Deployment", false, json!({}));
    let d = w.validate(&review_body("Deployment", "UPDATE", &clean, json!({})));
    assert!(d.answer.allowed);
    let warnings = &d.answer.warnings;
    assert_eq!(warnings.len(), MAX_WARNINGS + 1, "{warnings:#?}");
    assert_eq!(
        warnings.last().map(String::as_str),
        Some("Rampart: and 4 more policies not enforced (rampart deployment check shows all)")
    );
    for w in warnings {
        assert!(w.len() <= MAX_WARNING_BYTES, "{} bytes: {w}", w.len());
        assert!(!w.contains("Disabled one"));
    }
    assert!(warnings[0].ends_with("..."), "{}", warnings[0]);
}
