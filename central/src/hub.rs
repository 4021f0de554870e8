//! The Sensor hub: one session per connected Sensor stream.
//!
//! ```text
//!  hello ─▶ identity check ─▶ cluster record (generation + 1, durable) ─▶ CentralHello{acked_seq}
//!        ─▶ PolicySync ─▶ loop: event ─▶ WriteBatch(+ cluster.acked_seq) ─▶ committer ─▶ Ack(seq)
//!                               synced ─▶ (wait for durable) ─▶ reconcile stale generation
//! ```
//!
//! A message is acknowledged only after the flush that contains it, and acks leave in sequence
//! order. Resent messages at or below the durable position are skipped, so replays are harmless.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_server::SensorService;
use rampart_proto::v1::{
    self, Ack, CentralHello, MsgFromSensor, MsgToSensor, Notice, NoticeKind, PolicySync,
    ResourceAction, ResourceEvent, ResourceKind,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::alerts::{self, AlertRecord, Subject};
use crate::commit::Durable;
use crate::core::Core;
use crate::lanes::Overlay;
use crate::metrics::ClusterLabel;
use crate::model::{Cluster, ConnectionState, DeploymentRecord, ResourceRecord};
use crate::pki::{Identity, Service, identity_of};
use crate::policies::PolicyState;
use crate::store::{Backend, Table, WriteBatch};
use rampart_policy::detect::Detector;

/// How long a new stream may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages submitted but not yet acknowledged, per stream: the back-pressure window.
pub const ACK_WINDOW: usize = 4096;
/// Outgoing messages queued per stream.
const OUTBOUND_QUEUE: usize = 1024;

pub const CENTRAL_CAPABILITIES: &[&str] = &[
    rampart_proto::capabilities::DURABLE_ACKS,
    rampart_proto::capabilities::LOCAL_DETECTION,
    rampart_proto::capabilities::PROCESS_BASELINES,
    rampart_proto::capabilities::IMAGE_FINDINGS,
    rampart_proto::capabilities::IMAGE_SCAN_REQUESTS,
];

/// Largest findings of one image sent to a Sensor (as JSON); an image past it (thousands of
/// vulnerable packages) is left out, logged, and its image criteria stay undecided at admission.
pub const MAX_IMAGE_FINDINGS_MESSAGE: usize = 4 << 20;

/// What a session has sent its Sensor of the cluster's images' findings.
type FindingsSent = HashMap<String, Arc<rampart_policy::image_data::ImageData>>;

/// The policies Sensors receive, as ACS JSON, with their revision.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub revision: String,
    pub policies_json: Vec<Vec<u8>>,
}

pub struct Hub<B: Backend> {
    core: Arc<Core<B>>,
    slots: Arc<Slots>,
}

/// One stream per cluster: a new connection supersedes the old one (a restarted Sensor must not
/// wait for the old TCP connection to time out), and only starts once the old one has stopped,
/// so two streams never interleave one cluster's sequence numbers.
#[derive(Debug, Default)]
struct Slots {
    by_cluster: std::sync::Mutex<HashMap<String, Arc<ClusterSlot>>>,
    next_session: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct ClusterSlot {
    /// The session that owns the cluster now; older sessions stop when it changes.
    owner: tokio::sync::watch::Sender<u64>,
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Slots {
    fn slot(&self, cluster: &str) -> Arc<ClusterSlot> {
        let mut map = self
            .by_cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(cluster.to_string()).or_insert_with(|| {
            Arc::new(ClusterSlot {
                owner: tokio::sync::watch::channel(0).0,
                running: Arc::new(tokio::sync::Mutex::new(())),
            })
        }))
    }
}

/// What a session listens to besides the Sensor.
struct Inputs<'a> {
    /// The session owning the cluster; this one stops when it changes.
    owner: &'a mut tokio::sync::watch::Receiver<u64>,
    session_id: u64,
    policy_updates: &'a mut tokio::sync::watch::Receiver<Arc<PolicyState>>,
    orders: &'a mut mpsc::Receiver<v1::EnforcementOrder>,
    /// User-locked baselines changed (`None`: the Sensor does not take them).
    baselines: Option<&'a mut tokio::sync::watch::Receiver<u64>>,
    /// Image findings may have changed (`None`: the Sensor does not take them), and what was
    /// sent.
    findings: Option<(
        &'a mut tokio::sync::watch::Receiver<u64>,
        &'a mut FindingsSent,
    )>,
}

/// How long a new stream waits for the one it supersedes to stop.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(10);

impl<B: Backend> std::fmt::Debug for Hub<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl<B: Backend> Hub<B> {
    pub fn new(core: Arc<Core<B>>) -> Hub<B> {
        Hub {
            core,
            slots: Arc::default(),
        }
    }
}

use crate::model::now_unix_ms as now_ms;

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "sensor session failed");
    Status::internal("internal error; see Central's log")
}

type OutStream = Pin<Box<dyn Stream<Item = Result<MsgToSensor, Status>> + Send>>;

#[tonic::async_trait]
impl<B: Backend> SensorService for Hub<B> {
    type CommunicateStream = OutStream;

