//! NetworkPolicies generated for a cluster (or namespace) from what Central has seen — the
//! observed flows, or the deployments' network baselines — and simulated against the
//! NetworkPolicies the Sensor reported, on the observed flows.
//!
//! ```text
//!  Deployments ─▶ WorkloadRef (pod labels, named ports, exposure)
//!  flows (activity f/…) or baselines ─▶ netpol::Flow ─▶ netpol::generate
//!  Resources NetworkPolicy + Namespace ─▶ netpol::plan(existing, generated, observed flows)
//! ```
//!
//! Nothing is applied: the result is YAML for review (`kubectl apply -f`), a diff per policy
//! and the flows each would block.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use rampart_policy::netpol::{
    self, Endpoint, Flow, Namespaces, NetworkPolicy, WorkloadRef, protocol,
};
use serde::Serialize;

use crate::activity::FlowRecord;
use crate::core::Core;
use crate::model::{DeploymentRecord, ResourceRecord};
use crate::store::{Backend, Result, Table};

/// What the policies are generated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Every flow observed (what runs today keeps running).
    Flows,
    /// The observed flows but those outside a locked network baseline (the graph's red ones):
    /// the policies block them.
    FlowsExceptAnomalous,
    /// The network baselines (learned and accepted peers; rejected and anomalous flows end up
    /// blocked).
    Baselines,
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "flows" | "" => Some(Source::Flows),
            "flows-except-anomalous" => Some(Source::FlowsExceptAnomalous),
            "baseline" | "baselines" => Some(Source::Baselines),
            _ => None,
        }
    }

    /// The value of `from=` that asks for this source.
    pub fn as_param(self) -> &'static str {
        match self {
            Source::Flows => "flows",
            Source::FlowsExceptAnomalous => "flows-except-anomalous",
            Source::Baselines => "baseline",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Source::Flows => "observed flows",
            Source::FlowsExceptAnomalous => "observed flows except anomalous ones",
            Source::Baselines => "network baselines",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    pub source: String,
    pub destination: String,
    pub port: u32,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub namespace: String,
    pub name: String,
    /// `Kind/name` of the workload the policy is for.
    pub workload: String,
    /// `ADD`, `REPLACE` or `UNCHANGED`.
    pub action: &'static str,
    pub yaml: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    /// Observed flows allowed today that this policy would block.
    pub blocks: Vec<FlowView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cluster_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub generated_from: String,
    pub egress: bool,
    pub policies: Vec<PolicyView>,
    /// Policies Rampart generated earlier that this set drops (`namespace/name`).
    pub stale: Vec<String>,
    /// Workloads no policy could be generated for, with the reason.
    pub skipped: Vec<String>,
    /// Distinct observed flows simulated.
    pub flows: usize,
    pub blocked_now: Vec<FlowView>,
    pub blocked_after: Vec<FlowView>,
    /// Every generated policy, one YAML stream ready for `kubectl apply -f -`.
    pub yaml: String,
}

/// The cluster's workloads, indexed by deployment id.
struct Inventory {
    workloads: Vec<WorkloadRef>,
    index: HashMap<String, usize>,
}

fn inventory<B: Backend>(core: &Core<B>, cluster: &str) -> Result<Inventory> {
    let mut inv = Inventory {
        workloads: Vec::new(),
        index: HashMap::new(),
    };
    core.store.for_each_record::<DeploymentRecord>(
        Table::Deployments,
        &format!("{cluster}\0"),
        |_, record| {
            let Some(d) = record.normalize() else {
                return Ok(());
            };
            let mut w = WorkloadRef::from_deployment(&d);
            for e in record.context.iter().flat_map(|c| &c.exposures) {
                if matches!(e.level.as_str(), "EXTERNAL" | "NODE" | "HOST" | "ROUTE") {
                    w.exposed_ports.insert((
                        u32::try_from(e.container_port).unwrap_or(0),
                        protocol(&e.protocol),
                    ));
                }
            }
            inv.index.insert(record.id.clone(), inv.workloads.len());
            inv.workloads.push(w);
            Ok(())
        },
    )?;
    Ok(inv)
}

