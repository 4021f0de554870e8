//! Kubernetes NetworkPolicies: generated from observed flows (or a network baseline), and
//! simulated — which flows a set of policies allows — so a user sees what applying them would
//! block before doing it.
//!
//! ```text
//!  workloads + flows ─▶ generate ─▶ one NetworkPolicy per workload (labelled as generated,
//!                                    DNS egress kept, exposed ports open)
//!  existing + generated + flows ─▶ plan ─▶ per policy: add / replace (with a diff) / unchanged,
//!                                           and the flows it would newly block
//! ```
//!
//! Simulation follows the NetworkPolicy semantics: a pod is isolated in a direction once any
//! policy of that type selects it, and a flow passes when the source's egress and the
//! destination's ingress both allow it. Pod IPs are not known here, so an `ipBlock` is taken to
//! match only peers outside the cluster (as the API documentation advises it be used).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::workload::LabelSelector;

/// Label every generated policy carries; a later generation replaces policies that have it.
pub const GENERATED_LABEL: &str = "network-policy-generator.rampart.io/generated";
/// Annotations of a generated policy.
pub const GENERATED_AT: &str = "network-policy-generator.rampart.io/generated-at";
pub const GENERATED_FROM: &str = "network-policy-generator.rampart.io/generated-from";
/// Pod labels controllers add per pod or per revision: never part of a generated selector.
const UNSTABLE_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/job-completion-index",
    "deployment",
    "deploymentconfig",
];
/// The label Kubernetes sets on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A workload as the generator needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
    /// `Deployment`, `StatefulSet`, ...
    pub kind: String,
    pub pod_labels: BTreeMap<String, String>,
    /// Container port names → (port, protocol), for named ports in policies.
    pub named_ports: BTreeMap<String, (u32, String)>,
    /// Ports reachable from outside the cluster (LoadBalancer, NodePort, host port, route):
    /// (port, protocol) of the container.
    pub exposed_ports: BTreeSet<(u32, String)>,
    /// The pods use the node's network: NetworkPolicies do not apply to them.
    pub host_network: bool,
}

/// A protocol as NetworkPolicies spell it: upper case, TCP when unset.
pub fn protocol(p: &str) -> String {
    if p.is_empty() {
        "TCP".into()
    } else {
        p.to_ascii_uppercase()
    }
}

impl WorkloadRef {
    /// What a workload's own spec says: identity, pod labels, named container ports and host
    /// ports (exposed on the node). Ports exposed by Services and routes are the caller's to
    /// add: they live in other objects.
    pub fn from_deployment(d: &crate::Deployment) -> WorkloadRef {
        let mut w = WorkloadRef {
            namespace: d.namespace.clone(),
            name: d.name.clone(),
            kind: d.kind.as_str().to_string(),
            pod_labels: d.pod_labels.clone(),
            host_network: d.host_network,
            ..WorkloadRef::default()
        };
        for p in d.containers.iter().flat_map(|c| &c.ports) {
            let port = u32::try_from(p.container_port).unwrap_or(0);
            if !p.name.is_empty() {
                w.named_ports
                    .insert(p.name.clone(), (port, protocol(&p.protocol)));
            }
            if p.host_port.is_some_and(|h| h > 0) {
                w.exposed_ports.insert((port, protocol(&p.protocol)));
            }
        }
        w
    }

