//! The network graph page (`/ui/network`), drawn on the server as SVG, and the NetworkPolicy
//! generation page (`/ui/network/policies`, with its YAML download).
//!
//! Layout, readable at a few hundred deployments: one box per namespace holding its
//! deployments on a grid, boxes packed in rows (tallest first), entities outside the cluster in
//! a column on the right. Edges join node centres, one line per (source, destination) with
//! every port in its tooltip; anomalous ones are red, thicker and drawn last. No script: each
//! deployment links to its page, each shape has a `<title>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{UserView, off_thread, query_params, refused, render, time_text, urlencode};
use crate::api::Shared;
use crate::netgraph::{Edge, Graph, Node};
use crate::store::Backend;

const CELL_W: f64 = 150.0;
const CELL_H: f64 = 64.0;
const BOX_PAD: f64 = 16.0;
const BOX_HEADER: f64 = 26.0;
const GAP: f64 = 28.0;
const NODE_R: f64 = 9.0;
/// Flows listed under the graph (anomalous first).
const MAX_ROWS: usize = 500;
/// Beyond this many deployments the page asks for a namespace.
const MAX_DRAWN: usize = 1_500;

/// Escapes text for XML (element content and attribute values).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Each node's name as people read it: `namespace/name` for deployments.
fn names(graph: &Graph) -> HashMap<&str, String> {
    graph
        .nodes
        .iter()
        .map(|n| {
            let name = if n.namespace.is_empty() {
                n.name.clone()
            } else {
                format!("{}/{}", n.namespace, n.name)
            };
            (n.id.as_str(), name)
        })
        .collect()
}

/// Where each node sits.
struct Placed {
    x: f64,
    y: f64,
}

