//! The training workload of the profile-guided build (`scripts/pgo-build`): reviews made from
//! the repository's own manifests (`deploy/`, the CLI's fixtures) and, where it is there, the
//! shared corpus of real applications — never the benchmarks' typical Deployment, so that what
//! the load benchmark measures is a workload the profile did not see.
//!
//! Each workload is sent as a cluster sends it, in several shapes: created, updated (with
//! `managedFields`, a status and its previous version), created again with what the default
//! policies refuse (privileged, no probes, a secret in the environment, the `latest` tag, the
//! runtime's socket mounted, the host's network), as a dry run, and its pods as their
//! ReplicaSet's controller and as a user create them.
//!
//! The profile-guided build optimizes the policy library (`rampart-policy`) alone, which every
//! role uses: its paths outside admission are trained too ([`policy_roles`]), so that none of
//! them is left as cold code — the CLI's `deployment check` (YAML, the serde decoder, every
//! default policy), Central's and the Sensor's evaluations with image findings, runtime events
//! (processes, `kubectl exec`), risk, and compiling policies.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use rampart_policy::check::{self, Source};
use rampart_policy::defaults::default_policies;
use rampart_policy::engine::{self, KubeEvent, ProcessEvent, RuntimeEvent};
use rampart_policy::image_data::{
    DockerfileInstruction, ImageComponent, ImageData, ImageVuln, VulnSeverity,
};
use rampart_policy::risk::{self, RiskInputs};
use rampart_policy::{Deployment, EvalContext, LifecycleStage, Severity, compile};
use serde_json::{Value, json};

use super::review;

/// Where the manifests are read from, relative to the repository's root.
const SOURCES: [&str; 3] = ["deploy", "cli/tests/fixtures", "../shared/corpus"];

/// Every training review, as the API server would send it.
pub fn training_reviews(repo: &Path) -> Vec<Vec<u8>> {
    let mut reviews = Vec::new();
    for object in workloads(repo) {
        let Some((kind, resource)) = kind_of(&object) else {
            continue;
        };
        let user = "system:serviceaccount:ci:deployer";
        reviews.push(review(
            kind.clone(),
            resource.clone(),
            "CREATE",
            user,
            &object,
            None,
        ));
        let stored = as_stored(&object);
        let mut older = stored.clone();
        older["metadata"]["resourceVersion"] = json!("1000");
        reviews.push(review(
            kind.clone(),
            resource.clone(),
            "UPDATE",
            user,
            &stored,
            Some(&older),
        ));
        let refused = refused(&object);
        reviews.push(review(
            kind.clone(),
            resource.clone(),
            "CREATE",
            user,
            &refused,
            None,
        ));
        let mut dry = review(
            kind.clone(),
            resource.clone(),
            "UPDATE",
            user,
            &refused,
            Some(&stored),
        );
        if let Ok(mut v) = serde_json::from_slice::<Value>(&dry) {
            v["request"]["dryRun"] = json!(true);
            dry = serde_json::to_vec(&v).unwrap_or(dry);
        }
        reviews.push(dry);
        if let Some(pod) = pod_of(&object) {
            let (pod_kind, pod_resource) = (
                json!({"group": "", "version": "v1", "kind": "Pod"}),
                json!({"group": "", "version": "v1", "resource": "pods"}),
            );
            let controller = "system:serviceaccount:kube-system:replicaset-controller";
            reviews.push(review(
                pod_kind.clone(),
                pod_resource.clone(),
                "CREATE",
                controller,
                &pod,
                None,
            ));
            reviews.push(review(pod_kind, pod_resource, "CREATE", user, &pod, None));
        }
    }
    reviews
}