    /// The pod labels a generated policy selects the pods by.
    pub fn selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: self
                .pod_labels
                .iter()
                .filter(|(k, _)| !UNSTABLE_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Index into the workloads.
    Workload(usize),
    /// Outside the cluster: the networks the peer stands for (one address, a CIDR block, or
    /// the whole Internet).
    External(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    pub source: Endpoint,
    pub destination: Endpoint,
    pub port: u32,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

/// `networking.k8s.io/v1` NetworkPolicy: what the API holds, what simulation reads and what
/// generation writes (fields Rampart does not read are ignored on input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Spec,
}

fn api_version() -> String {
    "networking.k8s.io/v1".into()
}

fn kind() -> String {
    "NetworkPolicy".into()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub pod_selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Peer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Peer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PolicyPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

/// A label selector that orders (peers are sorted for stable output).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Selector {
    /// Whether the labels `get` looks up are selected (an empty selector selects everything).
    fn matches_with<'l>(&self, get: impl Fn(&str) -> Option<&'l str>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|e| {
                let value = get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.iter().any(|x| x == v)),
                    "NotIn" => value.is_none_or(|v| !e.values.iter().any(|x| x == v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }

    fn of(labels: BTreeMap<String, String>) -> Selector {
        Selector {
            match_labels: labels,
            match_expressions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpBlock {
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<u32>,
}

/// `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u32),
    Name(String),
}

impl NetworkPolicy {
    /// Reads a NetworkPolicy from its API object (JSON or YAML already parsed).
    pub fn from_value(value: &serde_json::Value) -> Result<NetworkPolicy, String> {
        NetworkPolicy::deserialize(value).map_err(|e| format!("not a NetworkPolicy: {e}"))
    }

    pub fn is_generated(&self) -> bool {
        self.metadata
            .labels
            .get(GENERATED_LABEL)
            .map(String::as_str)
            == Some("true")
    }

    /// The directions the policy isolates, defaulted as the API server does.
    pub fn isolates(&self) -> (bool, bool) {
        if self.spec.policy_types.is_empty() {
            return (true, !self.spec.egress.is_empty());
        }
        let has = |t: &str| self.spec.policy_types.iter().any(|p| p == t);
        (has("Ingress"), has("Egress"))
    }

    /// The policy as one YAML document.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Several policies as a multi-document YAML stream.
pub fn to_yaml_stream(policies: &[NetworkPolicy]) -> String {
    let mut out = String::new();
    for p in policies {
        out.push_str("---\n");
        out.push_str(&p.to_yaml());
    }
    out
}

/// How generation runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also restrict egress (to the observed peers, DNS kept).
    pub egress: bool,
    /// RFC 3339 time written into the policies (passed in: this crate reads no clock).
    pub generated_at: String,
    /// What the flows came from (`observed flows`, `network baselines`, a file name).
    pub generated_from: String,
}

/// A workload no policy was generated for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub workload: usize,
    pub reason: String,
}

/// One NetworkPolicy per workload in scope, allowing exactly the flows it is known for:
/// ingress from the sources of `incoming` (and from anywhere on exposed ports), egress to the
/// destinations of `outgoing` plus DNS. A workload without such flows gets a deny-all policy
/// (DNS kept). Observed flows are both incoming and outgoing; a network baseline speaks only
/// for its own deployment, so a flow one end learned and the other did not is incoming at the
/// first and not outgoing at the second.
pub fn generate(
    workloads: &[WorkloadRef],
    incoming: &[Flow],
    outgoing: &[Flow],
    in_scope: impl Fn(&WorkloadRef) -> bool,
    options: &Options,
) -> (Vec<NetworkPolicy>, Vec<Skipped>) {
    type PortSet = BTreeSet<(u32, String)>;
    let mut ingress: BTreeMap<usize, BTreeMap<Endpoint, PortSet>> = BTreeMap::new();
    let mut egress: BTreeMap<usize, BTreeMap<Endpoint, PortSet>> = BTreeMap::new();
    for f in incoming {
        if let Endpoint::Workload(d) = f.destination {
            ingress
                .entry(d)
                .or_default()
                .entry(f.source.clone())
                .or_default()
                .insert((f.port, f.protocol.to_ascii_uppercase()));
        }
    }
    for f in outgoing {
        if let Endpoint::Workload(s) = f.source {
            egress
                .entry(s)
                .or_default()
                .entry(f.destination.clone())
                .or_default()
                .insert((f.port, f.protocol.to_ascii_uppercase()));
        }
    }
    let mut policies = Vec::new();
    let mut skipped = Vec::new();
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, w) in workloads.iter().enumerate() {
        if !in_scope(w) {
            continue;
        }
        if w.host_network {
            skipped.push(Skipped {
                workload: i,
                reason: "its pods use the node's network, where NetworkPolicies do not apply"
                    .into(),
            });
            continue;
        }
        let selector = w.selector();
        if selector.match_labels.is_empty() {
            skipped.push(Skipped {
                workload: i,
                reason: "its pods carry no labels a policy could select them by".into(),
            });
            continue;
        }
        let peer_of = |e: &Endpoint| -> Vec<Peer> {
            match e {
                Endpoint::Workload(j) => {
                    let Some(other) = workloads.get(*j) else {
                        return Vec::new();
                    };
                    let pods = Some(Selector::of(other.selector().match_labels));
                    let namespace_selector = (other.namespace != w.namespace).then(|| {
                        Selector::of(BTreeMap::from([(
                            NAMESPACE_NAME_LABEL.to_string(),
                            other.namespace.clone(),
                        )]))
                    });
                    vec![Peer {
                        namespace_selector,
                        pod_selector: pods,
                        ip_block: None,
                    }]
                }
                Endpoint::External(nets) => nets
                    .iter()
                    .map(|n| Peer {
                        ip_block: Some(IpBlock {
                            cidr: n.to_string(),
                            except: Vec::new(),
                        }),
                        ..Peer::default()
                    })
                    .collect(),
            }
        };
        // Peers that share the same ports share a rule: one rule per distinct port set.
        let rules = |by_peer: Option<&BTreeMap<Endpoint, PortSet>>| {
            let mut by_ports: BTreeMap<PortSet, BTreeSet<Peer>> = BTreeMap::new();
            for (peer, ports) in by_peer.into_iter().flatten() {
                by_ports
                    .entry(ports.clone())
                    .or_default()
                    .extend(peer_of(peer));
            }
            by_ports
                .into_iter()
                .filter(|(_, peers)| !peers.is_empty())
                .map(|(ports, peers)| (peers.into_iter().collect::<Vec<_>>(), policy_ports(&ports)))
                .collect::<Vec<_>>()
        };
        let mut spec = Spec {
            pod_selector: selector,
            policy_types: vec!["Ingress".into()],
            ingress: rules(ingress.get(&i))
                .into_iter()
                .map(|(from, ports)| IngressRule { from, ports })
                .collect(),
            egress: Vec::new(),
        };
        if !w.exposed_ports.is_empty() {
            spec.ingress.push(IngressRule {
                from: Vec::new(),
                ports: policy_ports(&w.exposed_ports),
            });
        }
        if options.egress {
            spec.policy_types.push("Egress".into());
            spec.egress = rules(egress.get(&i))
                .into_iter()
                .map(|(to, ports)| EgressRule { to, ports })
                .collect();
            spec.egress.push(EgressRule {
                to: Vec::new(),
                ports: policy_ports(&BTreeSet::from([(53, "UDP".into()), (53, "TCP".into())])),
            });
        }
        let mut name = policy_name(&w.name, "");
        if !names.insert((w.namespace.clone(), name.clone())) {
            name = policy_name(&w.name, &w.kind.to_ascii_lowercase());
            names.insert((w.namespace.clone(), name.clone()));
        }
        policies.push(NetworkPolicy {
            api_version: api_version(),
            kind: kind(),
            metadata: Metadata {
                name,
                namespace: w.namespace.clone(),
                labels: BTreeMap::from([
                    ("app.kubernetes.io/managed-by".into(), "rampart".into()),
                    (GENERATED_LABEL.into(), "true".into()),
                ]),
                annotations: BTreeMap::from([
                    (GENERATED_AT.into(), options.generated_at.clone()),
                    (GENERATED_FROM.into(), options.generated_from.clone()),
                    (
                        "network-policy-generator.rampart.io/workload".into(),
                        format!("{}/{}", w.kind, w.name),
                    ),
                ]),
            },
            spec,
        });
    }
    (policies, skipped)
}

/// `rampart-generated-<name>[-<kind>]`, within the 253 characters of an object name.
fn policy_name(workload: &str, kind: &str) -> String {
    let mut name = format!("rampart-generated-{workload}");
    if !kind.is_empty() {
        name.push('-');
        name.push_str(kind);
    }
    name.truncate(253);
    name
}

fn policy_ports(ports: &BTreeSet<(u32, String)>) -> Vec<PolicyPort> {
    ports
        .iter()
        .map(|(port, protocol)| PolicyPort {
            protocol: Some(protocol.clone()),
            port: (*port != 0).then_some(PortRef::Number(*port)),
            end_port: None,
        })
        .collect()
}

/// Namespace labels, for namespace selectors (every namespace has its name label).
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Namespaces {
    pub fn insert(&mut self, namespace: &str, labels: BTreeMap<String, String>) {
        self.labels.insert(namespace.to_string(), labels);
    }

    fn label<'a>(&'a self, namespace: &'a str, key: &str) -> Option<&'a str> {
        if key == NAMESPACE_NAME_LABEL {
            return Some(namespace);
        }
        self.labels
            .get(namespace)
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }
}

/// Why a flow would not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The source is isolated for egress and no rule allows the flow.
    pub egress_denied: bool,
    /// The destination is isolated for ingress and no rule allows the flow.
    pub ingress_denied: bool,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        !self.egress_denied && !self.ingress_denied
    }
}

/// Whether `policies` let `flow` through (see [`Simulation`] for many flows).
pub fn decide(
    policies: &[NetworkPolicy],
    namespaces: &Namespaces,
    workloads: &[WorkloadRef],
    flow: &Flow,
) -> Verdict {
    Simulation::new(policies, namespaces, workloads).decide(flow)
}

/// A set of policies indexed by the workloads they isolate, to decide many flows.
pub struct Simulation<'a> {
    policies: &'a [NetworkPolicy],
    namespaces: &'a Namespaces,
    workloads: &'a [WorkloadRef],
    /// Per workload: the policies isolating it for ingress, and for egress.
    isolating: Vec<(Vec<usize>, Vec<usize>)>,
}

