use super::*;
use serde_json::json;

fn deployment(name: &str, uid: &str, account: &str, ports: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"serviceAccountName": account,
                    "containers": [{"name": "app", "image": "nginx:1.27", "ports": ports}]}}},
        "status": {"readyReplicas": 1}})
}

fn owned(kind: &str, name: &str, uid: &str, owner_kind: &str, owner_uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": "shop", "uid": uid,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": "x",
                "uid": owner_uid, "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
}

fn object(kind: &str, ns: &str, name: &str, uid: &str, rest: Value) -> Value {
    let mut o = json!({"kind": kind, "metadata": {"name": name, "namespace": ns, "uid": uid}});
    if let (Some(o), Some(rest)) = (o.as_object_mut(), rest.as_object()) {
        for (k, v) in rest {
            o.insert(k.clone(), v.clone());
        }
    }
    o
}

fn context(index: &Index, uid: &str) -> Context {
    index
        .outgoing(uid)
        .and_then(|o| o.context)
        .expect("a deployment with context")
}

#[test]
fn owned_objects_roll_up_to_their_top_level_workload() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    index.apply(
        Kind::ReplicaSet,
        owned("ReplicaSet", "web-5f", "rs1", "Deployment", "d1"),
    );
    index.apply(
        Kind::Pod,
        owned("Pod", "web-5f-a", "p1", "ReplicaSet", "rs1"),
    );
    index.apply(
        Kind::Pod,
        object(
            "Pod",
            "shop",
            "debug",
            "p2",
            json!({"spec": {"containers": []}}),
        ),
    );
    assert_eq!(index.top_level("p1"), Some("d1"));
    assert_eq!(index.top_level("p2"), Some("p2"));
    let published: Vec<(String, Published)> = index
        .snapshot()
        .into_iter()
        .map(|o| (o.id, o.published))
        .collect();
    assert_eq!(
        published,
        vec![
            ("d1".to_string(), Published::Deployment),
            ("p1".to_string(), Published::Resource(Kind::Pod)),
            // A pod no workload controls is a deployment of its own, as in ACS.
            ("p2".to_string(), Published::Deployment),
        ],
        "the ReplicaSet is not published: its Deployment stands for it"
    );
}

