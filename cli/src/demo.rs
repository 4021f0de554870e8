//! The demo cluster `rampart up --demo` serves from the test API server: a few teams'
//! namespaces with workloads a security team meets every day — well-configured ones and the
//! classic mistakes (privileged containers, the Docker socket mounted, `latest` tags, secrets in
//! environment variables, cluster-admin service accounts, services open to the internet).

use rampart_test_support::ApiServer;
use serde_json::{Value, json};

fn container(name: &str, image: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                            "allowPrivilegeEscalation": false}});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn deployment(ns: &str, name: &str, replicas: i64, pod_spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name},
                     "annotations": {"owner": format!("{ns}-team@example.com")}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}})
}

/// The demo's objects, in creation order.
pub fn objects() -> Vec<Value> {
    let mut objects: Vec<Value> = ["shop", "payments", "monitoring", "dev", "batch"]
        .iter()
        .map(|ns| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"team": ns}}})
        })
        .collect();
    objects.extend([
        // shop: a well-run storefront, a cache on `latest`, checkout with a secret in its env.
        deployment("shop", "frontend", 3, json!({"serviceAccountName": "frontend",
            "containers": [container("web", "registry.example.com/shop/frontend:2.14.1",
                json!({"ports": [{"name": "http", "containerPort": 8080}],
                       "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                       "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}))]})),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "frontend", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "frontend"},
                     "ports": [{"port": 443, "targetPort": "http"}]}}),
        deployment("shop", "cart-cache", 1, json!({
            "containers": [{"name": "redis", "image": "redis:latest",
                            "ports": [{"containerPort": 6379}]}]})),
        deployment("shop", "checkout", 2, json!({"serviceAccountName": "checkout",
            "containers": [container("checkout", "registry.example.com/shop/checkout:1.9.0",
                json!({"env": [{"name": "STRIPE_API_KEY", "value": "sk_live_demo_not_a_real_key"},
                               {"name": "AWS_SECRET_ACCESS_KEY", "value": "demo/not+a+real+key"}]}))]})),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "payments"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        // payments: an API that mounts the Docker socket and runs privileged.
        deployment("payments", "payments-api", 2, json!({"serviceAccountName": "payments",
            "containers": [{"name": "api", "image": "registry.example.com/payments/api:3.2.0",
                "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "docker", "mountPath": "/var/run/docker.sock"}],
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}],
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]})),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "payments", "namespace": "payments"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "payments-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "payments", "namespace": "payments"}]}),
        // monitoring: a node agent on the host's network and PID namespace.
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "node-exporter", "namespace": "monitoring", "labels": {"app": "node-exporter"}},
            "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                "template": {"metadata": {"labels": {"app": "node-exporter"}},
                    "spec": {"hostNetwork": true, "hostPID": true,
                        "containers": [container("exporter", "quay.io/prometheus/node-exporter:v1.8.2",
                            json!({"ports": [{"containerPort": 9100, "hostPort": 9100}],
                                   "volumeMounts": [{"name": "root", "mountPath": "/host", "readOnly": true}]}))],
                        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}}),
        // dev: someone's debugging pod, as root, with a network toolbox.
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "debug-shell", "namespace": "dev", "labels": {"run": "debug-shell"}},
            "spec": {"containers": [{"name": "shell", "image": "nicolaka/netshoot:latest",
                "command": ["sleep", "infinity"], "securityContext": {"runAsUser": 0}}],
                "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": "10.244.9.9",
                "containerStatuses": [{"name": "shell", "containerID": format!("containerd://{}", container_id("debug-shell", "shell")),
                    "image": "nicolaka/netshoot:latest"}]}}),
        // batch: a nightly backup, done right.
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly-backup", "namespace": "batch"},
            "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [container("backup", "registry.example.com/ops/backup:1.4.0", json!({}))]}}}}}}),
    ]);
    objects
}

/// Creates the demo cluster, with ReplicaSets and Pods under each Deployment as its
/// controllers would (the test API server runs none).
pub fn seed(api: &ApiServer) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut next_ip = 10u32;
    for object in objects() {
        let created = api
            .apply(object)
            .map_err(|e| anyhow::anyhow!("seeding the demo cluster: {e}"))?;
        count += 1;
        if created["kind"] == "Deployment" {
            count += owned_pods(api, &created, &mut next_ip)?;
        }
    }
    Ok(count)
}

