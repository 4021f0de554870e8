//! `rampart up`: everything on this machine with embedded defaults — Central, and a Sensor for
//! a cluster: the demo cluster (`--demo`, served by the built-in test API server) or a real one
//! (`--kubeconfig`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use rampart_central::pki::{CA_FILE, Service, persist};

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub central: crate::central_cmd::StartArgs,
    /// Also start a demo Kubernetes cluster (several teams' namespaces, good and bad workloads)
    /// and a Sensor watching it.
    #[arg(long, conflicts_with = "kubeconfig")]
    pub demo: bool,
    /// Watch this cluster with a Sensor (its kubeconfig).
    #[arg(long, env = "RAMPART_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The name the watched cluster gets in Central.
    #[arg(long, default_value = "local")]
    pub cluster_name: String,
    /// The admission controller's HTTPS address (with a watched cluster).
    #[arg(
        long,
        env = "RAMPART_ADMISSION_LISTEN",
        default_value = "127.0.0.1:8445"
    )]
    pub admission_listen: std::net::SocketAddr,
}

/// The files of the local cluster's bundle, kept in the data directory.
const BUNDLE_FILES: [&str; 9] = [
    "ca.pem",
    "sensor.pem",
    "sensor-key.pem",
    "admission-control.pem",
    "admission-control-key.pem",
    "admission-tls.pem",
    "admission-tls-key.pem",
    "collector.pem",
    "collector-key.pem",
];

/// The local cluster's certificates: the Sensor's and the admission controller's (its client
/// certificate for the Sensor, and its serving certificate for `localhost`).
struct LocalBundle {
    ca: String,
    sensor: (String, String),
    admission: (String, String),
    /// The demo Collector's.
    collector: (String, String),
}

/// The local cluster's certificates, issued once and kept in the data directory.
fn local_bundle(
    store: &rampart_central::store::Store<rampart_central::store::SledBackend>,
    dir: &std::path::Path,
    cluster: &str,
) -> anyhow::Result<LocalBundle> {
    let read = |f: &str| crate::daemon::read_bundle_file(dir, f);
    if !BUNDLE_FILES.iter().all(|f| dir.join(f).exists()) {
        let now = time::OffsetDateTime::now_utc();
        let ca = persist::load_or_create_ca(store, now)?;
        let bundle = persist::issue_bundle(store, &ca, cluster, now)?;
        let cert = |service: Service| {
            bundle
                .certs
                .iter()
                .find(|c| c.service == service)
                .with_context(|| format!("the bundle has no {} certificate", service.as_str()))
        };
        let sensor = cert(Service::Sensor)?;
        let admission = cert(Service::AdmissionControl)?;
        let (tls_cert, tls_key) = ca.issue_server_cert(&["localhost".to_string()], now)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join(CA_FILE), &bundle.ca_pem)?;
        for issued in [sensor, admission, cert(Service::Collector)?] {
            std::fs::write(dir.join(issued.service.cert_file()), &issued.cert_pem)?;
            crate::central_cmd::write_private(
                &dir.join(issued.service.key_file()),
                &issued.key_pem,
            )?;
        }
        std::fs::write(dir.join("admission-tls.pem"), tls_cert)?;
        crate::central_cmd::write_private(&dir.join("admission-tls-key.pem"), &tls_key)?;
    }
    let pair = |s: Service| Ok::<_, anyhow::Error>((read(s.cert_file())?, read(s.key_file())?));
    Ok(LocalBundle {
        ca: read(CA_FILE)?,
        sensor: pair(Service::Sensor)?,
        admission: pair(Service::AdmissionControl)?,
        collector: pair(Service::Collector)?,
    })
}

