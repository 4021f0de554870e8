use super::*;

fn outgoing(name: &str, privileged: bool, annotations: serde_json::Value, hash: u64) -> Outgoing {
    let object = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "annotations": annotations},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "eclipse-temurin:21", "securityContext": {"privileged": privileged}}]}}}
    });
    Outgoing {
        published: crate::index::Published::Deployment,
        id: format!("uid-{name}"),
        namespace: "shop".into(),
        name: name.into(),
        object: object.to_string().into(),
        context: None,
        content_hash: hash,
    }
}

fn process(pod: &str, path: &str, args: &str, lineage: &[&str]) -> ProcessIndicator {
    ProcessIndicator {
        deployment_id: "uid-web".into(),
        pod_id: pod.into(),
        container_name: "app".into(),
        container_id: "c1".into(),
        exec_file_path: path.into(),
        name: path.rsplit('/').next().unwrap_or(path).into(),
        args: args.into(),
        pid: 42,
        uid: 0,
        gid: 0,
        lineage: lineage.iter().map(|s| s.to_string()).collect(),
        time_unix_ms: 1,
    }
}

fn policies(kill: &[&str]) -> Vec<Arc<RuntimePolicy>> {
    let mut defaults = rampart_policy::defaults::default_policies();
    for p in &mut defaults {
        if kill.contains(&p.name.as_str()) {
            p.enforcement_actions = vec![EnforcementAction::KillPod];
        }
    }
    compile_process_policies(&defaults)
}

fn names(d: &Detection, policies: &[Arc<RuntimePolicy>]) -> Vec<String> {
    d.results
        .iter()
        .flat_map(|r| &r.alerts)
        .map(|a| {
            policies
                .iter()
                .find(|p| p.compiled.policy.id == a.policy_id)
                .map(|p| p.compiled.policy.name.clone())
                .expect("a known policy")
        })
        .collect()
}

#[test]
fn only_enabled_runtime_process_policies_are_compiled() {
    let all = policies(&[]);
    let defaults = rampart_policy::defaults::default_policies();
    let expected = defaults
        .iter()
        .filter(|p| {
            !p.disabled
                && p.lifecycle_stages == [rampart_policy::LifecycleStage::Runtime]
                && !p.categories.iter().any(|c| c == "Kubernetes Events")
                && p.name != "Unauthorized Network Flow"
        })
        .count();
    assert_eq!(all.len(), expected);
    assert!(all.iter().all(|p| !p.kill_pod));
    assert!(
        !all.iter()
            .any(|p| p.compiled.policy.name == "Kubernetes Actions: Exec into Pod"),
        "Kubernetes event policies are the admission controller's"
    );
    assert!(
        !all.iter()
            .any(|p| p.compiled.policy.name == "Unauthorized Network Flow"),
        "network flows are judged against baselines in Central"
    );
}

#[test]
fn a_shell_under_java_is_reported_once_and_killed_every_time() {
    let policies = policies(&["Shell Spawned by Java Application"]);
    let mut detector = Detector::default();
    let web = outgoing("web", false, serde_json::json!({}), 1);
    let shell = process("web-1", "/bin/sh", "-c id", &["/opt/java/bin/java"]);
    let first = detector.on_process(&policies, &web, &shell, "prod", "r1");
    assert_eq!(
        names(&first, &policies),
        ["Shell Spawned by Java Application"]
    );
    let alert = &first.results.as_ref().expect("results").alerts[0];
    assert_eq!(alert.enforcement_action, "KILL_POD_ENFORCEMENT");
    assert!(
        alert.violations[0]
            .message
            .starts_with("Binary '/bin/sh' executed with arguments '-c id' under user ID 0"),
        "{:?}",
        alert.violations
    );
    assert_eq!(alert.violations[0].attributes["pod"], "web-1");
    assert_eq!(
        first.kills,
        [KillRequest {
            deployment_id: "uid-web".into(),
            namespace: "shop".into(),
            pod: "web-1".into(),
            policy_id: alert.policy_id.clone(),
            policy_name: "Shell Spawned by Java Application".into(),
        }]
    );
    // The same shell in the replacement pod: killed again, reported again (a new pod).
    let again = detector.on_process(
        &policies,
        &web,
        &process("web-2", "/bin/sh", "-c id", &["/opt/java/bin/java"]),
        "prod",
        "r1",
    );
    assert_eq!(again.kills.len(), 1);
    // Without kill-pod, a repeat is not sent again.
    let report_only = policies_without_kill();
    let mut detector = Detector::default();
    assert!(
        detector
            .on_process(&report_only, &web, &shell, "prod", "r1")
            .results
            .is_some()
    );
    let repeat = detector.on_process(&report_only, &web, &shell, "prod", "r1");
    assert_eq!(repeat, Detection::default(), "a repeat is not sent twice");
    // Once the repeat window is over it is sent again (a resolved alert comes back).
    detector.repeat_after = std::time::Duration::ZERO;
    assert!(
        detector
            .on_process(&report_only, &web, &shell, "prod", "r1")
            .results
            .is_some(),
        "sent again after the window"
    );
    detector.repeat_after = REPEAT_AFTER;
    // A different argument is news.
    let other = detector.on_process(
        &report_only,
        &web,
        &process("web-1", "/bin/sh", "-c whoami", &["/opt/java/bin/java"]),
        "prod",
        "r1",
    );
    assert!(other.results.is_some());
    // An ordinary process raises nothing.
    let java = detector.on_process(
        &report_only,
        &web,
        &process(
            "web-1",
            "/opt/java/bin/java",
            "-jar app.jar",
            &["/usr/bin/tini"],
        ),
        "prod",
        "r1",
    );
    assert_eq!(java, Detection::default());
    assert_eq!(detector.evaluated, 5);
}