fn owned_pods(api: &ApiServer, d: &Value, next_ip: &mut u32) -> anyhow::Result<usize> {
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let owner = |o: &Value| {
        json!([{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
                "uid": o["metadata"]["uid"], "controller": true}])
    };
    let rs = api
        .apply(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-5d8f9c"), "namespace": ns,
                         "labels": d["spec"]["selector"]["matchLabels"], "ownerReferences": owner(d)},
            "spec": d["spec"]}))
        .map_err(|e| anyhow::anyhow!("seeding the demo cluster: {e}"))?;
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    for i in 0..replicas {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-5d8f9c-{i}"), "namespace": ns,
                         "labels": d["spec"]["selector"]["matchLabels"], "ownerReferences": owner(&rs)},
            "spec": d["spec"]["template"]["spec"],
            "status": {"phase": "Running", "podIP": format!("10.244.{}.{}", *next_ip / 250, *next_ip % 250)}});
        *next_ip += 1;
        pod["spec"]["nodeName"] = json!(format!("node-{}", i % 2 + 1));
        let pod_name = format!("{name}-5d8f9c-{i}");
        pod["status"]["containerStatuses"] = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let c_name = c["name"].as_str().unwrap_or_default();
                json!({"name": c_name, "image": c["image"],
                    "containerID": format!("containerd://{}", container_id(&pod_name, c_name))})
            })
            .collect();
        api.apply(pod)
            .map_err(|e| anyhow::anyhow!("seeding the demo cluster: {e}"))?;
    }
    Ok(1 + usize::try_from(replicas).unwrap_or(0))
}

