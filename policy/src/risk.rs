//! Deployment risk, in the spirit of ACS's: the product of factors, each normalized into
//! `[1, max]` by `1 + min(raw / saturation, 1) · (max − 1)`, so no single factor dominates and
//! a deployment with nothing wrong scores 1. Every factor says why it counts.
//!
//! | factor | raw score | saturation → max |
//! |---|---|---|
//! | Policy Violations | Σ severity² of active alerts (Low 1 … Critical 4) | 50 → 4 |
//! | Suspicious Process Executions | processes outside a locked baseline: 2, then ×0.9 each | 10 → 4 |
//! | Image Vulnerabilities | Σ score²/10 per distinct CVE (Low 2, Moderate 5.5, Important 8, Critical 9.5) | 100 → 4 |
//! | Service Configuration | +1 each: writable volume, secrets, dangerous capabilities added, no capability dropped; ×2 privileged | 8 → 2 |
//! | Service Reachability | Σ per exposed port: external/route 3, node/host 2, internal 1 | 10 → 2 |
//! | Components Useful for Attackers | shells, package managers, download and network tools in images | 10 → 1.5 |
//! | Number of Components in Image | components past 10 | 10 (i.e. 20 components) → 1.5 |
//! | Image Freshness | days past 90 since the image was created | 180 (i.e. 270 days) → 1.5 |

use std::collections::BTreeSet;

use serde::Serialize;

use crate::deployment::{Deployment, EnvSource};
use crate::image_data::VulnSeverity;
use crate::policy::Severity;

/// One factor's contribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    pub name: &'static str,
    /// In `[1, max]`.
    pub score: f64,
    pub reasons: Vec<String>,
}

/// A deployment's risk: the product of its factors (1 when none applies).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Risk {
    pub score: f64,
    /// The factors that count (score above 1), in ACS's display order.
    pub factors: Vec<Factor>,
}

/// What risk reads besides the deployment itself.
#[derive(Debug, Clone, Default)]
pub struct RiskInputs {
    /// Severities of the deployment's active alerts.
    pub alert_severities: Vec<Severity>,
    /// Processes seen outside the deployment's locked baselines; `None` without runtime data.
    pub suspicious_processes: Option<Vec<String>>,
    /// Now, in unix seconds (image age).
    pub now: i64,
}

/// `1 + min(raw / saturation, 1) · (max − 1)`.
pub fn normalize(raw: f64, saturation: f64, max: f64) -> f64 {
    if raw <= 0.0 || saturation <= 0.0 {
        return 1.0;
    }
    1.0 + (raw / saturation).min(1.0) * (max - 1.0)
}

/// Tools an attacker inside a container reaches for.
const ATTACKER_COMPONENTS: [&str; 13] = [
    "apk", "apt", "bash", "curl", "dnf", "netcat", "nmap", "rpm", "sh", "tcsh", "telnet", "wget",
    "yum",
];
const DANGEROUS_CAPABILITIES: [&str; 4] = ["ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_MODULE"];

fn severity_weight(s: Severity) -> f64 {
    match s {
        Severity::Low => 1.0,
        Severity::Medium => 2.0,
        Severity::High => 3.0,
        Severity::Critical => 4.0,
        Severity::Unset => 0.0,
    }
}

fn vuln_score(s: VulnSeverity) -> Option<f64> {
    match s {
        VulnSeverity::Low => Some(2.0),
        VulnSeverity::Moderate => Some(5.5),
        VulnSeverity::Important => Some(8.0),
        VulnSeverity::Critical => Some(9.5),
        VulnSeverity::Unknown => None,
    }
}

fn factor(name: &'static str, score: f64, reasons: Vec<String>) -> Option<Factor> {
    (score > 1.0).then_some(Factor {
        name,
        score,
        reasons,
    })
}

