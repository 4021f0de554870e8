//! `rampart up`: everything on this machine with embedded defaults — Central, and a Sensor for
//! a cluster: the demo cluster (`--demo`, served by the built-in test API server) or a real one
//! (`--kubeconfig`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use rampart_central::pki::{Service, persist};

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
}

/// The cluster's Sensor certificate, issued once and kept in the data directory.
fn sensor_bundle(
    store: &rampart_central::store::Store<rampart_central::store::SledBackend>,
    dir: &std::path::Path,
    cluster: &str,
) -> anyhow::Result<(String, String, String)> {
    let files = ["ca.pem", "sensor.pem", "sensor-key.pem"].map(|f| dir.join(f));
    if files.iter().all(|f| f.exists()) {
        let read = |f: &str| crate::daemon::read_bundle_file(dir, f);
        return Ok((
            read("ca.pem")?,
            read("sensor.pem")?,
            read("sensor-key.pem")?,
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let ca = persist::load_or_create_ca(store, now)?;
    let bundle = persist::issue_bundle(store, &ca, cluster, now)?;
    let cert = bundle
        .certs
        .iter()
        .find(|c| c.service == Service::Sensor)
        .context("the bundle has no Sensor certificate")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&files[0], &bundle.ca_pem)?;
    std::fs::write(&files[1], &cert.cert_pem)?;
    crate::central_cmd::write_private(&files[2], &cert.key_pem)?;
    Ok((
        bundle.ca_pem.clone(),
        cert.cert_pem.clone(),
        cert.key_pem.clone(),
    ))
}

pub fn run(args: UpArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let data_dir = args.central.data.data_dir.clone();
        let running = rampart_central::runtime::start(rampart_central::runtime::Config {
            data_dir: data_dir.clone(),
            sensor_listen: args.central.sensor_listen,
            api_listen: args.central.api_listen,
            server_names: args.central.server_names.clone(),
        })
        .await?;
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
        let _sensor = match kubeconfig {
            Some(kubeconfig) => {
                let (ca_pem, cert_pem, key_pem) = sensor_bundle(
                    &running.core.store,
                    &data_dir.join("up-bundle").join(&args.cluster_name),
                    &args.cluster_name,
                )?;
                let sensor = rampart_sensor::start(rampart_sensor::Config {
                    central: rampart_sensor::CentralConfig {
                        endpoint: format!("https://localhost:{}", running.sensor_addr.port()),
                        server_name: "localhost".into(),
                        ca_pem,
                        cert_pem,
                        key_pem,
                        cluster_name: args.cluster_name.clone(),
                    },
                    kubeconfig: Some(kubeconfig.clone()),
                    collector_listen: None,
                    health_listen: None,
                })
                .await?;
                let _ = writeln!(
                    out,
                    "  sensor:          cluster '{}' from {}",
                    args.cluster_name,
                    kubeconfig.display()
                );
                Some(sensor)
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
        drop(demo);
        running.core.store.flush().context("final flush")?;
        Ok(ExitCode::SUCCESS)
    })
}
