//! Process baselines in the console: shown on the deployment's page (per container: lock state,
//! learned and added executables, suspicious ones), locked and unlocked, edited; and "resolve
//! and add to baseline" on a runtime alert. The handlers call the API's own functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::urlencode;
use crate::api::Shared;
use crate::store::Backend;

pub(super) struct BaselineView {
    pub container: String,
    /// "Locked", "Locked by Rampart (learning over)", "Learning until ...".
    pub state: String,
    pub user_locked: bool,
    pub elements: Vec<(String, &'static str)>,
    pub suspicious: Vec<String>,
}

/// The deployment's baselines, as the deployment page shows them.
pub(super) fn of_deployment<B: Backend>(
    core: &crate::core::Core<B>,
    cluster: &str,
    id: &str,
) -> Vec<BaselineView> {
    let now = crate::model::now_unix_ms();
    core.baselines
        .of_deployment(cluster, id)
        .into_iter()
        .map(|b| BaselineView {
            state: if b.is_user_locked() {
                "Locked: a process outside it raises an alert".into()
            } else if b.is_locked(now) {
                "Locked by Rampart (learning over): outside counts as suspicious".into()
            } else {
                format!(
                    "Learning until {}",
                    super::time_text(b.learning_until_unix_ms)
                )
            },
            user_locked: b.is_user_locked(),
            container: b.container_name,
            elements: b
                .elements
                .into_iter()
                .map(|(path, e)| (path, if e.auto { "learned" } else { "added" }))
                .collect(),
            suspicious: b.suspicious,
        })
        .collect()
}

/// Back to the deployment's page, at `section`.
fn back(cluster: &str, id: &str, section: &str) -> Response {
    Redirect::to(&format!(
        "/ui/risk/{}/{}#{section}",
        urlencode(cluster),
        urlencode(id)
    ))
    .into_response()
}

/// The answer to a baseline form: back to the page, or the error.
fn answer<T>(
    changed: Result<T, crate::api::ApiError>,
    cluster: &str,
    id: &str,
    section: &str,
) -> Response {
    match changed {
        Ok(_) => back(cluster, id, section),
        Err(e) => e.into_response(),
    }
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// `POST /ui/deployments/{cluster}/{id}/baselines/lock` (`locked`, optional `container`).
pub(super) async fn lock<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let locked = form.get("locked").is_some_and(|v| v == "true");
    let container = form.get("container").filter(|c| !c.is_empty()).cloned();
    let core = Arc::clone(&api.core);
    let now = crate::model::now_unix_ms();
    let changed = crate::api::change_baselines(&core, &cluster, |batch| {
        core.baselines
            .set_user_lock(&cluster, &id, container.as_deref(), locked, now, batch)
    })
    .await;
    answer(changed, &cluster, &id, "baselines")
}

/// `POST /ui/deployments/{cluster}/{id}/baselines/{container}/edit` (`add` or `remove`: a path).
pub(super) async fn edit<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id, container)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let pick = |k: &str| -> Vec<String> {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .into_iter()
            .collect()
    };
    let (add, remove) = (pick("add"), pick("remove"));
    if add.is_empty() && remove.is_empty() {
        return back(&cluster, &id, "baselines");
    }
    let now = crate::model::now_unix_ms();
    let edited =
        crate::api::edit_process_baseline(&api.core, &cluster, &id, &container, &add, &remove, now)
            .await;
    answer(edited, &cluster, &id, "baselines")
}

/// One peer of a deployment's network baseline, or an observed flow outside it.
pub(super) struct PeerRow {
    /// "incoming from" or "outgoing to".
    pub direction: &'static str,
    pub ingress: bool,
    pub peer: String,
    pub peer_name: String,
    pub port: u32,
    pub protocol: String,
    /// "learned", "accepted", "rejected", "anomalous" (seen, outside the locked baseline).
    pub how: &'static str,
}

pub(super) struct NetworkBaselineView {
    pub state: String,
    pub locked: bool,
    pub peers: Vec<PeerRow>,
    /// Observed flows outside the locked baseline, and rejected peers.
    pub outside: Vec<PeerRow>,
}

/// What a peer id stands for, in words.
fn peer_name<B: Backend>(core: &crate::core::Core<B>, cluster: &str, peer: &str) -> String {
    match peer {
        "internet" => "Internet".into(),
        "private" => "Private network (outside the cluster)".into(),
        p if p.starts_with("cidr:") => format!("{} (CIDR block)", &p[5..]),
        id => core
            .store
            .deployment(cluster, id)
            .ok()
            .flatten()
            .map(|d| format!("{}/{}", d.namespace, d.name))
            .unwrap_or_else(|| format!("deployment {id} (gone)")),
    }
}