/// The policy library's other roles, `rounds` times over the training manifests; how many
/// outcomes they had (for the caller to check that work was done).
pub fn policy_roles(repo: &Path, rounds: usize) -> usize {
    let sources: Vec<Source> = manifest_files(repo)
        .into_iter()
        .filter_map(|f| {
            Some(Source {
                name: f.display().to_string(),
                text: std::fs::read_to_string(&f).ok()?,
            })
        })
        .collect();
    let defaults = default_policies();
    let compiled: Vec<_> = defaults.iter().filter_map(|p| compile(p).ok()).collect();
    let runtime: Vec<_> = compiled
        .iter()
        .filter(|p| p.policy.has_stage(LifecycleStage::Runtime))
        .collect();
    let ctx = EvalContext {
        cluster: Some("prod"),
        ..EvalContext::default()
    };
    let image = Arc::new(image_data());
    let mut objects = workloads(repo);
    let refused_objects: Vec<Value> = objects.iter().map(refused).collect();
    objects.extend(refused_objects);
    let deployments: Vec<Deployment> = objects
        .iter()
        .filter_map(|o| {
            let kind = rampart_policy::manifest::workload_kind(
                o["apiVersion"].as_str()?,
                o["kind"].as_str()?,
            )?;
            let w = rampart_policy::workload::decode_workload(kind, o).ok()?;
            let mut d = Deployment::from_owned(w, "shop");
            for c in &mut d.containers {
                c.image_data = Some(Arc::clone(&image));
            }
            Some(d)
        })
        .collect();
    let processes = [
        "/bin/bash",
        "/usr/bin/curl",
        "/usr/bin/apt-get",
        "/usr/bin/nmap",
        "/usr/sbin/sshd",
        "/bin/nc",
        "/usr/bin/wget",
        "/app/server",
        "/usr/bin/passwd",
        "/sbin/iptables",
    ];
    let mut outcomes = 0;
    for _ in 0..rounds {
        let report = check::run_check(&sources, &compiled, &ctx);
        outcomes += report
            .objects
            .iter()
            .map(|o| o.findings.len() + 1)
            .sum::<usize>();
        outcomes += defaults.iter().filter(|p| compile(p).is_ok()).count();
        for d in &deployments {
            for p in &compiled {
                outcomes += usize::from(matches!(
                    engine::evaluate(p, d, &ctx),
                    engine::Outcome::Violated(_)
                ));
            }
            let container = d
                .containers
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            for path in processes {
                let name = path.rsplit('/').next().unwrap_or(path).to_string();
                let event = ProcessEvent {
                    container_name: container.clone(),
                    name: name.clone(),
                    exec_file_path: path.to_string(),
                    args: format!("{name} -x http://10.0.0.1/install.sh"),
                    uid: 0,
                    lineage: vec!["/bin/sh".to_string(), "/usr/bin/tini".to_string()],
                    outside_locked_baseline: path != "/app/server",
                };
                for p in &runtime {
                    let outcome = engine::evaluate_event(p, d, RuntimeEvent::Process(&event), &ctx);
                    outcomes += usize::from(matches!(outcome, engine::Outcome::Violated(_)));
                }
            }
            for resource in ["PODS_EXEC", "PODS_PORTFORWARD", "PODS_ATTACH"] {
                let event = KubeEvent {
                    resource: resource.to_string(),
                    verb: "CREATE".to_string(),
                    object_name: format!("{}-5d8f7c9b6-q7x2k", d.name),
                    user: "alice@example.com".to_string(),
                    groups: vec!["system:authenticated".to_string()],
                    impersonated: false,
                };
                for p in &runtime {
                    let outcome = engine::evaluate_event(p, d, RuntimeEvent::Kube(&event), &ctx);
                    outcomes += usize::from(matches!(outcome, engine::Outcome::Violated(_)));
                }
            }
            let inputs = RiskInputs {
                alert_severities: vec![Severity::High, Severity::Medium],
                suspicious_processes: Some(vec!["/usr/bin/curl".to_string()]),
                now: 1_796_000_000,
            };
            outcomes += usize::from(risk::score(d, &inputs).score > 1.0);
        }
    }
    outcomes
}

/// Findings as Central's scanner gives them for a Debian-based image: packages, some with
/// vulnerabilities of every severity, fixed or not.
fn image_data() -> ImageData {
    let severities = [
        VulnSeverity::Low,
        VulnSeverity::Moderate,
        VulnSeverity::Important,
        VulnSeverity::Critical,
    ];
    let components = (0..120)
        .map(|i| ImageComponent {
            name: format!("package-{i}"),
            version: format!("1.{i}.0-1"),
            vulns: (0..(i % 4))
                .map(|v| ImageVuln {
                    cve: format!("CVE-2025-{:05}", i * 10 + v),
                    cvss: Some(3.0 + f64::from(u8::try_from((i + v) % 7).unwrap_or(0))),
                    severity: severities[(i + v) % 4],
                    fixed_by: (v % 2 == 0).then(|| format!("1.{i}.1-1")),
                    published: Some(1_700_000_000),
                    fix_available: (v % 2 == 0).then_some(1_720_000_000),
                })
                .collect(),
        })
        .collect();
    ImageData {
        scanned: true,
        scan_time: Some(1_795_000_000),
        created: Some(1_760_000_000),
        os: "debian:12".to_string(),
        user: "root".to_string(),
        labels: [("maintainer".to_string(), "team@example.com".to_string())].into(),
        dockerfile: vec![
            DockerfileInstruction {
                instruction: "RUN".to_string(),
                value: "apt-get update && apt-get install -y curl".to_string(),
            },
            DockerfileInstruction {
                instruction: "ADD".to_string(),
                value: "https://example.com/app.tar.gz /app".to_string(),
            },
        ],
        components,
    }
}

