//! `rampart admission-controller`: the validating webhook (`run`), and the
//! ValidatingWebhookConfiguration that routes the API server to it (`webhook`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use rampart_admission::webhook::WebhookOptions;
use rampart_admission::{FailureMode, Settings};

use crate::daemon::{read_bundle_file, shutdown_signal};
use rampart_central::pki::{CA_FILE, Service};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailureArg {
    /// Allow what cannot be evaluated, with a warning (ACS's default).
    Open,
    /// Deny what cannot be evaluated, naming the reason.
    Closed,
}

impl From<FailureArg> for FailureMode {
    fn from(f: FailureArg) -> FailureMode {
        match f {
            FailureArg::Open => FailureMode::Open,
            FailureArg::Closed => FailureMode::Closed,
        }
    }
}

/// Decision settings shared by `run` and `webhook` (the configuration must agree with them).
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// What happens to a request that cannot be evaluated (no policy set yet, a malformed
    /// object, an internal error). `webhook` sets failurePolicy to match.
    #[arg(long, env = "RAMPART_FAILURE_MODE", value_enum, default_value = "open")]
    pub failure_mode: FailureArg,
    /// Namespaces never evaluated (comma-separated; replaces the default list).
    #[arg(
        long,
        env = "RAMPART_EXCLUDED_NAMESPACES",
        value_delimiter = ',',
        default_values = rampart_admission::decide::DEFAULT_EXCLUDED_NAMESPACES
    )]
    pub excluded_namespaces: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// The webhook's HTTPS address.
    #[arg(long, env = "RAMPART_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP /healthz, /readyz and /metrics.
    #[arg(long, env = "RAMPART_HEALTH_LISTEN", default_value = "0.0.0.0:9091")]
    pub health_listen: SocketAddr,
    /// Serving certificate (PEM, reloaded when it changes).
    #[arg(long, env = "RAMPART_TLS_CERT")]
    pub tls_cert: PathBuf,
    #[arg(long, env = "RAMPART_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Accept only clients with a certificate from this CA (the API server's).
    #[arg(long, env = "RAMPART_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Seconds between checks of the certificate files.
    #[arg(long, env = "RAMPART_CERT_RELOAD_SECONDS", default_value_t = 10)]
    pub cert_reload_seconds: u64,
    /// The Sensor's endpoint; without it the controller decides from its cache only.
    #[arg(long, env = "RAMPART_SENSOR")]
    pub sensor: Option<String>,
    /// The name in the Sensor's certificate.
    #[arg(
        long,
        env = "RAMPART_SENSOR_SERVER_NAME",
        default_value = "sensor.rampart.svc"
    )]
    pub sensor_server_name: String,
    /// The init bundle directory: ca.pem, admission-control.pem, admission-control-key.pem.
    #[arg(long, env = "RAMPART_BUNDLE_DIR", value_name = "DIR")]
    pub bundle_dir: Option<PathBuf>,
    /// Where the last policy set is kept for restarts.
    #[arg(
        long,
        env = "RAMPART_CACHE_DIR",
        default_value = "/var/cache/rampart-admission"
    )]
    pub cache_dir: PathBuf,
    /// Users whose requests are never evaluated (comma-separated).
    #[arg(long, env = "RAMPART_BYPASS_USERS", value_delimiter = ',')]
    pub bypass_users: Vec<String>,
    /// Groups whose members' requests are never evaluated (comma-separated).
    #[arg(long, env = "RAMPART_BYPASS_GROUPS", value_delimiter = ',')]
    pub bypass_groups: Vec<String>,
    /// Users trusted to write objects for the workload controlling them (comma-separated;
    /// `system:serviceaccount:*:NAME` for that account in any namespace). Such an object (a
    /// ReplicaSet's pod) is decided at its controller; written by anyone else, it is decided
    /// itself. Default: kube-controller-manager and its controllers' service accounts.
    #[arg(
        long,
        env = "RAMPART_CONTROLLER_USERS",
        value_delimiter = ',',
        default_values = rampart_admission::decide::DEFAULT_CONTROLLER_USERS
    )]
    pub controller_users: Vec<String>,
    /// Ignore the break-glass annotation.
    #[arg(long, env = "RAMPART_DISABLE_BYPASS")]
    pub disable_bypass: bool,
    /// Do not enforce on creates.
    #[arg(long, env = "RAMPART_NO_ENFORCE_ON_CREATES")]
    pub no_enforce_on_creates: bool,
    /// Do not enforce on updates.
    #[arg(long, env = "RAMPART_NO_ENFORCE_ON_UPDATES")]
    pub no_enforce_on_updates: bool,
    /// Never deny exec/attach/port-forward (violations still raise alerts).
    #[arg(long, env = "RAMPART_NO_ENFORCE_EVENTS")]
    pub no_enforce_events: bool,
    /// Give no warning for the enabled policies that are not enforced (by default a workload
    /// violating them is answered with a warning per policy, which `kubectl` prints).
    #[arg(long, env = "RAMPART_NO_WARNINGS")]
    pub no_warnings: bool,
    /// Largest AdmissionReview accepted (bytes; larger gets 413).
    #[arg(long, env = "RAMPART_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest wait for a request body in milliseconds (slower gets 408).
    #[arg(long, env = "RAMPART_BODY_TIMEOUT_MS", default_value_t = 5000)]
    pub body_timeout_ms: u64,
    /// Longest a review waits for its decision once its body is read, in milliseconds; past
    /// it, it is answered by the failure mode (logged, counted). Keep it under the webhook's
    /// timeoutSeconds.
    #[arg(long, env = "RAMPART_DECISION_BUDGET_MS", default_value_t = 3000)]
    pub decision_budget_ms: u64,
    /// Most denial, break-glass and failure-mode log lines a second (0: no limit); the rest
    /// are counted, and the next line written says how many were held back.
    #[arg(
        long,
        env = "RAMPART_LOG_DECISIONS_PER_SECOND",
        default_value_t = rampart_admission::log_budget::DEFAULT_PER_SECOND
    )]
    pub log_decisions_per_second: u32,
    /// Bytes of denials' alerts kept in the cache directory, beyond the queue in memory, while
    /// the Sensor is away (sent when it is back; past it they are dropped and counted).
    #[arg(
        long,
        env = "RAMPART_ALERT_OVERFLOW_BYTES",
        default_value_t = rampart_admission::DEFAULT_ALERT_OVERFLOW_BYTES
    )]
    pub alert_overflow_bytes: u64,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// The CA of the serving certificate (PEM); without it, cert-manager injects caBundle.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    #[arg(long, default_value = "rampart")]
    pub namespace: String,
    #[arg(long, default_value = "rampart-admission-controller")]
    pub service: String,
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// The API server's wait for an answer (1-30).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub timeout_seconds: u32,
    /// Do not register exec/attach/port-forward.
    #[arg(long)]
    pub no_events: bool,
    /// Also validate OpenShift DeploymentConfigs.
    #[arg(long)]
    pub openshift: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdmissionCommand {
    /// Serve the webhook.
    Run(Box<RunArgs>),
    /// Print the ValidatingWebhookConfiguration (YAML).
    Webhook(WebhookArgs),
}

