//! `rampart central ...`: run Central and manage its init bundles.
//!
//! Init-bundle commands work on the data directory directly, so they run while Central is stopped
//! (the store is locked while it runs; the API form of these commands comes with Central's API).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use rampart_central::pki::persist;
use rampart_central::store::{SledBackend, Store};

#[derive(Debug, Subcommand)]
pub enum CentralCommand {
    /// Run Central: the store in --data-dir and the mTLS endpoint for Sensors.
    Start(StartArgs),
    /// Issue, list and revoke the certificates that let a cluster's Sensor connect.
    #[command(name = "init-bundle")]
    InitBundle {
        #[command(subcommand)]
        command: InitBundleCommand,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DataDirArgs {
    /// Where Central keeps its store and CA.
    #[arg(long, default_value = "./rampart-data", env = "RAMPART_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Address for Sensor connections (mTLS gRPC).
    #[arg(long, default_value = "127.0.0.1:8444", env = "RAMPART_SENSOR_LISTEN")]
    pub sensor_listen: SocketAddr,
    /// Address for the HTTPS API (users, CI, the CLI with -e).
    #[arg(long, default_value = "127.0.0.1:8443", env = "RAMPART_API_LISTEN")]
    pub api_listen: SocketAddr,
    /// Names Sensors and users use to reach Central; repeatable (its certificate covers them).
    #[arg(long = "server-name", default_values_t = vec!["localhost".to_string(), "central.rampart.svc".to_string()], env = "RAMPART_SERVER_NAMES", value_delimiter = ',')]
    pub server_names: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum InitBundleCommand {
    /// Issue Sensor, Admission controller and Collector certificates for a cluster.
    Generate {
        /// The cluster's name (lower-case letters, digits and '-').
        name: String,
        #[command(flatten)]
        data: DataDirArgs,
        /// Write ca.pem and <service>.pem / <service>-key.pem files into this directory.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Write the bundle as Kubernetes Secret manifests to this file (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        output_secrets: Option<String>,
        /// Namespace of the Secrets.
        #[arg(long, default_value = "rampart")]
        namespace: String,
    },
    /// List issued bundles.
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Revoke a bundle by id or cluster name; its certificates are refused from then on.
    Revoke {
        id_or_cluster: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
}

fn open_store(data: &DataDirArgs) -> anyhow::Result<Store<SledBackend>> {
    std::fs::create_dir_all(&data.data_dir)
        .with_context(|| format!("cannot create {}", data.data_dir.display()))?;
    Store::open(SledBackend::open(&data.data_dir.join("store"))?)
        .context("cannot open Central's store (is Central running on it?)")
}

pub fn run(command: CentralCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        CentralCommand::Start(args) => start(args, out),
        CentralCommand::InitBundle { command } => init_bundle(command, out),
    }
}

fn start(args: StartArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = rampart_central::runtime::start(rampart_central::runtime::Config {
            data_dir: args.data.data_dir.clone(),
            sensor_listen: args.sensor_listen,
            api_listen: args.api_listen,
            server_names: args.server_names.clone(),
        })
        .await?;
        let host = if running.api_addr.ip().is_loopback() || running.api_addr.ip().is_unspecified() {
            format!("localhost:{}", running.api_addr.port())
        } else {
            running.api_addr.to_string()
        };
        writeln!(out, "Rampart Central is running.")?;
        writeln!(out, "  API:             https://{host}/v1/ (user admin)")?;
        writeln!(out, "  CA certificate:  {} (pass it as --ca, or set RAMPART_CA)", running.ca_file.display())?;
        match (&running.new_admin_password, &running.admin_password_file) {
            (Some(password), Some(file)) => {
                writeln!(out, "  admin password:  {password}")?;
                writeln!(out, "                   (shown once; also saved in {} with mode 0600 — delete it once stored elsewhere)", file.display())?;
            }
            (_, Some(file)) => writeln!(out, "  admin password:  in {}", file.display())?,
            (_, None) => writeln!(out, "  admin password:  set at first start (reset: rampart central reset-admin-password)")?,
        }
        writeln!(out, "  sensor endpoint: {} (mTLS gRPC)", running.sensor_addr)?;
        writeln!(out, "  data directory:  {}", args.data.data_dir.display())?;
        writeln!(out, "  try: rampart -e https://{host} --ca {} alert list", running.ca_file.display())?;
        out.flush()?;
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = running.sensor_server => {
                result.context("the Sensor listener stopped")?.context("the Sensor listener failed")?;
            }
            result = running.api_server => {
                result.context("the API listener stopped")?;
            }
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
            _ = terminate.recv() => tracing::info!("SIGTERM; stopping"),
        }
        running.core.store.flush().context("final flush")?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init_bundle(command: InitBundleCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        InitBundleCommand::Generate {
            name,
            data,
            output_dir,
            output_secrets,
            namespace,
        } => {
            if output_dir.is_none() && output_secrets.is_none() {
                anyhow::bail!(
                    "say where the bundle goes: --output-dir DIR and/or --output-secrets FILE"
                );
            }
            let store = open_store(&data)?;
            let now = time::OffsetDateTime::now_utc();
            let ca = persist::load_or_create_ca(&store, now)?;
            let bundle = persist::issue_bundle(&store, &ca, &name, now)?;
            if let Some(dir) = output_dir {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                std::fs::write(dir.join("ca.pem"), &bundle.ca_pem)?;
                for c in &bundle.certs {
                    std::fs::write(dir.join(format!("{}.pem", c.service.as_str())), &c.cert_pem)?;
                    write_private(
                        &dir.join(format!("{}-key.pem", c.service.as_str())),
                        &c.key_pem,
                    )?;
                }
                writeln!(
                    out,
                    "Wrote the bundle for cluster '{name}' to {}",
                    dir.display()
                )?;
            }
            if let Some(file) = output_secrets {
                let yaml = bundle.to_secrets_yaml(&namespace);
                if file == "-" {
                    out.write_all(yaml.as_bytes())?;
                } else {
                    write_private(std::path::Path::new(&file), &yaml)?;
                    writeln!(
                        out,
                        "Wrote Kubernetes Secrets for cluster '{name}' to {file}"
                    )?;
                }
            }
            writeln!(out, "Bundle id: {}", bundle.record.id)?;
            Ok(ExitCode::SUCCESS)
        }
        InitBundleCommand::List { data } => {
            let store = open_store(&data)?;
            let rows: Vec<Vec<String>> = persist::bundles(&store)?
                .into_iter()
                .map(|b| {
                    let when = |t: i64| {
                        time::OffsetDateTime::from_unix_timestamp(t)
                            .ok()
                            .and_then(|t| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .ok()
                            })
                            .unwrap_or_default()
                    };
                    vec![
                        b.id,
                        b.cluster,
                        when(b.created_unix),
                        when(b.expires_unix),
                        if b.revoked { "yes".into() } else { "-".into() },
                    ]
                })
                .collect();
            out.write_all(
                crate::output::simple_table(
                    &["ID", "CLUSTER", "CREATED", "EXPIRES", "REVOKED"],
                    &rows,
                )
                .as_bytes(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        InitBundleCommand::Revoke {
            id_or_cluster,
            data,
        } => {
            let store = open_store(&data)?;
            let revoked = persist::revoke(
                &store,
                &rampart_central::pki::Revocations::default(),
                &id_or_cluster,
            )?;
            for b in revoked {
                writeln!(out, "Revoked bundle {} of cluster '{}'", b.id, b.cluster)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a file that holds a private key: readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
