//! The network graph of a cluster (or one namespace): deployments as nodes, observed flows as
//! edges aggregated per (source, destination, port, protocol) with first and last seen, and
//! peers outside the cluster folded into entities — a user-defined CIDR block it falls in, else
//! "private network" or "Internet" (as ACS shows internal and external entities).
//!
//! Built from the Collectors' flows Central keeps (`activity`, `f/<cluster>\0...`) and the
//! stored deployments; an edge is anomalous when one of its deployments has a user-locked
//! network baseline that lacks the peer (see `netbaselines`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::activity::FlowRecord;
use crate::store::{Backend, Result, Store, Table, WriteBatch};

/// Most deployments one graph shows; beyond, the caller is asked for a namespace.
pub const MAX_NODES: usize = 5_000;
/// User-defined CIDR blocks kept.
pub const MAX_CIDRS: usize = 1_000;

/// A named network outside the cluster (a partner's range, the office, a cloud service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CidrBlock {
    pub name: String,
    pub cidr: String,
}

const CIDRS_KEY: &str = "network/cidr-blocks";

/// The user-defined blocks, parsed (the stored ones were validated).
pub fn parsed_blocks<B: Backend>(store: &Store<B>) -> Result<Vec<(String, ipnet::IpNet)>> {
    Ok(cidr_blocks(store)?
        .into_iter()
        .filter_map(|b| Some((b.name, b.cidr.parse().ok()?)))
        .collect())
}

/// The user-defined blocks, as stored.
pub fn cidr_blocks<B: Backend>(store: &Store<B>) -> Result<Vec<CidrBlock>> {
    Ok(store
        .get_record::<Vec<CidrBlock>>(Table::Meta, CIDRS_KEY)?
        .unwrap_or_default())
}