fn policies_without_kill() -> Vec<Arc<RuntimePolicy>> {
    policies(&[])
}

#[test]
fn break_glass_is_reported_not_killed_and_a_changed_deployment_is_normalized_again() {
    let policies = policies(&["Iptables or nftables Executed in Privileged Container"]);
    let mut detector = Detector::default();
    let iptables = process("web-1", "/usr/sbin/iptables", "-L", &[]);
    // Not privileged: only "iptables Execution".
    let plain = outgoing("web", false, serde_json::json!({}), 1);
    let d = detector.on_process(&policies, &plain, &iptables, "prod", "r1");
    assert_eq!(names(&d, &policies), ["iptables Execution"]);
    assert!(d.kills.is_empty());
    // The deployment changed (new content hash): privileged now, and killed.
    let privileged = outgoing("web", true, serde_json::json!({}), 2);
    let d = detector.on_process(&policies, &privileged, &iptables, "prod", "r1");
    assert!(
        names(&d, &policies)
            .contains(&"Iptables or nftables Executed in Privileged Container".to_string()),
        "{:?}",
        names(&d, &policies)
    );
    assert_eq!(d.kills.len(), 1);
    // Break-glass: reported, not killed, counted.
    let glass = outgoing(
        "web",
        true,
        serde_json::json!({"admission.rampart.io/break-glass": "incident-42"}),
        3,
    );
    let d = detector.on_process(
        &policies,
        &glass,
        &process("web-3", "/usr/sbin/iptables", "-F", &[]),
        "prod",
        "r1",
    );
    assert!(d.kills.is_empty());
    assert_eq!(d.break_glass_skips, 1);
    assert!(d.results.is_some());
}

#[test]
fn a_pod_in_an_exempt_namespace_is_reported_not_killed() {
    let policies = policies(&["Iptables or nftables Executed in Privileged Container"]);
    let mut detector =
        Detector::exempting(rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec());
    let iptables = process("web-1", "/usr/sbin/iptables", "-L", &[]);
    let mut own = outgoing("web", true, serde_json::json!({}), 1);
    own.namespace = "rampart".into();
    let d = detector.on_process(&policies, &own, &iptables, "prod", "r1");
    assert!(
        names(&d, &policies)
            .contains(&"Iptables or nftables Executed in Privileged Container".to_string()),
        "still reported: {:?}",
        names(&d, &policies)
    );
    assert!(d.kills.is_empty());
    assert_eq!(d.exempt_skips, 1);
    // Outside the exempt namespaces the same process kills its pod.
    let shop = outgoing("web", true, serde_json::json!({}), 2);
    let d = detector.on_process(
        &policies,
        &shop,
        &process("web-2", "/usr/sbin/iptables", "-F", &[]),
        "prod",
        "r1",
    );
    assert_eq!(d.kills.len(), 1);
    assert_eq!(d.exempt_skips, 0);
}