const PRIVATE_RANGES: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// The networks an external peer stands for in a generated policy: the user's CIDR block it
/// falls in, the address itself when it is private, else the whole Internet of its family.
fn external_of(address: &str, blocks: &[(String, ipnet::IpNet)]) -> Vec<ipnet::IpNet> {
    let node = crate::netgraph::entity_of(address, blocks);
    if let Some(name) = node.id.strip_prefix("cidr:") {
        return blocks
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, net)| *net)
            .collect();
    }
    let addr = address.parse::<IpAddr>();
    if let Ok(addr) = addr
        && node.kind == "PRIVATE"
    {
        return vec![netpol::host_net(addr)];
    }
    let v6 = matches!(addr, Ok(IpAddr::V6(_)));
    entity_nets("internet", &[])
        .into_iter()
        .filter(|n| matches!(n, ipnet::IpNet::V6(_)) == v6)
        .collect()
}

/// The networks a baseline's entity peer stands for.
fn entity_nets(peer: &str, blocks: &[(String, ipnet::IpNet)]) -> Vec<ipnet::IpNet> {
    if let Some(name) = peer.strip_prefix("cidr:") {
        return blocks
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, net)| *net)
            .collect();
    }
    let nets: &[&str] = match peer {
        "private" => PRIVATE_RANGES,
        _ => &["0.0.0.0/0", "::/0"],
    };
    nets.iter().filter_map(|n| n.parse().ok()).collect()
}

/// The distinct observed flows of the cluster that touch a known workload, each with whether
/// it leaves a locked network baseline of one of its ends (as the graph marks it; only when
/// `mark` asks for it, else false).
fn observed_flows<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    inv: &Inventory,
    blocks: &[(String, ipnet::IpNet)],
    mark: bool,
) -> Result<Vec<(Flow, bool)>> {
    let mut flows: BTreeMap<Flow, bool> = BTreeMap::new();
    core.store.for_each_record::<FlowRecord>(
        Table::Activity,
        &format!("f/{cluster}\0"),
        |_, f| {
            let end = |id: &str| -> Option<Endpoint> {
                if id.is_empty() {
                    Some(Endpoint::External(external_of(&f.external_peer, blocks)))
                } else {
                    inv.index.get(id).map(|i| Endpoint::Workload(*i))
                }
            };
            if let (Some(source), Some(destination)) = (
                end(&f.source_deployment_id),
                end(&f.destination_deployment_id),
            ) && (matches!(source, Endpoint::Workload(_))
                || matches!(destination, Endpoint::Workload(_)))
            {
                let node = |id: &str| {
                    if id.is_empty() {
                        crate::netgraph::entity_of(&f.external_peer, blocks)
                    } else {
                        crate::netgraph::Node {
                            id: id.to_string(),
                            kind: "DEPLOYMENT",
                            name: String::new(),
                            namespace: String::new(),
                            cidr: String::new(),
                        }
                    }
                };
                let anomalous_for = |deployment: &str, peer: &str, ingress: bool| {
                    if !mark || deployment.is_empty() {
                        return false;
                    }
                    let peer = node(peer);
                    let as_peer = |id: String| crate::netbaselines::Peer {
                        ingress,
                        peer: id,
                        port: f.port,
                        protocol: f.protocol.clone(),
                    };
                    core.netbaselines.is_anomalous(
                        cluster,
                        deployment,
                        &as_peer(peer.id.clone()),
                        crate::netgraph::broader(&peer).map(as_peer).as_ref(),
                    )
                };
                let anomalous =
                    anomalous_for(&f.source_deployment_id, &f.destination_deployment_id, false)
                        || anomalous_for(
                            &f.destination_deployment_id,
                            &f.source_deployment_id,
                            true,
                        );
                *flows
                    .entry(Flow {
                        source,
                        destination,
                        port: f.port,
                        protocol: protocol(&f.protocol),
                    })
                    .or_insert(false) |= anomalous;
            }
            Ok(())
        },
    )?;
    Ok(flows.into_iter().collect())
}

