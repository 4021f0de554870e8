use rampart_policy::defaults::default_policies;
use rampart_policy::policy::EnforcementAction;
use serde_json::json;

use super::*;

const PRIVILEGED: &str = "4c8266ea-ae07-5588-8392-7843782925ce";

/// Central's policies with "Privileged Container" set to scale to zero.
fn policies(action: EnforcementAction) -> LocalPolicies {
    let raw: Vec<Vec<u8>> = default_policies()
        .into_iter()
        .map(|mut p| {
            if p.id == PRIVILEGED {
                p.enforcement_actions = vec![action];
            }
            serde_json::to_vec(&p).expect("policy json")
        })
        .collect();
    let mut local = LocalPolicies::default();
    let problems = local.replace("7", &raw);
    assert!(problems.is_empty(), "{problems:?}");
    local
}

fn workload(uid: &str, kind: &str, privileged: bool, annotations: Value) -> Outgoing {
    let template = json!({"metadata": {"labels": {"app": uid}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
            "securityContext": {"privileged": privileged}}]}});
    let spec = match kind {
        "CronJob" => {
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})
        }
        "Pod" => template["spec"].clone(),
        _ => {
            json!({"replicas": 3, "selector": {"matchLabels": {"app": uid}}, "template": template})
        }
    };
    Outgoing {
        published: crate::index::Published::Deployment,
        id: uid.to_string(),
        namespace: "shop".into(),
        name: format!("{uid}-name"),
        object: json!({"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": format!("{uid}-name"), "namespace": "shop", "uid": uid,
                "annotations": annotations},
            "spec": spec})
        .to_string()
        .into(),
        context: None,
        content_hash: 0,
    }
}

#[test]
fn only_enforced_deploy_time_policies_are_kept() {
    let local = policies(EnforcementAction::ScaleToZero);
    let ids: Vec<&str> = local
        .enforced()
        .policies()
        .iter()
        .map(|p| p.policy.id.as_str())
        .collect();
    assert_eq!(ids, [PRIVILEGED]);
    assert!(local.count > 60, "every policy is kept: {}", local.count);
}

#[test]
fn a_workload_created_violating_an_enforced_policy_is_scaled_to_zero() {
    let local = policies(EnforcementAction::ScaleToZero);
    let mut e = Enforcer::default();
    let existing = workload("old", "Deployment", true, json!({}));
    e.baseline(local.enforced(), [&existing], "prod", &Images::none());
    // Running before the Sensor started: reported by Central, never touched here.
    assert!(
        e.observe(
            local.enforced(),
            "old",
            Some(&existing),
            "prod",
            &Images::none()
        )
        .is_empty()
    );
    let new = workload("new", "Deployment", true, json!({}));
    let decisions = e.observe(local.enforced(), "new", Some(&new), "prod", &Images::none());
    assert_eq!(decisions.len(), 1);
    let d = &decisions[0];
    assert_eq!(d.policy_id, PRIVILEGED);
    assert_eq!(d.action, Action::ScaleToZero);
    assert_eq!(d.target.kind, Kind::Deployment);
    assert_eq!(d.target.replicas, Some(3));
    // The Sensor's own scale-down changes the workload; it still violates, nothing new.
    assert!(
        e.observe(local.enforced(), "new", Some(&new), "prod", &Images::none())
            .is_empty()
    );
}

#[test]
fn an_update_that_introduces_a_violation_is_enforced_and_compliant_ones_are_not() {
    let local = policies(EnforcementAction::UnsatisfiableNodeConstraint);
    let mut e = Enforcer::default();
    e.baseline(local.enforced(), [], "prod", &Images::none());
    let fine = workload("w", "DaemonSet", false, json!({}));
    assert!(
        e.observe(local.enforced(), "w", Some(&fine), "prod", &Images::none())
            .is_empty()
    );
    let bad = workload("w", "DaemonSet", true, json!({}));
    let decisions = e.observe(local.enforced(), "w", Some(&bad), "prod", &Images::none());
    assert_eq!(
        decisions.iter().map(|d| d.action).collect::<Vec<_>>(),
        [Action::UnsatisfiableNodeConstraint]
    );
    // Deleted and created again: a new creation.
    assert!(
        e.observe(local.enforced(), "w", None, "prod", &Images::none())
            .is_empty()
    );
    assert_eq!(
        e.observe(local.enforced(), "w", Some(&bad), "prod", &Images::none())
            .len(),
        1
    );
}

