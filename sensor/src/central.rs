//! The stream to Central: hello, a full sync once the index has listed every kind, the synced
//! marker, then changes as they happen; reconnect with jittered exponential backoff and a full
//! resync (so deletions that happened meanwhile reach Central), sending again only what Central
//! has not acknowledged with the same content.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_proto::capabilities;

use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_client::SensorServiceClient;
use rampart_proto::v1::{
    DeploymentContext, EnforcementOrder, EnforcementReport, MsgFromSensor, PortExposure,
    ResourceAction, ResourceEvent, ResourceKind, SensorHealth, SensorHello, SensorState,
    SyncMarker,
};
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::Shared;
use crate::index::{Change, Kind, Outgoing, Published};

/// How to reach Central, with the cluster's Sensor certificate from its init bundle.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// `https://central.example:8444`.
    pub endpoint: String,
    /// The name Central's certificate carries (`localhost` for `rampart up`).
    pub server_name: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub cluster_name: String,
}

/// Messages not yet acknowledged by Central, and what it holds durably.
#[derive(Debug, Default)]
struct Delivery {
    /// seq → (object id, content hash; `None` for a removal).
    pending: BTreeMap<u64, (String, Option<u64>)>,
    /// Content hash per object id that Central acknowledged.
    acked: HashMap<String, u64>,
    acked_seq: u64,
}

impl Delivery {
    fn ack(&mut self, seq: u64) {
        self.acked_seq = self.acked_seq.max(seq);
        let rest = self.pending.split_off(&(seq + 1));
        for (_, (id, hash)) in std::mem::replace(&mut self.pending, rest) {
            match hash {
                Some(h) => {
                    self.acked.insert(id, h);
                }
                None => {
                    self.acked.remove(&id);
                }
            }
        }
    }
}

/// What the Sensor reports about its connection (for health and tests).
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub connected: bool,
    pub connections: u64,
    pub acked_seq: u64,
    pub policies: usize,
    pub policy_revision: String,
    /// The enforcer has its baseline and acts on changes.
    pub enforcing: bool,
    /// Automatic enforcements skipped because of the break-glass annotation.
    pub break_glass_skips: u64,
    /// Enforcements (automatic and ordered) skipped because the workload is in an exempt
    /// namespace.
    pub exempt_skips: u64,
    /// Workload enforcements carried out (automatic and ordered) and failed.
    pub enforcements: u64,
    pub failed_enforcements: u64,
    /// Runtime messages held for Central, and dropped because the bound was reached.
    pub buffered_events: u64,
    pub dropped_events: u64,
    /// User-locked process baselines Central sent (containers).
    pub locked_baselines: usize,
    /// Collectors by node name.
    pub nodes: std::collections::BTreeMap<String, crate::nodes::NodeStatus>,
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HELLO_TIMEOUT: Duration = Duration::from_secs(15);
const OUTBOUND_QUEUE: usize = 1024;
/// Runtime messages sent per turn of the loop (resource changes go first).
const OUTBOX_BATCH: usize = 512;
/// How often the Sensor reports its health.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

fn proto_kind(kind: Kind) -> ResourceKind {
    match kind {
        Kind::Pod => ResourceKind::Pod,
        Kind::Namespace => ResourceKind::Namespace,
        Kind::NetworkPolicy => ResourceKind::NetworkPolicy,
        Kind::Service => ResourceKind::Service,
        Kind::Route => ResourceKind::Route,
        Kind::ServiceAccount => ResourceKind::ServiceAccount,
        Kind::Role => ResourceKind::Role,
        Kind::ClusterRole => ResourceKind::ClusterRole,
        Kind::RoleBinding => ResourceKind::RoleBinding,
        Kind::ClusterRoleBinding => ResourceKind::ClusterRoleBinding,
        Kind::Node => ResourceKind::Node,
        Kind::Secret => ResourceKind::Secret,
        _ => ResourceKind::Deployment,
    }
}

fn published_kind(p: &Published) -> ResourceKind {
    match p {
        Published::Deployment => ResourceKind::Deployment,
        Published::Resource(k) => proto_kind(*k),
    }
}

