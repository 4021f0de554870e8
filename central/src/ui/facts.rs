//! A deployment's configuration in words, as the violation and deployment pages show it
//! (`templates/deployment_facts.html`): what the manifest says, merged as the engine sees it,
//! and what the Sensor derived (RBAC, NetworkPolicies, exposure). Environment variables show
//! their names and where their values come from, never a value.

use rampart_policy::Deployment;

use crate::model::DeploymentRecord;

pub(super) struct DeploymentFacts {
    /// Link to the deployment's own page.
    pub href: String,
    pub overview: Vec<(&'static str, String)>,
    pub containers: Vec<ContainerFacts>,
}

pub(super) struct ContainerFacts {
    pub name: String,
    pub image: String,
    /// (label, value, risky): risky values are marked for the eye.
    pub rows: Vec<(&'static str, String, bool)>,
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn map_text(m: &std::collections::BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cores(c: f64) -> String {
    if c == 0.0 {
        "not set".into()
    } else {
        format!("{c} cores")
    }
}

/// Memory as the engine keeps it: MiB.
fn mebibytes(m: f64) -> String {
    if m == 0.0 {
        "not set".into()
    } else if m >= 1024.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{m:.0} MiB")
    }
}

/// The facts of a stored deployment, or `None` when its object does not normalize.
pub(super) fn of(record: &DeploymentRecord) -> Option<DeploymentFacts> {
    let d = record.normalize()?;
    Some(DeploymentFacts {
        href: format!(
            "/ui/risk/{}/{}",
            super::urlencode(&record.cluster_id),
            super::urlencode(&record.id)
        ),
        overview: overview(&d),
        containers: d.containers.iter().map(container).collect(),
    })
}

fn overview(d: &Deployment) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Kind", d.kind.as_str().to_string()),
        (
            "Replicas",
            d.replicas
                .map_or_else(|| "not set".into(), |r| r.to_string()),
        ),
        (
            "Service account",
            if d.service_account.is_empty() {
                "default".into()
            } else {
                d.service_account.clone()
            },
        ),
        (
            "Service account token mounted",
            yes_no(d.automount_service_account_token),
        ),
        ("Host network", yes_no(d.host_network)),
        ("Host PID", yes_no(d.host_pid)),
        ("Host IPC", yes_no(d.host_ipc)),
        ("Labels", map_text(&d.labels)),
        ("Annotations", map_text(&d.annotations)),
    ];
    if !d.runtime_class.is_empty() {
        rows.push(("Runtime class", d.runtime_class.clone()));
    }
    match &d.cluster {
        Some(c) => {
            rows.push((
                "RBAC permission level",
                if c.rbac_level.is_empty() {
                    "DEFAULT".into()
                } else {
                    c.rbac_level.clone()
                },
            ));
            rows.push((
                "NetworkPolicy",
                format!(
                    "ingress {}, egress {}",
                    if c.ingress_network_policy {
                        "isolated"
                    } else {
                        "open"
                    },
                    if c.egress_network_policy {
                        "isolated"
                    } else {
                        "open"
                    }
                ),
            ));
            rows.push((
                "Exposure",
                if c.exposures.is_empty() {
                    "none".into()
                } else {
                    c.exposures
                        .iter()
                        .map(|e| {
                            let mut s = format!(
                                "{}/{} {} via {}",
                                e.container_port, e.protocol, e.level, e.service_name
                            );
                            if e.node_port > 0 {
                                s.push_str(&format!(" (node port {})", e.node_port));
                            }
                            s
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            ));
        }
        None => rows.push((
            "Cluster context",
            "not reported yet (RBAC, NetworkPolicies, exposure)".into(),
        )),
    }
    rows
}

fn container(c: &rampart_policy::deployment::Container) -> ContainerFacts {
    let s = &c.security_context;
    let mut rows = vec![
        ("Privileged", yes_no(s.privileged), s.privileged),
        (
            "Runs as",
            match (s.run_as_user, s.run_as_non_root) {
                (Some(u), _) => format!("UID {u}"),
                (None, Some(true)) => "any non-root user".into(),
                _ => "the image's user (may be root)".into(),
            },
            !s.runs_as_non_root(),
        ),
        (
            "Privilege escalation",
            if s.allow_privilege_escalation {
                "allowed"
            } else {
                "not allowed"
            }
            .into(),
            s.allow_privilege_escalation,
        ),
        (
            "Read-only root filesystem",
            yes_no(s.read_only_root_filesystem),
            !s.read_only_root_filesystem,
        ),
        (
            "Capabilities added",
            if s.add_capabilities.is_empty() {
                "none".into()
            } else {
                s.add_capabilities.join(", ")
            },
            !s.add_capabilities.is_empty(),
        ),
        (
            "Capabilities dropped",
            if s.drop_capabilities.is_empty() {
                "none".into()
            } else {
                s.drop_capabilities.join(", ")
            },
            false,
        ),
        (
            "Seccomp",
            s.seccomp
                .map_or_else(|| "not set".into(), |p| p.as_str().to_string()),
            s.seccomp == Some(rampart_policy::deployment::SeccompType::Unconfined),
        ),
        (
            "CPU request / limit",
            format!(
                "{} / {}",
                cores(c.resources.cpu_request),
                cores(c.resources.cpu_limit)
            ),
            false,
        ),
        (
            "Memory request / limit",
            format!(
                "{} / {}",
                mebibytes(c.resources.memory_request),
                mebibytes(c.resources.memory_limit)
            ),
            c.resources.memory_limit == 0.0,
        ),
        (
            "Probes",
            format!(
                "liveness {}, readiness {}",
                yes_no(c.liveness_probe),
                yes_no(c.readiness_probe)
            ),
            false,
        ),
    ];
    if !c.ports.is_empty() {
        rows.push((
            "Ports",
            c.ports
                .iter()
                .map(|p| {
                    let mut s = format!("{}/{}", p.container_port, p.protocol);
                    if let Some(h) = p.host_port {
                        s.push_str(&format!(" (host port {h})"));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", "),
            c.ports.iter().any(|p| p.host_port.is_some()),
        ));
    }
    if !c.mounts.is_empty() {
        rows.push((
            "Volumes",
            c.mounts
                .iter()
                .map(|m| {
                    format!(
                        "{} → {} ({}{})",
                        if m.source.is_empty() {
                            &m.name
                        } else {
                            &m.source
                        },
                        m.destination,
                        m.volume_type,
                        if m.read_only { ", read-only" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            c.mounts.iter().any(|m| m.volume_type == "HostPath"),
        ));
    }
    if !c.env.is_empty() {
        rows.push((
            "Environment",
            c.env
                .iter()
                .map(|e| match e.source {
                    rampart_policy::deployment::EnvSource::Raw => e.name.clone(),
                    // A reference names its Secret or ConfigMap key, not a value.
                    other => format!("{} (from {} {})", e.name, other.as_str(), e.value),
                })
                .collect::<Vec<_>>()
                .join(", "),
            false,
        ));
    }
    ContainerFacts {
        name: if c.is_init {
            format!("{} (init)", c.name)
        } else {
            c.name.clone()
        },
        image: c.image.full_name.clone(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_name_risky_settings_and_never_an_env_value() {
        let object = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "nginx:1.27",
                    "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}},
                    "env": [{"name": "PASSWORD", "value": "hunter2"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}],
                    "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}},
                    "ports": [{"containerPort": 80, "hostPort": 8080}]}]}}}
        });
        let record = DeploymentRecord {
            cluster_id: "prod".into(),
            id: "u1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            kind: "Deployment".into(),
            object: serde_json::value::to_raw_value(&object).expect("json"),
            content_hash: 1,
            updated_unix_ms: 0,
            generation: 0,
            active_alerts: Vec::new(),
            context: None,
        };
        let facts = of(&record).expect("normalizes");
        let overview: std::collections::HashMap<_, _> = facts.overview.into_iter().collect();
        assert_eq!(overview["Replicas"], "3");
        assert_eq!(overview["Host network"], "yes");
        let c = &facts.containers[0];
        assert_eq!(c.image, "nginx:1.27");
        let row = |label: &str| {
            c.rows
                .iter()
                .find(|(l, _, _)| *l == label)
                .map(|(_, v, risky)| (v.as_str(), *risky))
                .expect(label)
        };
        assert_eq!(row("Privileged"), ("yes", true));
        assert_eq!(row("Capabilities added"), ("NET_ADMIN", true));
        assert_eq!(row("Memory request / limit"), ("not set / 512 MiB", false));
        assert_eq!(row("CPU request / limit"), ("not set / 0.5 cores", false));
        assert_eq!(row("Ports"), ("80/TCP (host port 8080)", true));
        let env = row("Environment").0;
        assert!(
            env.contains("PASSWORD") && env.contains("TOKEN (from SECRET_KEY"),
            "{env}"
        );
        assert!(!env.contains("hunter2"), "{env}");
    }
}
