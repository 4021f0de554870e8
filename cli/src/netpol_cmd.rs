//! `rampart netpol ...`: NetworkPolicies generated from observed flows.
//!
//! - `generate PATH...` works offline: workloads, Services, Namespaces and existing
//!   NetworkPolicies from manifests, flows from an export of Central's network graph
//!   (`rampart netpol flows`, or `GET /v1/networkgraph`). Without flows every workload gets a
//!   deny-all policy (DNS and exposed ports kept).
//! - `generate --cluster C` asks Central, which knows the flows, the baselines and the
//!   cluster's policies.
//!
//! Either way the YAML goes to stdout (ready for `kubectl apply -f -`) and what applying it
//! would change and block goes to stderr.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rampart_policy::netpol::{self, Endpoint, Flow, Namespaces, NetworkPolicy, WorkloadRef};
use serde_json::Value;

use crate::remote::{RemoteArgs, encode};

#[derive(Debug, Subcommand)]
pub enum NetpolCommand {
    /// Generate one NetworkPolicy per workload from observed flows, and show what applying them
    /// would change and block.
    Generate(GenerateArgs),
    /// Export a cluster's observed flows from Central (the network graph as JSON), for
    /// `generate --flows` (needs -e).
    Flows {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum From {
    Flows,
    /// Observed flows, leaving out those outside a locked network baseline.
    FlowsExceptAnomalous,
    Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The policies as one YAML stream; the summary on stderr.
    Yaml,
    /// Policies, actions, diffs and blocked flows as JSON.
    Json,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Manifests (files or directories, recursive; `-` for stdin): workloads, Services,
    /// Namespaces and the NetworkPolicies already there. Offline; not with --cluster.
    #[arg(value_name = "PATH", conflicts_with = "cluster")]
    pub paths: Vec<String>,
    /// Observed flows: the JSON of `rampart netpol flows` (Central's network graph).
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    pub flows: Option<String>,
    /// Leave out the flows the export marks anomalous (outside a locked network baseline):
    /// the generated policies then block them (offline, as `--from flows-except-anomalous`).
    #[arg(long)]
    pub skip_anomalous: bool,
    /// Ask Central to generate for this cluster (needs -e).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only the workloads of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// With --cluster: generate from every observed flow, from those but the anomalous ones,
    /// or from the network baselines.
    #[arg(long, value_enum, default_value_t = From::Flows)]
    pub from: From,
    /// Restrict ingress only; leave egress open.
    #[arg(long)]
    pub no_egress: bool,
    /// Print the diff of each replaced policy on stderr.
    #[arg(long)]
    pub diff: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
    /// Largest accepted input (each file, or stdin), in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024, env = "RAMPART_MAX_INPUT_BYTES")]
    pub max_input_bytes: u64,
}

pub fn run(
    command: NetpolCommand,
    remote: &RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        NetpolCommand::Flows { cluster, namespace } => {
            let central = remote.require("rampart netpol flows")?;
            let mut path = format!("/v1/networkgraph?cluster={}", encode(&cluster));
            if let Some(ns) = namespace {
                path.push_str(&format!("&namespace={}", encode(&ns)));
            }
            let graph = central.get(&path)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&graph)?)?;
            Ok(ExitCode::SUCCESS)
        }
        NetpolCommand::Generate(args) if args.cluster.is_some() => {
            remote_generate(args, remote, out, err)
        }
        NetpolCommand::Generate(args) => {
            if args.paths.is_empty() {
                bail!(
                    "name the manifests to generate for (files or directories), or --cluster to ask Central"
                );
            }
            let report = offline(&args)?;
            print(&report, &args, out, err)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn remote_generate(
    args: GenerateArgs,
    remote: &RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let central = remote.require("rampart netpol generate --cluster")?;
    let cluster = args.cluster.clone().unwrap_or_default();
    let mut path = format!(
        "/v1/networkpolicies/generate?cluster={}&from={}&egress={}",
        encode(&cluster),
        match args.from {
            From::Flows => "flows",
            From::FlowsExceptAnomalous => "flows-except-anomalous",
            From::Baseline => "baseline",
        },
        !args.no_egress
    );
    if let Some(ns) = &args.namespace {
        path.push_str(&format!("&namespace={}", encode(ns)));
    }
    let report = central.get(&path)?;
    print(&report, &args, out, err)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the YAML (or the whole report) to `out` and the summary to `err`.
fn print(
    report: &Value,
    args: &GenerateArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let flow_text = |f: &Value| {
        format!(
            "{} → {} {}/{}",
            f["source"].as_str().unwrap_or_default(),
            f["destination"].as_str().unwrap_or_default(),
            f["port"],
            f["protocol"].as_str().unwrap_or_default()
        )
    };
    match args.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        Output::Yaml => out.write_all(report["yaml"].as_str().unwrap_or_default().as_bytes())?,
    }
    let policies = list(&report["policies"]);
    let count = |a: &str| policies.iter().filter(|p| p["action"] == a).count();
    writeln!(
        err,
        "{} NetworkPolicies from {} ({} to add, {} to replace, {} unchanged); {} flows simulated, {} blocked today, {} blocked once applied.",
        policies.len(),
        report["generatedFrom"].as_str().unwrap_or_default(),
        count("ADD"),
        count("REPLACE"),
        count("UNCHANGED"),
        report["flows"],
        list(&report["blockedNow"]).len(),
        list(&report["blockedAfter"]).len(),
    )?;
    for p in &policies {
        let blocks = list(&p["blocks"]);
        if !blocks.is_empty() {
            writeln!(
                err,
                "  {}/{} would block:",
                p["namespace"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default()
            )?;
            for f in &blocks {
                writeln!(err, "    {}", flow_text(f))?;
            }
        }
        if args.diff && p["action"] == "REPLACE" {
            err.write_all(p["diff"].as_str().unwrap_or_default().as_bytes())?;
        }
    }
    for s in list(&report["stale"]) {
        writeln!(
            err,
            "  {} was generated earlier and is no longer needed: delete it",
            s.as_str().unwrap_or_default()
        )?;
    }
    for s in list(&report["skipped"]) {
        writeln!(err, "  skipped {}", s.as_str().unwrap_or_default())?;
    }
    Ok(())
}

/// What the manifests hold, for generation.
#[derive(Default)]
struct Manifests {
    workloads: Vec<WorkloadRef>,
    policies: Vec<NetworkPolicy>,
    namespaces: Namespaces,
    exposing: Vec<Exposing>,
}

/// A NodePort or LoadBalancer Service: it opens its pods' target ports outside the cluster.
struct Exposing {
    namespace: String,
    selector: BTreeMap<String, String>,
    /// (targetPort as written — a number or a port name, protocol).
    ports: Vec<(Value, String)>,
}

fn read_manifests(args: &GenerateArgs) -> anyhow::Result<Manifests> {
    let sources = crate::input::read_sources(&args.paths, args.max_input_bytes)?;
    let mut m = Manifests::default();
    for source in &sources {
        for (i, unit) in rampart_policy::manifest::split(&source.text)
            .into_iter()
            .enumerate()
        {
            let value = if rampart_policy::manifest::looks_like_json(unit.text) {
                serde_json::from_str::<Value>(unit.text)
                    .with_context(|| format!("{}: document {}", source.name, i + 1))?
            } else {
                rampart_policy::yaml::parse_document(unit).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: document {}: invalid YAML: {}",
                        source.name,
                        i + 1,
                        e.message
                    )
                })?
            };
            let items = match (value["kind"].as_str(), value.get("items")) {
                (Some(k), Some(Value::Array(items))) if k.ends_with("List") => items.clone(),
                _ => vec![value],
            };
            for item in items {
                add_object(&mut m, item, &source.name)?;
            }
        }
    }
    // Exposure: NodePort and LoadBalancer Services selecting the pods, and host ports.
    for w in &mut m.workloads {
        for Exposing {
            namespace: ns,
            selector,
            ports,
        } in &m.exposing
        {
            if *ns != w.namespace
                || selector.is_empty()
                || !selector.iter().all(|(k, v)| w.pod_labels.get(k) == Some(v))
            {
                continue;
            }
            for (target, protocol) in ports {
                let port = match target {
                    Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                    Value::String(name) => w.named_ports.get(name).map(|(p, _)| *p),
                    _ => None,
                };
                if let Some(port) = port {
                    w.exposed_ports.insert((port, protocol.clone()));
                }
            }
        }
    }
    Ok(m)
}