impl<'a> Simulation<'a> {
    pub fn new(
        policies: &'a [NetworkPolicy],
        namespaces: &'a Namespaces,
        workloads: &'a [WorkloadRef],
    ) -> Simulation<'a> {
        let mut by_ns: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in policies.iter().enumerate() {
            by_ns
                .entry(p.metadata.namespace.as_str())
                .or_default()
                .push(i);
        }
        let isolating = workloads
            .iter()
            .map(|w| {
                let mut ingress = Vec::new();
                let mut egress = Vec::new();
                // Policies select host-network pods but cannot isolate them.
                let policies_of = (!w.host_network)
                    .then(|| by_ns.get(w.namespace.as_str()))
                    .flatten();
                for &i in policies_of.into_iter().flatten() {
                    let p = &policies[i];
                    if !p.spec.pod_selector.matches(&w.pod_labels) {
                        continue;
                    }
                    let (isolates_in, isolates_out) = p.isolates();
                    if isolates_in {
                        ingress.push(i);
                    }
                    if isolates_out {
                        egress.push(i);
                    }
                }
                (ingress, egress)
            })
            .collect();
        Simulation {
            policies,
            namespaces,
            workloads,
            isolating,
        }
    }

    fn workload(&self, e: &Endpoint) -> Option<(usize, &'a WorkloadRef)> {
        match e {
            Endpoint::Workload(i) => self.workloads.get(*i).map(|w| (*i, w)),
            Endpoint::External(_) => None,
        }
    }

    fn port_ok(&self, flow: &Flow, ports: &[PolicyPort]) -> bool {
        let destination = self.workload(&flow.destination).map(|(_, w)| w);
        ports.is_empty()
            || ports.iter().any(|p| {
                p.protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .eq_ignore_ascii_case(&flow.protocol)
                    && match &p.port {
                        None => true,
                        Some(PortRef::Number(n)) => {
                            flow.port >= *n && flow.port <= p.end_port.unwrap_or(*n).max(*n)
                        }
                        Some(PortRef::Name(name)) => destination
                            .and_then(|d| d.named_ports.get(name))
                            .is_some_and(|(n, proto)| {
                                *n == flow.port && proto.eq_ignore_ascii_case(&flow.protocol)
                            }),
                    }
            })
    }

    fn peer_ok(&self, policy_ns: &str, peers: &[Peer], other: &Endpoint) -> bool {
        peers.is_empty()
            || peers.iter().any(|p| match other {
                Endpoint::Workload(_) => {
                    let Some((_, w)) = self.workload(other) else {
                        return false;
                    };
                    if p.ip_block.is_some() {
                        return false;
                    }
                    let ns_ok = match &p.namespace_selector {
                        Some(s) => s.matches_with(|k| self.namespaces.label(&w.namespace, k)),
                        None => w.namespace == policy_ns,
                    };
                    ns_ok
                        && p.pod_selector.as_ref().is_none_or(|s| {
                            s.matches_with(|k| w.pod_labels.get(k).map(String::as_str))
                        })
                }
                Endpoint::External(nets) => p
                    .ip_block
                    .as_ref()
                    .is_some_and(|b| nets.iter().all(|n| ip_block_contains(b, n))),
            })
    }

    /// Whether the policies let `flow` through.
    pub fn decide(&self, flow: &Flow) -> Verdict {
        let mut verdict = Verdict::default();
        if let Some((i, _)) = self.workload(&flow.source) {
            let isolating = &self.isolating[i].1;
            verdict.egress_denied = !isolating.is_empty()
                && !isolating.iter().any(|&p| {
                    let p = &self.policies[p];
                    p.spec.egress.iter().any(|r| {
                        self.peer_ok(&p.metadata.namespace, &r.to, &flow.destination)
                            && self.port_ok(flow, &r.ports)
                    })
                });
        }
        if let Some((i, _)) = self.workload(&flow.destination) {
            let isolating = &self.isolating[i].0;
            verdict.ingress_denied = !isolating.is_empty()
                && !isolating.iter().any(|&p| {
                    let p = &self.policies[p];
                    p.spec.ingress.iter().any(|r| {
                        self.peer_ok(&p.metadata.namespace, &r.from, &flow.source)
                            && self.port_ok(flow, &r.ports)
                    })
                });
        }
        verdict
    }
}

