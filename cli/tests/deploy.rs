//! `deploy/` against the code it runs: every container's command line is one the `rampart`
//! binary accepts (its environment mapped to the flags that read it); the Secrets the manifests
//! mount are the ones `init-bundle generate --output-secrets` writes, holding the files each
//! role reads from its `--bundle-dir`; the endpoints the roles dial are the Services that
//! exist, under the names their certificates carry; the kustomization lists every manifest;
//! and Central's and the Collector's manifests pass Rampart's own default policies (the
//! Collector violating only what its manifest says it must).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use rampart_central::pki::{CA_FILE, CertificateAuthority, Service};
use serde_json::Value;

const IMAGE: &str = "ghcr.io/rampart-sec/rampart:0.1.0";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every YAML file under `deploy/`, relative to it, with its documents.
fn manifests() -> BTreeMap<String, Vec<Value>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<Value>>) {
        for entry in std::fs::read_dir(dir).expect("deploy dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let name = path
                    .strip_prefix(root)
                    .expect("under deploy")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("read");
                let docs = rampart_policy::yaml::split_documents(&text)
                    .into_iter()
                    .map(|d| rampart_policy::yaml::parse_document(d).expect("yaml"))
                    .filter(|d| !d.is_null())
                    .collect();
                out.insert(name, docs);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&deploy_dir(), &deploy_dir(), &mut out);
    out
}

/// Each environment variable a flag reads, and the flag (over every subcommand).
fn env_flags() -> BTreeMap<String, String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, String>) {
        for arg in cmd.get_arguments() {
            if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
                out.insert(env.to_string_lossy().into_owned(), format!("--{long}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&rampart_cli::Cli::command(), &mut out);
    out
}

/// A workload's pod template, if the document is a workload.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" => Some(&doc["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// One container as the test reads it: its command line (environment as flags) and mounts.
struct Container {
    file: String,
    args: Vec<String>,
    /// mount path → the Secret mounted there.
    secret_mounts: BTreeMap<String, String>,
}

impl Container {
    fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("--{name}=");
        self.args.iter().find_map(|a| a.strip_prefix(&prefix))
    }

    fn role(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or_default()
    }
}

fn containers(manifests: &BTreeMap<String, Vec<Value>>) -> Vec<Container> {
    let env_flags = env_flags();
    let mut out = Vec::new();
    for (file, docs) in manifests {
        for spec in docs.iter().filter_map(pod_spec) {
            let volumes: BTreeMap<&str, &str> = spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| Some((v["name"].as_str()?, v["secret"]["secretName"].as_str()?)))
                .collect();
            for c in spec["containers"].as_array().expect("containers") {
                assert_eq!(c["image"], IMAGE, "{file}: every role runs the one image");
                let mut args: Vec<String> = c["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(|a| a.as_str().expect("string arg").to_string())
                    .collect();
                for e in c["env"].as_array().into_iter().flatten() {
                    let name = e["name"].as_str().expect("env name");
                    let flag = env_flags
                        .get(name)
                        .unwrap_or_else(|| panic!("{file}: no flag reads ${name}"));
                    // A value from the downward API is only known in the cluster.
                    let value = e["value"].as_str().unwrap_or("from-the-downward-api");
                    args.push(format!("{flag}={value}"));
                }
                let secret_mounts = c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        let secret = volumes.get(m["name"].as_str()?)?;
                        Some((m["mountPath"].as_str()?.to_string(), secret.to_string()))
                    })
                    .collect();
                out.push(Container {
                    file: file.clone(),
                    args,
                    secret_mounts,
                });
            }
        }
    }
    out
}

/// The Secrets an init bundle's `--output-secrets` writes: name → its keys.
fn bundle_secrets() -> BTreeMap<String, BTreeSet<String>> {
    let now = time::OffsetDateTime::now_utc();
    let ca = CertificateAuthority::generate(now).expect("ca");
    let bundle = ca.issue_bundle("prod", now).expect("bundle");
    let yaml = bundle.to_secrets_yaml("rampart");
    rampart_policy::yaml::split_documents(&yaml)
        .into_iter()
        .map(|d| rampart_policy::yaml::parse_document(d).expect("secret yaml"))
        .filter(|d| !d.is_null())
        .map(|d| {
            assert_eq!(d["metadata"]["namespace"], "rampart");
            let keys = d["stringData"]
                .as_object()
                .expect("stringData")
                .keys()
                .cloned()
                .collect();
            (
                d["metadata"]["name"].as_str().expect("name").to_string(),
                keys,
            )
        })
        .collect()
}