#[test]
fn objects_are_stripped_of_managed_fields_status_and_secret_values() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    index.apply(
        Kind::Secret,
        object("Secret", "shop", "db", "s1", json!({"type": "Opaque", "data": {"password": "aHVudGVyMg=="}, "stringData": {"x": "y"}})),
    );
    let d = index
        .outgoing("d1")
        .and_then(|o| o.value())
        .expect("deployment");
    assert!(d["metadata"].get("managedFields").is_none());
    assert!(d["metadata"].get("resourceVersion").is_none());
    assert!(d.get("status").is_none(), "status churn is not resent");
    let s = index
        .outgoing("s1")
        .and_then(|o| o.value())
        .expect("secret");
    assert_eq!(
        s,
        json!({"kind": "Secret", "metadata": {"name": "db", "namespace": "shop", "uid": "s1"}, "type": "Opaque"})
    );
    // An image pull secret keeps its registry credentials and nothing else; a TLS secret
    // keeps nothing.
    index.apply(
        Kind::Secret,
        object(
            "Secret",
            "shop",
            "pull",
            "s2",
            json!({"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "e30=", "extra": "c2VjcmV0"}, "stringData": {"x": "y"}}),
        ),
    );
    index.apply(
        Kind::Secret,
        object(
            "Secret",
            "shop",
            "tls",
            "s3",
            json!({"type": "kubernetes.io/tls",
            "data": {"tls.key": "a2V5", ".dockerconfigjson": "e30="}}),
        ),
    );
    let pull = index
        .outgoing("s2")
        .and_then(|o| o.value())
        .expect("pull secret");
    assert_eq!(pull["data"], json!({".dockerconfigjson": "e30="}));
    assert!(pull.get("stringData").is_none());
    let tls = index
        .outgoing("s3")
        .and_then(|o| o.value())
        .expect("tls secret");
    assert!(tls.get("data").is_none(), "{tls}");
}

#[test]
fn port_exposure_comes_from_services_selecting_the_pods_and_host_ports() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment(
            "web",
            "d1",
            "default",
            json!([
            {"name": "http", "containerPort": 8080},
            {"containerPort": 9090, "hostPort": 9090},
            {"containerPort": 53, "protocol": "UDP"}]),
        ),
    );
    let levels = |index: &Index| -> Vec<(String, i32, String)> {
        context(index, "d1")
            .exposures
            .into_iter()
            .map(|e| {
                (
                    e.level.as_str().to_string(),
                    e.container_port,
                    e.service_name,
                )
            })
            .collect()
    };
    assert_eq!(
        levels(&index),
        vec![("HOST".to_string(), 9090, String::new())]
    );
    index.apply(
        Kind::Service,
        object(
            "Service",
            "shop",
            "web-internal",
            "svc1",
            json!({"spec": {"selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": "http"}]}}),
        ),
    );
    index.apply(
        Kind::Service,
        object(
            "Service",
            "shop",
            "web-public",
            "svc2",
            json!({"spec": {"type": "LoadBalancer", "selector": {"tier": "web"},
            "ports": [{"port": 443, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}}),
        ),
    );
    // Another app's service, and one in another namespace, select nothing here.
    index.apply(
        Kind::Service,
        object(
            "Service",
            "shop",
            "other",
            "svc3",
            json!({"spec": {"type": "NodePort", "selector": {"app": "api"},
            "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}),
        ),
    );
    index.apply(
        Kind::Service,
        object(
            "Service",
            "bank",
            "web",
            "svc4",
            json!({"spec": {"type": "NodePort", "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 8080}]}}),
        ),
    );
    assert_eq!(
        levels(&index),
        vec![
            ("EXTERNAL".to_string(), 53, "web-public".to_string()),
            ("EXTERNAL".to_string(), 8080, "web-public".to_string()),
            ("HOST".to_string(), 9090, String::new()),
            ("INTERNAL".to_string(), 8080, "web-internal".to_string()),
        ]
    );
}

#[test]
fn rbac_levels_from_bindings_of_the_service_account() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "web-sa", json!([])),
    );
    index.apply(
        Kind::Deployment,
        deployment("api", "d2", "api-sa", json!([])),
    );
    assert_eq!(context(&index, "d1").rbac_level, RbacLevel::Default);

    index.apply(
        Kind::Role,
        object(
            "Role",
            "shop",
            "reader",
            "r1",
            json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
    );
    index.apply(
        Kind::RoleBinding,
        object(
            "RoleBinding",
            "shop",
            "web-reads",
            "rb1",
            json!({"roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "web-sa"}]}),
        ),
    );
    assert_eq!(
        context(&index, "d1").rbac_level,
        RbacLevel::ElevatedInNamespace
    );
    assert_eq!(context(&index, "d2").rbac_level, RbacLevel::Default);

    index.apply(
        Kind::ClusterRole,
        object(
            "ClusterRole",
            "",
            "node-reader",
            "cr1",
            json!({"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}),
        ),
    );
    index.apply(
        Kind::ClusterRoleBinding,
        object(
            "ClusterRoleBinding",
            "",
            "all-sas-read-nodes",
            "crb1",
            json!({"roleRef": {"kind": "ClusterRole", "name": "node-reader"},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:shop"}]}),
        ),
    );
    assert_eq!(
        context(&index, "d2").rbac_level,
        RbacLevel::ElevatedClusterWide
    );

    index.apply(
        Kind::ClusterRole,
        object(
            "ClusterRole",
            "",
            "cluster-admin",
            "cr2",
            json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        ),
    );
    index.apply(
        Kind::ClusterRoleBinding,
        object(
            "ClusterRoleBinding",
            "",
            "web-admin",
            "crb2",
            json!({"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "web-sa", "namespace": "shop"}]}),
        ),
    );
    assert_eq!(context(&index, "d1").rbac_level, RbacLevel::ClusterAdmin);
    // The same account name in another namespace is another account.
    index.apply(
        Kind::ClusterRoleBinding,
        object(
            "ClusterRoleBinding",
            "",
            "bank-admin",
            "crb3",
            json!({"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "api-sa", "namespace": "bank"}]}),
        ),
    );
    assert_eq!(
        context(&index, "d2").rbac_level,
        RbacLevel::ElevatedClusterWide
    );
}

#[test]
fn network_policy_coverage_follows_pod_selectors_and_policy_types() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    let coverage = |index: &Index| {
        let c = context(index, "d1");
        (c.ingress_network_policy, c.egress_network_policy)
    };
    assert_eq!(coverage(&index), (false, false));
    index.apply(
        Kind::NetworkPolicy,
        object(
            "NetworkPolicy",
            "shop",
            "api-only",
            "np1",
            json!({"spec": {"podSelector": {"matchLabels": {"app": "api"}}}}),
        ),
    );
    assert_eq!(coverage(&index), (false, false), "selects other pods");
    index.apply(
        Kind::NetworkPolicy,
        object("NetworkPolicy", "shop", "web-in", "np2", json!({"spec": {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}]}}})),
    );
    assert_eq!(
        coverage(&index),
        (true, false),
        "no policyTypes: ingress only"
    );
    index.apply(
        Kind::NetworkPolicy,
        object(
            "NetworkPolicy",
            "shop",
            "deny-egress",
            "np3",
            json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}}),
        ),
    );
    assert_eq!(
        coverage(&index),
        (true, true),
        "an empty selector selects every pod"
    );
}

#[test]
fn changes_are_deduplicated_by_content_and_context_changes_republish() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([{"containerPort": 80}])),
    );
    assert_eq!(index.take_changes().len(), 1);
    // A status-only update (and a new resourceVersion) is nothing new for Central.
    let mut again = deployment("web", "d1", "default", json!([{"containerPort": 80}]));
    again["status"] = json!({"readyReplicas": 2});
    again["metadata"]["resourceVersion"] = json!("8");
    index.apply(Kind::Deployment, again);
    assert!(index.take_changes().is_empty());
    // A Service exposing it changes its context: the deployment is sent again, with the Service.
    index.apply(
        Kind::Service,
        object("Service", "shop", "web", "svc1", json!({"spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}})),
    );
    let changes = index.take_changes();
    let ids: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            Change::Upsert(o) => o.id.as_str(),
            Change::Remove { id, .. } => id.as_str(),
        })
        .collect();
    assert_eq!(ids, vec!["d1", "svc1"]);
    index.delete(Kind::Deployment, &json!({"metadata": {"uid": "d1"}}));
    assert!(matches!(
        index.take_changes().as_slice(),
        [Change::Remove { id, published: Published::Deployment, .. }] if id == "d1"
    ));
}

#[test]
fn a_relist_removes_what_was_deleted_while_the_watch_was_down() {
    let mut index = Index::new();
    assert!(!index.is_synced(&[Kind::Deployment]));
    index.begin_relist(Kind::Deployment);
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    index.apply(
        Kind::Deployment,
        deployment("api", "d2", "default", json!([])),
    );
    index.end_relist(Kind::Deployment);
    assert!(index.is_synced(&[Kind::Deployment]));
    index.take_changes();
    // The watch expired; the new list no longer has d2.
    index.begin_relist(Kind::Deployment);
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    index.end_relist(Kind::Deployment);
    assert!(matches!(
        index.take_changes().as_slice(),
        [Change::Remove { id, .. }] if id == "d2"
    ));
    assert_eq!(index.len(), 1);
}

#[test]
fn controlled_pods_keep_what_they_run_and_bare_pods_keep_their_whole_spec() {
    let spec = json!({"nodeName": "n1", "serviceAccountName": "app",
        "containers": [{"name": "app", "image": "registry.example/app:1",
            "ports": [{"containerPort": 80}], "securityContext": {"privileged": true},
            "env": [{"name": "A", "value": "b"}]}],
        "volumes": [{"name": "v", "emptyDir": {}}]});
    let mut owned = object("Pod", "shop", "web-1", "p1", json!({"spec": spec.clone()}));
    owned["metadata"]["ownerReferences"] =
        json!([{"kind": "ReplicaSet", "name": "web", "uid": "rs1", "controller": true}]);
    let bare = object("Pod", "shop", "debug", "p2", json!({"spec": spec.clone()}));
    let owned = strip(Kind::Pod, owned);
    assert_eq!(
        owned["spec"],
        json!({"nodeName": "n1", "serviceAccountName": "app",
            "containers": [{"name": "app", "image": "registry.example/app:1",
                "ports": [{"containerPort": 80}]}]})
    );
    assert_eq!(
        strip(Kind::Pod, bare)["spec"],
        spec,
        "a bare pod is evaluated as a workload"
    );
}

/// A privileged pod claiming a kube-system workload as its controller, as anyone allowed to
/// create pods can write it.
fn forged_pod(owner_kind: &str, owner_uid: &str, status: Value) -> Value {
    let mut pod = object(
        "Pod",
        "shop",
        "miner",
        "p-forged",
        json!({"spec": {"containers": [{"name": "x", "image": "evil:1",
            "securityContext": {"privileged": true}}]}, "status": status}),
    );
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": owner_kind,
        "name": "coredns-5d", "uid": owner_uid, "controller": true}]);
    pod
}

#[test]
fn a_pod_claiming_an_owner_in_another_namespace_or_of_another_kind_is_its_own_workload() {
    let coredns_rs = || {
        let mut rs = owned("ReplicaSet", "coredns-5d", "rs-dns", "Deployment", "d-dns");
        rs["metadata"]["namespace"] = json!("kube-system");
        rs
    };
    let published = |index: &Index, uid: &str| {
        index
            .outgoing(uid)
            .map(|o| (o.published.clone(), o.value().expect("object")))
    };
    // The owner first, then the pod; and the pod first, its owner arriving later.
    for owner_first in [true, false] {
        let mut index = Index::new();
        if owner_first {
            index.apply(Kind::ReplicaSet, coredns_rs());
        }
        index.apply(
            Kind::Pod,
            forged_pod("ReplicaSet", "rs-dns", json!({"podIP": "10.1.0.9"})),
        );
        if !owner_first {
            index.take_changes();
            index.apply(Kind::ReplicaSet, coredns_rs());
            let changes = index.take_changes();
            assert!(
                changes.iter().any(|c| matches!(c, Change::Upsert(o)
                    if o.id == "p-forged" && o.published == Published::Deployment)),
                "the owner's arrival publishes the pod as a deployment: {changes:?}"
            );
            // Its spec was stripped while its owner was unknown; the pod's next update (its
            // status changes as it starts) brings it whole again.
            index.apply(
                Kind::Pod,
                forged_pod(
                    "ReplicaSet",
                    "rs-dns",
                    json!({"podIP": "10.1.0.9", "phase": "Running"}),
                ),
            );
        }
        assert_eq!(
            index.top_level("p-forged"),
            Some("p-forged"),
            "{owner_first}"
        );
        let (how, object) = published(&index, "p-forged").expect("published");
        assert_eq!(how, Published::Deployment, "{owner_first}");
        assert_eq!(
            object["spec"]["containers"][0]["securityContext"]["privileged"], true,
            "its whole spec, to be evaluated: {object}"
        );
        // Its traffic is its own, not kube-system's.
        assert_eq!(index.deployment_of_ip("10.1.0.9"), Some("p-forged"));
    }
    // The right namespace but another kind than the reference says: the same.
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("web", "d1", "default", json!([])),
    );
    index.apply(Kind::Pod, forged_pod("ReplicaSet", "d1", json!({})));
    assert_eq!(index.top_level("p-forged"), Some("p-forged"));
    // A reference that holds still rolls the pod up.
    index.apply(
        Kind::ReplicaSet,
        owned("ReplicaSet", "web-5f", "rs1", "Deployment", "d1"),
    );
    index.apply(Kind::Pod, forged_pod("ReplicaSet", "rs1", json!({})));
    assert_eq!(index.top_level("p-forged"), Some("d1"));
}

#[test]
fn an_address_names_its_workload_by_pod_ip_or_service_cluster_ip() {
    let mut index = Index::new();
    index.apply(
        Kind::Deployment,
        deployment("db", "d-db", "default", json!([])),
    );
    index.apply(
        Kind::ReplicaSet,
        owned("ReplicaSet", "db-1", "rs-db", "Deployment", "d-db"),
    );
    let mut pod = owned("Pod", "db-1-a", "p-db", "ReplicaSet", "rs-db");
    pod["metadata"]["labels"] = json!({"app": "db"});
    pod["status"] = json!({"podIP": "10.1.0.7"});
    index.apply(Kind::Pod, pod);
    index.apply(
        Kind::Service,
        object("Service", "shop", "db", "s-db", json!({"spec": {"selector": {"app": "db"},
            "clusterIP": "10.96.4.2", "clusterIPs": ["10.96.4.2", "fd00::42"], "ports": [{"port": 5432}]}})),
    );
    index.apply(
        Kind::Service,
        object(
            "Service",
            "shop",
            "headless",
            "s-h",
            json!({"spec": {"selector": {"app": "db"}, "clusterIP": "None"}}),
        ),
    );
    index.apply(
        Kind::Service,
        object(
            "Service",
            "shop",
            "manual",
            "s-m",
            json!({"spec": {"clusterIP": "10.96.9.9"}}),
        ),
    );
    assert_eq!(index.deployment_of_ip("10.1.0.7"), Some("d-db"));
    assert_eq!(index.deployment_of_ip("10.96.4.2"), Some("d-db"));
    assert_eq!(index.deployment_of_ip("fd00::42"), Some("d-db"));
    assert_eq!(index.deployment_of_ip("None"), None);
    assert_eq!(
        index.deployment_of_ip("10.96.9.9"),
        None,
        "no selector, no workload"
    );
    index.delete(Kind::Service, &json!({"metadata": {"uid": "s-db"}}));
    assert_eq!(index.deployment_of_ip("10.96.4.2"), None);
}