fn policy_violations(severities: &[Severity]) -> Option<Factor> {
    let raw: f64 = severities.iter().map(|s| severity_weight(*s).powi(2)).sum();
    let mut counts: Vec<(Severity, usize)> = Vec::new();
    for s in severities {
        match counts.iter_mut().find(|(x, _)| x == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((*s, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.0));
    let reasons = counts
        .into_iter()
        .map(|(s, n)| {
            format!(
                "{n} {} severity policy violation(s)",
                s.short().to_lowercase()
            )
        })
        .collect();
    factor("Policy Violations", normalize(raw, 50.0, 4.0), reasons)
}

fn suspicious_processes(processes: &[String]) -> Option<Factor> {
    let mut raw = 0.0;
    let mut increment = 2.0;
    for _ in processes {
        raw += increment;
        increment *= 0.9;
    }
    let reasons = processes
        .iter()
        .take(10)
        .map(|p| format!("process '{p}' ran outside the locked baseline"))
        .collect();
    factor(
        "Suspicious Process Executions",
        normalize(raw, 10.0, 4.0),
        reasons,
    )
}

fn image_vulnerabilities(d: &Deployment) -> Option<Factor> {
    // Each image's distinct CVEs, each counted once per image.
    let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut raw = 0.0;
    let mut counts = [0usize; 4];
    for c in &d.containers {
        let Some(data) = c.image_data.as_deref() else {
            continue;
        };
        for v in data.components.iter().flat_map(|comp| &comp.vulns) {
            let Some(score) = vuln_score(v.severity) else {
                continue;
            };
            if seen.insert((c.image.full_name.as_str(), v.cve.as_str())) {
                raw += score * score / 10.0;
                counts[match v.severity {
                    VulnSeverity::Critical => 0,
                    VulnSeverity::Important => 1,
                    VulnSeverity::Moderate => 2,
                    _ => 3,
                }] += 1;
            }
        }
    }
    let reasons = ["critical", "important", "moderate", "low"]
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{n} {label} CVE(s) in the images"))
        .collect();
    factor("Image Vulnerabilities", normalize(raw, 100.0, 4.0), reasons)
}

fn service_configuration(d: &Deployment) -> Option<Factor> {
    let mut raw = 0.0;
    let mut reasons = Vec::new();
    let containers: Vec<_> = d.containers.iter().filter(|c| !c.is_init).collect();
    let writable: Vec<&str> = containers
        .iter()
        .flat_map(|c| &c.mounts)
        .filter(|m| !m.read_only)
        .map(|m| m.name.as_str())
        .collect();
    if !writable.is_empty() {
        raw += 1.0;
        reasons.push(format!("writable volume(s): {}", writable.join(", ")));
    }
    let secret_env = containers
        .iter()
        .flat_map(|c| &c.env)
        .any(|e| e.source == EnvSource::SecretKey);
    let secret_volume = containers
        .iter()
        .flat_map(|c| &c.mounts)
        .any(|m| m.volume_type.eq_ignore_ascii_case("secret"));
    if secret_env || secret_volume {
        raw += 1.0;
        reasons.push("secrets are used".to_string());
    }
    let added: BTreeSet<&str> = containers
        .iter()
        .flat_map(|c| &c.security_context.add_capabilities)
        .map(|c| c.trim_start_matches("CAP_"))
        .filter(|c| {
            DANGEROUS_CAPABILITIES
                .iter()
                .any(|d| d.eq_ignore_ascii_case(c))
        })
        .collect();
    if !added.is_empty() {
        raw += 1.0;
        reasons.push(format!(
            "capabilities added: {}",
            added.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let no_drop: Vec<&str> = containers
        .iter()
        .filter(|c| c.security_context.drop_capabilities.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    if !no_drop.is_empty() {
        raw += 1.0;
        reasons.push(format!("no capabilities dropped by {}", no_drop.join(", ")));
    }
    let privileged: Vec<&str> = containers
        .iter()
        .filter(|c| c.security_context.privileged)
        .map(|c| c.name.as_str())
        .collect();
    if !privileged.is_empty() {
        raw *= 2.0;
        reasons.push(format!(
            "privileged container(s): {}",
            privileged.join(", ")
        ));
    }
    factor("Service Configuration", normalize(raw, 8.0, 2.0), reasons)
}

fn service_reachability(d: &Deployment) -> Option<Factor> {
    let Some(ctx) = &d.cluster else {
        return None;
    };
    let mut raw = 0.0;
    let mut reasons = Vec::new();
    for e in &ctx.exposures {
        let (weight, how) = match e.level.as_str() {
            "EXTERNAL" => (3.0, "exposed outside the cluster"),
            "ROUTE" => (3.0, "exposed by a route"),
            "NODE" => (2.0, "exposed on node ports"),
            "HOST" => (2.0, "exposed on the host's network"),
            "INTERNAL" => (1.0, "reachable inside the cluster"),
            _ => continue,
        };
        raw += weight;
        reasons.push(format!(
            "port {}/{} {how}{}",
            e.container_port,
            e.protocol,
            if e.service_name.is_empty() {
                String::new()
            } else {
                format!(" (service {})", e.service_name)
            }
        ));
    }
    factor("Service Reachability", normalize(raw, 10.0, 2.0), reasons)
}

fn attacker_components(d: &Deployment) -> Option<Factor> {
    let found: BTreeSet<&str> = d
        .containers
        .iter()
        .filter_map(|c| c.image_data.as_deref())
        .flat_map(|data| &data.components)
        .map(|c| c.name.as_str())
        .filter(|n| ATTACKER_COMPONENTS.contains(n))
        .collect();
    let raw = found.len() as f64;
    let reasons = if found.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "the images contain {}",
            found.into_iter().collect::<Vec<_>>().join(", ")
        )]
    };
    factor(
        "Components Useful for Attackers",
        normalize(raw, 10.0, 1.5),
        reasons,
    )
}

fn component_count(d: &Deployment) -> Option<Factor> {
    let most = d
        .containers
        .iter()
        .filter_map(|c| c.image_data.as_deref())
        .map(|data| data.components.len())
        .max()?;
    let raw = most.saturating_sub(10) as f64;
    factor(
        "Number of Components in Image",
        normalize(raw, 10.0, 1.5),
        vec![format!("an image holds {most} components")],
    )
}

fn image_freshness(d: &Deployment, now: i64) -> Option<Factor> {
    let oldest = d
        .containers
        .iter()
        .filter_map(|c| c.image_data.as_deref()?.created)
        .min()?;
    let days = (now - oldest).max(0) / 86_400;
    let raw = (days - 90).max(0) as f64;
    factor(
        "Image Freshness",
        normalize(raw, 180.0, 1.5),
        vec![format!("the oldest image was created {days} days ago")],
    )
}

/// The risk of `deployment` (with its image data attached, when scanned).
pub fn score(deployment: &Deployment, inputs: &RiskInputs) -> Risk {
    let factors: Vec<Factor> = [
        policy_violations(&inputs.alert_severities),
        inputs
            .suspicious_processes
            .as_deref()
            .and_then(suspicious_processes),
        image_vulnerabilities(deployment),
        service_configuration(deployment),
        service_reachability(deployment),
        attacker_components(deployment),
        component_count(deployment),
        image_freshness(deployment, inputs.now),
    ]
    .into_iter()
    .flatten()
    .collect();
    Risk {
        score: factors.iter().map(|f| f.score).product(),
        factors,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::deployment::{ClusterContext, PortExposure};
    use crate::image_data::{ImageComponent, ImageData, ImageVuln};

    fn deployment(yaml: &str) -> Deployment {
        let parsed = crate::manifest::parse_text(yaml);
        match &parsed.objects[0].body {
            crate::manifest::ObjectBody::Workload(w) => Deployment::from_workload(w, "shop"),
            other => panic!("not a workload: {other:?}"),
        }
    }

    /// A hardened workload: read-only mounts none, capabilities dropped, no secrets.
    const HARDENED: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: app:1\n    securityContext: {capabilities: {drop: [ALL]}}\n";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn nothing_wrong_scores_one() {
        let r = score(&deployment(HARDENED), &RiskInputs::default());
        assert_eq!(r.score, 1.0);
        assert!(r.factors.is_empty());
    }

    #[test]
    fn normalization_saturates_at_the_maximum() {
        assert!(close(normalize(25.0, 50.0, 4.0), 2.5));
        assert!(close(normalize(500.0, 50.0, 4.0), 4.0));
        assert!(close(normalize(0.0, 50.0, 4.0), 1.0));
    }

    #[test]
    fn policy_violations_weigh_severity_squared() {
        // 2 critical (16 each) + 1 medium (4) = 36 of 50 → 1 + 0.72·3 = 3.16.
        let inputs = RiskInputs {
            alert_severities: vec![Severity::Critical, Severity::Medium, Severity::Critical],
            ..RiskInputs::default()
        };
        let r = score(&deployment(HARDENED), &inputs);
        assert!(close(r.score, 3.16), "{r:?}");
        assert_eq!(
            r.factors[0].reasons,
            [
                "2 critical severity policy violation(s)",
                "1 medium severity policy violation(s)"
            ]
        );
    }

    #[test]
    fn suspicious_processes_add_decreasing_increments() {
        // 2 + 1.8 + 1.62 = 5.42 of 10 → 1 + 0.542·3 = 2.626.
        let inputs = RiskInputs {
            suspicious_processes: Some(vec![
                "/bin/sh".into(),
                "/usr/bin/curl".into(),
                "/bin/nc".into(),
            ]),
            ..RiskInputs::default()
        };
        let r = score(&deployment(HARDENED), &inputs);
        assert!(close(r.score, 2.626), "{r:?}");
        // No runtime data: the factor is absent, not 1.
        assert!(
            score(&deployment(HARDENED), &RiskInputs::default())
                .factors
                .is_empty()
        );
    }

    fn with_image(mut d: Deployment, data: ImageData) -> Deployment {
        let data = Arc::new(data);
        for c in &mut d.containers {
            c.image_data = Some(data.clone());
        }
        d
    }

    fn vuln(cve: &str, severity: VulnSeverity) -> ImageVuln {
        ImageVuln {
            cve: cve.into(),
            severity,
            ..ImageVuln::default()
        }
    }

    #[test]
    fn image_vulnerabilities_count_each_cve_once_by_its_rating() {
        // Critical 9.5²/10 = 9.025, important 8²/10 = 6.4; the duplicate and the unknown one
        // do not count: 15.425 of 100 → 1 + 0.15425·3 = 1.46275.
        let data = ImageData {
            scanned: true,
            components: vec![
                ImageComponent {
                    name: "openssl".into(),
                    version: "3.0.0".into(),
                    vulns: vec![
                        vuln("CVE-1", VulnSeverity::Critical),
                        vuln("CVE-2", VulnSeverity::Important),
                    ],
                },
                ImageComponent {
                    name: "libssl".into(),
                    version: "3.0.0".into(),
                    vulns: vec![
                        vuln("CVE-1", VulnSeverity::Critical),
                        vuln("CVE-3", VulnSeverity::Unknown),
                    ],
                },
            ],
            ..ImageData::default()
        };
        let r = score(
            &with_image(deployment(HARDENED), data),
            &RiskInputs::default(),
        );
        let f = r
            .factors
            .iter()
            .find(|f| f.name == "Image Vulnerabilities")
            .expect("factor");
        assert!(close(f.score, 1.46275), "{f:?}");
        assert_eq!(
            f.reasons,
            [
                "1 critical CVE(s) in the images",
                "1 important CVE(s) in the images"
            ]
        );
    }

    #[test]
    fn service_configuration_counts_and_doubles_for_privileged() {
        // Writable volume, secret env, SYS_ADMIN added, nothing dropped = 4, privileged ×2 = 8
        // of 8 → 2.
        let d = deployment(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: app:1\n    securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}\n    env: [{name: T, valueFrom: {secretKeyRef: {name: s, key: t}}}]\n    volumeMounts: [{name: data, mountPath: /data}]\n  volumes: [{name: data, emptyDir: {}}]\n",
        );
        let r = score(&d, &RiskInputs::default());
        let f = r
            .factors
            .iter()
            .find(|f| f.name == "Service Configuration")
            .expect("factor");
        assert!(close(f.score, 2.0), "{f:?}");
        assert_eq!(f.reasons.len(), 5, "{:?}", f.reasons);
        // Only "no capabilities dropped": 1 of 8 → 1.125.
        let plain = deployment(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: app, image: 'app:1'}\n",
        );
        let f = score(&plain, &RiskInputs::default()).factors;
        assert!(close(f[0].score, 1.125), "{f:?}");
    }

    #[test]
    fn reachability_weighs_external_over_internal() {
        // External 3 + node 2 + internal 1 = 6 of 10 → 1.6.
        let mut d = deployment(HARDENED);
        let exposure = |port, level: &str| PortExposure {
            container: "app".into(),
            container_port: port,
            protocol: "TCP".into(),
            level: level.into(),
            service_name: "web".into(),
            node_port: 0,
        };
        d.cluster = Some(ClusterContext {
            exposures: vec![
                exposure(443, "EXTERNAL"),
                exposure(80, "NODE"),
                exposure(9090, "INTERNAL"),
            ],
            ..ClusterContext::default()
        });
        let r = score(&d, &RiskInputs::default());
        assert!(close(r.score, 1.6), "{r:?}");
        assert_eq!(
            r.factors[0].reasons[0],
            "port 443/TCP exposed outside the cluster (service web)"
        );
    }

    #[test]
    fn image_factors_components_size_and_age() {
        // bash, curl, apt: 3 of 10 → 1.15; 25 components: 15 past 10, saturated → 1.5;
        // created 180 days ago: 90 past 90 of 180 → 1.25. Product 1.15 · 1.5 · 1.25 = 2.15625.
        let now = 1_800_000_000;
        let mut components: Vec<ImageComponent> = ["bash", "curl", "apt"]
            .iter()
            .map(|n| ImageComponent {
                name: (*n).into(),
                version: "1".into(),
                vulns: vec![],
            })
            .collect();
        for i in 0..22 {
            components.push(ImageComponent {
                name: format!("lib{i}"),
                version: "1".into(),
                vulns: vec![],
            });
        }
        let data = ImageData {
            scanned: true,
            created: Some(now - 180 * 86_400),
            components,
            ..ImageData::default()
        };
        let r = score(
            &with_image(deployment(HARDENED), data),
            &RiskInputs {
                now,
                ..RiskInputs::default()
            },
        );
        let names: Vec<&str> = r.factors.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "Components Useful for Attackers",
                "Number of Components in Image",
                "Image Freshness"
            ]
        );
        assert!(close(r.score, 2.15625), "{r:?}");
        assert_eq!(r.factors[0].reasons, ["the images contain apt, bash, curl"]);
    }
}