fn service_of(role: &str) -> Option<Service> {
    match role {
        "sensor" => Some(Service::Sensor),
        "collector" => Some(Service::Collector),
        "admission-controller" => Some(Service::AdmissionControl),
        _ => None,
    }
}

#[test]
fn every_container_runs_a_command_line_the_binary_accepts() {
    let containers = containers(&manifests());
    let roles: BTreeSet<&str> = containers.iter().map(Container::role).collect();
    assert_eq!(
        roles,
        BTreeSet::from(["admission-controller", "central", "collector", "sensor"]),
        "every role has its manifest"
    );
    for c in &containers {
        let line = std::iter::once("rampart".to_string()).chain(c.args.iter().cloned());
        if let Err(e) = rampart_cli::Cli::try_parse_from(line) {
            panic!(
                "{}: `rampart {}` is refused:\n{e}",
                c.file,
                c.args.join(" ")
            );
        }
    }
}

#[test]
fn the_mounted_bundles_are_the_init_bundles_secrets_holding_what_each_role_reads() {
    let secrets = bundle_secrets();
    let mut mounted = BTreeSet::new();
    for c in containers(&manifests()) {
        let Some(service) = service_of(c.role()) else {
            continue;
        };
        let dir = c
            .flag("bundle-dir")
            .unwrap_or_else(|| panic!("{}: {} has no --bundle-dir", c.file, c.role()));
        let secret = c
            .secret_mounts
            .get(dir)
            .unwrap_or_else(|| panic!("{}: nothing is mounted at {dir}", c.file));
        assert_eq!(secret, service.secret_name(), "{}", c.file);
        let keys = secrets
            .get(secret)
            .unwrap_or_else(|| panic!("{}: the init bundle writes no Secret {secret}", c.file));
        assert_eq!(
            keys,
            &BTreeSet::from([
                CA_FILE.to_string(),
                service.cert_file().to_string(),
                service.key_file().to_string()
            ]),
            "{}",
            c.file
        );
        mounted.insert(secret.clone());
    }
    assert_eq!(
        mounted,
        secrets.keys().cloned().collect(),
        "every Secret of the bundle is used"
    );
}

#[test]
fn every_other_secret_is_made_by_cert_manager_or_is_centrals_admin_password() {
    let manifests = manifests();
    let bundle = bundle_secrets();
    let certificates: BTreeSet<&str> = manifests
        .values()
        .flatten()
        .filter(|d| d["kind"] == "Certificate")
        .filter_map(|d| d["spec"]["secretName"].as_str())
        .collect();
    let mut others = BTreeSet::new();
    for c in containers(&manifests) {
        for secret in c.secret_mounts.values() {
            if !bundle.contains_key(secret) && !certificates.contains(secret.as_str()) {
                others.insert((c.role().to_string(), secret.clone()));
            }
        }
    }
    assert_eq!(
        others,
        BTreeSet::from([("central".to_string(), "rampart-central-admin".to_string())])
    );
    // Central reads its admin password from that Secret's mount.
    let central = containers(&manifests)
        .into_iter()
        .find(|c| c.role() == "central")
        .expect("central");
    let file = central
        .flag("admin-password-file")
        .expect("--admin-password-file");
    let (dir, _) = file.rsplit_once('/').expect("a path");
    assert_eq!(
        central.secret_mounts.get(dir).map(String::as_str),
        Some("rampart-central-admin")
    );
}

/// `https://HOST:PORT` → (host, port).
fn host_port(url: &str) -> (String, u16) {
    let rest = url.strip_prefix("https://").expect("https URL");
    let (host, port) = rest.rsplit_once(':').expect("a port");
    (host.to_string(), port.parse().expect("port"))
}