pub fn run(command: AdmissionCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        AdmissionCommand::Webhook(args) => {
            let ca_bundle_pem = match &args.ca_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                ),
                None => None,
            };
            let options = WebhookOptions {
                namespace: args.namespace,
                service: args.service,
                port: args.port,
                ca_bundle_pem,
                failure_mode: args.decision.failure_mode.into(),
                timeout_seconds: args.timeout_seconds,
                excluded_namespaces: args.decision.excluded_namespaces,
                events: !args.no_events,
                openshift: args.openshift,
            };
            out.write_all(rampart_admission::webhook::render(&options).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AdmissionCommand::Run(args) => serve(*args, out),
    }
}

fn serve(args: RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let sensor = match (&args.sensor, &args.bundle_dir) {
        (Some(endpoint), Some(dir)) => Some(rampart_admission::SensorLink {
            endpoint: endpoint.clone(),
            server_name: args.sensor_server_name.clone(),
            ca_pem: read_bundle_file(dir, CA_FILE)?,
            cert_pem: read_bundle_file(dir, Service::AdmissionControl.cert_file())?,
            key_pem: read_bundle_file(dir, Service::AdmissionControl.key_file())?,
            instance: std::env::var("HOSTNAME").unwrap_or_default(),
        }),
        (Some(_), None) => anyhow::bail!("--sensor needs --bundle-dir (the init bundle)"),
        (None, _) => None,
    };
    let mut config =
        rampart_admission::Config::new(args.listen, args.tls_cert, args.tls_key, args.cache_dir);
    config.health_listen = Some(args.health_listen);
    config.client_ca = args.client_ca;
    config.cert_reload_interval = Duration::from_secs(args.cert_reload_seconds.max(1));
    config.settings = Settings {
        failure_mode: args.decision.failure_mode.into(),
        excluded_namespaces: args.decision.excluded_namespaces,
        bypass_users: args.bypass_users,
        bypass_groups: args.bypass_groups,
        break_glass: !args.disable_bypass,
        enforce_on_creates: !args.no_enforce_on_creates,
        enforce_on_updates: !args.no_enforce_on_updates,
        enforce_events: !args.no_enforce_events,
        controller_users: args.controller_users,
        warn_unenforced: !args.no_warnings,
    };
    config.sensor = sensor;
    config.max_body_bytes = args.max_body_bytes;
    config.body_timeout = Duration::from_millis(args.body_timeout_ms.max(1));
    config.decision_budget = Duration::from_millis(args.decision_budget_ms.max(1));
    config.log_lines_per_second = args.log_decisions_per_second;
    config.alert_overflow_bytes = args.alert_overflow_bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let controller = rampart_admission::start(config).await?;
        let _ = writeln!(
            out,
            "Rampart admission controller on https://{}/validate and /events",
            controller.addr
        );
        if let Some(addr) = controller.health_addr {
            let _ = writeln!(out, "health and metrics: http://{addr}/readyz, /metrics");
        }
        let _ = out.flush();
        shutdown_signal().await?;
        match controller.stop().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                alerts = n,
                "alerts not yet reported kept for the next start"
            ),
            Err(error) => tracing::error!(%error, "alerts not yet reported could not be kept"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdmissionCommand,
    }

    fn run_args(args: &[&str]) -> RunArgs {
        let base = ["x", "run", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
        let cli = Cli::try_parse_from(base.iter().chain(args)).expect("parses");
        match cli.command {
            AdmissionCommand::Run(args) => *args,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn controller_users_default_to_kubernetes_own_and_can_be_replaced() {
        assert_eq!(
            run_args(&[]).controller_users,
            rampart_admission::decide::DEFAULT_CONTROLLER_USERS
        );
        assert_eq!(
            run_args(&[
                "--controller-users",
                "system:serviceaccount:*:deployer,ops-bot"
            ])
            .controller_users,
            ["system:serviceaccount:*:deployer", "ops-bot"]
        );
    }

    #[test]
    fn the_decision_budget_defaults_to_three_seconds() {
        assert_eq!(run_args(&[]).decision_budget_ms, 3000);
        assert_eq!(
            run_args(&["--decision-budget-ms", "500"]).decision_budget_ms,
            500
        );
    }
}