fn add_object(m: &mut Manifests, value: Value, file: &str) -> anyhow::Result<()> {
    let namespace = value["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    match value["kind"].as_str().unwrap_or_default() {
        "NetworkPolicy" => {
            let mut p =
                NetworkPolicy::from_value(&value).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            if p.metadata.namespace.is_empty() {
                p.metadata.namespace = namespace;
            }
            m.policies.push(p);
        }
        "Namespace" => {
            let labels =
                serde_json::from_value(value["metadata"]["labels"].clone()).unwrap_or_default();
            m.namespaces.insert(
                value["metadata"]["name"].as_str().unwrap_or_default(),
                labels,
            );
        }
        "Service" => {
            let spec = &value["spec"];
            if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
                let selector = serde_json::from_value(spec["selector"].clone()).unwrap_or_default();
                let ports = spec["ports"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|p| {
                        let target = match &p["targetPort"] {
                            Value::Null => p["port"].clone(),
                            t => t.clone(),
                        };
                        (
                            target,
                            rampart_policy::netpol::protocol(
                                p["protocol"].as_str().unwrap_or_default(),
                            ),
                        )
                    })
                    .collect();
                m.exposing.push(Exposing {
                    namespace,
                    selector,
                    ports,
                });
            }
        }
        _ => {
            let parsed = rampart_policy::manifest::objects_from_value(value, 1, 1);
            for o in parsed.objects {
                let rampart_policy::manifest::ObjectBody::Workload(w) = o.body else {
                    continue;
                };
                let d = rampart_policy::Deployment::from_owned(*w, "default");
                let r = WorkloadRef::from_deployment(&d);
                m.workloads.push(r);
            }
        }
    }
    Ok(())
}

