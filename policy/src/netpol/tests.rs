use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn workload(ns: &str, name: &str, app: &str) -> WorkloadRef {
    WorkloadRef {
        namespace: ns.into(),
        name: name.into(),
        kind: "Deployment".into(),
        pod_labels: labels(&[("app", app), ("pod-template-hash", "5d8f")]),
        ..WorkloadRef::default()
    }
}

const WEB: usize = 0;
const DB: usize = 1;
const API: usize = 2;
const FRONT: usize = 3;

fn cluster() -> Vec<WorkloadRef> {
    let mut front = workload("shop", "front", "front");
    front.exposed_ports.insert((8080, "TCP".into()));
    vec![
        workload("shop", "web", "web"),
        workload("shop", "db", "db"),
        workload("api", "api", "api"),
        front,
    ]
}

fn flow(source: Endpoint, destination: Endpoint, port: u32, protocol: &str) -> Flow {
    Flow {
        source,
        destination,
        port,
        protocol: protocol.into(),
    }
}

fn ext(net: &str) -> Endpoint {
    Endpoint::External(vec![net.parse().expect("net")])
}

fn observed() -> Vec<Flow> {
    use Endpoint::Workload as W;
    vec![
        flow(W(WEB), W(DB), 5432, "TCP"),
        flow(W(API), W(DB), 5432, "TCP"),
        flow(W(FRONT), W(WEB), 80, "TCP"),
        flow(W(WEB), ext("203.0.113.0/24"), 443, "TCP"),
    ]
}

fn options() -> Options {
    Options {
        egress: true,
        generated_at: "2026-12-06T10:00:00Z".into(),
        generated_from: "observed flows".into(),
    }
}

fn generated() -> Vec<NetworkPolicy> {
    let (policies, skipped) = generate(&cluster(), &observed(), &observed(), |_| true, &options());
    assert!(skipped.is_empty(), "{skipped:?}");
    policies
}

#[test]
fn one_policy_per_workload_selects_its_pods_by_stable_labels() {
    let policies = generated();
    assert_eq!(policies.len(), 4);
    let db = &policies[DB];
    assert_eq!(db.metadata.name, "rampart-generated-db");
    assert_eq!(db.metadata.namespace, "shop");
    assert!(db.is_generated());
    assert_eq!(db.spec.pod_selector.match_labels, labels(&[("app", "db")]));
    assert_eq!(db.spec.policy_types, ["Ingress", "Egress"]);
    // Both clients use 5432: one rule, the same-namespace one by pod selector only, the other
    // through its namespace's name label.
    assert_eq!(db.spec.ingress.len(), 1, "{}", db.to_yaml());
    let from = &db.spec.ingress[0].from;
    assert_eq!(from.len(), 2);
    assert!(from.iter().any(|p| p.namespace_selector.is_none()
        && p.pod_selector.as_ref().map(|s| &s.match_labels) == Some(&labels(&[("app", "web")]))));
    assert!(
        from.iter()
            .any(|p| p.namespace_selector.as_ref().map(|s| &s.match_labels)
                == Some(&labels(&[(NAMESPACE_NAME_LABEL, "api")])))
    );
    // The db talks to no one: its egress is DNS only.
    assert_eq!(db.spec.egress.len(), 1);
    assert!(db.spec.egress[0].to.is_empty());
    assert_eq!(db.spec.egress[0].ports.len(), 2);
}

#[test]
fn generated_policies_allow_every_observed_flow_and_block_the_rest() {
    use Endpoint::Workload as W;
    let workloads = cluster();
    let policies = generated();
    let namespaces = Namespaces::default();
    for f in observed() {
        assert!(
            decide(&policies, &namespaces, &workloads, &f).allowed(),
            "{f:?} is blocked"
        );
    }
    let ssh = flow(W(WEB), W(DB), 22, "TCP");
    let v = decide(&policies, &namespaces, &workloads, &ssh);
    assert!(v.ingress_denied && v.egress_denied, "{v:?}");
    let exfil = flow(W(DB), ext("198.51.100.7/32"), 443, "TCP");
    assert_eq!(
        decide(&policies, &namespaces, &workloads, &exfil),
        Verdict {
            egress_denied: true,
            ingress_denied: false
        }
    );
    // A narrower address inside the allowed block passes, one outside does not.
    let inside = flow(W(WEB), ext("203.0.113.9/32"), 443, "TCP");
    assert!(decide(&policies, &namespaces, &workloads, &inside).allowed());
    // DNS stays open; the exposed port is open to anyone outside.
    let dns = flow(W(DB), ext("10.96.0.10/32"), 53, "UDP");
    assert!(decide(&policies, &namespaces, &workloads, &dns).allowed());
    let public = flow(ext("192.0.2.1/32"), W(FRONT), 8080, "TCP");
    assert!(decide(&policies, &namespaces, &workloads, &public).allowed());
    let public_other_port = flow(ext("192.0.2.1/32"), W(FRONT), 9090, "TCP");
    assert!(!decide(&policies, &namespaces, &workloads, &public_other_port).allowed());
}

