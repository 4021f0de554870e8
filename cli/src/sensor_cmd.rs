//! `rampart sensor`: watch a cluster and stream it to Central.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::daemon::{read_bundle_file, shutdown_signal};
use clap::Args;
use rampart_central::pki::{CA_FILE, Service};

#[derive(Debug, Args)]
pub struct SensorArgs {
    /// Central's Sensor endpoint (mTLS gRPC).
    #[arg(
        long,
        env = "RAMPART_CENTRAL",
        default_value = "https://localhost:8444"
    )]
    pub central: String,
    /// The name Central's certificate carries; defaults to the endpoint's host.
    #[arg(long, env = "RAMPART_CENTRAL_SERVER_NAME")]
    pub server_name: Option<String>,
    /// The cluster's init bundle directory (`rampart central init-bundle generate NAME
    /// --output-dir DIR`): ca.pem, sensor.pem, sensor-key.pem.
    #[arg(
        long,
        env = "RAMPART_BUNDLE_DIR",
        value_name = "DIR",
        required_unless_present = "print_rbac"
    )]
    pub bundle_dir: Option<PathBuf>,
    /// The cluster the Sensor speaks for: the one its bundle was issued for, which its
    /// certificate names (the default); given, it must be that one.
    #[arg(long, env = "RAMPART_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Kubeconfig to watch; without it, the in-cluster service account or $KUBECONFIG.
    #[arg(long, env = "RAMPART_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Where the nodes' Collectors connect (mTLS with the bundle's certificates).
    #[arg(
        long,
        env = "RAMPART_COLLECTOR_LISTEN",
        default_value = "0.0.0.0:8443",
        value_name = "ADDR"
    )]
    pub collector_listen: std::net::SocketAddr,
    /// Do not accept Collectors.
    #[arg(long)]
    pub no_collectors: bool,
    /// Namespaces never enforced in (comma-separated; replaces the default list): workloads
    /// there are not scaled down nor their pods killed, and their violations still alert. The
    /// default is the admission controller's excluded namespaces.
    #[arg(
        long,
        env = "RAMPART_EXEMPT_NAMESPACES",
        value_delimiter = ',',
        default_values = rampart_policy::SYSTEM_NAMESPACES
    )]
    pub exempt_namespaces: Vec<String>,
    /// Plain-HTTP /healthz, /readyz and /metrics (Prometheus) for probes and scraping.
    #[arg(
        long,
        env = "RAMPART_HEALTH_LISTEN",
        default_value = "0.0.0.0:9090",
        value_name = "ADDR"
    )]
    pub health_listen: std::net::SocketAddr,
    /// Print the ServiceAccount, ClusterRole and ClusterRoleBinding the Sensor needs (for the
    /// Sensor in NAMESPACE, `rampart` by default) and exit: list and watch on what it watches,
    /// patch on workloads and delete on pods for enforcement, nothing more.
    #[arg(
        long,
        value_name = "NAMESPACE",
        num_args = 0..=1,
        default_missing_value = rampart_sensor::rbac::NAMESPACE
    )]
    pub print_rbac: Option<String>,
}

/// The cluster a Sensor certificate was issued for, checked against the one given.
fn bundle_cluster(cert_pem: &str, given: Option<&str>) -> anyhow::Result<String> {
    let der = rampart_central::pki::pem_to_der(cert_pem)?;
    let identity = rampart_central::pki::identity_of(&der)?;
    anyhow::ensure!(
        identity.service == Service::Sensor,
        "this is a {} certificate, not the Sensor's",
        identity.service.as_str()
    );
    match given {
        Some(name) if name != identity.cluster => anyhow::bail!(
            "the bundle was issued for cluster '{}', not '{name}' (leave --cluster-name out to \
             use the bundle's)",
            identity.cluster
        ),
        _ => Ok(identity.cluster),
    }
}

pub fn run(args: SensorArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if let Some(namespace) = &args.print_rbac {
        out.write_all(rampart_sensor::rbac::render(namespace).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(bundle_dir) = args.bundle_dir else {
        anyhow::bail!("--bundle-dir is required");
    };
    let cert_pem = read_bundle_file(&bundle_dir, Service::Sensor.cert_file())?;
    let cluster_name = bundle_cluster(&cert_pem, args.cluster_name.as_deref())
        .with_context(|| format!("{}", bundle_dir.join(Service::Sensor.cert_file()).display()))?;
    let host = args
        .central
        .split("://")
        .nth(1)
        .unwrap_or(&args.central)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    let config = rampart_sensor::Config {
        central: rampart_sensor::CentralConfig {
            endpoint: args.central.clone(),
            server_name: args.server_name.unwrap_or(host),
            ca_pem: read_bundle_file(&bundle_dir, CA_FILE)?,
            cert_pem,
            key_pem: read_bundle_file(&bundle_dir, Service::Sensor.key_file())?,
            cluster_name: cluster_name.clone(),
        },
        kubeconfig: args.kubeconfig,
        collector_listen: (!args.no_collectors).then_some(args.collector_listen),
        health_listen: Some(args.health_listen),
        exempt_namespaces: args.exempt_namespaces,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let sensor = rampart_sensor::start(config).await?;
        let _ = writeln!(
            out,
            "Rampart Sensor for cluster {} streaming to {}",
            cluster_name, args.central
        );
        if let Some(addr) = sensor.collector_addr {
            let _ = writeln!(out, "collector endpoint: {addr}");
        }
        if let Some(addr) = sensor.health_addr {
            let _ = writeln!(out, "health and metrics: http://{addr}/readyz, /metrics");
        }
        let _ = out.flush();
        shutdown_signal().await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_the_bundles_and_another_one_given_is_refused() {
        let now = time::OffsetDateTime::now_utc();
        let ca = rampart_central::pki::CertificateAuthority::generate(now).expect("ca");
        let bundle = ca.issue_bundle("prod-eu", now).expect("bundle");
        let cert = |service: Service| {
            &bundle
                .certs
                .iter()
                .find(|c| c.service == service)
                .expect("certificate")
                .cert_pem
        };
        let sensor = cert(Service::Sensor);
        assert_eq!(bundle_cluster(sensor, None).expect("default"), "prod-eu");
        assert_eq!(
            bundle_cluster(sensor, Some("prod-eu")).expect("same"),
            "prod-eu"
        );
        let err = bundle_cluster(sensor, Some("prod")).expect_err("another cluster");
        assert!(
            err.to_string()
                .contains("issued for cluster 'prod-eu', not 'prod'"),
            "{err}"
        );
        let err = bundle_cluster(cert(Service::Collector), None).expect_err("not the Sensor's");
        assert!(err.to_string().contains("collector certificate"), "{err}");
        assert!(bundle_cluster("not a certificate", None).is_err());
    }
}