    async fn communicate(
        &self,
        request: Request<Streaming<MsgFromSensor>>,
    ) -> Result<Response<Self::CommunicateStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let identity = match request.peer_certs().and_then(|c| c.first().cloned()) {
            Some(cert) => identity_of(&cert)
                .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?,
            None => return Err(Status::unauthenticated("a client certificate is required")),
        };
        if identity.service != Service::Sensor {
            let reason = format!(
                "{} certificate of cluster {} used on the Sensor stream",
                identity.service.as_str(),
                identity.cluster
            );
            self.core.refusals.record(peer, reason.clone());
            return Err(Status::permission_denied(reason));
        }
        let (out, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let session = Session {
            core: Arc::clone(&self.core),
            slots: Arc::clone(&self.slots),
            identity,
            peer,
            out: out.clone(),
        };
        let inbound = request.into_inner();
        tokio::spawn(async move {
            let cluster = session.identity.cluster.clone();
            if let Err(status) = session.run(inbound).await {
                tracing::info!(%cluster, code = ?status.code(), message = status.message(), "sensor stream ended with an error");
                let _ = out.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

struct Session<B: Backend> {
    core: Arc<Core<B>>,
    slots: Arc<Slots>,
    identity: Identity,
    peer: String,
    out: mpsc::Sender<Result<MsgToSensor, Status>>,
}

enum AckItem {
    Durable(u64, Durable),
    Barrier(oneshot::Sender<()>),
}

fn to_sensor(msg: ToSensor) -> Result<MsgToSensor, Status> {
    Ok(MsgToSensor { msg: Some(msg) })
}

fn kind_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Unspecified => "Unspecified",
        ResourceKind::Deployment => "Deployment",
        ResourceKind::Pod => "Pod",
        ResourceKind::Namespace => "Namespace",
        ResourceKind::NetworkPolicy => "NetworkPolicy",
        ResourceKind::Service => "Service",
        ResourceKind::Route => "Route",
        ResourceKind::ServiceAccount => "ServiceAccount",
        ResourceKind::Role => "Role",
        ResourceKind::ClusterRole => "ClusterRole",
        ResourceKind::RoleBinding => "RoleBinding",
        ResourceKind::ClusterRoleBinding => "ClusterRoleBinding",
        ResourceKind::Node => "Node",
        ResourceKind::Secret => "Secret",
    }
}

impl<B: Backend> Session<B> {
    async fn send(&self, msg: ToSensor) -> Result<(), Status> {
        self.out
            .send(to_sensor(msg))
            .await
            .map_err(|_| Status::cancelled("the Sensor went away"))
    }

    async fn send_policies(&self, policies: &PolicyState) -> Result<(), Status> {
        self.send(ToSensor::PolicySync(PolicySync {
            revision: policies.sync.revision.clone(),
            policies_json: policies.sync.policies_json.clone(),
        }))
        .await
    }

    async fn send_baselines(&self, cluster: &str) -> Result<(), Status> {
        self.send(ToSensor::BaselineSync(v1::ProcessBaselineSync {
            baselines: self.core.baselines.locked_in(cluster),
        }))
        .await
    }

    /// The findings of the cluster's images that its Sensor lacks or holds stale, and empty
    /// ones for the images it no longer runs; `sent` is brought up to date.
    async fn send_findings(&self, cluster: &str, sent: &mut FindingsSent) -> Result<(), Status> {
        let current = self.core.images.findings_of_cluster(cluster);
        for (reference, data) in &current {
            if sent.get(reference).is_some_and(|s| Arc::ptr_eq(s, data)) {
                continue;
            }
            let json = serde_json::to_vec(&**data).map_err(internal)?;
            if json.len() > MAX_IMAGE_FINDINGS_MESSAGE {
                tracing::warn!(%cluster, image = %reference, bytes = json.len(), "image findings too large to send to the Sensor");
                continue;
            }
            self.send(ToSensor::ImageFindings(v1::ImageFindings {
                reference: reference.clone(),
                image_data_json: json,
            }))
            .await?;
        }
        for reference in sent.keys() {
            if !current.contains_key(reference) {
                self.send(ToSensor::ImageFindings(v1::ImageFindings {
                    reference: reference.clone(),
                    image_data_json: Vec::new(),
                }))
                .await?;
            }
        }
        *sent = current;
        Ok(())
    }

    async fn notice(&self, kind: NoticeKind, seq: u64, message: String) -> Result<(), Status> {
        tracing::warn!(cluster = %self.identity.cluster, seq, %message, "notice to sensor");
        self.send(ToSensor::Notice(Notice {
            kind: kind as i32,
            seq,
            message,
        }))
        .await
    }

    async fn run(self, mut inbound: Streaming<MsgFromSensor>) -> Result<(), Status> {
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no SensorHello within 30 s"))??;
        let Some(MsgFromSensor {
            msg: Some(FromSensor::Hello(hello)),
            ..
        }) = first
        else {
            return Err(Status::failed_precondition(
                "the first message must be a SensorHello",
            ));
        };
        if !hello.cluster_name.is_empty() && hello.cluster_name != self.identity.cluster {
            let reason = format!(
                "certificate is for cluster '{}' but the Sensor says it is cluster '{}'",
                self.identity.cluster, hello.cluster_name
            );
            self.core.refusals.record(self.peer.clone(), reason.clone());
            return Err(Status::permission_denied(reason));
        }
        // Take the cluster over from any earlier stream, and wait until that one has stopped.
        let slot = self.slots.slot(&self.identity.cluster);
        let session_id = self
            .slots
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        slot.owner.send_replace(session_id);
        let _running =
            tokio::time::timeout(TAKEOVER_TIMEOUT, Arc::clone(&slot.running).lock_owned())
                .await
                .map_err(|_| {
                    Status::unavailable(
                        "the previous connection of this cluster did not stop; retry",
                    )
                })?;
        let mut owner = slot.owner.subscribe();
        if *owner.borrow_and_update() != session_id {
            return Err(Status::aborted(
                "superseded by a newer connection from the same cluster",
            ));
        }
        let negotiated = rampart_proto::negotiate(
            rampart_proto::PROTOCOL_MINOR,
            CENTRAL_CAPABILITIES,
            hello.protocol_minor,
            &hello.capabilities,
        );
        let mut cluster = self
            .core
            .store
            .cluster(&self.identity.cluster)
            .map_err(internal)?
            .unwrap_or_else(|| Cluster {
                id: self.identity.cluster.clone(),
                name: self.identity.cluster.clone(),
                created_unix_ms: now_ms(),
                ..Cluster::default()
            });
        cluster.sync_generation += 1;
        cluster.connection = ConnectionState::Connected;
        cluster.last_contact_unix_ms = Some(now_ms());
        cluster.sensor_version = hello.sensor_version.clone();
        cluster.dropped_events = hello.dropped_events;
        let mut batch = WriteBatch::default();
        batch.put_cluster(&cluster).map_err(internal)?;
        self.core.committer.commit(batch).await.map_err(internal)?;
        tracing::info!(cluster = %cluster.id, sensor_version = %hello.sensor_version, acked_seq = cluster.acked_seq, generation = cluster.sync_generation, "sensor connected");
        self.send(ToSensor::Hello(CentralHello {
            protocol_minor: negotiated.protocol_minor,
            central_version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: negotiated.capabilities.clone(),
            cluster_id: cluster.id.clone(),
            cluster_name: cluster.name.clone(),
            acked_seq: cluster.acked_seq,
        }))
        .await?;
        let mut policy_updates = self.core.policies.subscribe();
        let policies = Arc::clone(&policy_updates.borrow_and_update());
        if hello.policy_revision != policies.sync.revision {
            self.send_policies(&policies).await?;
        }
        let mut baseline_updates = negotiated
            .capabilities
            .iter()
            .any(|c| c == rampart_proto::capabilities::PROCESS_BASELINES)
            .then(|| self.core.baselines.subscribe());
        if let Some(updates) = &mut baseline_updates {
            updates.borrow_and_update();
            self.send_baselines(&cluster.id).await?;
        }
        let mut findings_updates = negotiated
            .capabilities
            .iter()
            .any(|c| c == rampart_proto::capabilities::IMAGE_FINDINGS)
            .then(|| self.core.images.subscribe_findings());
        let mut findings_sent = FindingsSent::new();
        if let Some(updates) = &mut findings_updates {
            updates.borrow_and_update();
            self.send_findings(&cluster.id, &mut findings_sent).await?;
            self.send(ToSensor::ImageFindingsSynced(v1::ImageFindingsSynced {}))
                .await?;
        }
        let labels = ClusterLabel {
            cluster: cluster.id.clone(),
        };
        self.core
            .metrics
            .sensor_connected
            .get_or_create(&labels)
            .set(1);
        self.core
            .metrics
            .sensor_dropped_events
            .get_or_create(&labels)
            .set(i64::try_from(cluster.dropped_events).unwrap_or(i64::MAX));

        let (acks, ack_rx) = mpsc::channel::<AckItem>(ACK_WINDOW);
        let acker = tokio::spawn(send_acks(ack_rx, self.out.clone()));
        let mut orders = self.core.orders.register(&cluster.id, session_id);
        let result = self
            .stream_loop(
                &mut inbound,
                &mut cluster,
                &acks,
                Inputs {
                    owner: &mut owner,
                    session_id,
                    policy_updates: &mut policy_updates,
                    orders: &mut orders,
                    baselines: baseline_updates.as_mut(),
                    findings: findings_updates.as_mut().map(|u| (u, &mut findings_sent)),
                },
            )
            .await;
        self.core.orders.unregister(&cluster.id, session_id);
        self.core
            .metrics
            .sensor_connected
            .get_or_create(&labels)
            .set(0);
        drop(acks);
        let _ = acker.await;

        // Whatever happened, record that the Sensor is gone (best effort; the stream is over).
        cluster.connection = ConnectionState::Disconnected;
        cluster.last_contact_unix_ms = Some(now_ms());
        let mut batch = WriteBatch::default();
        if batch.put_cluster(&cluster).is_ok() {
            let _ = self.core.committer.commit(batch).await;
        }
        tracing::info!(cluster = %cluster.id, acked_seq = cluster.acked_seq, "sensor disconnected");
        result
    }

    async fn stream_loop(
        &self,
        inbound: &mut Streaming<MsgFromSensor>,
        cluster: &mut Cluster,
        acks: &mpsc::Sender<AckItem>,
        inputs: Inputs<'_>,
    ) -> Result<(), Status> {
        let Inputs {
            owner,
            session_id,
            policy_updates,
            orders,
            mut baselines,
            mut findings,
        } = inputs;
        let lane = self.core.lanes.lane(&cluster.id);
        let mut recent = crate::activity::Recent::default();
        let messages = self
            .core
            .metrics
            .sensor_messages
            .get_or_create(&ClusterLabel {
                cluster: cluster.id.clone(),
            })
            .clone();
        loop {
            let message = tokio::select! {
                m = inbound.message() => m?,
                changed = policy_updates.changed() => {
                    if changed.is_ok() {
                        let policies = Arc::clone(&policy_updates.borrow_and_update());
                        self.send_policies(&policies).await?;
                    }
                    continue;
                }
                changed = async {
                    match baselines.as_mut() {
                        Some(b) => b.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_ok() {
                        if let Some(b) = baselines.as_mut() {
                            b.borrow_and_update();
                        }
                        self.send_baselines(&cluster.id).await?;
                    }
                    continue;
                }
                changed = async {
                    match findings.as_mut() {
                        Some((f, _)) => f.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_ok() && let Some((f, sent)) = findings.as_mut() {
                        f.borrow_and_update();
                        self.send_findings(&cluster.id, sent).await?;
                    }
                    continue;
                }
                order = orders.recv() => {
                    if let Some(order) = order {
                        tracing::info!(cluster = %cluster.id, order = %order.order_id, action = %order.action, deployment = %order.deployment_id, "enforcement order sent");
                        self.send(ToSensor::Enforcement(order)).await?;
                    }
                    continue;
                }
                changed = owner.changed() => {
                    if changed.is_err() || *owner.borrow() != session_id {
                        tracing::info!(cluster = %cluster.id, "a newer connection took over this cluster");
                        return Err(Status::aborted("superseded by a newer connection from the same cluster"));
                    }
                    continue;
                }
            };
            let Some(message) = message else { break };
            messages.inc();
            let seq = message.seq;
            if seq != 0 && seq <= cluster.acked_seq {
                continue; // a resend of something already durable
            }
            let mut batch = WriteBatch::default();
            // Held until the batch is submitted: alert decisions and their order in the store
            // stay consistent with reassessment and manual resolves.
            let mut overlay = lane.lock().await;
            match message.msg {
                Some(FromSensor::Event(event)) => {
                    if let Err(problem) = self.event_ops(cluster, &event, &mut batch, &mut overlay)
                    {
                        self.notice(NoticeKind::InvalidMessage, seq, problem)
                            .await?;
                        batch = WriteBatch::default();
                    }
                }
                Some(FromSensor::Synced(marker)) => {
                    // Reconciliation reads the store: everything before the marker must be in it.
                    let (done, wait) = oneshot::channel();
                    acks.send(AckItem::Barrier(done))
                        .await
                        .map_err(|_| Status::cancelled("ack pipeline stopped"))?;
                    let _ = wait.await;
                    // Everything submitted is durable now: the store is the truth again.
                    overlay.clear();
                    self.core
                        .metrics
                        .sensor_dropped_events
                        .get_or_create(&ClusterLabel {
                            cluster: cluster.id.clone(),
                        })
                        .set(i64::try_from(cluster.dropped_events).unwrap_or(i64::MAX));
                    let removed = self.reconcile(cluster, &marker).await?;
                    tracing::info!(cluster = %cluster.id, removed, "reconciled after sync");
                }
                Some(FromSensor::Health(h)) => {
                    let now = now_ms();
                    cluster.dropped_events = h.dropped_events;
                    cluster.buffered_events = h.buffered_events;
                    if !h.collector_mode.is_empty() {
                        cluster.collector_mode = h.collector_mode.clone();
                    }
                    cluster.last_contact_unix_ms = Some(now);
                    cluster.last_health_unix_ms = Some(now);
                    let label = ClusterLabel {
                        cluster: cluster.id.clone(),
                    };
                    self.core
                        .metrics
                        .sensor_dropped_events
                        .get_or_create(&label)
                        .set(i64::try_from(h.dropped_events).unwrap_or(i64::MAX));
                    self.core
                        .metrics
                        .sensor_buffered_events
                        .get_or_create(&label)
                        .set(i64::try_from(h.buffered_events).unwrap_or(i64::MAX));
                    // Health needs no ack, but the cluster record is kept current.
                    let mut batch = WriteBatch::default();
                    batch.put_cluster(cluster).map_err(internal)?;
                    drop(overlay);
                    self.core.committer.submit(batch).await.map_err(internal)?;
                    continue;
                }
                Some(FromSensor::EnforcementReport(report)) => {
                    if let Err(problem) =
                        self.enforcement_ops(cluster, &report, &mut batch, &mut overlay)
                    {
                        self.notice(NoticeKind::InvalidMessage, seq, problem)
                            .await?;
                        batch = WriteBatch::default();
                    }
                }
                Some(FromSensor::Hello(_)) => {
                    self.notice(
                        NoticeKind::InvalidMessage,
                        seq,
                        "SensorHello is only valid as the first message".into(),
                    )
                    .await?;
                }
                Some(FromSensor::Process(p)) => {
                    crate::activity::process_ops(
                        &self.core.store,
                        &mut recent,
                        &cluster.id,
                        &p,
                        &mut batch,
                    )
                    .map_err(internal)?;
                    if !p.deployment_id.contains('\0') && !p.container_name.contains('\0') {
                        self.core
                            .baselines
                            .observe(
                                &cluster.id,
                                &p.deployment_id,
                                &p.container_name,
                                &p.exec_file_path,
                                now_ms(),
                                &mut batch,
                            )
                            .map_err(internal)?;
                    }
                }
                Some(FromSensor::NetworkFlows(b)) => {
                    crate::activity::network_ops(
                        &self.core.store,
                        &mut recent,
                        &cluster.id,
                        &b.flows,
                        &b.listens,
                        &mut batch,
                    )
                    .map_err(internal)?;
                    if let Err(problem) =
                        self.network_baseline_ops(cluster, &b.flows, &mut batch, &mut overlay)
                    {
                        self.notice(NoticeKind::InvalidMessage, seq, problem)
                            .await?;
                        batch = WriteBatch::default();
                    }
                }
                Some(FromSensor::AdmissionAlerts(alerts)) => {
                    self.admission_ops(cluster, &alerts, &mut batch)
                        .map_err(internal)?;
                }
                Some(FromSensor::ImageScanRequest(request)) => {
                    let asked = request.references.len();
                    let taken = crate::images::scan_for_admission(
                        &self.core,
                        &cluster.id,
                        request.references,
                    );
                    tracing::debug!(cluster = %cluster.id, asked, taken, "images to scan for admission");
                }
                Some(FromSensor::AlertResults(results)) => {
                    if let Err(problem) =
                        self.runtime_ops(cluster, &results, &mut batch, &mut overlay)
                    {
                        self.notice(NoticeKind::InvalidMessage, seq, problem)
                            .await?;
                        batch = WriteBatch::default();
                    }
                }
                None => {
                    self.notice(
                        NoticeKind::UnsupportedMessage,
                        seq,
                        "unknown message kind (newer Sensor?)".into(),
                    )
                    .await?;
                }
            }
            if seq == 0 {
                continue;
            }
            // The durable position moves with the data: both land in the same write.
            cluster.acked_seq = seq;
            batch.put_cluster(cluster).map_err(internal)?;
            let durable = self.core.committer.submit(batch).await.map_err(internal)?;
            drop(overlay);
            acks.send(AckItem::Durable(seq, durable))
                .await
                .map_err(|_| Status::cancelled("ack pipeline stopped"))?;
        }
        Ok(())
    }

    /// The writes for one resource event, or why it is invalid.
    fn event_ops(
        &self,
        cluster: &Cluster,
        event: &ResourceEvent,
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
    ) -> Result<(), String> {
        let kind = ResourceKind::try_from(event.kind).unwrap_or(ResourceKind::Unspecified);
        if kind == ResourceKind::Unspecified {
            return Err(format!(
                "resource event {} has no known kind ({})",
                event.id, event.kind
            ));
        }
        if event.id.is_empty() || event.id.contains('\0') {
            return Err("resource event without a valid id".to_string());
        }
        let action = ResourceAction::try_from(event.action).unwrap_or(ResourceAction::Unspecified);
        let kind_str = kind_name(kind);
        match action {
            ResourceAction::Remove => {
                if kind == ResourceKind::Deployment {
                    batch
                        .delete_deployment(&cluster.id, &event.id)
                        .map_err(|e| e.to_string())?;
                    self.core.images.forget(&cluster.id, &event.id);
                    self.core
                        .baselines
                        .forget(&cluster.id, &event.id, batch)
                        .map_err(|e| e.to_string())?;
                    self.core
                        .netbaselines
                        .forget(&cluster.id, &event.id, batch)
                        .map_err(|e| e.to_string())?;
                    let mut active = self.active_alerts(overlay, &cluster.id, &event.id)?;
                    for a in alerts::decide_removed(&active, now_ms()) {
                        alerts::persist::put(batch, &a).map_err(|e| e.to_string())?;
                    }
                    active.retain(|a| !a.is_deploy_time());
                    overlay.set(&event.id, active);
                    Ok(())
                } else {
                    if kind == ResourceKind::Secret {
                        self.core.images.secret_removed(&cluster.id, &event.id);
                    }
                    batch
                        .delete_resource(&cluster.id, kind_str, &event.id)
                        .map_err(|e| e.to_string())
                }
            }
            ResourceAction::Create | ResourceAction::Update | ResourceAction::Sync => {
                // Validated once and stored byte for byte.
                let object: Box<serde_json::value::RawValue> =
                    serde_json::from_slice(&event.object_json).map_err(|e| {
                        format!("resource event {}: object is not valid JSON: {e}", event.id)
                    })?;
                if !object.get().starts_with('{') {
                    return Err(format!(
                        "resource event {}: object is not a JSON object",
                        event.id
                    ));
                }
                let r = if kind == ResourceKind::Deployment {
                    let value: serde_json::Value = serde_json::from_str(object.get())
                        .map_err(|e| format!("resource event {}: {e}", event.id))?;
                    let workload_kind = value
                        .get("kind")
                        .and_then(|k| k.as_str())
                        .unwrap_or("Deployment")
                        .to_string();
                    let context = event
                        .context
                        .as_ref()
                        .filter(|c| c.complete)
                        .map(cluster_context);
                    let active_alerts =
                        self.detect(cluster, event, value, context.clone(), batch, overlay)?;
                    batch.put_deployment(&DeploymentRecord {
                        cluster_id: cluster.id.clone(),
                        id: event.id.clone(),
                        namespace: event.namespace.clone(),
                        name: event.name.clone(),
                        kind: workload_kind,
                        object,
                        content_hash: event.content_hash,
                        updated_unix_ms: now_ms(),
                        generation: cluster.sync_generation,
                        active_alerts,
                        context,
                    })
                } else {
                    if kind == ResourceKind::Secret {
                        self.core.images.secret_changed(
                            &cluster.id,
                            &event.id,
                            &event.namespace,
                            object.get(),
                        );
                    }
                    batch.put_resource(&ResourceRecord {
                        cluster_id: cluster.id.clone(),
                        kind: kind_str.to_string(),
                        id: event.id.clone(),
                        namespace: event.namespace.clone(),
                        name: event.name.clone(),
                        object,
                        content_hash: event.content_hash,
                        generation: cluster.sync_generation,
                    })
                };
                r.map_err(|e| e.to_string())
            }
            ResourceAction::Unspecified => {
                Err(format!("resource event {} has no action", event.id))
            }
        }
    }

    /// Records what the Sensor did on the alert it was about: the deployment's active alert of
    /// that policy, or the alert the order named.
    fn enforcement_ops(
        &self,
        cluster: &Cluster,
        report: &v1::EnforcementReport,
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
    ) -> Result<(), String> {
        if report.deployment_id.is_empty() {
            return Err("enforcement report without a deployment id".into());
        }
        let known = [
            "SCALE_TO_ZERO_ENFORCEMENT",
            "UNSATISFIABLE_NODE_CONSTRAINT_ENFORCEMENT",
            "KILL_POD_ENFORCEMENT",
        ];
        self.core
            .metrics
            .enforcements
            .get_or_create(&crate::metrics::EnforcementLabels {
                cluster: cluster.id.clone(),
                action: if known.contains(&report.action.as_str()) {
                    report.action.clone()
                } else {
                    "OTHER".into()
                },
                succeeded: report.succeeded,
            })
            .inc();
        let enforcement = alerts::Enforcement {
            action: report.action.clone(),
            succeeded: report.succeeded,
            message: report.message.clone(),
            time_unix_ms: if report.time_unix_ms > 0 {
                report.time_unix_ms
            } else {
                now_ms()
            },
            order_id: report.order_id.clone(),
        };
        let mut active = self.active_alerts(overlay, &cluster.id, &report.deployment_id)?;
        if let Some(alert) = active
            .iter_mut()
            .find(|a| a.policy_id == report.policy_id && a.state == alerts::AlertState::Active)
        {
            alert.record_enforcement(enforcement);
            alerts::persist::put(batch, alert).map_err(|e| e.to_string())?;
            overlay.set(&report.deployment_id, active);
            return Ok(());
        }
        let ordered = (!report.order_id.is_empty())
            .then(|| self.core.orders.alert_of(&report.order_id))
            .flatten();
        if let Some(id) = ordered
            && let Some(mut alert) =
                alerts::persist::get(&self.core.store, &id).map_err(|e| e.to_string())?
            && alert.cluster_id == cluster.id
        {
            alert.record_enforcement(enforcement);
            alerts::persist::put(batch, &alert).map_err(|e| e.to_string())?;
            overlay.forget(&report.deployment_id);
            return Ok(());
        }
        tracing::warn!(cluster = %cluster.id, deployment = %report.deployment_id, policy = %report.policy_id, message = %report.message, "enforcement report matches no alert");
        Ok(())
    }

    /// Each flow against its deployments' network baselines: learned while observing; outside a
    /// locked baseline (or to a rejected peer) it raises the enabled "Unexpected Network Flow
    /// Detected" policies as runtime alerts, through the same merge as the Sensor's.
    fn network_baseline_ops(
        &self,
        cluster: &Cluster,
        flows: &[v1::NetworkFlow],
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
    ) -> Result<(), String> {
        if flows.is_empty() {
            return Ok(());
        }
        let blocks = crate::netgraph::parsed_blocks(&self.core.store).map_err(|e| e.to_string())?;
        let state = self.core.policies.current();
        let policies: Vec<String> = state
            .policies
            .iter()
            .filter(|p| {
                !p.disabled
                    && p.has_stage(rampart_policy::LifecycleStage::Runtime)
                    && p.policy_sections.iter().any(|s| {
                        s.policy_groups
                            .iter()
                            .any(|g| g.field_name == "Unexpected Network Flow Detected")
                    })
            })
            .map(|p| p.id.clone())
            .collect();
        let now = now_ms();
        for f in flows {
            let node = |deployment: &str| {
                if deployment.is_empty() {
                    crate::netgraph::entity_of(&f.external_peer, &blocks)
                } else {
                    crate::netgraph::Node {
                        id: deployment.to_string(),
                        kind: "DEPLOYMENT",
                        name: deployment.to_string(),
                        namespace: String::new(),
                        cidr: String::new(),
                    }
                }
            };
            let (src, dst) = (
                node(&f.source_deployment_id),
                node(&f.destination_deployment_id),
            );
            for (deployment, peer, ingress) in [
                (&f.source_deployment_id, &dst, false),
                (&f.destination_deployment_id, &src, true),
            ] {
                if deployment.is_empty() {
                    continue;
                }
                let as_peer = |id: String| crate::netbaselines::Peer {
                    ingress,
                    peer: id,
                    port: f.port,
                    protocol: f.protocol.clone(),
                };
                let observed = self
                    .core
                    .netbaselines
                    .observe_within(
                        &cluster.id,
                        deployment,
                        as_peer(peer.id.clone()),
                        crate::netgraph::broader(peer).map(as_peer),
                        now,
                        batch,
                    )
                    .map_err(|e| e.to_string())?;
                let crate::netbaselines::FlowObserved::Anomalous(p) = observed else {
                    continue;
                };
                if policies.is_empty() {
                    continue;
                }
                let peer_name = if peer.kind == "DEPLOYMENT" {
                    self.core
                        .store
                        .deployment(&cluster.id, &peer.id)
                        .ok()
                        .flatten()
                        .map(|d| format!("deployment {}/{}", d.namespace, d.name))
                        .unwrap_or_else(|| format!("deployment {}", peer.id))
                } else {
                    peer.name.clone()
                };
                let message = p.describe(&peer_name);
                let results = v1::AlertResults {
                    deployment_id: deployment.clone(),
                    stage: v1::LifecycleStage::Runtime as i32,
                    alerts: policies
                        .iter()
                        .map(|id| v1::Alert {
                            policy_id: id.clone(),
                            violations: vec![v1::Violation {
                                message: message.clone(),
                                time_unix_ms: f.last_seen_unix_ms,
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect(),
                    policy_revision: String::new(),
                };
                self.runtime_ops(cluster, &results, batch, overlay)?;
            }
        }
        Ok(())
    }

    /// Stores what the Sensor's runtime detection found in one deployment: each policy's
    /// violations merged into its ACTIVE runtime alert there, or a new one.
    fn runtime_ops(
        &self,
        cluster: &Cluster,
        results: &v1::AlertResults,
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
    ) -> Result<(), String> {
        if v1::LifecycleStage::try_from(results.stage) != Ok(v1::LifecycleStage::Runtime) {
            return Err("alert results are accepted for the RUNTIME stage only".into());
        }
        if results.deployment_id.is_empty() || results.deployment_id.contains('\0') {
            return Err("alert results without a valid deployment id".into());
        }
        let Some(record) = self
            .core
            .store
            .deployment(&cluster.id, &results.deployment_id)
            .map_err(|e| e.to_string())?
        else {
            // The Sensor reports a deployment before its processes; one Central does not know
            // was removed meanwhile. Its events are history without a subject.
            tracing::warn!(cluster = %cluster.id, deployment = %results.deployment_id, "runtime alerts for an unknown deployment dropped");
            self.core.metrics.runtime_alerts_dropped.inc();
            return Ok(());
        };
        let subject = alerts::RuntimeSubject {
            cluster_id: &cluster.id,
            deployment_id: &record.id,
            namespace: &record.namespace,
            deployment_name: &record.name,
            deployment_kind: &record.kind,
        };
        let policies = self.core.policies.current();
        let mut active = self.active_alerts(overlay, &cluster.id, &record.id)?;
        let now = now_ms();
        for alert in &results.alerts {
            let Some(policy) = policies.get(&alert.policy_id) else {
                tracing::warn!(cluster = %cluster.id, policy = %alert.policy_id, "runtime alert for an unknown policy dropped");
                self.core.metrics.runtime_alerts_dropped.inc();
                continue;
            };
            let violations: Vec<String> = alert
                .violations
                .iter()
                .map(|v| v.message.clone())
                .filter(|m| !m.is_empty())
                .collect();
            if violations.is_empty() {
                continue;
            }
            let processes: Vec<alerts::ProcessViolation> = alert
                .violations
                .iter()
                .filter_map(|v| {
                    let a = &v.attributes;
                    Some(alerts::ProcessViolation {
                        container_name: a.get("container")?.clone(),
                        exec_file_path: a.get("exec_file_path")?.clone(),
                        args: a.get("args").cloned().unwrap_or_default(),
                        pod_id: a.get("pod").cloned().unwrap_or_default(),
                        uid: a.get("uid").and_then(|u| u.parse().ok()).unwrap_or(0),
                        time_unix_ms: v.time_unix_ms,
                    })
                })
                .collect();
            let decision = alerts::decide_runtime(
                &subject,
                policy,
                &violations,
                &processes,
                &active,
                now,
                || uuid::Uuid::now_v7().to_string(),
            );
            let written = match decision {
                alerts::RuntimeDecision::Unchanged => continue,
                alerts::RuntimeDecision::Open(a) => {
                    tracing::info!(cluster = %cluster.id, alert = %a.id, policy = %policy.name, deployment = %record.name, namespace = %record.namespace, "runtime alert");
                    self.core.metrics.alerts_opened.inc();
                    a
                }
                alerts::RuntimeDecision::Merge(a) => a,
            };
            alerts::persist::put_runtime(batch, &written).map_err(|e| e.to_string())?;
            active.retain(|a| a.id != written.id);
            active.push(written);
        }
        overlay.set(&record.id, active);
        Ok(())
    }

    /// Stores the admission controller's alerts, each as a new alert of its own.
    fn admission_ops(
        &self,
        cluster: &Cluster,
        alerts: &v1::AdmissionAlerts,
        batch: &mut WriteBatch,
    ) -> Result<(), crate::store::Error> {
        let policies = self.core.policies.current();
        let now = now_ms();
        for a in &alerts.alerts {
            let Some(policy) = policies.get(&a.policy_id) else {
                tracing::warn!(cluster = %cluster.id, policy = %a.policy_id, "admission alert for an unknown policy dropped");
                continue;
            };
            let record = alerts::from_admission(
                &cluster.id,
                policy,
                a,
                uuid::Uuid::now_v7().to_string(),
                now,
            );
            tracing::info!(cluster = %cluster.id, alert = %record.id, policy = %policy.name, state = record.state.as_str(), operation = %a.operation, namespace = %a.namespace, name = %a.name, "admission alert");
            alerts::persist::put(batch, &record)?;
            self.core.metrics.alerts_opened.inc();
        }
        Ok(())
    }

    fn active_alerts(
        &self,
        overlay: &Overlay,
        cluster: &str,
        deployment: &str,
    ) -> Result<Vec<AlertRecord>, String> {
        match overlay.get(deployment) {
            Some(active) => Ok(active.clone()),
            None => alerts::persist::active_for(&self.core.store, cluster, deployment)
                .map_err(|e| e.to_string()),
        }
    }

    /// Evaluates the deploy-time policies on a workload and writes the alert decisions into the
    /// same batch as the workload itself. Returns the ids of its active alerts afterwards.
    fn detect(
        &self,
        cluster: &Cluster,
        event: &ResourceEvent,
        object: serde_json::Value,
        context: Option<rampart_policy::ClusterContext>,
        batch: &mut WriteBatch,
        overlay: &mut Overlay,
    ) -> Result<Vec<String>, String> {
        let Some(mut deployment) = Detector::normalize(object, &event.namespace) else {
            // Not a workload the engine understands: its alerts stay as they are.
            let active = self.active_alerts(overlay, &cluster.id, &event.id)?;
            return Ok(deploy_time_ids(&active));
        };
        deployment.cluster = context;
        self.core
            .images
            .observe(&cluster.id, &event.id, &mut deployment);
        let policies = self.core.policies.current();
        let outcomes = policies.detector.evaluate(&deployment, &cluster.id);
        let mut active = self.active_alerts(overlay, &cluster.id, &event.id)?;
        let subject = Subject {
            cluster_id: &cluster.id,
            deployment_id: &event.id,
            deployment: &deployment,
        };
        let decisions = alerts::decide_deploy_time(&subject, &outcomes, &active, now_ms(), || {
            uuid::Uuid::now_v7().to_string()
        });
        if decisions.upsert.is_empty() && decisions.resolve.is_empty() {
            return Ok(deploy_time_ids(&active));
        }
        for a in &decisions.resolve {
            alerts::persist::put(batch, a).map_err(|e| e.to_string())?;
            active.retain(|x| x.id != a.id);
            self.core.metrics.alerts_resolved.inc();
        }
        for a in decisions.upsert {
            alerts::persist::put(batch, &a).map_err(|e| e.to_string())?;
            if !active.iter().any(|x| x.id == a.id) {
                self.core.metrics.alerts_opened.inc();
            }
            active.retain(|x| x.id != a.id);
            active.push(a);
        }
        let ids = deploy_time_ids(&active);
        overlay.set(&event.id, active);
        Ok(ids)
    }

    /// Removes what the Sensor no longer reports: objects of this cluster whose generation is
    /// older than the current one and that the marker does not list as unchanged.
    async fn reconcile(&self, cluster: &Cluster, marker: &v1::SyncMarker) -> Result<usize, Status> {
        let unchanged: BTreeSet<&str> = marker.unchanged_ids.iter().map(String::as_str).collect();
        let mut stale = Vec::new();
        let mut refresh = Vec::new();
        self.core
            .store
            .for_each_cluster_object(&cluster.id, |table, key, generation| {
                if generation >= cluster.sync_generation {
                    return;
                }
                let id = key.rsplit('\0').next().unwrap_or_default();
                if unchanged.contains(id) {
                    refresh.push((table, key.to_string()));
                } else {
                    stale.push((table, key.to_string()));
                }
            })
            .map_err(internal)?;
        let removed = stale.len();
        for chunk in stale.chunks(1000) {
            let mut batch = WriteBatch::default();
            for (table, key) in chunk {
                batch.ops.push(crate::store::Op::Delete {
                    table: *table,
                    key: key.clone(),
                });
                if *table == Table::Resources
                    && let [_, "Secret", id] = key.split('\0').collect::<Vec<_>>().as_slice()
                {
                    self.core.images.secret_removed(&cluster.id, id);
                }
                // A deployment that is gone resolves its deploy-time alerts.
                if *table == Table::Deployments
                    && let Some(id) = key.rsplit('\0').next()
                {
                    self.core.images.forget(&cluster.id, id);
                    self.core
                        .baselines
                        .forget(&cluster.id, id, &mut batch)
                        .map_err(internal)?;
                    self.core
                        .netbaselines
                        .forget(&cluster.id, id, &mut batch)
                        .map_err(internal)?;
                    let active = alerts::persist::active_for(&self.core.store, &cluster.id, id)
                        .map_err(internal)?;
                    for a in alerts::decide_removed(&active, now_ms()) {
                        alerts::persist::put(&mut batch, &a).map_err(internal)?;
                    }
                }
            }
            self.core.committer.commit(batch).await.map_err(internal)?;
        }
        // Unchanged objects move to the current generation so the next resync keeps them.
        for chunk in refresh.chunks(1000) {
            let mut batch = WriteBatch::default();
            for (table, key) in chunk {
                let mut parts = key.split('\0');
                let (cluster_id, rest) =
                    (parts.next().unwrap_or_default(), parts.collect::<Vec<_>>());
                match (table, rest.as_slice()) {
                    (Table::Deployments, [id]) => {
                        if let Some(mut d) = self
                            .core
                            .store
                            .deployment(cluster_id, id)
                            .map_err(internal)?
                        {
                            d.generation = cluster.sync_generation;
                            batch.put_deployment(&d).map_err(internal)?;
                        }
                    }
                    (Table::Resources, [kind, id]) => {
                        if let Some(mut r) = self
                            .core
                            .store
                            .resource(cluster_id, kind, id)
                            .map_err(internal)?
                        {
                            r.generation = cluster.sync_generation;
                            batch.put_resource(&r).map_err(internal)?;
                        }
                    }
                    _ => {}
                }
            }
            self.core.committer.commit(batch).await.map_err(internal)?;
        }
        Ok(removed)
    }
}

/// Sends `Ack(seq)` as each submitted write becomes durable, in submission order.
/// The Sensor's derived context, as the engine reads it.
fn cluster_context(c: &v1::DeploymentContext) -> rampart_policy::ClusterContext {
    rampart_policy::ClusterContext {
        rbac_level: c.rbac_level.clone(),
        ingress_network_policy: c.has_ingress_network_policy,
        egress_network_policy: c.has_egress_network_policy,
        exposures: c
            .port_exposures
            .iter()
            .map(|e| rampart_policy::PortExposure {
                container: e.container.clone(),
                container_port: i64::from(e.container_port),
                protocol: e.protocol.clone(),
                level: e.level.clone(),
                service_name: e.service_name.clone(),
                node_port: i64::from(e.node_port),
            })
            .collect(),
    }
}

async fn send_acks(
    mut items: mpsc::Receiver<AckItem>,
    out: mpsc::Sender<Result<MsgToSensor, Status>>,
) {
    while let Some(item) = items.recv().await {
        match item {
            AckItem::Barrier(done) => {
                let _ = done.send(());
            }
            AckItem::Durable(seq, durable) => {
                if let Err(e) = durable.wait().await {
                    let _ = out.send(Err(internal(e))).await;
                    return;
                }
                if out
                    .send(to_sensor(ToSensor::Ack(Ack { seq })))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The ids a deployment record lists: its deploy-time alerts (runtime ones are indexed apart).
fn deploy_time_ids(active: &[alerts::AlertRecord]) -> Vec<String> {
    active
        .iter()
        .filter(|a| a.is_deploy_time())
        .map(|a| a.id.clone())
        .collect()
}