fn ip_block_contains(block: &IpBlock, net: &IpNet) -> bool {
    let Ok(cidr) = block.cidr.parse::<IpNet>() else {
        return false;
    };
    cidr.contains(net)
        && !block.except.iter().any(|x| {
            x.parse::<IpNet>()
                .is_ok_and(|x| x.contains(net) || net.contains(&x))
        })
}

/// The network an address stands for alone (`/32` or `/128`).
pub fn host_net(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

/// An endpoint as people read it: `namespace/name`, or the networks outside the cluster.
pub fn endpoint_name(e: &Endpoint, workloads: &[WorkloadRef]) -> String {
    match e {
        Endpoint::Workload(i) => workloads
            .get(*i)
            .map(|w| format!("{}/{}", w.namespace, w.name))
            .unwrap_or_default(),
        Endpoint::External(nets) => nets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What applying a generated policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No policy of that name exists.
    Add,
    /// A policy of that name exists and differs.
    Replace,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "ADD",
            Action::Replace => "REPLACE",
            Action::Unchanged => "UNCHANGED",
        }
    }
}

/// One generated policy against what the cluster has.
#[derive(Debug, Clone)]
pub struct Change {
    pub policy: NetworkPolicy,
    pub action: Action,
    /// Unified diff from the existing policy of that name (empty when added or unchanged).
    pub diff: String,
    /// Flows (indices into the simulated flows) allowed today that this policy would block.
    pub blocks: Vec<usize>,
}

