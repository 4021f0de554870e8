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
                "command": ["sleep", "infinity"], "securityContext": {"runAsUser": 0}}]}}),
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
        api.apply(pod)
            .map_err(|e| anyhow::anyhow!("seeding the demo cluster: {e}"))?;
    }
    Ok(1 + usize::try_from(replicas).unwrap_or(0))
}