/// The graph as an SVG document (no script), deployments linking to their pages.
pub fn svg(graph: &Graph, cluster: &str) -> String {
    let mut by_ns: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    let mut external: Vec<&Node> = Vec::new();
    for n in &graph.nodes {
        if n.kind == "DEPLOYMENT" {
            by_ns.entry(n.namespace.as_str()).or_default().push(n);
        } else {
            external.push(n);
        }
    }
    let anomalous_nodes: BTreeSet<&str> = graph
        .edges
        .iter()
        .filter(|e| e.anomalous)
        .flat_map(|e| [e.source.as_str(), e.destination.as_str()])
        .collect();
    // Namespace boxes: a near-square grid each, packed in shelves (tallest first).
    struct NsBox<'a> {
        name: &'a str,
        nodes: Vec<&'a Node>,
        cols: usize,
        w: f64,
        h: f64,
        x: f64,
        y: f64,
    }
    let mut boxes: Vec<NsBox> = by_ns
        .into_iter()
        .map(|(name, nodes)| {
            let cols = (nodes.len() as f64).sqrt().ceil().max(1.0) as usize;
            let rows = nodes.len().div_ceil(cols);
            NsBox {
                name,
                cols,
                w: cols as f64 * CELL_W + 2.0 * BOX_PAD,
                h: rows as f64 * CELL_H + BOX_HEADER + BOX_PAD,
                nodes,
                x: 0.0,
                y: 0.0,
            }
        })
        .collect();
    boxes.sort_by(|a, b| b.h.total_cmp(&a.h).then(a.name.cmp(b.name)));
    let area: f64 = boxes.iter().map(|b| (b.w + GAP) * (b.h + GAP)).sum();
    let widest = boxes.iter().map(|b| b.w).fold(0.0, f64::max);
    let shelf_width = (area.sqrt() * 1.4).max(widest).max(600.0);
    let (mut x, mut y, mut shelf_h, mut used_w) = (GAP, GAP, 0.0_f64, 0.0_f64);
    for b in &mut boxes {
        if x > GAP && x + b.w > shelf_width {
            x = GAP;
            y += shelf_h + GAP;
            shelf_h = 0.0;
        }
        b.x = x;
        b.y = y;
        x += b.w + GAP;
        shelf_h = shelf_h.max(b.h);
        used_w = used_w.max(x);
    }
    let cluster_h = if boxes.is_empty() { GAP } else { y + shelf_h };
    let mut at: HashMap<&str, Placed> = HashMap::new();
    for b in &boxes {
        for (i, n) in b.nodes.iter().enumerate() {
            let (col, row) = (i % b.cols, i / b.cols);
            at.insert(
                n.id.as_str(),
                Placed {
                    x: b.x + BOX_PAD + col as f64 * CELL_W + CELL_W / 2.0,
                    y: b.y + BOX_HEADER + row as f64 * CELL_H + CELL_H / 2.0 - 6.0,
                },
            );
        }
    }
    let ext_x = used_w.max(GAP) + 2.0 * GAP + CELL_W / 2.0;
    for (i, n) in external.iter().enumerate() {
        at.insert(
            n.id.as_str(),
            Placed {
                x: ext_x,
                y: GAP + BOX_HEADER + i as f64 * CELL_H + CELL_H / 2.0,
            },
        );
    }
    let width = if external.is_empty() {
        used_w.max(GAP) + GAP
    } else {
        ext_x + CELL_W / 2.0 + GAP
    };
    let height = cluster_h
        .max(GAP + BOX_HEADER + external.len() as f64 * CELL_H)
        .max(120.0)
        + GAP;

    let mut out = String::with_capacity(256 + graph.nodes.len() * 300 + graph.edges.len() * 200);
    let _ = write!(
        out,
        r#"<svg id="graph" class="netgraph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="Network graph: {} deployments, {} external entities, {} flows">"#,
        graph.nodes.len() - external.len(),
        external.len(),
        graph.edges.len()
    );
    out.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker><marker id="arrow-bad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead-bad"/></marker></defs>"#);
    for b in &boxes {
        let _ = write!(
            out,
            r#"<g class="ns"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6"/><text x="{:.1}" y="{:.1}" class="ns-name">{}</text></g>"#,
            b.x,
            b.y,
            b.w,
            b.h,
            b.x + 8.0,
            b.y + 17.0,
            esc(&short(b.name, (b.w / 8.0) as usize))
        );
    }
    if !external.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="ns-name" text-anchor="middle">Outside the cluster</text>"#,
            ext_x,
            GAP + 17.0
        );
    }
    // One line per directed pair; its ports in the tooltip.
    let mut pairs: BTreeMap<(&str, &str), Vec<&Edge>> = BTreeMap::new();
    for e in &graph.edges {
        pairs
            .entry((e.source.as_str(), e.destination.as_str()))
            .or_default()
            .push(e);
    }
    let name_of = names(graph);
    let mut lines: Vec<(bool, String)> = Vec::with_capacity(pairs.len());
    for ((src, dst), edges) in &pairs {
        let (Some(a), Some(b)) = (at.get(src), at.get(dst)) else {
            continue;
        };
        let bad = edges.iter().any(|e| e.anomalous);
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        // Stop at the circles' edges; a self-loop is skipped (drawn as the node's ring).
        if len < 1.5 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let ports: Vec<String> = edges
            .iter()
            .map(|e| {
                format!(
                    "{}/{}{}",
                    e.port,
                    e.protocol,
                    if e.anomalous { " (anomalous)" } else { "" }
                )
            })
            .collect();
        let last = edges.iter().map(|e| e.last_seen_unix_ms).max().unwrap_or(0);
        let mut line = String::new();
        let _ = write!(
            line,
            r#"<line class="edge{}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" marker-end="url(#{})"><title>{} → {}: {} (last seen {})</title></line>"#,
            if bad { " anomalous" } else { "" },
            a.x + ux * NODE_R,
            a.y + uy * NODE_R,
            b.x - ux * (NODE_R + 2.0),
            b.y - uy * (NODE_R + 2.0),
            if bad { "arrow-bad" } else { "arrow" },
            esc(name_of.get(src).map(String::as_str).unwrap_or(src)),
            esc(name_of.get(dst).map(String::as_str).unwrap_or(dst)),
            esc(&ports.join(", ")),
            esc(&time_text(last))
        );
        lines.push((bad, line));
    }
    // Normal edges first, anomalous ones on top.
    lines.sort_by_key(|(bad, _)| *bad);
    for (_, l) in &lines {
        out.push_str(l);
    }
    for n in &graph.nodes {
        let Some(p) = at.get(n.id.as_str()) else {
            continue;
        };
        let class = match (n.kind, anomalous_nodes.contains(n.id.as_str())) {
            ("DEPLOYMENT", false) => "node",
            ("DEPLOYMENT", true) => "node anomalous",
            (_, false) => "node external",
            (_, true) => "node external anomalous",
        };
        let label = short(&n.name, 20);
        let title = match n.kind {
            "DEPLOYMENT" => format!("Deployment {}/{}", n.namespace, n.name),
            "CIDR_BLOCK" => format!("{} ({})", n.name, n.cidr),
            _ => n.name.clone(),
        };
        let shape = if n.kind == "DEPLOYMENT" {
            format!(r#"<circle cx="{:.1}" cy="{:.1}" r="{NODE_R}"/>"#, p.x, p.y)
        } else {
            format!(
                r#"<rect x="{:.1}" y="{:.1}" width="{}" height="{}" rx="3"/>"#,
                p.x - NODE_R,
                p.y - NODE_R,
                2.0 * NODE_R,
                2.0 * NODE_R
            )
        };
        let body = format!(
            r#"<g class="{class}" data-id="{}">{shape}<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><title>{}</title></g>"#,
            esc(&n.id),
            p.x,
            p.y + NODE_R + 14.0,
            esc(&label),
            esc(&title)
        );
        if n.kind == "DEPLOYMENT" && !n.name.starts_with("(gone)") {
            let _ = write!(
                out,
                r#"<a href="/ui/risk/{}/{}">{body}</a>"#,
                esc(&urlencode(cluster)),
                esc(&urlencode(&n.id))
            );
        } else {
            out.push_str(&body);
        }
    }
    out.push_str("</svg>");
    out
}

