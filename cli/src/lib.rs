//! The `rampart` command. `main.rs` only installs process-wide state and calls [`run`].
//!
//! Exit codes: 0 clean or nothing failing, 1 failing violations (or invalid policies for
//! `policy validate`), 2 usage or input error.

pub mod admission_cmd;
pub mod baseline_cmd;
pub mod central_cmd;
pub mod collector_cmd;
pub mod daemon;
pub mod demo;
pub mod image_cmd;
pub mod input;
pub mod netbaseline_cmd;
pub mod netpol_cmd;
pub mod output;
pub mod policies;
pub mod remote;
pub mod remote_cmds;
pub mod sensor_cmd;
pub mod up_cmd;
pub mod vulndb_cmd;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_policy::{EvalContext, Severity};

use crate::output::Format;
use rampart_policy::check::Finding;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "Kubernetes security: build, deploy and runtime policies, ACS-compatible"
)]
pub struct Cli {
    #[command(flatten)]
    pub remote: remote::RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workload manifests against deploy-time policies.
    Deployment {
        #[command(subcommand)]
        command: DeploymentCommand,
    },
    /// List, validate and export policies; with an endpoint, also get, import, enable and
    /// disable Central's.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Scan container images in registries for vulnerable packages.
    Image {
        #[command(subcommand)]
        command: image_cmd::ImageCommand,
    },
    /// The local vulnerability store image scans match against: import, update, status.
    Vulndb {
        #[command(subcommand)]
        command: vulndb_cmd::VulndbCommand,
    },
    /// Run Central and manage cluster certificates.
    Central {
        #[command(subcommand)]
        command: central_cmd::CentralCommand,
    },
    /// Clusters connected to Central (needs -e).
    Cluster {
        #[command(subcommand)]
        command: remote_cmds::ClusterCommand,
    },
    /// List and resolve alerts in Central (needs -e).
    Alert {
        #[command(subcommand)]
        command: remote_cmds::AlertCommand,
    },
    /// Process baselines of a deployment in Central: list, lock, unlock, add, remove (needs -e).
    Baseline {
        #[command(subcommand)]
        command: baseline_cmd::BaselineCommand,
    },
    /// Network baseline of a deployment in Central: list, lock, unlock, accept or reject a
    /// peer (needs -e).
    Netbaseline {
        #[command(subcommand)]
        command: netbaseline_cmd::NetBaselineCommand,
    },
    /// NetworkPolicies from observed flows: generate them (offline from manifests and a flow
    /// export, or from Central with --cluster) and see what they would block.
    Netpol {
        #[command(subcommand)]
        command: netpol_cmd::NetpolCommand,
    },
    /// Watch a Kubernetes cluster and stream it to Central (one Sensor per cluster).
    Sensor(sensor_cmd::SensorArgs),
    /// The validating admission webhook: deny deployments and exec/attach/port-forward that
    /// violate enforced policies.
    #[command(subcommand)]
    AdmissionController(admission_cmd::AdmissionCommand),
    /// See a node's container processes and connections and stream them to the Sensor (one
    /// Collector per node).
    Collector(collector_cmd::CollectorArgs),
    /// Run everything on this machine with embedded defaults: Central (store in
    /// ./rampart-data), and with --demo a demo cluster and its Sensor (or --kubeconfig FILE to
    /// watch a real cluster).
    Up(up_cmd::UpArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Evaluate workloads in YAML/JSON manifests (files, directories or `-` for stdin).
    Check(CheckArgs),
}

/// Where policies come from: the embedded defaults, plus or instead of custom ones.
#[derive(Debug, Args, Clone)]
pub struct PolicySourceArgs {
    /// Custom ACS-format policies (a JSON file or a directory of them); repeatable. A custom
    /// policy with the id or name of a default replaces it.
    #[arg(
        long = "policies",
        value_name = "DIR|FILE",
        env = "RAMPART_POLICIES",
        value_delimiter = ','
    )]
    pub policies: Vec<String>,
    /// Use only the custom policies, not the defaults.
    #[arg(long, env = "RAMPART_REPLACE_DEFAULTS")]
    pub replace_defaults: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Violations of policies with deploy-time enforcement (like roxctl).
    Enforced,
    /// Any violation.
    Any,
    /// Never fail because of violations.
    Never,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest file, directory (recursive; .yaml/.yml/.json) or `-` for stdin; repeatable.
    #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub source: PolicySourceArgs,
    /// Only policies in these categories (comma-separated, case-insensitive).
    #[arg(short = 'c', long, value_delimiter = ',', env = "RAMPART_CATEGORIES")]
    pub categories: Vec<String>,
    /// Only policies of at least this severity (low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity, env = "RAMPART_SEVERITY_AT_LEAST")]
    pub severity_at_least: Option<Severity>,
    /// Only these policies (name, id or slug; repeatable); names a disabled policy to run it.
    #[arg(long, value_name = "POLICY")]
    pub include: Vec<String>,
    /// Skip these policies (name, id or slug; repeatable).
    #[arg(long, value_name = "POLICY")]
    pub exclude: Vec<String>,
    /// Output format; machine formats keep stdout clean and print the summary on stderr.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, env = "RAMPART_OUTPUT")]
    pub output: Format,
    /// Which violations make the command exit 1.
    #[arg(long, value_enum, default_value_t = FailOn::Enforced, env = "RAMPART_FAIL_ON")]
    pub fail_on: FailOn,
    /// Cluster name, for policies scoped to a cluster.
    #[arg(long, env = "RAMPART_CLUSTER")]
    pub cluster: Option<String>,
    /// Let Central evaluate, with its policies (needs -e and a token with the Continuous
    /// Integration, Analyst or Admin role).
    #[arg(long)]
    pub remote: bool,
    /// Largest accepted input (each file, or stdin), in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024, env = "RAMPART_MAX_INPUT_BYTES")]
    pub max_input_bytes: u64,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the policies (defaults plus custom ones).
    List {
        #[command(flatten)]
        source: PolicySourceArgs,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
    /// Validate ACS-format policy files; exits 1 with every error found.
    Validate {
        /// A policy JSON file (single policy or `{"policies": [...]}`) or a directory of them.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE|DIR")]
        files: Vec<String>,
    },
    /// Print policies as an ACS export (`{"policies": [...]}`), ready for ACS or `--policies`.
    Export {
        #[command(flatten)]
        source: PolicySourceArgs,
        /// Only these policies (name, id or slug; repeatable).
        #[arg(long, value_name = "POLICY")]
        include: Vec<String>,
    },
    /// Print one policy as ACS JSON (name, id or slug).
    Get {
        policy: String,
        #[command(flatten)]
        source: PolicySourceArgs,
    },
    /// Import ACS policy files into Central (needs -e); exits 1 if any policy is refused.
    Import {
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE|DIR")]
        files: Vec<String>,
        /// Replace policies with the same id or name.
        #[arg(long)]
        overwrite: bool,
    },
    /// Enable a policy in Central (needs -e).
    Enable { policy: String },
    /// Disable a policy in Central (needs -e).
    Disable { policy: String },
    /// Enforce a policy in Central (needs -e), at each of its stages or those given: at deploy
    /// time the admission controller refuses violating workloads and Sensors scale down those
    /// that get in; at build time checks fail; at runtime exec, attach and port-forward are
    /// refused (Kubernetes-event policies) or the violating pod is killed.
    Enforce {
        policy: String,
        /// Only this stage (repeatable).
        #[arg(long = "stage", value_enum, value_name = "STAGE")]
        stages: Vec<StageArg>,
    },
    /// Stop enforcing a policy in Central (needs -e), at every stage or those given; it still
    /// raises alerts.
    Unenforce {
        policy: String,
        /// Only this stage (repeatable).
        #[arg(long = "stage", value_enum, value_name = "STAGE")]
        stages: Vec<StageArg>,
    },
}

