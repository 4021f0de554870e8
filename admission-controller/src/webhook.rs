//! The `ValidatingWebhookConfiguration` that routes the API server's requests here, generated
//! from the same settings the controller runs with (failure mode, excluded namespaces, the
//! kinds `decide` understands). `deploy/admission-controller/webhook.yaml` is this output with
//! the defaults; a test fails when it drifts.

use serde_json::{Value, json};

use crate::decide::FailureMode;

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Where the controller's Service lives.
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// The CA that signed the serving certificate (PEM). `None`: left to cert-manager's CA
    /// injector, through its annotation.
    pub ca_bundle_pem: Option<String>,
    pub failure_mode: FailureMode,
    /// The API server's wait for an answer (1-30 s).
    pub timeout_seconds: u32,
    pub excluded_namespaces: Vec<String>,
    /// Also register `/events` for exec, attach and port-forward.
    pub events: bool,
    /// Also validate OpenShift DeploymentConfigs.
    pub openshift: bool,
}

impl Default for WebhookOptions {
    fn default() -> WebhookOptions {
        WebhookOptions {
            namespace: "rampart".into(),
            service: "rampart-admission-controller".into(),
            port: 443,
            ca_bundle_pem: None,
            failure_mode: FailureMode::Open,
            timeout_seconds: 10,
            excluded_namespaces: crate::Settings::default().excluded_namespaces,
            events: true,
            openshift: false,
        }
    }
}

fn rule(group: &str, resources: &[&str], operations: &[&str]) -> Value {
    json!({
        "apiGroups": [group],
        "apiVersions": ["*"],
        "operations": operations,
        "resources": resources,
        "scope": "Namespaced",
    })
}

/// The configuration as a JSON value.
pub fn configuration(o: &WebhookOptions) -> Value {
    use base64::Engine as _;
    let failure_policy = match o.failure_mode {
        FailureMode::Open => "Ignore",
        FailureMode::Closed => "Fail",
    };
    let client_config = |path: &str| {
        let mut c = json!({"service": {
            "namespace": o.namespace, "name": o.service, "path": path, "port": o.port,
        }});
        if let Some(pem) = &o.ca_bundle_pem {
            c["caBundle"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
        }
        c
    };
    let namespace_selector = json!({"matchExpressions": [{
        "key": "kubernetes.io/metadata.name",
        "operator": "NotIn",
        "values": o.excluded_namespaces,
    }]});
    let write = ["CREATE", "UPDATE"];
    let mut rules = vec![
        rule(
            "apps",
            &[
                "deployments",
                "deployments/scale",
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "replicasets",
                "replicasets/scale",
            ],
            &write,
        ),
        rule(
            "",
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
            ],
            &write,
        ),
        rule("batch", &["jobs", "cronjobs"], &write),
        // `kubectl debug`: a container added to a running pod.
        rule("", &["pods/ephemeralcontainers"], &["UPDATE"]),
    ];
    if o.openshift {
        rules.push(rule(
            "apps.openshift.io",
            &["deploymentconfigs", "deploymentconfigs/scale"],
            &write,
        ));
    }
    let common = |name: &str, path: &str, rules: Value| {
        json!({
            "name": name,
            "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": client_config(path),
            "failurePolicy": failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": namespace_selector,
            "rules": rules,
            "sideEffects": "NoneOnDryRun",
            "timeoutSeconds": o.timeout_seconds,
        })
    };
    let mut webhooks = vec![common("policyeval.rampart.io", "/validate", json!(rules))];
    if o.events {
        webhooks.push(common(
            "k8sevents.rampart.io",
            "/events",
            json!([rule(
                "",
                &["pods/exec", "pods/attach", "pods/portforward"],
                &["CONNECT"]
            )]),
        ));
    }
    let mut metadata = json!({
        "name": "rampart",
        "labels": {
            "app.kubernetes.io/name": "rampart",
            "app.kubernetes.io/component": "admission-controller",
        },
    });
    if o.ca_bundle_pem.is_none() {
        metadata["annotations"] = json!({
            "cert-manager.io/inject-ca-from": format!("{}/{}", o.namespace, o.service),
        });
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": webhooks,
    })
}

/// The configuration as YAML, with a header saying where it comes from.
pub fn render(o: &WebhookOptions) -> String {
    let mut out = String::from(
        "# Generated by `rampart admission-controller webhook`; do not edit (a test compares it\n\
         # with the code). Without --ca-file, cert-manager's CA injector fills caBundle.\n",
    );
    out.push_str(&rampart_policy::yaml::to_block_yaml(&configuration(o)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_configuration_matches_the_code() {
        let committed = include_str!("../../deploy/admission-controller/webhook.yaml");
        assert!(
            committed == render(&WebhookOptions::default()),
            "deploy/admission-controller/webhook.yaml drifted from the code: regenerate it with\n  cargo run -p rampart-cli -- admission-controller webhook > deploy/admission-controller/webhook.yaml"
        );
    }

    /// Rampart's own manifest passes Rampart's default policies, enabled or not, and its
    /// service account and webhook port line up with the webhook configuration.
    #[test]
    fn the_controller_manifest_passes_every_default_policy() {
        let text = include_str!("../../deploy/admission-controller/deployment.yaml");
        let (workloads, findings) =
            rampart_test_support::default_policy_findings("deployment.yaml", text);
        assert_eq!(workloads, 1, "one workload");
        assert!(findings.is_empty(), "{findings:?}");
        let webhook = configuration(&WebhookOptions::default());
        let service = &webhook["webhooks"][0]["clientConfig"]["service"];
        assert!(text.contains(&format!(
            "kind: Service\nmetadata:\n  name: {}\n  namespace: {}",
            service["name"].as_str().expect("name"),
            service["namespace"].as_str().expect("namespace")
        )));
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_configuration() {
        let o = WebhookOptions {
            ca_bundle_pem: Some(
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            ),
            failure_mode: FailureMode::Closed,
            openshift: true,
            ..WebhookOptions::default()
        };
        let text = render(&o);
        let documents = rampart_policy::yaml::split_documents(&text);
        let parsed = rampart_policy::yaml::parse_document(
            documents.into_iter().next().expect("one document"),
        )
        .expect("valid YAML");
        assert_eq!(parsed, configuration(&o));
        let hooks = parsed["webhooks"].as_array().expect("webhooks");
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0]["failurePolicy"], "Fail");
        assert_eq!(hooks[0]["sideEffects"], "NoneOnDryRun");
        assert!(hooks[0]["clientConfig"]["caBundle"].is_string());
        assert_eq!(hooks[1]["rules"][0]["operations"][0], "CONNECT");
        let resources = hooks[0]["rules"].to_string();
        for r in [
            "deployments/scale",
            "cronjobs",
            "replicationcontrollers",
            "deploymentconfigs",
            "pods/ephemeralcontainers",
        ] {
            assert!(resources.contains(r), "{r} missing");
        }
    }
}
