//! `rampart collector`: one per node; sees container processes and connections and streams
//! them to the cluster's Sensor.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::daemon::{read_bundle_file, shutdown_signal};
use clap::{Args, ValueEnum};
use rampart_central::pki::{CA_FILE, Service};
use rampart_sensor::collector::{self, ModeChoice};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// The proc connector when privileged, else /proc polling.
    Auto,
    /// Every exec from the kernel (needs CAP_NET_ADMIN); fail if unavailable.
    Connector,
    /// Periodic /proc scans (unprivileged; short-lived processes can be missed).
    Polling,
}

#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// The Sensor's collector endpoint.
    #[arg(
        long,
        env = "RAMPART_SENSOR",
        default_value = "https://sensor.rampart.svc:8443"
    )]
    pub sensor: String,
    /// The name the Sensor's certificate carries.
    #[arg(long, default_value = "sensor.rampart.svc")]
    pub server_name: String,
    /// The cluster's init bundle directory: ca.pem, collector.pem, collector-key.pem.
    #[arg(long, env = "RAMPART_BUNDLE_DIR", value_name = "DIR")]
    pub bundle_dir: PathBuf,
    /// This node's name (the downward API's spec.nodeName in a DaemonSet).
    #[arg(long, env = "RAMPART_NODE_NAME")]
    pub node_name: String,
    /// The host's procfs.
    #[arg(long, env = "RAMPART_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: Mode,
    /// Seconds between network table scans.
    #[arg(long, default_value_t = 5)]
    pub net_interval: u64,
    /// Seconds a connection stays reported after it was last seen.
    #[arg(long, default_value_t = 30)]
    pub afterglow: u64,
    /// Process and connection events per container and second (sustained).
    #[arg(long, default_value_t = 50)]
    pub rate_limit: u32,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (plain HTTP; the node's address
    /// when the pod runs in the host's network).
    #[arg(long, env = "RAMPART_HEALTH_LISTEN", default_value = "0.0.0.0:9097")]
    pub health_listen: std::net::SocketAddr,
    /// Serve no health endpoint.
    #[arg(long, conflicts_with = "health_listen")]
    pub no_health: bool,
}

pub fn run(args: CollectorArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut config = collector::Config::new(
        collector::SensorEndpoint {
            endpoint: args.sensor.clone(),
            server_name: args.server_name,
            ca_pem: read_bundle_file(&args.bundle_dir, CA_FILE)?,
            cert_pem: read_bundle_file(&args.bundle_dir, Service::Collector.cert_file())?,
            key_pem: read_bundle_file(&args.bundle_dir, Service::Collector.key_file())?,
        },
        args.node_name,
    );
    config.proc_root = args.proc_root;
    config.mode = match args.mode {
        Mode::Auto => ModeChoice::Auto,
        Mode::Connector => ModeChoice::Connector,
        Mode::Polling => ModeChoice::Polling,
    };
    config.net_interval = Duration::from_secs(args.net_interval.max(1));
    config.afterglow = Duration::from_secs(args.afterglow);
    config.rate_per_second = args.rate_limit;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut collector = collector::start(config).await?;
        let health = if args.no_health {
            None
        } else {
            let addr = collector
                .serve_health(args.health_listen)
                .await
                .with_context(|| format!("cannot serve health on {}", args.health_listen))?;
            Some(addr)
        };
        let _ = writeln!(
            out,
            "Rampart Collector ({}) streaming to {}",
            collector.status().mode,
            args.sensor
        );
        if let Some(addr) = health {
            let _ = writeln!(out, "  health: http://{addr}/healthz, /readyz, /metrics");
        }
        let _ = out.flush();
        shutdown_signal().await?;
        Ok(ExitCode::SUCCESS)
    })
}