/// A policy's lifecycle stage on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    Build,
    Deploy,
    Runtime,
}

impl From<StageArg> for rampart_policy::LifecycleStage {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Build => rampart_policy::LifecycleStage::Build,
            StageArg::Deploy => rampart_policy::LifecycleStage::Deploy,
            StageArg::Runtime => rampart_policy::LifecycleStage::Runtime,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse_short(s)
        .ok_or_else(|| format!("'{s}' is not a severity (low, medium, high, critical)"))
}

/// Runs a parsed command line, writing to the given streams; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let remote = &cli.remote;
    let result = match cli.command {
        Command::Deployment {
            command: DeploymentCommand::Check(args),
        } => deployment_check(args, remote, out, err),
        Command::Policy { command } => policies::run(command, remote, out, err),
        Command::Image { command } => image_cmd::run(command, remote, out, err),
        Command::Vulndb { command } => vulndb_cmd::run(command, remote, out, err),
        Command::Central { command } => central_cmd::run(command, remote, out),
        Command::Cluster { command } => remote
            .require("rampart cluster")
            .and_then(|r| remote_cmds::cluster(&r, command, out)),
        Command::Alert { command } => remote
            .require("rampart alert")
            .and_then(|r| remote_cmds::alert(&r, command, out)),
        Command::Baseline { command } => remote
            .require("rampart baseline")
            .and_then(|r| baseline_cmd::run(&r, command, out)),
        Command::Netbaseline { command } => remote
            .require("rampart netbaseline")
            .and_then(|r| netbaseline_cmd::run(&r, command, out)),
        Command::Netpol { command } => netpol_cmd::run(command, remote, out, err),
        Command::Sensor(args) => sensor_cmd::run(args, out),
        Command::AdmissionController(c) => admission_cmd::run(c, out),
        Command::Collector(args) => collector_cmd::run(args, out),
        Command::Up(args) => up_cmd::run(args, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn deployment_check(
    args: CheckArgs,
    remote: &remote::RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let report = if args.remote {
        if !args.source.policies.is_empty() || args.source.replace_defaults {
            anyhow::bail!(
                "--remote uses Central's policies; --policies and --replace-defaults are for local checks"
            );
        }
        let central = remote.require("deployment check --remote")?;
        let sources = input::read_sources(&args.files, args.max_input_bytes)?;
        let request = serde_json::json!({
            "policyCategories": args.categories,
            "cluster": args.cluster,
            "include": args.include,
            "exclude": args.exclude,
            "severityAtLeast": args.severity_at_least.map(|s| s.short()),
        });
        remote_cmds::check_remote(&central, &sources, &request)?
    } else {
        local_check(&args)?
    };
    finish_check(&args, &report, out, err)
}

fn local_check(args: &CheckArgs) -> anyhow::Result<rampart_policy::check::Report> {
    let all = policies::load(&args.source)?;
    let selected = policies::select(
        all,
        &rampart_policy::check::Selection {
            stage: rampart_policy::LifecycleStage::Deploy,
            categories: &args.categories,
            severity_at_least: args.severity_at_least,
            include: &args.include,
            exclude: &args.exclude,
        },
    )?;
    let sources = input::read_sources(&args.files, args.max_input_bytes)?;
    let ctx = EvalContext {
        cluster: args.cluster.as_deref(),
        ..EvalContext::default()
    };
    Ok(rampart_policy::check::run_check(&sources, &selected, &ctx))
}

fn finish_check(
    args: &CheckArgs,
    report: &rampart_policy::check::Report,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let fail_on = args.fail_on;
    let failing = move |f: &Finding| match fail_on {
        FailOn::Enforced => f.breaks_build,
        FailOn::Any => true,
        FailOn::Never => false,
    };
    let rendered = output::render(args.output, report, &failing);
    out.write_all(rendered.as_bytes())?;
    if args.output != Format::Table {
        // Machine-readable output goes to stdout alone; the human summary goes to stderr.
        err.write_all(output::summary(report, &failing).as_bytes())?;
    }
    let code = if !report.problems.is_empty() {
        2
    } else if report.active_findings().any(|(_, f)| failing(f)) {
        1
    } else {
        0
    };
    Ok(ExitCode::from(code))
}