pub(super) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

pub(super) struct FlowRow {
    source: String,
    destination: String,
    port: String,
    flows: u64,
    last_seen: String,
    anomalous: bool,
    active: bool,
}

#[derive(Template)]
#[template(path = "network.html")]
struct NetworkPage {
    user: Option<UserView>,
    page: &'static str,
    clusters: Vec<Choice>,
    namespaces: Vec<Choice>,
    only_anomalous: bool,
    cluster: String,
    deployments: usize,
    externals: usize,
    edges: usize,
    anomalous: usize,
    svg: String,
    note: String,
    rows: Vec<FlowRow>,
    more_rows: usize,
    generate_link: String,
}

/// The cluster asked for, or the first one; the list for the picker.
fn pick_cluster<B: Backend>(
    api: &Shared<B>,
    wanted: Option<&String>,
) -> Result<(String, Vec<Choice>), crate::store::Error> {
    let clusters = api.core.store.clusters()?;
    let chosen = wanted
        .and_then(|w| clusters.iter().find(|c| &c.id == w || &c.name == w))
        .or(clusters.first())
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let choices = clusters
        .iter()
        .map(|c| Choice {
            value: c.id.clone(),
            label: c.name.clone(),
            selected: c.id == chosen,
        })
        .collect();
    Ok((chosen, choices))
}

pub(super) async fn network<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = query_params(raw.as_deref());
    let only_anomalous = params.get("anomalous").is_some_and(|v| v == "1");
    let wanted_ns = params.get("namespace").filter(|n| !n.is_empty()).cloned();
    let shared = Arc::clone(&api);
    let wanted = params.get("cluster").cloned();
    let ns = wanted_ns.clone();
    let loaded = off_thread(move || {
        let (cluster, clusters) = pick_cluster(&shared, wanted.as_ref())?;
        if cluster.is_empty() {
            return Ok((cluster, clusters, Graph::default(), Vec::new(), None));
        }
        // All namespaces for the picker, then the view.
        let all = crate::netgraph::namespaces(&shared.core.store, &cluster)?;
        match crate::api::graph_of(&shared.core, &cluster, ns.as_deref()) {
            Ok(g) => Ok((cluster, clusters, g, all, None)),
            Err(crate::api::ApiError::BadRequest(m)) => {
                Ok((cluster, clusters, Graph::default(), all, Some(m)))
            }
            Err(e) => Err(crate::store::Error::Backend(e.to_string())),
        }
    })
    .await;
    let (cluster, clusters, mut graph, namespaces, error) = match loaded {
        Ok(v) => v,
        Err(r) => return r,
    };
    if only_anomalous {
        graph.edges.retain(|e| e.anomalous);
        let keep: BTreeSet<String> = graph
            .edges
            .iter()
            .flat_map(|e| [e.source.clone(), e.destination.clone()])
            .collect();
        graph.nodes.retain(|n| keep.contains(&n.id));
    }
    let deployments = graph
        .nodes
        .iter()
        .filter(|n| n.kind == "DEPLOYMENT")
        .count();
    let (svg, note) = if let Some(m) = error {
        (String::new(), m)
    } else if cluster.is_empty() {
        (
            String::new(),
            "No cluster is connected yet: add one on the Clusters page.".into(),
        )
    } else if deployments > MAX_DRAWN {
        (
            String::new(),
            format!(
                "{deployments} deployments are too many to draw at once: choose a namespace, or show only anomalous flows."
            ),
        )
    } else if graph.edges.is_empty() {
        (
            svg(&graph, &cluster),
            "No flows observed yet: the Collectors report connections as they happen.".into(),
        )
    } else {
        (svg(&graph, &cluster), String::new())
    };
    let names = names(&graph);
    let mut ordered: Vec<&Edge> = graph.edges.iter().collect();
    ordered.sort_by(|a, b| {
        b.anomalous
            .cmp(&a.anomalous)
            .then(b.last_seen_unix_ms.cmp(&a.last_seen_unix_ms))
    });
    let rows = ordered
        .iter()
        .take(MAX_ROWS)
        .map(|e| FlowRow {
            source: names.get(e.source.as_str()).cloned().unwrap_or_default(),
            destination: names
                .get(e.destination.as_str())
                .cloned()
                .unwrap_or_default(),
            port: format!("{}/{}", e.port, e.protocol),
            flows: e.flows,
            last_seen: time_text(e.last_seen_unix_ms),
            anomalous: e.anomalous,
            active: e.active,
        })
        .collect();
    let namespace = wanted_ns.unwrap_or_default();
    let generate_link = format!(
        "/ui/network/policies?cluster={}&namespace={}",
        urlencode(&cluster),
        urlencode(&namespace)
    );
    render(
        &NetworkPage {
            user: Some(user),
            page: "network",
            namespaces: namespaces
                .into_iter()
                .map(|n| Choice {
                    selected: n == namespace,
                    label: n.clone(),
                    value: n,
                })
                .collect(),
            clusters,
            only_anomalous,
            deployments,
            externals: graph.nodes.len() - deployments,
            edges: graph.edges.len(),
            anomalous: graph.edges.iter().filter(|e| e.anomalous).count(),
            more_rows: graph.edges.len().saturating_sub(MAX_ROWS),
            svg,
            note,
            rows,
            generate_link,
            cluster,
        },
        StatusCode::OK,
    )
}