#[test]
fn the_roles_dial_services_that_exist_under_the_names_their_certificates_carry() {
    let manifests = manifests();
    // Service name.namespace.svc → its ports.
    let services: BTreeMap<String, BTreeSet<u16>> = manifests
        .values()
        .flatten()
        .filter(|d| d["kind"] == "Service")
        .map(|d| {
            let name = format!(
                "{}.{}.svc",
                d["metadata"]["name"].as_str().expect("name"),
                d["metadata"]["namespace"].as_str().expect("namespace")
            );
            let ports = d["spec"]["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .map(|p| u16::try_from(p["port"].as_u64().expect("port")).expect("u16"))
                .collect();
            (name, ports)
        })
        .collect();
    let containers = containers(&manifests);
    let role = |r: &str| containers.iter().find(|c| c.role() == r).expect("role");
    let dials = [
        ("sensor", "central"),
        ("collector", "sensor"),
        ("admission-controller", "sensor"),
    ];
    for (from, flag) in dials {
        let url = role(from)
            .flag(flag)
            .unwrap_or_else(|| panic!("{from} has no --{flag}"));
        let (host, port) = host_port(url);
        let ports = services
            .get(&host)
            .unwrap_or_else(|| panic!("{from} dials {host}, which no Service is"));
        assert!(ports.contains(&port), "{from} dials {url}: {ports:?}");
    }
    // The Sensor's certificate is issued for sensor.rampart.svc (the Collectors' and admission
    // controllers' default server name); Central's serving certificate covers its Service.
    let now = time::OffsetDateTime::now_utc();
    let bundle = CertificateAuthority::generate(now)
        .expect("ca")
        .issue_bundle("prod", now)
        .expect("bundle");
    let sensor_cert = bundle
        .certs
        .iter()
        .find(|c| c.service == Service::Sensor)
        .expect("sensor certificate");
    let der = pem_der(&sensor_cert.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let names: Vec<String> = cert
        .subject_alternative_name()
        .expect("san")
        .expect("san present")
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        names.contains(&"sensor.rampart.svc".to_string()),
        "{names:?}"
    );
    let server_names = role("central").flag("server-name").expect("--server-name");
    assert!(
        server_names.split(',').any(|n| n == "central.rampart.svc"),
        "{server_names}"
    );
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64")
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let manifests = manifests();
    let kustomization = &manifests["kustomization.yaml"][0];
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("path").to_string())
        .collect();
    let files: BTreeSet<String> = manifests
        .keys()
        .filter(|f| *f != "kustomization.yaml")
        .cloned()
        .collect();
    assert_eq!(listed, files);
    let image = &kustomization["images"][0];
    assert_eq!(
        format!(
            "{}:{}",
            image["name"].as_str().expect("name"),
            image["newTag"].as_str().expect("tag")
        ),
        IMAGE
    );
}

#[test]
fn central_passes_the_default_policies_and_the_collector_violates_only_what_it_must() {
    let read = |f: &str| std::fs::read_to_string(deploy_dir().join(f)).expect("read");
    let (workloads, findings) = rampart_test_support::default_policy_findings(
        "central.yaml",
        &read("central/central.yaml"),
    );
    assert_eq!(workloads, 1, "the StatefulSet");
    assert!(findings.is_empty(), "{findings:#?}");

    let (_, findings) = rampart_test_support::default_policy_findings(
        "collector.yaml",
        &read("collector/collector.yaml"),
    );
    let policies: BTreeSet<&str> = findings.iter().map(|(p, _)| p.as_str()).collect();
    // What the manifest's header names, one by one: the host's PID and network namespaces
    // (the kernel's process events), its /proc (two policies), and root (other users' /proc
    // entries).
    assert_eq!(
        policies,
        BTreeSet::from([
            "Container may run as root",
            "Docker CIS 5.15: Ensure that the host's process namespace is not shared",
            "Docker CIS 5.9 and 5.20: Ensure that the host's network namespace is not shared",
            "Mounting Sensitive Host Directories",
            "Sensitive host path mounted",
        ]),
        "{findings:#?}"
    );
}

#[test]
fn the_containerfile_builds_the_binary_the_manifests_run_as_their_user() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Containerfile"))
            .expect("Containerfile");
    // The image's binary is the profile-guided build's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = std::fs::read_to_string(root.join("scripts/pgo-build")).expect("pgo-build");
    assert!(
        text.contains("scripts/pgo-build"),
        "builds with the PGO script"
    );
    assert!(
        script.contains("--bin rampart"),
        "the script builds the rampart binary"
    );
    assert!(
        script.contains(r#"CARGO_TARGET_DIR="$root/target/pgo""#)
            && text.contains("COPY --from=build /src/target/pgo/release/rampart /usr/local/bin/"),
        "the image takes the binary the script built"
    );
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/rampart"]"#));
    assert!(text.contains("USER 65532:65532"));
    // Every non-root role's manifest runs as that user; the Collector alone as root.
    for (file, docs) in manifests() {
        for spec in docs.iter().filter_map(pod_spec) {
            let pod_user = spec["securityContext"]["runAsUser"].as_u64();
            for c in spec["containers"].as_array().expect("containers") {
                let user = c["securityContext"]["runAsUser"].as_u64().or(pod_user);
                let expected = if file.starts_with("collector/") {
                    0
                } else {
                    65532
                };
                assert_eq!(user, Some(expected), "{file}");
            }
        }
    }
}