/// `workload`, in `namespace`.
fn workload_in(namespace: &str, uid: &str, kind: &str, privileged: bool) -> Outgoing {
    let mut o = workload(uid, kind, privileged, json!({}));
    let mut object: Value = serde_json::from_str(&o.object).expect("json");
    object["metadata"]["namespace"] = json!(namespace);
    o.namespace = namespace.into();
    o.object = object.to_string().into();
    o
}

#[test]
fn workloads_in_exempt_namespaces_are_never_enforced_and_counted() {
    let local = policies(EnforcementAction::UnsatisfiableNodeConstraint);
    let mut e = Enforcer::exempting(rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec());
    e.baseline(local.enforced(), [], "prod", &Images::none());
    // Rampart's own Collector, created violating an enforced policy: left running.
    let own = workload_in("rampart", "collector", "DaemonSet", true);
    assert!(
        e.observe(
            local.enforced(),
            "collector",
            Some(&own),
            "prod",
            &Images::none()
        )
        .is_empty()
    );
    assert_eq!(e.exempt_skips, 1);
    // The same workload anywhere else is enforced.
    let other = workload_in("shop", "agent", "DaemonSet", true);
    let decisions = e.observe(
        local.enforced(),
        "agent",
        Some(&other),
        "prod",
        &Images::none(),
    );
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].target.namespace, "shop");
    assert_eq!(e.exempt_skips, 1);
}

#[test]
fn break_glass_workloads_are_never_enforced_automatically() {
    let local = policies(EnforcementAction::ScaleToZero);
    let mut e = Enforcer::default();
    e.baseline(local.enforced(), [], "prod", &Images::none());
    for key in BREAK_GLASS_ANNOTATIONS {
        let w = workload(key, "Deployment", true, json!({ key: "incident 4711" }));
        assert!(
            e.observe(local.enforced(), key, Some(&w), "prod", &Images::none())
                .is_empty(),
            "{key}"
        );
    }
}

#[test]
fn nothing_is_enforced_before_the_baseline() {
    let local = policies(EnforcementAction::ScaleToZero);
    let mut e = Enforcer::default();
    let w = workload("w", "Deployment", true, json!({}));
    assert!(
        e.observe(local.enforced(), "w", Some(&w), "prod", &Images::none())
            .is_empty()
    );
    e.baseline(local.enforced(), [], "prod", &Images::none());
    // Seen before arming: already known, not a creation.
    assert!(
        e.observe(local.enforced(), "w", Some(&w), "prod", &Images::none())
            .is_empty()
    );
}

#[test]
fn each_kind_is_stopped_the_way_it_can_be() {
    let target = |kind: Kind| Target {
        uid: "u".into(),
        kind,
        namespace: "shop".into(),
        name: "web".into(),
        replicas: Some(2),
    };
    let scale = Operation::PatchScale(json!({"spec": {"replicas": 0}}));
    for kind in [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
    ] {
        assert_eq!(
            plan(&target(kind), Action::ScaleToZero, "p", &[]),
            std::slice::from_ref(&scale)
        );
    }
    let pinned = Operation::Patch(
        json!({"spec": {"template": {"spec": {"nodeSelector": {"BlockedByRampart": "p"}}}}}),
    );
    assert_eq!(
        plan(&target(Kind::DaemonSet), Action::ScaleToZero, "p", &[]),
        std::slice::from_ref(&pinned)
    );
    assert_eq!(
        plan(
            &target(Kind::Deployment),
            Action::UnsatisfiableNodeConstraint,
            "p",
            &[]
        ),
        [pinned]
    );
    assert_eq!(
        plan(&target(Kind::Job), Action::ScaleToZero, "p", &[]),
        [Operation::Patch(json!({"spec": {"parallelism": 0}}))]
    );
    assert_eq!(
        plan(&target(Kind::CronJob), Action::ScaleToZero, "p", &[]),
        [Operation::Patch(json!({"spec": {"suspend": true}}))]
    );
    assert_eq!(
        plan(
            &target(Kind::CronJob),
            Action::UnsatisfiableNodeConstraint,
            "p",
            &[]
        ),
        [Operation::Patch(
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"nodeSelector": {"BlockedByRampart": "p"}}}}}}})
        )]
    );
    assert_eq!(
        plan(&target(Kind::Pod), Action::ScaleToZero, "p", &[]),
        [Operation::Delete]
    );
    let pods = [("shop".to_string(), "web-1".to_string())];
    assert_eq!(
        plan(&target(Kind::Deployment), Action::KillPod, "p", &pods),
        [Operation::DeletePod {
            namespace: "shop".into(),
            name: "web-1".into()
        }]
    );
    assert_eq!(
        describe_outcome(&target(Kind::Deployment), Action::ScaleToZero, "Privileged"),
        "Deployment shop/web scaled from 2 to 0 replicas (policy 'Privileged')"
    );
}