/// Validates and stores the blocks (replacing them); the errors name each bad one.
pub fn set_cidr_blocks(
    blocks: &[CidrBlock],
    batch: &mut WriteBatch,
) -> std::result::Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if blocks.len() > MAX_CIDRS {
        errors.push(format!("at most {MAX_CIDRS} CIDR blocks"));
    }
    for (i, b) in blocks.iter().enumerate() {
        if b.name.trim().is_empty() || b.name.len() > 200 {
            errors.push(format!(
                "block {}: a name of 1 to 200 characters is required",
                i + 1
            ));
        }
        if b.cidr.parse::<ipnet::IpNet>().is_err() {
            errors.push(format!(
                "block {} ({}): '{}' is not a CIDR block such as 203.0.113.0/24",
                i + 1,
                b.name,
                b.cidr
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    batch
        .put(Table::Meta, CIDRS_KEY, &blocks)
        .map_err(|e| vec![e.to_string()])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// A deployment id, `cidr:<name>`, `private` or `internet`.
    pub id: String,
    /// `DEPLOYMENT`, `CIDR_BLOCK`, `PRIVATE` or `INTERNET`.
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The network of a `CIDR_BLOCK` (so an export of the graph says what the block is).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub source: String,
    pub destination: String,
    pub port: u32,
    pub protocol: String,
    pub first_seen_unix_ms: i64,
    pub last_seen_unix_ms: i64,
    /// A connection of it is open now.
    pub active: bool,
    /// Observed flows folded into it (external peers, repeated connections).
    pub flows: u64,
    /// Outside a user-locked network baseline of one of its deployments.
    pub anomalous: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// Where an external address belongs.
pub fn entity_of(ip: &str, blocks: &[(String, ipnet::IpNet)]) -> Node {
    let addr: Option<IpAddr> = ip.parse().ok();
    if let Some(addr) = addr
        && let Some((name, net)) = blocks
            .iter()
            .filter(|(_, net)| net.contains(&addr))
            .max_by_key(|(_, net)| net.prefix_len())
    {
        return Node {
            id: format!("cidr:{name}"),
            kind: "CIDR_BLOCK",
            name: name.clone(),
            namespace: String::new(),
            cidr: net.to_string(),
        };
    }
    let private = match addr {
        Some(IpAddr::V4(v4)) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        Some(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
        }
        None => true,
    };
    if private {
        Node {
            id: "private".into(),
            kind: "PRIVATE",
            name: "Private network (outside the cluster)".into(),
            namespace: String::new(),
            cidr: String::new(),
        }
    } else {
        Node {
            id: "internet".into(),
            kind: "INTERNET",
            name: "Internet".into(),
            namespace: String::new(),
            cidr: String::new(),
        }
    }
}

/// The entity a CIDR block's addresses belonged to before the block named them (`internet` or
/// `private`), so what a baseline learned before the block existed stays known.
pub fn broader(node: &Node) -> Option<String> {
    if node.kind != "CIDR_BLOCK" {
        return None;
    }
    let net: ipnet::IpNet = node.cidr.parse().ok()?;
    Some(entity_of(&net.network().to_string(), &[]).id)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentName {
    id: String,
    namespace: String,
    name: String,
}

/// The namespaces of `cluster`'s deployments (only their names are decoded).
pub fn namespaces<B: Backend>(store: &Store<B>, cluster: &str) -> Result<Vec<String>> {
    let mut all = std::collections::BTreeSet::new();
    store.for_each_record::<DeploymentName>(
        Table::Deployments,
        &format!("{cluster}\0"),
        |_, d| {
            all.insert(d.namespace);
            Ok(())
        },
    )?;
    Ok(all.into_iter().collect())
}

/// The graph of `cluster` (only the flows touching `namespace`, when given, and the deployments
/// of that namespace). `anomalous(deployment, peer node, port, protocol, ingress)` says whether
/// a flow leaves a locked network baseline.
pub fn build<B: Backend>(
    store: &Store<B>,
    cluster: &str,
    namespace: Option<&str>,
    anomalous: impl Fn(&str, &Node, u32, &str, bool) -> bool,
) -> Result<Graph> {
    let blocks = parsed_blocks(store)?;
    let mut deployments: HashMap<String, (String, String)> = HashMap::new();
    store.for_each_record::<DeploymentName>(
        Table::Deployments,
        &format!("{cluster}\0"),
        |_, d| {
            deployments.insert(d.id, (d.namespace, d.name));
            Ok(())
        },
    )?;
    let in_scope =
        |id: &str| namespace.is_none_or(|ns| deployments.get(id).is_some_and(|(n, _)| n == ns));
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let deployment_node = |id: &str| -> Node {
        let (ns, name) = deployments
            .get(id)
            .cloned()
            .unwrap_or_else(|| (String::new(), format!("(gone) {id}")));
        Node {
            id: id.to_string(),
            kind: "DEPLOYMENT",
            name,
            namespace: ns,
            cidr: String::new(),
        }
    };
    for (id, (ns, _)) in &deployments {
        if namespace.is_none_or(|want| want == ns) {
            nodes.insert(id.clone(), deployment_node(id));
        }
    }
    let mut edges: BTreeMap<(String, String, u32, String), Edge> = BTreeMap::new();
    store.for_each_record::<FlowRecord>(Table::Activity, &format!("f/{cluster}\0"), |_, f| {
        let touches = (!f.source_deployment_id.is_empty() && in_scope(&f.source_deployment_id))
            || (!f.destination_deployment_id.is_empty() && in_scope(&f.destination_deployment_id));
        if !touches {
            return Ok(());
        }
        let end = |id: &str| -> Node {
            if id.is_empty() {
                entity_of(&f.external_peer, &blocks)
            } else {
                deployment_node(id)
            }
        };
        let (src, dst) = (
            end(&f.source_deployment_id),
            end(&f.destination_deployment_id),
        );
        let is_anomalous = (!f.source_deployment_id.is_empty()
            && anomalous(&f.source_deployment_id, &dst, f.port, &f.protocol, false))
            || (!f.destination_deployment_id.is_empty()
                && anomalous(
                    &f.destination_deployment_id,
                    &src,
                    f.port,
                    &f.protocol,
                    true,
                ));
        let key = (src.id.clone(), dst.id.clone(), f.port, f.protocol.clone());
        let e = edges.entry(key).or_insert_with(|| Edge {
            source: src.id.clone(),
            destination: dst.id.clone(),
            port: f.port,
            protocol: f.protocol.clone(),
            first_seen_unix_ms: f.first_seen_unix_ms,
            last_seen_unix_ms: f.last_seen_unix_ms,
            active: false,
            flows: 0,
            anomalous: false,
        });
        e.first_seen_unix_ms = e.first_seen_unix_ms.min(f.first_seen_unix_ms);
        e.last_seen_unix_ms = e.last_seen_unix_ms.max(f.last_seen_unix_ms);
        e.active |= f.active;
        e.flows += 1;
        e.anomalous |= is_anomalous;
        nodes.entry(src.id.clone()).or_insert(src);
        nodes.entry(dst.id.clone()).or_insert(dst);
        Ok(())
    })?;
    Ok(Graph {
        nodes: nodes.into_values().collect(),
        edges: edges.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_peers_fold_into_the_narrowest_block_else_private_or_internet() {
        let blocks: Vec<(String, ipnet::IpNet)> = vec![
            ("partner".into(), "203.0.113.0/24".parse().expect("cidr")),
            (
                "partner-api".into(),
                "203.0.113.128/25".parse().expect("cidr"),
            ),
            ("office".into(), "2001:db8::/32".parse().expect("cidr")),
        ];
        assert_eq!(entity_of("203.0.113.7", &blocks).id, "cidr:partner");
        assert_eq!(entity_of("203.0.113.200", &blocks).id, "cidr:partner-api");
        assert_eq!(entity_of("2001:db8::1", &blocks).id, "cidr:office");
        assert_eq!(entity_of("10.2.3.4", &blocks).kind, "PRIVATE");
        assert_eq!(entity_of("192.168.1.1", &blocks).kind, "PRIVATE");
        assert_eq!(entity_of("100.64.0.1", &blocks).kind, "PRIVATE");
        assert_eq!(entity_of("fd00::1", &blocks).kind, "PRIVATE");
        assert_eq!(entity_of("8.8.8.8", &blocks).kind, "INTERNET");
        assert_eq!(entity_of("2606:4700::1111", &blocks).kind, "INTERNET");
    }

    #[test]
    fn bad_blocks_are_named() {
        let mut batch = WriteBatch::default();
        let errors = set_cidr_blocks(
            &[
                CidrBlock {
                    name: "ok".into(),
                    cidr: "10.0.0.0/8".into(),
                },
                CidrBlock {
                    name: "".into(),
                    cidr: "10.0.0.0/33".into(),
                },
            ],
            &mut batch,
        )
        .expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[1].contains("10.0.0.0/33"), "{errors:?}");
        assert!(batch.is_empty());
    }
}