/// Every manifest file under [`SOURCES`], in a stable order.
fn manifest_files(repo: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for source in SOURCES {
        collect_yaml(&repo.join(source), &mut files);
    }
    files.sort();
    files
}

/// The workload objects of every manifest under [`SOURCES`].
fn workloads(repo: &Path) -> Vec<Value> {
    let files = manifest_files(repo);
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for doc in rampart_policy::yaml::split_documents(&text) {
            if let Ok(object) = rampart_policy::yaml::parse_document(doc)
                && kind_of(&object).is_some()
            {
                out.push(object);
            }
        }
    }
    out
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The review's `kind` and `resource` of a workload object.
fn kind_of(object: &Value) -> Option<(Value, Value)> {
    let kind = object["kind"].as_str()?;
    let resource = match kind {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        "DaemonSet" => "daemonsets",
        "ReplicaSet" => "replicasets",
        "Job" => "jobs",
        "CronJob" => "cronjobs",
        "Pod" => "pods",
        _ => return None,
    };
    let api_version = object["apiVersion"].as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Some((
        json!({"group": group, "version": version, "kind": kind}),
        json!({"group": group, "version": version, "resource": resource}),
    ))
}

/// The object as the API server stores it: uid, resource version, managed fields, status.
fn as_stored(object: &Value) -> Value {
    let mut o = object.clone();
    o["metadata"]["uid"] = json!("3b0c7f0e-8a1d-4d51-9f0e-5b9c2e4a7d10");
    o["metadata"]["resourceVersion"] = json!("1001");
    o["metadata"]["generation"] = json!(3);
    o["metadata"]["creationTimestamp"] = json!("2026-11-01T08:00:00Z");
    o["metadata"]["managedFields"] = json!([
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": o["apiVersion"],
         "time": "2026-11-01T08:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {"f:template": {"f:spec": {}}}}}
    ]);
    o["status"] = json!({"observedGeneration": 3, "replicas": 2, "readyReplicas": 2,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
        "lastTransitionTime": "2026-11-01T08:00:05Z"}]});
    o
}

/// The pod spec of a workload object, wherever its kind keeps it.
fn pod_spec(object: &mut Value) -> Option<&mut Value> {
    let spec = match object["kind"].as_str()? {
        "Pod" => &mut object["spec"],
        "CronJob" => &mut object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &mut object["spec"]["template"]["spec"],
    };
    spec.is_object().then_some(spec)
}

/// The object with what the default policies refuse.
fn refused(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(spec) = pod_spec(&mut o) {
        spec["hostNetwork"] = json!(true);
        let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
        volumes.push(json!({"name": "runtime", "hostPath": {"path": "/var/run/docker.sock"}}));
        spec["volumes"] = json!(volumes);
        if let Some(containers) = spec["containers"].as_array_mut() {
            for c in containers {
                c["securityContext"] =
                    json!({"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}});
                if let Some(c) = c.as_object_mut() {
                    c.remove("livenessProbe");
                    c.remove("readinessProbe");
                }
                let image = c["image"].as_str().unwrap_or("busybox").to_string();
                let name = image.rsplit_once(':').map_or(image.as_str(), |(n, _)| n);
                c["image"] = json!(format!("{name}:latest"));
                let mut env = c["env"].as_array().cloned().unwrap_or_default();
                env.push(json!({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}));
                c["env"] = json!(env);
                let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
                mounts.push(json!({"name": "runtime", "mountPath": "/var/run/docker.sock"}));
                c["volumeMounts"] = json!(mounts);
            }
        }
    }
    o
}

/// A pod of a controller workload as its ReplicaSet's controller creates it.
fn pod_of(object: &Value) -> Option<Value> {
    if !matches!(
        object["kind"].as_str()?,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    ) {
        return None;
    }
    let template = &object["spec"]["template"];
    let name = object["metadata"]["name"].as_str().unwrap_or("app");
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"],
        "spec": template["spec"], "status": {"phase": "Pending"}});
    pod["metadata"]["name"] = json!(format!("{name}-5d8f7c9b6-q7x2k"));
    pod["metadata"]["namespace"] = object["metadata"]["namespace"].clone();
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": format!("{name}-5d8f7c9b6"), "uid": "9a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b",
        "controller": true, "blockOwnerDeletion": true}]);
    Some(pod)
}