#[test]
fn ingress_only_generation_leaves_egress_open() {
    let options = Options {
        egress: false,
        ..options()
    };
    let (policies, _) = generate(&cluster(), &observed(), &observed(), |_| true, &options);
    assert!(policies.iter().all(|p| p.spec.policy_types == ["Ingress"]));
    let exfil = flow(Endpoint::Workload(DB), ext("198.51.100.7/32"), 443, "TCP");
    assert!(decide(&policies, &Namespaces::default(), &cluster(), &exfil).allowed());
}

#[test]
fn yaml_round_trips_and_reads_like_a_kubernetes_object() {
    let policies = generated();
    let text = policies[DB].to_yaml();
    assert!(
        text.starts_with("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"),
        "{text}"
    );
    assert!(text.contains("podSelector:"), "{text}");
    let doc = crate::yaml::split_documents(&text);
    let value = crate::yaml::parse_document(doc[0]).expect("yaml");
    assert_eq!(
        NetworkPolicy::from_value(&value).expect("policy"),
        policies[DB]
    );
    let stream = to_yaml_stream(&policies);
    assert_eq!(crate::yaml::split_documents(&stream).len(), 4);
}

#[test]
fn unlabelled_pods_are_skipped_not_selected_by_an_empty_selector() {
    let mut workloads = cluster();
    workloads[API].pod_labels = labels(&[("pod-template-hash", "1")]);
    let (policies, skipped) = generate(&workloads, &observed(), &observed(), |_| true, &options());
    assert_eq!(policies.len(), 3);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].workload, API);
}

#[test]
fn host_network_pods_get_no_policy_and_are_never_isolated() {
    use Endpoint::Workload as W;
    let mut workloads = cluster();
    workloads[DB].host_network = true;
    let (policies, skipped) = generate(&workloads, &observed(), &observed(), |_| true, &options());
    assert_eq!(policies.len(), 3);
    assert_eq!(skipped[0].workload, DB);
    let mut deny_all = existing(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}}\n",
    );
    deny_all.spec.policy_types = vec!["Ingress".into()];
    let v = decide(
        &[deny_all],
        &Namespaces::default(),
        &workloads,
        &flow(W(API), W(DB), 22, "TCP"),
    );
    assert!(v.allowed(), "the host's network is not isolated: {v:?}");
}

#[test]
fn same_name_in_a_namespace_gets_the_kind_appended() {
    let mut workloads = cluster();
    let mut sts = workload("shop", "db", "db-sts");
    sts.kind = "StatefulSet".into();
    workloads.push(sts);
    let (policies, _) = generate(&workloads, &[], &[], |_| true, &options());
    let names: Vec<_> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert!(names.contains(&"rampart-generated-db"));
    assert!(
        names.contains(&"rampart-generated-db-statefulset"),
        "{names:?}"
    );
}

fn existing(text: &str) -> NetworkPolicy {
    let doc = crate::yaml::split_documents(text);
    NetworkPolicy::from_value(&crate::yaml::parse_document(doc[0]).expect("yaml")).expect("policy")
}

#[test]
fn existing_policies_follow_the_api_semantics() {
    use Endpoint::Workload as W;
    let workloads = cluster();
    let mut namespaces = Namespaces::default();
    namespaces.insert("api", labels(&[("team", "payments")]));
    // No policyTypes: ingress only. A namespace selector by a namespace label, a named port,
    // and an ipBlock with an exception.
    let mut db = workloads[DB].clone();
    db.named_ports.insert("pg".into(), (5432, "TCP".into()));
    let workloads = vec![
        workloads[0].clone(),
        db,
        workloads[2].clone(),
        workloads[3].clone(),
    ];
    let policy = existing(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop, uid: 1234}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In, values: [db, cache]}]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: payments}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: pg}]
