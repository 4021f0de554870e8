//! The Sensor's endpoint for its Collectors (mTLS gRPC): each node's Collector streams process
//! and connection events; the Sensor maps containers to pods and deployments with its index
//! and queues the results for Central in its outbox, then acknowledges.
//!
//! Only collector certificates of this cluster's init bundle are accepted: the chain is checked
//! against the bundle's CA during the handshake, the certificate's name (`collector.<cluster>`)
//! here.

use std::pin::Pin;
use std::sync::Arc;

use rampart_proto::collector::collector_message::Msg;
use rampart_proto::collector::collector_service_server::{
    CollectorService, CollectorServiceServer,
};
use rampart_proto::collector::{
    CollectorAck, CollectorMessage, ConnectionEvent, ConnectionRole, ProcessEvent,
};
use rampart_proto::v1::admission_control_service_server::AdmissionControlServiceServer;
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::{ListenEndpoint, NetworkFlow, NetworkFlowBatch, ProcessIndicator};
use tokio_stream::Stream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::Shared;

/// Acks queued per Collector stream.
const ACK_QUEUE: usize = 1024;
/// Events whose container the index does not know yet (its pod's watch event may trail the
/// process): held and retried as the index changes, for at most this long.
const PENDING_FOR: std::time::Duration = std::time::Duration::from_secs(60);
const PENDING_MAX: usize = 10_000;

/// Events waiting for their pod to reach the index.
#[derive(Debug, Default)]
struct Pending {
    events: std::collections::VecDeque<(std::time::Instant, String, Msg)>,
}

/// What the Sensor knows of each connected Collector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub mode: String,
    pub connected: bool,
    pub dropped_events: u64,
    pub rate_limited_events: u64,
    pub processes: u64,
    pub connections: u64,
    /// Events whose container no pod in the index claimed within a minute (not sent to
    /// Central).
    pub unmatched: u64,
}

#[derive(Debug)]
struct Receiver {
    shared: Arc<Shared>,
    pending: Arc<std::sync::Mutex<Pending>>,
}

/// The cluster named by a certificate of `service` (`<service>.<cluster>`).
pub(crate) fn cluster_of(der: &[u8], service: &str) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    cn.strip_prefix(service)?
        .strip_prefix('.')
        .map(str::to_string)
}

type AckStream = Pin<Box<dyn Stream<Item = Result<CollectorAck, Status>> + Send>>;

#[tonic::async_trait]
impl CollectorService for Receiver {
    type PushStream = AckStream;

    async fn push(
        &self,
        request: Request<Streaming<CollectorMessage>>,
    ) -> Result<Response<AckStream>, Status> {
        let cluster = request.peer_certs().and_then(|certs| {
            certs
                .first()
                .and_then(|c| cluster_of(c.as_ref(), "collector"))
        });
        match cluster {
            Some(c) if c == self.shared.cluster_name => {}
            Some(c) => {
                return Err(Status::permission_denied(format!(
                    "a collector certificate of cluster '{c}' cannot report to the Sensor of '{}'",
                    self.shared.cluster_name
                )));
            }
            None => {
                return Err(Status::permission_denied(
                    "only a collector certificate of this cluster's init bundle may connect",
                ));
            }
        }
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(CollectorMessage {
                msg: Some(Msg::Hello(h)),
                ..
            }) => h,
            _ => {
                return Err(Status::failed_precondition(
                    "the first message must be a CollectorHello",
                ));
            }
        };
        let node = if hello.node_name.is_empty() {
            "unknown".to_string()
        } else {
            hello.node_name.clone()
        };
        tracing::info!(%node, mode = %hello.mode, version = %hello.collector_version, "collector connected");
        update(&self.shared, &node, |n| {
            n.mode = hello.mode.clone();
            n.connected = true;
        });
        let (acks, rx) = tokio::sync::mpsc::channel(ACK_QUEUE);
        let shared = Arc::clone(&self.shared);
        let pending = Arc::clone(&self.pending);
        tokio::spawn(async move {
            loop {
                let message = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%node, %error, "collector stream failed");
                        break;
                    }
                };
                let seq = message.seq;
                if let Some(msg) = message.msg
                    && let Some(unmatched) = receive(&shared, &node, msg)
                {
                    let mut p = crate::lock(&pending);
                    if p.events.len() >= PENDING_MAX {
                        drop(p);
                        update(&shared, &node, |n| n.unmatched += 1);
                    } else {
                        p.events
                            .push_back((std::time::Instant::now(), node.clone(), unmatched));
                    }
                }
                if seq != 0 && acks.send(Ok(CollectorAck { seq })).await.is_err() {
                    break;
                }
            }
            update(&shared, &node, |n| n.connected = false);
            tracing::info!(%node, "collector disconnected");
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

fn update(shared: &Shared, node: &str, f: impl FnOnce(&mut NodeStatus)) {
    let mut status = crate::lock(&shared.status);
    f(status.nodes.entry(node.to_string()).or_default());
}

/// One Collector message: mapped to its deployment and queued for Central. Returns the
/// message when its container is not known yet.
fn receive(shared: &Shared, node: &str, msg: Msg) -> Option<Msg> {
    match msg {
        Msg::Process(p) => {
            let Some(i) = process_indicator(shared, &p) else {
                return Some(Msg::Process(p));
            };
            update(shared, node, |n| n.processes += 1);
            detect(shared, &i);
            shared.send(FromSensor::Process(i));
        }
        Msg::Connection(c) => {
            let Some(b) = network(shared, &c) else {
                return Some(Msg::Connection(c));
            };
            update(shared, node, |n| n.connections += 1);
            shared.send(FromSensor::NetworkFlows(b));
        }
        Msg::Health(h) => update(shared, node, |n| {
            n.mode = h.mode;
            n.dropped_events = h.dropped_events;
            n.rate_limited_events = h.rate_limited_events;
        }),
        Msg::Hello(_) => {}
    }
    None
}

