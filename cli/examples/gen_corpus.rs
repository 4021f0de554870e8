//! Generates a corpus of workload manifests for the CLI benchmark:
//! `cargo run --release -p rampart-cli --example gen_corpus -- 10000 /tmp/corpus`
//! writes files of 100 multi-document YAML objects each, mixing every workload kind, safe and
//! unsafe settings, so the checker parses, normalizes and reports as it would on real input.
use std::fmt::Write as _;

fn object(i: usize) -> String {
    let kind = [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Pod",
        "ReplicaSet",
    ][i % 7];
    let api = match kind {
        "Job" | "CronJob" => "batch/v1",
        "Pod" => "v1",
        _ => "apps/v1",
    };
    let privileged = i.is_multiple_of(5);
    let tag = if i.is_multiple_of(3) {
        "latest".to_string()
    } else {
        format!("1.{}.{}", i % 17, i % 7)
    };
    let mut pod = String::new();
    let _ = write!(
        pod,
        "serviceAccountName: svc-{i}\nautomountServiceAccountToken: {}\nsecurityContext:\n  runAsNonRoot: true\n  seccompProfile: {{type: RuntimeDefault}}\n{}containers:\n- name: app\n  image: registry.example.com/team-{}/app-{i}:{tag}\n  ports:\n  - {{name: http, containerPort: 8080}}\n  - {{name: metrics, containerPort: 9090}}\n  env:\n  - {{name: PORT, value: \"8080\"}}\n  - {{name: LOG_LEVEL, value: info}}\n  - {{name: DB_PASSWORD, {}}}\n  - name: POD_NAME\n    valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n  resources:\n    requests: {{cpu: 100m, memory: 128Mi}}\n    limits: {{cpu: \"1\", memory: 256Mi}}\n  securityContext:\n    privileged: {privileged}\n    allowPrivilegeEscalation: {}\n    readOnlyRootFilesystem: true\n    capabilities: {{drop: [ALL]}}\n  livenessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 10}}\n  readinessProbe: {{httpGet: {{path: /ready, port: http}}, periodSeconds: 5}}\n  volumeMounts:\n  - {{name: tmp, mountPath: /tmp}}\n  - {{name: config, mountPath: /etc/app, readOnly: true}}\n- name: sidecar\n  image: docker.io/envoyproxy/envoy:v1.31.{}\n  args: [\"-c\", \"/etc/envoy/envoy.yaml\"]\n  resources:\n    requests: {{cpu: 50m, memory: 64Mi}}\n    limits: {{memory: 128Mi}}\nvolumes:\n- {{name: tmp, emptyDir: {{}}}}\n- {{name: config, configMap: {{name: app-{i}}}}}\n",
        i.is_multiple_of(2),
        if i.is_multiple_of(11) {
            "hostNetwork: true\n"
        } else {
            ""
        },
        i % 23,
        if i.is_multiple_of(4) {
            "value: hunter2".to_string()
        } else {
            format!("valueFrom: {{secretKeyRef: {{name: db-{i}, key: password}}}}")
        },
        i.is_multiple_of(4),
        i % 9,
    );
    let indent = |s: &str, n: usize| {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    let meta = format!(
        "metadata:\n  name: app-{i}\n  namespace: team-{}\n  labels: {{app: app-{i}, team: team-{}}}\n  annotations: {{owner: team-{}@example.com}}\n",
        i % 23,
        i % 23,
        i % 23
    );
    let template = format!(
        "metadata:\n  labels: {{app: app-{i}}}\nspec:\n{}",
        indent(&pod, 2)
    );
    match kind {
        "Pod" => format!("apiVersion: {api}\nkind: Pod\n{meta}spec:\n{}", indent(&pod, 2)),
        "Job" => format!("apiVersion: {api}\nkind: Job\n{meta}spec:\n  template:\n{}", indent(&template, 4)),
        "CronJob" => format!(
            "apiVersion: {api}\nkind: CronJob\n{meta}spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n{}",
            indent(&template, 8)
        ),
        _ => format!(
            "apiVersion: {api}\nkind: {kind}\n{meta}spec:\n  replicas: {}\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n{}",
            1 + i % 3,
            indent(&template, 4)
        ),
    }
    .replace("  replicas", if kind == "DaemonSet" { "  #replicas" } else { "  replicas" })
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = std::path::PathBuf::from(args.get(2).map_or("/tmp/rampart-corpus", String::as_str));
    std::fs::create_dir_all(&dir)?;
    for (file, chunk) in (0..count).collect::<Vec<_>>().chunks(100).enumerate() {
        let docs: Vec<String> = chunk.iter().map(|i| object(*i)).collect();
        std::fs::write(
            dir.join(format!("workloads-{file:04}.yaml")),
            docs.join("---\n"),
        )?;
    }
    eprintln!("wrote {count} objects to {}", dir.display());
    Ok(())
}
