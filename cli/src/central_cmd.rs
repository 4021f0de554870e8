//! `rampart central ...`: run Central and manage its init bundles.
//!
//! Init-bundle and token commands go through Central's API when an endpoint is given (`-e`);
//! without one they work on the data directory directly, which needs Central stopped (its store
//! is locked while it runs). `reset-admin-password` is local only, by design.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use rampart_central::pki::{CA_FILE, Service, persist};
use rampart_central::store::{SledBackend, Store};

use crate::remote::RemoteArgs;

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
    /// Create, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Set a new random admin password and print it (local; Central must be stopped).
    ResetAdminPassword {
        #[command(flatten)]
        data: DataDirArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        /// What the token is for (shown in listings).
        #[arg(long)]
        name: String,
        /// admin, analyst (read-only) or ci (detection only).
        #[arg(long)]
        role: String,
        /// Lifetime: 3600, 90m, 12h or 30d; no expiry when absent.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<u64>,
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke {
        id: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
}

/// Seconds from `3600`, `90m`, `12h` or `30d`.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (3600, 90m, 12h, 30d)"))?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("'{s}': the unit must be s, m, h or d")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("'{s}' is too long"))
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
    #[command(flatten)]
    pub images: ImageScanArgs,
    /// How long a new container's processes are learned before its baseline locks itself:
    /// 3600, 90m, 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration, env = "RAMPART_BASELINE_LEARNING")]
    pub baseline_learning: u64,
    /// How long a new deployment's network peers join its network baseline by themselves.
    #[arg(long, default_value = "1h", value_parser = parse_duration, env = "RAMPART_NETWORK_BASELINE_OBSERVATION")]
    pub network_baseline_observation: u64,
    /// A file holding the admin password (a mounted Secret), instead of one generated at the
    /// first start: set at every start where it differs, never printed.
    #[arg(long, value_name = "FILE", env = "RAMPART_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
}

impl StartArgs {
    /// Central's configuration (`central start` and `up`).
    pub fn runtime_config(&self) -> anyhow::Result<rampart_central::runtime::Config> {
        Ok(rampart_central::runtime::Config {
            data_dir: self.data.data_dir.clone(),
            sensor_listen: self.sensor_listen,
            api_listen: self.api_listen,
            server_names: self.server_names.clone(),
            images: self.images.settings()?,
            baselines: rampart_central::baselines::BaselineSettings {
                learning: std::time::Duration::from_secs(self.baseline_learning),
                network_observation: std::time::Duration::from_secs(
                    self.network_baseline_observation,
                ),
            },
            admin_password: self.admin_password()?,
        })
    }

    /// The admin password given with `--admin-password-file`, one trailing newline trimmed.
    pub fn admin_password(&self) -> anyhow::Result<Option<String>> {
        let Some(file) = &self.admin_password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the admin password from {}", file.display()))?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        Ok(Some(password.to_string()))
    }
}

/// How Central scans the images its deployments run.
#[derive(Debug, Args, Clone)]
pub struct ImageScanArgs {
    /// Do not scan deployments' images (scans still run on request: `rampart image scan -e`).
    #[arg(long, env = "RAMPART_NO_IMAGE_SCANNING")]
    pub no_image_scanning: bool,
    /// Registry credentials: a Docker config.json (or a Kubernetes .dockerconfigjson).
    #[arg(long, value_name = "FILE", env = "RAMPART_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// A registry reached over plain HTTP (`registry.local:5000`); repeatable.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "RAMPART_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// A PEM CA certificate to trust for registries besides the system's; repeatable.
    #[arg(
        long = "registry-ca",
        value_name = "FILE",
        env = "RAMPART_REGISTRY_CAS",
        value_delimiter = ','
    )]
    pub registry_cas: Vec<PathBuf>,
    /// Images pulled and analyzed at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64), env = "RAMPART_SCAN_CONCURRENCY")]
    pub scan_concurrency: u16,
}

impl ImageScanArgs {
    pub fn settings(&self) -> anyhow::Result<rampart_central::images::ImageSettings> {
        let credentials = match &self.registry_config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                rampart_scanner::registry::Credentials::from_docker_config(&text)
                    .with_context(|| p.display().to_string())?
            }
            None => Default::default(),
        };
        let mut extra_roots_pem = Vec::new();
        for p in &self.registry_cas {
            extra_roots_pem
                .push(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
        }
        let defaults = rampart_central::images::ImageSettings::default();
        Ok(rampart_central::images::ImageSettings {
            scan_deployments: !self.no_image_scanning,
            credentials,
            pull: rampart_scanner::registry::PullOptions {
                insecure: self.insecure_registries.clone(),
                extra_roots_pem,
                ..Default::default()
            },
            concurrency: usize::from(self.scan_concurrency),
            ..defaults
        })
    }
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