#[test]
fn policy_updates_and_deletes_change_the_enforced_set() {
    let mut local = policies(EnforcementAction::ScaleToZero);
    local.delete("8", PRIVILEGED);
    assert!(local.enforced().policies().is_empty());
    assert_eq!(local.revision, "8");
    let mut p = default_policies()
        .into_iter()
        .find(|p| p.id == PRIVILEGED)
        .expect("default");
    p.enforcement_actions = vec![EnforcementAction::UnsatisfiableNodeConstraint];
    local
        .upsert("9", &serde_json::to_vec(&p).expect("json"))
        .expect("upsert");
    assert_eq!(local.enforced().policies().len(), 1);
    assert!(local.upsert("10", b"{not json").is_err());
    assert_eq!(
        local.enforced().policies().len(),
        1,
        "a bad update keeps the set"
    );
}

#[test]
fn a_workload_created_running_an_image_with_an_enforced_cve_is_enforced_from_centrals_findings() {
    let cve_policy = json!({
        "id": "log4shell", "name": "Log4Shell", "severity": "CRITICAL_SEVERITY",
        "lifecycleStages": ["DEPLOY"], "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
        "policySections": [{"policyGroups": [
            {"fieldName": "CVE", "values": [{"value": "CVE-2021-44228"}]}]}]
    });
    let mut local = LocalPolicies::default();
    let problems = local.replace("8", &[serde_json::to_vec(&cve_policy).expect("json")]);
    assert!(problems.is_empty(), "{problems:?}");
    let mut store = crate::images::ImageFindingsStore::default();
    store
        .apply(crate::images::findings(
            "registry.example/app:1.0",
            r#"{"scanned": true, "components": [{"name": "log4j-core", "version": "2.14.1",
                "vulns": [{"cve": "CVE-2021-44228", "severity": "CRITICAL"}]}]}"#,
        ))
        .expect("kept");
    let images = Images::of(&store);
    let mut e = Enforcer::default();
    e.baseline(local.enforced(), [], "prod", &images);
    let new = workload("new", "Deployment", false, json!({}));
    // Without Central's findings the criterion is unknown: nothing is enforced for want of a
    // scan, which may be pending.
    assert!(
        e.observe(local.enforced(), "new", Some(&new), "prod", &Images::none())
            .is_empty()
    );
    e.observe(local.enforced(), "new", None, "prod", &images);
    let decisions = e.observe(local.enforced(), "new", Some(&new), "prod", &images);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0].policy_id, "log4shell");
    assert_eq!(decisions[0].action, Action::ScaleToZero);

    // A workload running when findings were not there yet (the Sensor just started) is not
    // scaled down at its next change for what the findings show: that violation came with the
    // findings, not with the change.
    let running = workload("running", "Deployment", false, json!({}));
    e.baseline(local.enforced(), [&running], "prod", &Images::none());
    let annotated = workload("running", "Deployment", false, json!({"team": "payments"}));
    assert!(
        e.observe(
            local.enforced(),
            "running",
            Some(&annotated),
            "prod",
            &images
        )
        .is_empty()
    );
}