/// The deployment's network baseline with the observed flows it does not allow.
pub(super) fn network_of_deployment<B: Backend>(
    core: &crate::core::Core<B>,
    cluster: &str,
    id: &str,
) -> Option<NetworkBaselineView> {
    let b = core.netbaselines.get(cluster, id)?;
    let now = crate::model::now_unix_ms();
    let row = |p: &crate::netbaselines::Peer, how: &'static str| PeerRow {
        direction: if p.ingress {
            "incoming from"
        } else {
            "outgoing to"
        },
        ingress: p.ingress,
        peer_name: peer_name(core, cluster, &p.peer),
        peer: p.peer.clone(),
        port: p.port,
        protocol: p.protocol.clone(),
        how,
    };
    let peers = b
        .peers
        .iter()
        .map(|(p, _, learned)| row(p, if *learned { "learned" } else { "accepted" }))
        .collect();
    let mut outside: Vec<PeerRow> = b.rejected.iter().map(|p| row(p, "rejected")).collect();
    if b.is_locked() {
        let blocks = crate::netgraph::parsed_blocks(&core.store).unwrap_or_default();
        let flows = crate::activity::of_deployment(&core.store, cluster, id)
            .map(|a| a.flows)
            .unwrap_or_default();
        let mut seen = std::collections::BTreeSet::new();
        for f in flows {
            let ingress = f.destination_deployment_id == id;
            let other = if ingress {
                &f.source_deployment_id
            } else {
                &f.destination_deployment_id
            };
            let node = if other.is_empty() {
                crate::netgraph::entity_of(&f.external_peer, &blocks)
            } else {
                crate::netgraph::Node {
                    id: other.clone(),
                    kind: "DEPLOYMENT",
                    name: String::new(),
                    namespace: String::new(),
                    cidr: String::new(),
                }
            };
            let as_peer = |peer: String| crate::netbaselines::Peer {
                ingress,
                peer,
                port: f.port,
                protocol: f.protocol.clone(),
            };
            let peer = as_peer(node.id.clone());
            let broader = crate::netgraph::broader(&node).map(as_peer);
            if b.is_anomalous_within(&peer, broader.as_ref())
                && !b.rejected.contains(&peer)
                && seen.insert(peer.clone())
            {
                outside.push(row(&peer, "anomalous"));
            }
        }
    }
    Some(NetworkBaselineView {
        state: if b.is_locked() {
            "Locked: a flow with a peer outside it raises an alert".into()
        } else if now < b.observation_until_unix_ms {
            format!(
                "Observing until {}: new peers are learned",
                super::time_text(b.observation_until_unix_ms)
            )
        } else {
            "Observation over, not locked: new peers are neither learned nor alerted".into()
        },
        locked: b.is_locked(),
        peers,
        outside,
    })
}

/// `POST /ui/deployments/{cluster}/{id}/networkbaseline/lock` (`locked`).
pub(super) async fn lock_network<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let locked = form.get("locked").is_some_and(|v| v == "true");
    let core = Arc::clone(&api.core);
    let now = crate::model::now_unix_ms();
    let changed = crate::api::change_baselines(&core, &cluster, |batch| {
        core.netbaselines
            .set_lock(&cluster, &id, locked, now, batch)
    })
    .await;
    answer(changed, &cluster, &id, "network-baseline")
}

/// `POST /ui/deployments/{cluster}/{id}/networkbaseline/decide` (`decision` accept or
/// reject; `ingress`, `peer`, `port`, `protocol`).
pub(super) async fn decide_network<B: Backend>(
    State(api): State<Shared<B>>,
    Path((cluster, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form = form(&body);
    let Some(peer) = (|| {
        let peer = form
            .get("peer")
            .filter(|p| !p.is_empty() && !p.contains('\0'))?;
        Some(crate::netbaselines::Peer {
            ingress: form.get("ingress").is_some_and(|v| v == "true"),
            peer: peer.clone(),
            port: form.get("port")?.parse().ok()?,
            protocol: form.get("protocol").filter(|p| !p.is_empty())?.clone(),
        })
    })() else {
        return crate::api::ApiError::BadRequest("a peer needs its id, port and protocol".into())
            .into_response();
    };
    let accept = form.get("decision").is_some_and(|d| d == "accept");
    let (accepted, rejected) = if accept {
        (vec![peer], Vec::new())
    } else {
        (Vec::new(), vec![peer])
    };
    let core = Arc::clone(&api.core);
    let now = crate::model::now_unix_ms();
    let changed = crate::api::change_baselines(&core, &cluster, |batch| {
        core.netbaselines
            .decide(&cluster, &id, &accepted, &rejected, now, batch)
    })
    .await;
    answer(changed, &cluster, &id, "network-baseline")
}