"#,
    );
    assert_eq!(policy.isolates(), (true, false));
    let policies = [policy];
    let ok = |f: Flow| decide(&policies, &namespaces, &workloads, &f).allowed();
    assert!(ok(flow(W(API), W(DB), 5432, "TCP")));
    assert!(!ok(flow(W(API), W(DB), 5432, "UDP")));
    assert!(
        !ok(flow(W(WEB), W(DB), 5432, "TCP")),
        "web's namespace is not selected"
    );
    assert!(ok(flow(ext("10.2.0.1/32"), W(DB), 5432, "TCP")));
    assert!(
        !ok(flow(ext("10.1.0.1/32"), W(DB), 5432, "TCP")),
        "excepted"
    );
    assert!(
        ok(flow(W(DB), ext("8.8.8.8/32"), 53, "UDP")),
        "egress is not isolated"
    );
    assert!(
        ok(flow(W(WEB), W(API), 1, "TCP")),
        "other pods are not isolated"
    );
}

#[test]
fn plan_replaces_earlier_generations_removes_stale_ones_and_names_what_each_blocks() {
    use Endpoint::Workload as W;
    let workloads = cluster();
    let old_db = existing(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: rampart-generated-db
  namespace: shop
  labels: {network-policy-generator.rampart.io/generated: "true", app.kubernetes.io/managed-by: rampart}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 5432}]
"#,
    );
    let old_gone = existing(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: rampart-generated-retired
  namespace: shop
  labels: {network-policy-generator.rampart.io/generated: "true"}
spec:
  podSelector: {matchLabels: {app: retired}}
"#,
    );
    let users = existing(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-monitoring, namespace: shop}
spec:
  podSelector: {matchLabels: {app: front}}
  ingress: [{ports: [{port: 8080}, {port: 9100}]}]
"#,
    );
    let mut flows = observed();
    // An anomalous flow seen once, not part of what the policies were generated from.
    flows.push(flow(W(WEB), W(DB), 22, "TCP"));
    // Already blocked today by the old db policy.
    flows.push(flow(W(FRONT), W(DB), 5432, "TCP"));
    let plan = plan(
        &[old_db, old_gone.clone(), users],
        &generated(),
        &Namespaces::default(),
        &workloads,
        &flows,
    );
    let action = |name: &str| {
        plan.changes
            .iter()
            .find(|c| c.policy.metadata.name == name)
            .map(|c| c.action)
    };
    assert_eq!(action("rampart-generated-db"), Some(Action::Replace));
    assert_eq!(action("rampart-generated-web"), Some(Action::Add));
    let db = plan
        .changes
        .iter()
        .find(|c| c.policy.metadata.name == "rampart-generated-db")
        .expect("db");
    assert!(db.diff.contains("--- existing"), "{}", db.diff);
    assert!(
        db.diff
            .lines()
            .any(|l| l.starts_with('+') && l.contains("Egress")),
        "{}",
        db.diff
    );
    assert_eq!(plan.stale, vec![old_gone]);
    assert_eq!(
        plan.blocked_now,
        vec![1, 4, 5],
        "the old db policy lets only web in"
    );
    assert_eq!(plan.blocked_after, vec![4, 5]);
    // Only newly blocked flows are blamed: none here for the db. Front's egress to the db is
    // now blocked by front's own policy as well, but it was blocked before.
    assert!(db.blocks.is_empty(), "{:?}", db.blocks);

    // Without the old db policy, the ssh flow is newly blocked, by both ends' policies.
    let plan = super::plan(
        &[],
        &generated(),
        &Namespaces::default(),
        &workloads,
        &flows,
    );
    assert_eq!(plan.blocked_now, Vec::<usize>::new());
    assert_eq!(plan.blocked_after, vec![4, 5]);
    let blocks = |name: &str| {
        plan.changes
            .iter()
            .find(|c| c.policy.metadata.name == name)
            .map(|c| c.blocks.clone())
            .unwrap_or_default()
    };
    assert_eq!(blocks("rampart-generated-db"), vec![4, 5]);
    assert_eq!(blocks("rampart-generated-web"), vec![4]);
    assert_eq!(blocks("rampart-generated-front"), vec![5]);
    assert!(blocks("rampart-generated-api").is_empty());
}

#[test]
fn a_flow_only_one_end_knows_is_allowed_at_that_end_only() {
    use Endpoint::Workload as W;
    let workloads = cluster();
    let learned_by_db = [flow(W(WEB), W(DB), 5432, "TCP")];
    let (policies, _) = generate(&workloads, &learned_by_db, &[], |_| true, &options());
    let v = decide(
        &policies,
        &Namespaces::default(),
        &workloads,
        &learned_by_db[0],
    );
    assert_eq!(
        v,
        Verdict {
            egress_denied: true,
            ingress_denied: false
        }
    );
}