/// The flows the network baselines of the workloads allow (rejected peers left out), as
/// (incoming, outgoing): each baseline speaks for its own deployment's side only.
fn baseline_flows<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    inv: &Inventory,
    blocks: &[(String, ipnet::IpNet)],
) -> (Vec<Flow>, Vec<Flow>) {
    let mut incoming = BTreeSet::new();
    let mut outgoing = BTreeSet::new();
    for (id, &i) in &inv.index {
        let Some(baseline) = core.netbaselines.get(cluster, id) else {
            continue;
        };
        for (peer, _, _) in &baseline.peers {
            if baseline.rejected.contains(peer) {
                continue;
            }
            let other = match inv.index.get(&peer.peer) {
                Some(j) => Endpoint::Workload(*j),
                None => Endpoint::External(entity_nets(&peer.peer, blocks)),
            };
            let (source, destination, side) = if peer.ingress {
                (other, Endpoint::Workload(i), &mut incoming)
            } else {
                (Endpoint::Workload(i), other, &mut outgoing)
            };
            side.insert(Flow {
                source,
                destination,
                port: peer.port,
                protocol: protocol(&peer.protocol),
            });
        }
    }
    (
        incoming.into_iter().collect(),
        outgoing.into_iter().collect(),
    )
}

fn existing_policies<B: Backend>(
    core: &Core<B>,
    cluster: &str,
) -> Result<(Vec<NetworkPolicy>, Namespaces)> {
    let mut policies = Vec::new();
    core.store.for_each_record::<ResourceRecord>(
        Table::Resources,
        &format!("{cluster}\0NetworkPolicy\0"),
        |_, r| {
            if let Ok(value) = r.object_value()
                && let Ok(mut p) = NetworkPolicy::from_value(&value)
            {
                if p.metadata.namespace.is_empty() {
                    p.metadata.namespace = r.namespace.clone();
                }
                policies.push(p);
            }
            Ok(())
        },
    )?;
    let mut namespaces = Namespaces::default();
    core.store.for_each_record::<ResourceRecord>(
        Table::Resources,
        &format!("{cluster}\0Namespace\0"),
        |_, r| {
            let labels = r
                .object_value()
                .ok()
                .and_then(|v| {
                    serde_json::from_value::<BTreeMap<String, String>>(
                        v.get("metadata")?.get("labels")?.clone(),
                    )
                    .ok()
                })
                .unwrap_or_default();
            namespaces.insert(&r.name, labels);
            Ok(())
        },
    )?;
    Ok((policies, namespaces))
}

fn view(f: &Flow, workloads: &[WorkloadRef]) -> FlowView {
    FlowView {
        source: netpol::endpoint_name(&f.source, workloads),
        destination: netpol::endpoint_name(&f.destination, workloads),
        port: f.port,
        protocol: f.protocol.clone(),
    }
}