/// Retries held events whenever the index changes; gives up on them after [`PENDING_FOR`]
/// (counted per node as unmatched: containers no pod claims, such as ones outside Kubernetes).
async fn retry_pending(shared: Arc<Shared>, pending: Arc<std::sync::Mutex<Pending>>) {
    let mut changes = shared.changed.subscribe();
    loop {
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let events = std::mem::take(&mut crate::lock(&pending).events);
        let mut keep = std::collections::VecDeque::new();
        for (since, node, msg) in events {
            match receive(&shared, &node, msg) {
                None => {}
                Some(_) if since.elapsed() > PENDING_FOR => {
                    update(&shared, &node, |n| n.unmatched += 1);
                }
                Some(msg) => keep.push_back((since, node, msg)),
            }
        }
        let mut p = crate::lock(&pending);
        keep.extend(p.events.drain(..));
        p.events = keep;
    }
}

/// Runtime detection on one process; its alerts go to Central before the process itself.
fn detect(shared: &Shared, i: &ProcessIndicator) {
    let (runtime, revision) = {
        let policies = crate::lock(&shared.policies);
        let runtime = policies.runtime();
        if runtime.is_empty() {
            return;
        }
        (runtime, policies.revision.clone())
    };
    let Some(o) = crate::lock(&shared.index).outgoing(&i.deployment_id) else {
        return;
    };
    let detection =
        crate::lock(&shared.runtime).on_process(&runtime, &o, i, &shared.cluster_name, &revision);
    if detection.break_glass_skips > 0 {
        crate::lock(&shared.status).break_glass_skips += detection.break_glass_skips;
    }
    if detection.exempt_skips > 0 {
        crate::lock(&shared.status).exempt_skips += detection.exempt_skips;
    }
    if let Some(results) = detection.results {
        shared.send(FromSensor::AlertResults(results));
    }
    for k in detection.kills {
        shared.kill(k);
    }
}

fn process_indicator(shared: &Shared, p: &ProcessEvent) -> Option<ProcessIndicator> {
    let owner = crate::lock(&shared.index).container_owner(&p.container_id, &p.pod_uid)?;
    Some(ProcessIndicator {
        deployment_id: owner.deployment_id,
        pod_id: owner.pod_name,
        container_name: owner.container_name,
        container_id: p.container_id.clone(),
        exec_file_path: p.exe_path.clone(),
        name: p.name.clone(),
        args: p.args.clone(),
        pid: p.pid,
        uid: p.uid,
        gid: p.gid,
        lineage: p.lineage.clone(),
        time_unix_ms: p.time_unix_ms,
    })
}

fn network(shared: &Shared, c: &ConnectionEvent) -> Option<NetworkFlowBatch> {
    let index = crate::lock(&shared.index);
    let owner = index.container_owner(&c.container_id, &c.pod_uid)?;
    let local = c.local.clone().unwrap_or_default();
    let remote = c.remote.clone().unwrap_or_default();
    let role = ConnectionRole::try_from(c.role).unwrap_or(ConnectionRole::Unspecified);
    if role == ConnectionRole::Listen {
        return Some(NetworkFlowBatch {
            flows: Vec::new(),
            listens: vec![ListenEndpoint {
                deployment_id: owner.deployment_id,
                pod_id: owner.pod_name,
                container_name: owner.container_name,
                address: local.address,
                port: local.port,
                protocol: c.protocol.clone(),
                process_exe_path: c.exe_path.clone(),
                first_seen_unix_ms: c.first_seen_unix_ms,
                last_seen_unix_ms: c.last_seen_unix_ms,
                closed: c.closed,
            }],
        });
    }
    let peer = index.deployment_of_ip(&remote.address).map(str::to_string);
    let (external, peer_id) = match peer {
        Some(id) => (String::new(), id),
        None => (remote.address.clone(), String::new()),
    };
    let (source, destination, port) = match role {
        ConnectionRole::Server => (peer_id, owner.deployment_id, local.port),
        _ => (owner.deployment_id, peer_id, remote.port),
    };
    Some(NetworkFlowBatch {
        flows: vec![NetworkFlow {
            source_deployment_id: source,
            destination_deployment_id: destination,
            external_peer: external,
            port,
            protocol: c.protocol.clone(),
            first_seen_unix_ms: c.first_seen_unix_ms,
            last_seen_unix_ms: c.last_seen_unix_ms,
            closed: c.closed,
            process_exe_path: c.exe_path.clone(),
        }],
        listens: Vec::new(),
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where Collectors connect, with the Sensor's certificate from the init bundle.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: std::net::SocketAddr,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Binds and serves until the task is dropped; returns the bound address.
pub async fn serve(
    shared: Arc<Shared>,
    listen: Listen,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen.addr).await?;
    let addr = listener.local_addr()?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&listen.cert_pem, &listen.key_pem))
        .client_ca_root(Certificate::from_pem(&listen.ca_pem));
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    let retry = tokio::spawn(retry_pending(Arc::clone(&shared), Arc::clone(&pending)));
    let server = Server::builder()
        .tls_config(tls)
        .map_err(std::io::Error::other)?
        .add_service(AdmissionControlServiceServer::new(
            crate::admission::AdmissionServer::new(Arc::clone(&shared)),
        ))
        .add_service(CollectorServiceServer::new(Receiver { shared, pending }));
    let task = tokio::spawn(async move {
        let _retry = AbortOnDrop(retry);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        if let Err(error) = server.serve_with_incoming(incoming).await {
            tracing::error!(%error, "collector endpoint stopped");
        }
    });
    Ok((addr, task))
}