pub fn run(
    command: CentralCommand,
    remote: &RemoteArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        CentralCommand::Start(args) => start(args, out),
        CentralCommand::InitBundle { command } => match remote.connect()? {
            Some(central) => init_bundle_remote(&central, command, out),
            None => init_bundle(command, out),
        },
        CentralCommand::Token { command } => token(command, remote, out),
        CentralCommand::ResetAdminPassword { data } => {
            let store = open_store(&data)?;
            let password = rampart_central::auth::reset_admin_password(&store)?;
            writeln!(out, "New admin password: {password}")?;
            writeln!(out, "(shown once; the old password no longer works)")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn token(
    command: TokenCommand,
    remote: &RemoteArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    use rampart_central::auth::{self, Role};
    let central = remote.connect()?;
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in,
            data,
        } => {
            let (token, id) = match &central {
                Some(c) => {
                    let v = c.send_json(
                        "POST",
                        "/v1/tokens",
                        &serde_json::json!({"name": name, "role": role, "expiresInSeconds": expires_in}),
                    )?;
                    (
                        v["token"].as_str().unwrap_or_default().to_string(),
                        v["record"]["id"].as_str().unwrap_or_default().to_string(),
                    )
                }
                None => {
                    let role = Role::parse(&role).with_context(|| {
                        format!("unknown role '{role}'; use admin, analyst or ci")
                    })?;
                    let expires = expires_in.map(auth::expiry_after);
                    let store = open_store(&data)?;
                    let (token, record) = auth::create_token(&store, &name, role, expires)?;
                    (token, record.id)
                }
            };
            writeln!(out, "{token}")?;
            writeln!(
                out,
                "(token id {id}; shown once — store it now, e.g. as RAMPART_API_TOKEN)"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { data } => {
            let tokens: Vec<auth::TokenRecord> = match &central {
                Some(c) => serde_json::from_value(c.get("/v1/tokens")?["tokens"].clone())
                    .context("Central's token list has an unexpected shape")?,
                None => auth::list_tokens(&open_store(&data)?)?,
            };
            let rows: Vec<Vec<String>> = tokens
                .into_iter()
                .map(|t| {
                    vec![
                        t.id,
                        t.name,
                        t.role.as_str().to_string(),
                        crate::remote_cmds::when(t.created_unix_ms),
                        t.expires_unix_ms
                            .map(crate::remote_cmds::when)
                            .unwrap_or_else(|| "never".into()),
                        if t.revoked { "yes".into() } else { "-".into() },
                    ]
                })
                .collect();
            out.write_all(
                crate::output::simple_table(
                    &["ID", "NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED"],
                    &rows,
                )
                .as_bytes(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id, data } => {
            match &central {
                Some(c) => {
                    c.request(
                        "DELETE",
                        &format!("/v1/tokens/{}", crate::remote::encode(&id)),
                        None,
                    )?;
                }
                None => {
                    auth::revoke_token(&open_store(&data)?, &id)?;
                }
            }
            writeln!(out, "Revoked token {id}.")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An issued bundle as the CLI writes it (from the store, or from Central's API).
struct IssuedBundle {
    cluster: String,
    id: String,
    ca_pem: String,
    certs: Vec<(Service, String, String)>,
    secrets_yaml: String,
}

/// Writes a bundle where asked and says where, and its id; shared by the local and remote
/// forms. When the Secrets go to standard output, those lines are YAML comments, so that
/// `--output-secrets - | kubectl apply -f -` reads only manifests.
fn write_bundle(
    bundle: &IssuedBundle,
    output_dir: Option<PathBuf>,
    output_secrets: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let IssuedBundle {
        cluster: name,
        id,
        ca_pem,
        certs,
        secrets_yaml,
    } = bundle;
    let comment = if output_secrets.as_deref() == Some("-") {
        "# "
    } else {
        ""
    };
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join(CA_FILE), ca_pem)?;
        for (service, cert, key) in certs {
            std::fs::write(dir.join(service.cert_file()), cert)?;
            write_private(&dir.join(service.key_file()), key)?;
        }
        writeln!(
            out,
            "{comment}Wrote the bundle for cluster '{name}' to {}",
            dir.display()
        )?;
    }
    match output_secrets.as_deref() {
        Some("-") => {
            writeln!(out, "# Bundle id: {id}")?;
            out.write_all(secrets_yaml.as_bytes())?;
        }
        Some(file) => {
            write_private(std::path::Path::new(file), secrets_yaml)?;
            writeln!(
                out,
                "Wrote Kubernetes Secrets for cluster '{name}' to {file}"
            )?;
            writeln!(out, "Bundle id: {id}")?;
        }
        None => writeln!(out, "Bundle id: {id}")?,
    }
    Ok(())
}

fn init_bundle_remote(
    central: &crate::remote::Remote,
    command: InitBundleCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        InitBundleCommand::Generate {
            name,
            output_dir,
            output_secrets,
            namespace,
            ..
        } => {
            if output_dir.is_none() && output_secrets.is_none() {
                anyhow::bail!(
                    "say where the bundle goes: --output-dir DIR and/or --output-secrets FILE"
                );
            }
            let v = central.send_json(
                "POST",
                "/v1/init-bundles",
                &serde_json::json!({"name": name, "namespace": namespace}),
            )?;
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            let certs = v["certs"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let service = text(&c["service"]);
                    let service = Service::parse(&service).with_context(|| {
                        format!("Central sent a certificate for an unknown service '{service}'")
                    })?;
                    Ok((service, text(&c["certPem"]), text(&c["keyPem"])))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bundle = IssuedBundle {
                cluster: name,
                id: text(&v["bundle"]["id"]),
                ca_pem: text(&v["caPem"]),
                certs,
                secrets_yaml: text(&v["secretsYaml"]),
            };
            write_bundle(&bundle, output_dir, output_secrets, out)?;
            Ok(ExitCode::SUCCESS)
        }
        InitBundleCommand::List { .. } => {
            let v = central.get("/v1/init-bundles")?;
            let bundles: Vec<rampart_central::pki::BundleRecord> =
                serde_json::from_value(v["bundles"].clone())
                    .context("Central's bundle list has an unexpected shape")?;
            print_bundles(bundles, out)
        }
        InitBundleCommand::Revoke { id_or_cluster, .. } => {
            let v = central.request(
                "DELETE",
                &format!("/v1/init-bundles/{}", crate::remote::encode(&id_or_cluster)),
                None,
            )?;
            for b in v["revoked"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                writeln!(
                    out,
                    "Revoked bundle {} of cluster '{}'.",
                    b["id"].as_str().unwrap_or_default(),
                    b["cluster"].as_str().unwrap_or_default()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn start(args: StartArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let running = rampart_central::runtime::start(args.runtime_config()?).await?;
        let host = if running.api_addr.ip().is_loopback() || running.api_addr.ip().is_unspecified() {
            format!("localhost:{}", running.api_addr.port())
        } else {
            running.api_addr.to_string()
        };
        // The banner is for people; a closed stdout must not stop Central.
        let _ = banner(&running, &host, &args.data.data_dir, out);
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
            let issued = IssuedBundle {
                secrets_yaml: bundle.to_secrets_yaml(&namespace),
                certs: bundle
                    .certs
                    .into_iter()
                    .map(|c| (c.service, c.cert_pem, c.key_pem))
                    .collect(),
                cluster: name,
                id: bundle.record.id,
                ca_pem: bundle.ca_pem,
            };
            write_bundle(&issued, output_dir, output_secrets, out)?;
            Ok(ExitCode::SUCCESS)
        }
        InitBundleCommand::List { data } => {
            let store = open_store(&data)?;
            print_bundles(persist::bundles(&store)?, out)
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
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
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

fn print_bundles(
    bundles: Vec<rampart_central::pki::BundleRecord>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let when = |t: i64| crate::remote_cmds::when(t.saturating_mul(1000));
    let rows: Vec<Vec<String>> = bundles
        .into_iter()
        .map(|b| {
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
        crate::output::simple_table(&["ID", "CLUSTER", "CREATED", "EXPIRES", "REVOKED"], &rows)
            .as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn banner(
    running: &rampart_central::runtime::Running,
    host: &str,
    data_dir: &std::path::Path,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "Rampart Central is running.")?;
    writeln!(out, "  API:             https://{host}/v1/ (user admin)")?;
    writeln!(
        out,
        "  CA certificate:  {} (pass it as --ca, or set RAMPART_CA)",
        running.ca_file.display()
    )?;
    match (&running.new_admin_password, &running.admin_password_file) {
        (Some(password), Some(file)) => {
            writeln!(out, "  admin password:  {password}")?;
            writeln!(
                out,
                "                   (shown once; also saved in {} with mode 0600 — delete it once stored elsewhere)",
                file.display()
            )?;
        }
        _ if running.admin_password_given => writeln!(
            out,
            "  admin password:  the one given (--admin-password-file)"
        )?,
        (_, Some(file)) => writeln!(out, "  admin password:  in {}", file.display())?,
        (_, None) => writeln!(
            out,
            "  admin password:  set at first start (reset: rampart central reset-admin-password)"
        )?,
    }
    writeln!(
        out,
        "  sensor endpoint: {} (mTLS gRPC)",
        running.sensor_addr
    )?;
    writeln!(out, "  data directory:  {}", data_dir.display())?;
    writeln!(
        out,
        "  try: rampart -e https://{host} --ca {} --password \"$(cat {})\" alert list",
        running.ca_file.display(),
        running
            .admin_password_file
            .as_deref()
            .unwrap_or(std::path::Path::new("ADMIN_PASSWORD_FILE"))
            .display()
    )?;
    Ok(())
}