pub(super) struct PolicyCard {
    namespace: String,
    name: String,
    workload: String,
    action: &'static str,
    yaml: String,
    diff: String,
    blocks: Vec<String>,
}

#[derive(Template)]
#[template(path = "network_policies.html")]
struct PoliciesPage {
    user: Option<UserView>,
    page: &'static str,
    clusters: Vec<Choice>,
    namespace: String,
    from: &'static str,
    egress: bool,
    generated_from: String,
    flows: usize,
    blocked_now: usize,
    blocked_after: Vec<String>,
    cards: Vec<PolicyCard>,
    stale: Vec<String>,
    skipped: Vec<String>,
    download: String,
    back: String,
}

struct Asked {
    cluster: Option<String>,
    namespace: Option<String>,
    source: crate::netpolicies::Source,
    egress: bool,
}

fn asked(raw: Option<&str>) -> Asked {
    let params = query_params(raw);
    Asked {
        cluster: params.get("cluster").filter(|c| !c.is_empty()).cloned(),
        namespace: params.get("namespace").filter(|n| !n.is_empty()).cloned(),
        source: params
            .get("from")
            .and_then(|f| crate::netpolicies::Source::parse(f))
            .unwrap_or(crate::netpolicies::Source::Flows),
        egress: params.get("egress").is_none_or(|e| e != "0"),
    }
}

async fn report<B: Backend>(
    api: &Shared<B>,
    a: &Asked,
) -> Result<(Vec<Choice>, Option<crate::netpolicies::Report>), Response> {
    let shared = Arc::clone(api);
    let (wanted, namespace, source, egress) =
        (a.cluster.clone(), a.namespace.clone(), a.source, a.egress);
    off_thread(move || {
        let (cluster, clusters) = pick_cluster(&shared, wanted.as_ref())?;
        if cluster.is_empty() {
            return Ok((clusters, None));
        }
        let report = crate::netpolicies::generate(
            &shared.core,
            &cluster,
            namespace.as_deref(),
            source,
            egress,
            crate::policies::now_rfc3339(),
        )?;
        Ok((clusters, Some(report)))
    })
    .await
}

fn flow_text(f: &crate::netpolicies::FlowView) -> String {
    format!(
        "{} → {} on {}/{}",
        f.source, f.destination, f.port, f.protocol
    )
}