pub fn run(args: UpArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let data_dir = args.central.data.data_dir.clone();
        let running = rampart_central::runtime::start(args.central.runtime_config()?).await?;
        let host = format!("localhost:{}", running.api_addr.port());
        let _ = crate::central_cmd::banner(&running, &host, &data_dir, out);

        // The demo cluster (kept for as long as `up` runs) or the given kubeconfig.
        let mut demo = None;
        let kubeconfig = if args.demo {
            let api = rampart_test_support::ApiServer::start()
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the demo cluster: {e}"))?;
            let objects = crate::demo::seed(&api)?;
            let path = data_dir.join("demo-kubeconfig");
            api.write_kubeconfig(&path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            let _ = writeln!(
                out,
                "  demo cluster:    {objects} objects in 5 namespaces (kubeconfig {})",
                path.display()
            );
            demo = Some(api);
            Some(path)
        } else {
            args.kubeconfig.clone()
        };
        let watched = match kubeconfig {
            Some(kubeconfig) => {
                let bundle_dir = data_dir.join("up-bundle").join(&args.cluster_name);
                let bundle = local_bundle(&running.core.store, &bundle_dir, &args.cluster_name)?;
                let sensor = rampart_sensor::start(rampart_sensor::Config {
                    central: rampart_sensor::CentralConfig {
                        endpoint: format!("https://localhost:{}", running.sensor_addr.port()),
                        server_name: "localhost".into(),
                        ca_pem: bundle.ca.clone(),
                        cert_pem: bundle.sensor.0.clone(),
                        key_pem: bundle.sensor.1.clone(),
                        cluster_name: args.cluster_name.clone(),
                    },
                    kubeconfig: Some(kubeconfig.clone()),
                    // Local only: the admission controller (and Collectors) connect here.
                    collector_listen: Some("127.0.0.1:0".parse().context("address")?),
                    health_listen: None,
                    exempt_namespaces: rampart_policy::SYSTEM_NAMESPACES.map(String::from).to_vec(),
                })
                .await?;
                let _ = writeln!(
                    out,
                    "  sensor:          cluster '{}' from {}",
                    args.cluster_name,
                    kubeconfig.display()
                );
                let sensor_addr = sensor
                    .collector_addr
                    .context("the Sensor has no endpoint for the admission controller")?;
                // The demo cluster's node agent: its processes and connections.
                let demo_collector = demo.as_ref().map(|api| {
                    tokio::spawn(crate::demo::collector(
                        crate::demo::demo_pods(api),
                        crate::demo::CollectorLink {
                            endpoint: format!("https://{sensor_addr}"),
                            ca_pem: bundle.ca.clone(),
                            cert_pem: bundle.collector.0.clone(),
                            key_pem: bundle.collector.1.clone(),
                        },
                    ))
                });
                let mut config = rampart_admission::Config::new(
                    args.admission_listen,
                    bundle_dir.join("admission-tls.pem"),
                    bundle_dir.join("admission-tls-key.pem"),
                    data_dir.join("admission-cache").join(&args.cluster_name),
                );
                config.sensor = Some(rampart_admission::SensorLink {
                    endpoint: format!("https://{sensor_addr}"),
                    server_name: "sensor.rampart.svc".into(),
                    ca_pem: bundle.ca.clone(),
                    cert_pem: bundle.admission.0.clone(),
                    key_pem: bundle.admission.1.clone(),
                    instance: "rampart-up".into(),
                });
                let admission = rampart_admission::start(config).await?;
                let _ = writeln!(
                    out,
                    "  admission:       https://localhost:{}/validate and /events (CA {}; `rampart admission-controller webhook --ca-file` registers it)",
                    admission.addr.port(),
                    bundle_dir.join("ca.pem").display()
                );
                let _ = writeln!(
                    out,
                    "                   it refuses nothing until a policy is enforced (none is by default, as in ACS), and warns of the enabled ones a workload violates: `rampart policy enforce \"Privileged Container\"`, with -e, --ca and --password as above"
                );
                Some((sensor, admission, demo_collector))
            }
            None => {
                let _ = writeln!(
                    out,
                    "  no cluster watched: add --demo for a demo cluster, or --kubeconfig FILE"
                );
                None
            }
        };
        let _ = out.flush();
        tokio::select! {
            result = running.sensor_server => {
                result.context("the Sensor listener stopped")?.context("the Sensor listener failed")?;
            }
            result = running.api_server => {
                result.context("the API listener stopped")?;
            }
            signal = crate::daemon::shutdown_signal() => signal?,
        }
        if let Some((sensor, admission, demo_collector)) = watched {
            // Alerts the admission controller could not hand over yet wait for the next `up`.
            if let Err(error) = admission.stop().await {
                tracing::error!(%error, "alerts not yet reported could not be kept");
            }
            drop((sensor, demo_collector));
        }
        drop(demo);
        running.core.store.flush().context("final flush")?;
        Ok(ExitCode::SUCCESS)
    })
}