/// Generates the policies of `cluster` (workloads of `namespace` only, when given) and
/// simulates them on the observed flows of those workloads.
pub fn generate<B: Backend>(
    core: &Core<B>,
    cluster: &str,
    namespace: Option<&str>,
    source: Source,
    egress: bool,
    now_rfc3339: String,
) -> Result<Report> {
    let inv = inventory(core, cluster)?;
    let blocks = crate::netgraph::parsed_blocks(&core.store)?;
    let marked = observed_flows(
        core,
        cluster,
        &inv,
        &blocks,
        source == Source::FlowsExceptAnomalous,
    )?;
    let (incoming, outgoing) = match source {
        Source::Flows | Source::FlowsExceptAnomalous => {
            let basis: Vec<Flow> = marked
                .iter()
                .filter(|(_, anomalous)| source == Source::Flows || !anomalous)
                .map(|(f, _)| f.clone())
                .collect();
            (basis.clone(), basis)
        }
        Source::Baselines => baseline_flows(core, cluster, &inv, &blocks),
    };
    let observed: Vec<Flow> = marked.into_iter().map(|(f, _)| f).collect();
    let in_ns = |w: &WorkloadRef| namespace.is_none_or(|ns| w.namespace == ns);
    let (generated, skipped) = netpol::generate(
        &inv.workloads,
        &incoming,
        &outgoing,
        in_ns,
        &netpol::Options {
            egress,
            generated_at: now_rfc3339,
            generated_from: source.describe().into(),
        },
    );
    let (existing, namespaces) = existing_policies(core, cluster)?;
    // Simulate on the flows that touch the workloads in scope.
    let touches = |e: &Endpoint| match e {
        Endpoint::Workload(i) => inv.workloads.get(*i).is_some_and(in_ns),
        Endpoint::External(_) => false,
    };
    let simulated: Vec<Flow> = observed
        .into_iter()
        .filter(|f| touches(&f.source) || touches(&f.destination))
        .collect();
    let plan = netpol::plan(
        &existing,
        &generated,
        &namespaces,
        &inv.workloads,
        &simulated,
    );
    Ok(report(
        Scope {
            cluster_id: cluster.to_string(),
            namespace: namespace.map(str::to_string),
            generated_from: source.describe().to_string(),
            egress,
        },
        &inv.workloads,
        &simulated,
        &generated,
        &skipped,
        &plan,
    ))
}

/// What a report is about.
pub struct Scope {
    pub cluster_id: String,
    pub namespace: Option<String>,
    pub generated_from: String,
    pub egress: bool,
}

/// The report of a generation and its simulation on `flows` (shared with the CLI's offline
/// `rampart netpol generate`).
pub fn report(
    scope: Scope,
    workloads: &[WorkloadRef],
    flows: &[Flow],
    generated: &[NetworkPolicy],
    skipped: &[netpol::Skipped],
    plan: &netpol::Plan,
) -> Report {
    let views = |ids: &[usize]| -> Vec<FlowView> {
        ids.iter()
            .filter_map(|i| flows.get(*i))
            .map(|f| view(f, workloads))
            .collect()
    };
    Report {
        cluster_id: scope.cluster_id,
        namespace: scope.namespace,
        generated_from: scope.generated_from,
        egress: scope.egress,
        yaml: netpol::to_yaml_stream(generated),
        policies: plan
            .changes
            .iter()
            .map(|c| PolicyView {
                namespace: c.policy.metadata.namespace.clone(),
                name: c.policy.metadata.name.clone(),
                workload: c
                    .policy
                    .metadata
                    .annotations
                    .get("network-policy-generator.rampart.io/workload")
                    .cloned()
                    .unwrap_or_default(),
                action: c.action.as_str(),
                yaml: c.policy.to_yaml(),
                diff: c.diff.clone(),
                blocks: views(&c.blocks),
            })
            .collect(),
        stale: plan
            .stale
            .iter()
            .map(|p| format!("{}/{}", p.metadata.namespace, p.metadata.name))
            .collect(),
        skipped: skipped
            .iter()
            .filter_map(|s| {
                let w = workloads.get(s.workload)?;
                Some(format!("{}/{}: {}", w.namespace, w.name, s.reason))
            })
            .collect(),
        flows: flows.len(),
        blocked_now: views(&plan.blocked_now),
        blocked_after: views(&plan.blocked_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_peers_become_their_block_their_address_or_the_internet_of_their_family() {
        let blocks = vec![(
            "partner".to_string(),
            "203.0.113.0/24".parse::<ipnet::IpNet>().expect("net"),
        )];
        let nets = |a: &str| {
            external_of(a, &blocks)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(nets("203.0.113.7"), ["203.0.113.0/24"]);
        assert_eq!(nets("10.1.2.3"), ["10.1.2.3/32"]);
        assert_eq!(nets("8.8.8.8"), ["0.0.0.0/0"]);
        assert_eq!(nets("2606:4700::1111"), ["::/0"]);
        assert_eq!(entity_nets("private", &blocks).len(), PRIVATE_RANGES.len());
        assert_eq!(entity_nets("cidr:partner", &blocks)[0], blocks[0].1);
    }
}