/// The result of simulating generated policies on top of the existing ones.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Existing policies Rampart generated earlier that the new set no longer has (to delete).
    pub stale: Vec<NetworkPolicy>,
    /// Flows the existing policies already block.
    pub blocked_now: Vec<usize>,
    /// Flows blocked once the generated policies are applied.
    pub blocked_after: Vec<usize>,
}

/// Simulates applying `generated` on a cluster holding `existing`: policies of the same name
/// are replaced, earlier generated policies of the generated namespaces that are no longer
/// produced are removed, and everything else stays (NetworkPolicies add up).
pub fn plan(
    existing: &[NetworkPolicy],
    generated: &[NetworkPolicy],
    namespaces: &Namespaces,
    workloads: &[WorkloadRef],
    flows: &[Flow],
) -> Plan {
    let key = |p: &NetworkPolicy| (p.metadata.namespace.clone(), p.metadata.name.clone());
    let new_keys: BTreeSet<_> = generated.iter().map(key).collect();
    let generated_namespaces: BTreeSet<&str> = generated
        .iter()
        .map(|p| p.metadata.namespace.as_str())
        .collect();
    let stale: Vec<NetworkPolicy> = existing
        .iter()
        .filter(|p| {
            p.is_generated()
                && generated_namespaces.contains(p.metadata.namespace.as_str())
                && !new_keys.contains(&key(p))
        })
        .cloned()
        .collect();
    let mut after: Vec<NetworkPolicy> = existing
        .iter()
        .filter(|p| !new_keys.contains(&key(p)) && !stale.contains(p))
        .cloned()
        .collect();
    // The generated policies are the tail of `after`, from index `kept` on.
    let kept = after.len();
    after.extend(generated.iter().cloned());
    let mut blocked_now = Vec::new();
    let mut blocked_after = Vec::new();
    let mut blocks: Vec<Vec<usize>> = vec![Vec::new(); generated.len()];
    let today = Simulation::new(existing, namespaces, workloads);
    let applied = Simulation::new(&after, namespaces, workloads);
    for (i, f) in flows.iter().enumerate() {
        let now = today.decide(f);
        if !now.allowed() {
            blocked_now.push(i);
        }
        let then = applied.decide(f);
        if then.allowed() {
            continue;
        }
        blocked_after.push(i);
        if !now.allowed() {
            continue;
        }
        // Newly blocked: name the generated policies that isolate the denying side.
        let mut blame = |e: &Endpoint, egress: bool| {
            let Endpoint::Workload(w) = e else { return };
            let Some((ingress, egress_side)) = applied.isolating.get(*w) else {
                return;
            };
            for &p in if egress { egress_side } else { ingress } {
                if let Some(b) = p.checked_sub(kept).and_then(|g| blocks.get_mut(g)) {
                    b.push(i);
                }
            }
        };
        if then.egress_denied {
            blame(&f.source, true);
        }
        if then.ingress_denied {
            blame(&f.destination, false);
        }
    }
    let changes = generated
        .iter()
        .zip(blocks)
        .map(|(p, mut b)| {
            let old = existing.iter().find(|e| key(e) == key(p));
            let (action, diff) = match old {
                None => (Action::Add, String::new()),
                Some(old) if same_rules(old, p) => (Action::Unchanged, String::new()),
                Some(old) => (Action::Replace, diff(&old.to_yaml(), &p.to_yaml())),
            };
            b.dedup();
            Change {
                policy: p.clone(),
                action,
                diff,
                blocks: b,
            }
        })
        .collect();
    Plan {
        changes,
        stale,
        blocked_now,
        blocked_after,
    }
}

/// Equal but for the generation annotations.
fn same_rules(a: &NetworkPolicy, b: &NetworkPolicy) -> bool {
    a.spec == b.spec && a.metadata.labels == b.metadata.labels
}

/// A unified diff of two YAML texts.
pub fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header("existing", "generated")
        .to_string()
}

#[cfg(test)]
mod tests;