/// A container runtime id for a demo container (64 hex digits, stable across runs).
fn container_id(pod: &str, container: &str) -> String {
    use std::hash::{Hash, Hasher};
    (0..4u8)
        .map(|salt| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, pod, container).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// Who talks to whom in the demo cluster: (namespace, deployment or pod name prefix) → a demo
/// workload or an address outside the cluster, on a port.
const TRAFFIC: &[(&str, &str, &str, u32)] = &[
    ("shop", "frontend", "shop/checkout", 8080),
    ("shop", "frontend", "shop/cart-cache", 6379),
    ("shop", "checkout", "payments/payments-api", 8443),
    ("shop", "checkout", "shop/cart-cache", 6379),
    ("payments", "payments-api", "203.0.113.10", 443),
    ("shop", "frontend", "198.51.100.20", 443),
    ("dev", "debug-shell", "shop/cart-cache", 6379),
];

/// What the demo containers run: (namespace, pod name prefix, executable, arguments, ancestors).
const PROCESSES: &[(&str, &str, &str, &str, &[&str])] = &[
    ("shop", "frontend", "/usr/local/bin/node", "server.js", &[]),
    (
        "shop",
        "checkout",
        "/usr/local/bin/checkout",
        "--port 8080",
        &[],
    ),
    (
        "shop",
        "cart-cache",
        "/usr/local/bin/redis-server",
        "*:6379",
        &[],
    ),
    ("payments", "payments-api", "/app/api", "serve", &[]),
    ("dev", "debug-shell", "/bin/sleep", "infinity", &[]),
    // Someone maps the network from the debugging pod: ACS's "nmap Execution" policy.
    (
        "dev",
        "debug-shell",
        "/usr/bin/nmap",
        "-sT -p 1-1024 10.244.0.0/24",
        &["/bin/bash"],
    ),
];

/// A demo pod, as the demo Collector reports it.
pub struct DemoPod {
    namespace: String,
    name: String,
    uid: String,
    ip: String,
    container_id: String,
}

/// The demo cluster's running pods.
pub fn demo_pods(api: &ApiServer) -> Vec<DemoPod> {
    api.list("Pod")
        .iter()
        .filter_map(|p| {
            let status = p["status"]["containerStatuses"].get(0)?;
            Some(DemoPod {
                namespace: p["metadata"]["namespace"].as_str()?.to_string(),
                name: p["metadata"]["name"].as_str()?.to_string(),
                uid: p["metadata"]["uid"].as_str()?.to_string(),
                ip: p["status"]["podIP"].as_str()?.to_string(),
                container_id: status["containerID"]
                    .as_str()?
                    .rsplit("://")
                    .next()?
                    .to_string(),
            })
        })
        .collect()
}

/// Where the demo Collector connects, and as whom.
pub struct CollectorLink {
    pub endpoint: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Plays the demo cluster's Collector over the real Collector protocol (mTLS gRPC to the
/// Sensor): the processes the demo containers run and their connections, every 15 seconds — so the network graph, baselines and runtime alerts have something to show. Runs
/// until `up` stops; reconnects when the Sensor restarts.
pub async fn collector(pods: Vec<DemoPod>, link: CollectorLink) {
    use rampart_proto::collector::collector_message::Msg;
    use rampart_proto::collector::collector_service_client::CollectorServiceClient;
    use rampart_proto::collector::{
        CollectorHello, CollectorMessage, ConnectionEvent, ConnectionRole, Endpoint, ProcessEvent,
    };
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

    let now = || {
        i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0)
    };
    let of = |ns: &str, prefix: &str| -> Vec<&DemoPod> {
        pods.iter()
            .filter(|p| p.namespace == ns && p.name.starts_with(prefix))
            .collect()
    };
    loop {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&link.ca_pem))
            .identity(Identity::from_pem(&link.cert_pem, &link.key_pem))
            .domain_name("sensor.rampart.svc");
        let channel = match Channel::from_shared(link.endpoint.clone()) {
            Ok(c) => match c.tls_config(tls) {
                Ok(c) => c.connect().await,
                Err(e) => Err(e),
            },
            Err(e) => {
                tracing::warn!(error = %e, "the demo Collector has no valid Sensor endpoint");
                return;
            }
        };
        let Ok(channel) = channel else {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            continue;
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<CollectorMessage>(1024);
        let mut seq = 0u64;
        let mut send = |msg: Msg| {
            seq += 1;
            tx.try_send(CollectorMessage {
                seq,
                msg: Some(msg),
            })
            .is_ok()
        };
        send(Msg::Hello(CollectorHello {
            node_name: "node-1".into(),
            collector_version: format!("{} (demo)", env!("CARGO_PKG_VERSION")),
            mode: "proc-connector".into(),
        }));
        let Ok(response) = CollectorServiceClient::new(channel)
            .push(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        else {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            continue;
        };
        let mut acks = response.into_inner();
        let mut round = 0u32;
        'stream: loop {
            // Processes run again now and then (the Sensor suppresses repeats for a minute;
            // the first round may come before the Sensor holds the pods or the policies).
            for (ns, prefix, exe, args, lineage) in PROCESSES {
                for p in of(ns, prefix) {
                    send(Msg::Process(ProcessEvent {
                        container_id: p.container_id.clone(),
                        pod_uid: p.uid.clone(),
                        pid: 1,
                        ppid: 0,
                        exe_path: (*exe).into(),
                        name: exe.rsplit('/').next().unwrap_or(exe).into(),
                        args: (*args).into(),
                        uid: 0,
                        gid: 0,
                        lineage: lineage.iter().map(|l| l.to_string()).collect(),
                        time_unix_ms: now(),
                    }));
                }
            }
            for (ns, prefix, to, port) in TRAFFIC {
                let peers: Vec<String> = match to.split_once('/') {
                    Some((peer_ns, peer)) => {
                        of(peer_ns, peer).iter().map(|p| p.ip.clone()).collect()
                    }
                    None => vec![to.to_string()],
                };
                for (i, p) in of(ns, prefix).into_iter().enumerate() {
                    let Some(remote) = peers.get(i % peers.len().max(1)) else {
                        continue;
                    };
                    let t = now();
                    let sent = send(Msg::Connection(ConnectionEvent {
                        container_id: p.container_id.clone(),
                        pod_uid: p.uid.clone(),
                        pid: 1,
                        exe_path: String::new(),
                        protocol: "TCP".into(),
                        role: ConnectionRole::Client as i32,
                        local: Some(Endpoint {
                            address: p.ip.clone(),
                            port: 40_000 + u32::try_from(i).unwrap_or(0),
                        }),
                        remote: Some(Endpoint {
                            address: remote.clone(),
                            port: *port,
                        }),
                        first_seen_unix_ms: t,
                        last_seen_unix_ms: t,
                        closed: false,
                    }));
                    if !sent {
                        break 'stream;
                    }
                }
            }
            // Acknowledgements drain; a closed stream means the Sensor went away.
            // Quick rounds first, while the Sensor catches up; then every 15 seconds.
            round += 1;
            let wait = tokio::time::sleep(std::time::Duration::from_secs(if round < 4 {
                3
            } else {
                15
            }));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    ack = acks.message() => {
                        if !matches!(ack, Ok(Some(_))) {
                            break 'stream;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