fn event(o: &Outgoing, action: ResourceAction) -> ResourceEvent {
    ResourceEvent {
        action: action as i32,
        kind: published_kind(&o.published) as i32,
        id: o.id.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        object_json: o.object.as_bytes().to_vec(),
        content_hash: o.content_hash,
        context: o.context.as_ref().map(|c| DeploymentContext {
            rbac_level: c.rbac_level.as_str().to_string(),
            has_ingress_network_policy: c.ingress_network_policy,
            has_egress_network_policy: c.egress_network_policy,
            port_exposures: c
                .exposures
                .iter()
                .map(|e| PortExposure {
                    container: e.container.clone(),
                    container_port: e.container_port,
                    protocol: e.protocol.clone(),
                    level: e.level.as_str().to_string(),
                    service_name: e.service_name.clone(),
                    service_port: e.service_port,
                    node_port: e.node_port,
                })
                .collect(),
            complete: true,
        }),
    }
}

/// Streams the index to Central until dropped, reconnecting forever.
pub async fn run(
    config: CentralConfig,
    shared: Arc<Shared>,
    kinds: Vec<Kind>,
    orders: mpsc::Sender<EnforcementOrder>,
) {
    let delivery = Arc::new(Mutex::new(Delivery::default()));
    let mut seq = 0u64;
    let mut backoff = INITIAL_BACKOFF;
    let mut state = SensorState::Startup;
    loop {
        let started = std::time::Instant::now();
        match session(
            &config, &shared, &kinds, &delivery, &orders, &mut seq, state,
        )
        .await
        {
            Ok(()) => tracing::info!("Central closed the stream; reconnecting"),
            Err(error) => tracing::warn!(%error, "Central stream failed; reconnecting"),
        }
        lock(&shared.status).connected = false;
        state = SensorState::Reconnect;
        // A session that lasted a while starts the backoff over.
        if started.elapsed() > MAX_BACKOFF {
            backoff = INITIAL_BACKOFF;
        }
        let jitter = rand::random_range(0.5..1.5);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

use crate::lock;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("connect to Central: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("Central refused the stream: {0}")]
    Refused(#[from] tonic::Status),
    #[error("Central did not say hello in time")]
    HelloTimeout,
    #[error("the stream to Central closed")]
    Closed,
}

async fn session(
    config: &CentralConfig,
    shared: &Arc<Shared>,
    kinds: &[Kind],
    delivery: &Arc<Mutex<Delivery>>,
    orders: &mpsc::Sender<EnforcementOrder>,
    seq: &mut u64,
    state: SensorState,
) -> Result<(), StreamError> {
    let index = &shared.index;
    let status = &shared.status;
    let mut changed = shared.changed.subscribe();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&config.ca_pem))
        .identity(Identity::from_pem(&config.cert_pem, &config.key_pem))
        .domain_name(config.server_name.clone());
    let channel = Channel::from_shared(config.endpoint.clone())
        .map_err(|e| StreamError::Refused(tonic::Status::invalid_argument(e.to_string())))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect()
        .await?;
    let mut client = SensorServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let (tx, rx) = tokio::sync::mpsc::channel::<MsgFromSensor>(OUTBOUND_QUEUE);
    let policy_revision = lock(&shared.policies).revision.clone();
    let dropped_events = lock(&shared.outbox).dropped();
    tx.send(MsgFromSensor {
        seq: 0,
        msg: Some(FromSensor::Hello(SensorHello {
            protocol_minor: 0,
            sensor_version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: [
                capabilities::DURABLE_ACKS,
                capabilities::CONTENT_HASH_DEDUP,
                capabilities::LOCAL_DETECTION,
                capabilities::ENFORCEMENT_ORDERS,
                capabilities::PROCESS_BASELINES,
                capabilities::IMAGE_FINDINGS,
                capabilities::IMAGE_SCAN_REQUESTS,
            ]
            .map(String::from)
            .to_vec(),
            state: state as i32,
            cluster_name: config.cluster_name.clone(),
            policy_revision,
            dropped_events,
        })),
    })
    .await
    .map_err(|_| StreamError::Closed)?;
    let mut inbound = client
        .communicate(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
        loop {
            match inbound.message().await? {
                Some(m) => {
                    if let Some(ToSensor::Hello(h)) = m.msg {
                        return Ok(h);
                    }
                }
                None => return Err(tonic::Status::unavailable("closed before hello")),
            }
        }
    })
    .await
    .map_err(|_| StreamError::HelloTimeout)??;
    let scan_requests = hello
        .capabilities
        .iter()
        .any(|c| c == capabilities::IMAGE_SCAN_REQUESTS);
    // Central discards what it already holds: continue after its durable position.
    *seq = (*seq).max(hello.acked_seq);
    // Central names every current image again, then marks the round's end.
    lock(&shared.images).begin_session();
    {
        let mut d = lock(delivery);
        if hello.acked_seq < d.acked_seq {
            // Central lost what it had acknowledged (a new store): send everything again.
            tracing::warn!(
                central = hello.acked_seq,
                sensor = d.acked_seq,
                "Central's durable position went back; resending the whole cluster"
            );
            d.acked.clear();
            d.acked_seq = hello.acked_seq;
        }
        d.ack(hello.acked_seq);
        // Anything still pending was not made durable; the resync below covers it.
        d.pending.clear();
    }
    {
        // Runtime messages Central did not make durable go out again, first.
        let mut outbox = lock(&shared.outbox);
        outbox.ack(hello.acked_seq);
        outbox.requeue_in_flight();
    }
    {
        let mut s = lock(status);
        s.connected = true;
        s.connections += 1;
        s.acked_seq = hello.acked_seq;
    }
    tracing::info!(cluster = %hello.cluster_name, acked_seq = hello.acked_seq, "connected to Central");

    // Acks and orders are read by their own task so that a full outbound queue never stops
    // acks from arriving.
    let mut reader = {
        let delivery = Arc::clone(delivery);
        let shared = Arc::clone(shared);
        let orders = orders.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => match m.msg {
                        Some(msg) => receive(&shared, &delivery, &orders, msg),
                        None => tracing::warn!(
                            "Central sent a message kind this Sensor does not know; ignored"
                        ),
                    },
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, "reading from Central failed");
                        return;
                    }
                }
            }
        })
    };
    let result = async {
        // The first sync waits until every kind has been listed: a marker sent earlier would
        // make Central remove what the Sensor has simply not seen yet.
        loop {
            if lock(index).is_synced(kinds) {
                break;
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        let snapshot = lock(index).snapshot();
        let mut unchanged = Vec::new();
        for o in &snapshot {
            let known = lock(delivery).acked.get(&o.id) == Some(&o.content_hash);
            if known {
                unchanged.push(o.id.clone());
                continue;
            }
            *seq += 1;
            lock(delivery)
                .pending
                .insert(*seq, (o.id.clone(), Some(o.content_hash)));
            send(&tx, *seq, FromSensor::Event(event(o, ResourceAction::Sync))).await?;
        }
        let mut resource_kinds: Vec<i32> = kinds.iter().map(|k| proto_kind(*k) as i32).collect();
        resource_kinds.sort_unstable();
        resource_kinds.dedup();
        *seq += 1;
        send(
            &tx,
            *seq,
            FromSensor::Synced(SyncMarker {
                kinds: resource_kinds,
                unchanged_ids: unchanged,
            }),
        )
        .await?;
        tracing::info!(objects = snapshot.len(), "initial sync sent to Central");
        send_health(shared, &tx).await?;
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        health.tick().await;
        loop {
            if reader.is_finished() {
                return Err(StreamError::Closed);
            }
            let changes = lock(index).take_changes();
            for change in changes {
                *seq += 1;
                let (id, hash, msg) = match change {
                    Change::Upsert(o) => (
                        o.id.clone(),
                        Some(o.content_hash),
                        event(&o, ResourceAction::Update),
                    ),
                    Change::Remove {
                        published,
                        id,
                        namespace,
                        name,
                    } => (
                        id.clone(),
                        None,
                        ResourceEvent {
                            action: ResourceAction::Remove as i32,
                            kind: published_kind(&published) as i32,
                            id,
                            namespace,
                            name,
                            ..ResourceEvent::default()
                        },
                    ),
                };
                lock(delivery).pending.insert(*seq, (id, hash));
                send(&tx, *seq, FromSensor::Event(msg)).await?;
            }
            // Runtime messages after the resource changes they may refer to.
            let runtime = lock(&shared.outbox).take(OUTBOX_BATCH);
            let more = runtime.len() == OUTBOX_BATCH;
            for msg in runtime {
                if matches!(msg, FromSensor::ImageScanRequest(_)) && !scan_requests {
                    // Best effort: a Central that does not scan on request is not asked.
                    continue;
                }
                *seq += 1;
                lock(&shared.outbox).sent(*seq, msg.clone());
                send(&tx, *seq, msg).await?;
            }
            if more {
                continue;
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = shared.outbox_ready.notified() => {}
                _ = health.tick() => send_health(shared, &tx).await?,
                // Central went away: notice at once, not at the next message.
                _ = &mut reader => return Err(StreamError::Closed),
            }
        }
    }
    .await;
    reader.abort();
    result
}

/// One message from Central (acks, policies, orders).
fn receive(
    shared: &Shared,
    delivery: &Mutex<Delivery>,
    orders: &mpsc::Sender<EnforcementOrder>,
    msg: ToSensor,
) {
    let policies_changed = match msg {
        ToSensor::Ack(a) => {
            lock(delivery).ack(a.seq);
            lock(&shared.outbox).ack(a.seq);
            lock(&shared.status).acked_seq = a.seq;
            false
        }
        ToSensor::PolicySync(p) => {
            let problems = lock(&shared.policies).replace(&p.revision, &p.policies_json);
            for problem in problems {
                tracing::warn!(%problem, "policy from Central not used for enforcement");
            }
            true
        }
        ToSensor::PolicyUpsert(p) => {
            if let Err(problem) = lock(&shared.policies).upsert(&p.revision, &p.policy_json) {
                tracing::warn!(%problem, "policy from Central not used for enforcement");
            }
            true
        }
        ToSensor::PolicyDelete(p) => {
            lock(&shared.policies).delete(&p.revision, &p.policy_id);
            true
        }
        ToSensor::Enforcement(order) => {
            if let Err(e) = orders.try_send(order) {
                let order = match e {
                    mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
                };
                tracing::warn!(order = %order.order_id, "too many enforcement orders queued; refused");
                shared.report(EnforcementReport {
                    order_id: order.order_id,
                    deployment_id: order.deployment_id,
                    policy_id: order.policy_id,
                    action: order.action,
                    succeeded: false,
                    message: "the Sensor has too many enforcement orders queued; retry".into(),
                    time_unix_ms: 0,
                });
            }
            false
        }
        ToSensor::Notice(n) => {
            tracing::warn!(seq = n.seq, message = %n.message, "Central notice");
            false
        }
        ToSensor::BaselineSync(b) => {
            let count = b.baselines.len();
            lock(&shared.runtime).set_locked_baselines(b.baselines);
            lock(&shared.status).locked_baselines = count;
            false
        }
        ToSensor::ImageFindings(f) => {
            let reference = f.reference.clone();
            if let Err(problem) = lock(&shared.images).apply(f) {
                tracing::warn!(image = %reference, %problem, "image findings not kept");
            }
            shared
                .images_changed
                .send_modify(|v| *v = v.wrapping_add(1));
            false
        }
        ToSensor::ImageFindingsSynced(_) => {
            lock(&shared.images).synced();
            shared
                .images_changed
                .send_modify(|v| *v = v.wrapping_add(1));
            false
        }
        ToSensor::Hello(_) => false,
    };
    if policies_changed {
        {
            let policies = lock(&shared.policies);
            let mut status = lock(&shared.status);
            status.policies = policies.count;
            status.policy_revision = policies.revision.clone();
        }
        shared
            .policies_changed
            .send_modify(|v| *v = v.wrapping_add(1));
    }
}

async fn send_health(shared: &Shared, tx: &mpsc::Sender<MsgFromSensor>) -> Result<(), StreamError> {
    let (buffered, mut dropped) = {
        let outbox = lock(&shared.outbox);
        (outbox.len() as u64, outbox.dropped())
    };
    // What the nodes dropped counts too; the mode is the weakest any node runs in.
    let mut modes = std::collections::BTreeSet::new();
    for n in lock(&shared.status).nodes.values() {
        dropped += n.dropped_events;
        if n.connected {
            modes.insert(n.mode.clone());
        }
    }
    let collector_mode = modes.into_iter().collect::<Vec<_>>().join(",");
    send(
        tx,
        0,
        FromSensor::Health(SensorHealth {
            buffered_events: buffered,
            dropped_events: dropped,
            collector_mode,
            time_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        }),
    )
    .await
}

async fn send(
    tx: &tokio::sync::mpsc::Sender<MsgFromSensor>,
    seq: u64,
    msg: FromSensor,
) -> Result<(), StreamError> {
    tx.send(MsgFromSensor {
        seq,
        msg: Some(msg),
    })
    .await
    .map_err(|_| StreamError::Closed)
}