pub(super) async fn network_policies<B: Backend>(
    State(api): State<Shared<B>>,
    axum::Extension(user): axum::Extension<UserView>,
    RawQuery(raw): RawQuery,
) -> Response {
    let a = asked(raw.as_deref());
    let (clusters, report) = match report(&api, &a).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(report) = report else {
        return refused(
            Some(user),
            StatusCode::NOT_FOUND,
            "No cluster is connected yet: add one on the Clusters page.".into(),
        );
    };
    let query = format!(
        "cluster={}&namespace={}&from={}&egress={}",
        urlencode(&report.cluster_id),
        urlencode(a.namespace.as_deref().unwrap_or_default()),
        a.source.as_param(),
        if a.egress { "1" } else { "0" }
    );
    render(
        &PoliciesPage {
            user: Some(user),
            page: "network",
            clusters,
            namespace: a.namespace.clone().unwrap_or_default(),
            from: a.source.as_param(),
            egress: a.egress,
            generated_from: report.generated_from.to_string(),
            flows: report.flows,
            blocked_now: report.blocked_now.len(),
            blocked_after: report.blocked_after.iter().map(flow_text).collect(),
            cards: report
                .policies
                .iter()
                .map(|p| PolicyCard {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    workload: p.workload.clone(),
                    action: p.action,
                    yaml: p.yaml.clone(),
                    diff: p.diff.clone(),
                    blocks: p.blocks.iter().map(flow_text).collect(),
                })
                .collect(),
            stale: report.stale.clone(),
            skipped: report.skipped.clone(),
            download: format!("/ui/network/policies.yaml?{query}"),
            back: format!(
                "/ui/network?cluster={}&namespace={}",
                urlencode(&report.cluster_id),
                urlencode(a.namespace.as_deref().unwrap_or_default())
            ),
        },
        StatusCode::OK,
    )
}

/// The generated policies as one YAML file, for `kubectl apply -f`.
pub(super) async fn network_policies_yaml<B: Backend>(
    State(api): State<Shared<B>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let a = asked(raw.as_deref());
    match report(&api, &a).await {
        Ok((_, Some(report))) => (
            [
                (header::CONTENT_TYPE, "application/yaml; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"rampart-networkpolicies.yaml\"",
                ),
            ],
            report.yaml,
        )
            .into_response(),
        Ok((_, None)) => (StatusCode::NOT_FOUND, "no cluster is connected yet").into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, kind: &'static str, ns: &str) -> Node {
        Node {
            id: id.into(),
            kind,
            name: id.into(),
            namespace: ns.into(),
            cidr: String::new(),
        }
    }

    fn edge(s: &str, d: &str, anomalous: bool) -> Edge {
        Edge {
            source: s.into(),
            destination: d.into(),
            port: 443,
            protocol: "TCP".into(),
            first_seen_unix_ms: 0,
            last_seen_unix_ms: 0,
            active: false,
            flows: 1,
            anomalous,
        }
    }

    #[test]
    fn every_node_and_pair_is_drawn_and_text_is_escaped() {
        let graph = Graph {
            nodes: vec![
                node("a", "DEPLOYMENT", "shop"),
                node("b", "DEPLOYMENT", "shop"),
                node("c<script>", "DEPLOYMENT", "other"),
                node("internet", "INTERNET", ""),
            ],
            edges: vec![
                edge("a", "b", false),
                edge("a", "internet", true),
                edge("c<script>", "b", false),
            ],
        };
        let s = svg(&graph, "c1");
        assert_eq!(s.matches("<circle").count(), 3);
        assert_eq!(s.matches("<line").count(), 3);
        assert_eq!(s.matches(r#"class="edge anomalous""#).count(), 1);
        assert_eq!(s.matches(r#"class="ns""#).count(), 2);
        assert!(!s.contains("<script>"), "{s}");
        assert!(s.contains("c&lt;script&gt;"));
        // Anomalous edges come after the others (drawn on top).
        assert!(s.find("edge anomalous") > s.rfind(r#"class="edge""#));
        assert!(s.contains(r#"href="/ui/risk/c1/a""#));
    }

    #[test]
    fn a_few_hundred_nodes_stay_apart() {
        let mut nodes = Vec::new();
        for ns in 0..12 {
            for d in 0..25 {
                nodes.push(node(
                    &format!("n{ns}-{d}"),
                    "DEPLOYMENT",
                    &format!("ns{ns}"),
                ));
            }
        }
        let graph = Graph {
            nodes,
            edges: Vec::new(),
        };
        let s = svg(&graph, "c");
        let centres: BTreeSet<(i64, i64)> = s
            .split("<circle cx=\"")
            .skip(1)
            .map(|rest| {
                let cx: f64 = rest
                    .split('"')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("cx");
                let cy: f64 = rest
                    .split("cy=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .expect("cy");
                (cx as i64, cy as i64)
            })
            .collect();
        assert_eq!(centres.len(), 300, "no two nodes on one spot");
        let width: f64 = s
            .split("width=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .expect("width");
        assert!(width < 6_000.0, "packed, not one long row: {width}");
    }
}