/// The flows of a network graph export, on the workloads of the manifests (by namespace and
/// name), each with whether the export marks it anomalous; flows of workloads the manifests
/// lack are left out and counted.
fn read_flows(
    path: &str,
    workloads: &[WorkloadRef],
    max_bytes: u64,
) -> anyhow::Result<(Vec<(Flow, bool)>, usize)> {
    let sources = crate::input::read_sources(&[path.to_string()], max_bytes)?;
    let text = sources.first().map(|s| s.text.as_str()).unwrap_or_default();
    let graph: Value = serde_json::from_str(text)
        .with_context(|| format!("{path} is not a network graph export (JSON)"))?;
    let (Some(nodes), Some(edges)) = (graph["nodes"].as_array(), graph["edges"].as_array()) else {
        bail!("{path} is not a network graph export: it has no nodes and edges");
    };
    let by_name: HashMap<(&str, &str), usize> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| ((w.namespace.as_str(), w.name.as_str()), i))
        .collect();
    let nets = |list: &[&str]| {
        list.iter()
            .filter_map(|n| n.parse().ok())
            .collect::<Vec<_>>()
    };
    let mut endpoints: HashMap<&str, Option<Endpoint>> = HashMap::new();
    for n in nodes {
        let id = n["id"].as_str().unwrap_or_default();
        let endpoint = match n["kind"].as_str().unwrap_or_default() {
            "DEPLOYMENT" => by_name
                .get(&(
                    n["namespace"].as_str().unwrap_or_default(),
                    n["name"].as_str().unwrap_or_default(),
                ))
                .map(|i| Endpoint::Workload(*i)),
            "CIDR_BLOCK" => n["cidr"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .map(|net| Endpoint::External(vec![net])),
            "PRIVATE" => Some(Endpoint::External(nets(&[
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "100.64.0.0/10",
                "fc00::/7",
            ]))),
            _ => Some(Endpoint::External(nets(&["0.0.0.0/0", "::/0"]))),
        };
        endpoints.insert(id, endpoint);
    }
    let mut flows = BTreeMap::new();
    let mut unknown = 0;
    for e in edges {
        let end = |k: &str| {
            e[k].as_str()
                .and_then(|id| endpoints.get(id).cloned().flatten())
        };
        match (end("source"), end("destination")) {
            (Some(source), Some(destination))
                if matches!(source, Endpoint::Workload(_))
                    || matches!(destination, Endpoint::Workload(_)) =>
            {
                let anomalous = flows
                    .entry(Flow {
                        source,
                        destination,
                        port: e["port"]
                            .as_u64()
                            .and_then(|p| u32::try_from(p).ok())
                            .unwrap_or(0),
                        protocol: e["protocol"].as_str().unwrap_or("TCP").to_ascii_uppercase(),
                    })
                    .or_insert(false);
                *anomalous |= e["anomalous"] == true;
            }
            _ => unknown += 1,
        }
    }
    Ok((flows.into_iter().collect(), unknown))
}

/// Generates and simulates offline; the report has the shape of Central's.
fn offline(args: &GenerateArgs) -> anyhow::Result<Value> {
    if args.from == From::Baseline {
        bail!("network baselines are kept in Central: use --from baseline with --cluster");
    }
    let skip_anomalous = args.skip_anomalous || args.from == From::FlowsExceptAnomalous;
    let m = read_manifests(args)?;
    let (marked, unknown) = match &args.flows {
        Some(path) => read_flows(path, &m.workloads, args.max_input_bytes)?,
        None => (Vec::new(), 0),
    };
    // Anomalous flows left out of generation stay in the simulation: the report shows them
    // blocked.
    let basis: Vec<Flow> = marked
        .iter()
        .filter(|(_, anomalous)| !(skip_anomalous && *anomalous))
        .map(|(f, _)| f.clone())
        .collect();
    let flows: Vec<Flow> = marked.into_iter().map(|(f, _)| f).collect();
    let in_scope = |w: &WorkloadRef| args.namespace.as_deref().is_none_or(|ns| w.namespace == ns);
    let generated_from = match &args.flows {
        Some(path) => format!("flows in {path}"),
        None => "manifests only (no flows)".to_string(),
    };
    let (generated, skipped) = netpol::generate(
        &m.workloads,
        &basis,
        &basis,
        in_scope,
        &netpol::Options {
            egress: !args.no_egress,
            generated_at: rampart_central::policies::now_rfc3339(),
            generated_from: generated_from.clone(),
        },
    );
    let plan = netpol::plan(&m.policies, &generated, &m.namespaces, &m.workloads, &flows);
    let mut report = rampart_central::netpolicies::report(
        rampart_central::netpolicies::Scope {
            cluster_id: String::new(),
            namespace: args.namespace.clone(),
            generated_from,
            egress: !args.no_egress,
        },
        &m.workloads,
        &flows,
        &generated,
        &skipped,
        &plan,
    );
    if unknown > 0 {
        report.skipped.push(format!(
            "{unknown} flows of the export: their deployments are not in the manifests"
        ));
    }
    Ok(serde_json::to_value(report)?)
}
