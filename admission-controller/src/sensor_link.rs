//! The link to the cluster's Sensor (mTLS gRPC, the init bundle's admission-control
//! certificate): policy sets and the cluster's workloads come in, alerts go out. Nothing here
//! is on the request path: decisions use what was last received, and a set received is written
//! to the disk cache before anything else.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes};
use prost::Message;
use rampart_proto::MAX_ADMISSION_REPORT;
use rampart_proto::v1::admission_control_service_client::AdmissionControlServiceClient;
use rampart_proto::v1::admission_control_service_server::SERVICE_NAME;
use rampart_proto::v1::admission_update::Msg;
use rampart_proto::v1::{AdmissionReportAck, AdmissionWatch};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::alerts::Batch;
use crate::findings_cache::FindingsCache;
use crate::overflow::Overflow;
use crate::policies::{DiskCache, PolicySet};
use crate::resources::Resources;
use crate::server::State;

const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest update read from the Sensor: a policy set, or one image's findings.
const MAX_UPDATE_BYTES: usize = 16 << 20;
/// How long alerts gather before a report that is not full leaves: the delay an alert adds on
/// its way to Central, and at most one report this often in a storm.
const REPORT_LINGER: Duration = Duration::from_millis(50);

/// Where the Sensor is and who the controller is.
#[derive(Debug, Clone)]
pub struct SensorLink {
    /// `https://sensor.rampart.svc:8443`
    pub endpoint: String,
    /// The name in the Sensor's certificate.
    pub server_name: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// Pod or host name, for the Sensor's logs.
    pub instance: String,
}

/// A channel that connects (and reconnects) on use.
pub fn channel(link: &SensorLink) -> Result<Channel, String> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&link.ca_pem))
        .identity(Identity::from_pem(&link.cert_pem, &link.key_pem))
        .domain_name(link.server_name.clone());
    Ok(Channel::from_shared(link.endpoint.clone())
        .map_err(|e| format!("invalid Sensor endpoint {:?}: {e}", link.endpoint))?
        .tls_config(tls)
        .map_err(|e| format!("Sensor TLS configuration: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .connect_lazy())
}

async fn backoff(delay: &mut Duration) {
    tokio::time::sleep(delay.mul_f64(rand::random_range(0.5..1.5))).await;
    *delay = (*delay * 2).min(MAX_BACKOFF);
}

/// Receives policy sets and resources until the task is dropped.
pub async fn watch(
    link: SensorLink,
    channel: Channel,
    state: Arc<State>,
    cache: DiskCache,
    findings: FindingsCache,
) {
    let mut delay = INITIAL_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        match watch_session(&link, channel.clone(), &state, &cache, &findings).await {
            Ok(()) => tracing::warn!("the Sensor ended the policy stream; reconnecting"),
            Err(error) => {
                tracing::warn!(%error, "policy stream from the Sensor failed; reconnecting")
            }
        }
        state.metrics.sensor_connected.set(0);
        if started.elapsed() > MAX_BACKOFF {
            delay = INITIAL_BACKOFF;
        }
        backoff(&mut delay).await;
    }
}

async fn watch_session(
    link: &SensorLink,
    channel: Channel,
    state: &State,
    cache: &DiskCache,
    findings: &FindingsCache,
) -> Result<(), tonic::Status> {
    // An image's findings may be a few MiB (Central sends at most 4 MiB of them at once).
    let mut client =
        AdmissionControlServiceClient::new(channel).max_decoding_message_size(MAX_UPDATE_BYTES);
    let current = state
        .policies()
        .map(|p| p.revision.clone())
        .unwrap_or_default();
    let mut stream = client
        .watch(AdmissionWatch {
            controller_version: env!("CARGO_PKG_VERSION").to_string(),
            instance: link.instance.clone(),
            policy_revision: current,
        })
        .await?
        .into_inner();
    state.metrics.sensor_connected.set(1);
    tracing::info!(sensor = %link.endpoint, "connected to the Sensor");
    // A new snapshot is built aside and swapped in whole: requests keep deciding against the
    // previous view until it is complete.
    let mut snapshot = Some(Resources::default());
    while let Some(update) = stream.message().await? {
        match update.msg {
            Some(Msg::Policies(p)) => {
                if state.policies().is_some_and(|s| s.revision == p.revision) {
                    continue;
                }
                let received = SystemTime::now();
                if let Err(error) =
                    cache.store(&p.revision, &p.cluster_name, received, &p.policies_json)
                {
                    tracing::error!(%error, "policy set not cached on disk; a restart will wait for the Sensor");
                }
                state.set_policies(PolicySet::build(
                    &p.revision,
                    &p.cluster_name,
                    received,
                    &p.policies_json,
                ));
            }
            Some(Msg::Resource(r)) => match snapshot.as_mut() {
                Some(s) => s.apply(r),
                None => state
                    .resources
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .apply(r),
            },
            Some(Msg::ResourcesSynced(_)) => {
                if let Some(mut s) = snapshot.take() {
                    s.synced = true;
                    tracing::info!(
                        objects = s.len(),
                        images = s.images(),
                        "cluster view received"
                    );
                    state
                        .metrics
                        .image_findings
                        .set(i64::try_from(s.images()).unwrap_or(i64::MAX));
                    // The snapshot named every image Central has findings for: the others'
                    // files go.
                    if let Err(error) = findings.retain(&s) {
                        tracing::warn!(%error, "image findings on disk not pruned");
                    }
                    *state.resources.write().unwrap_or_else(|e| e.into_inner()) = s;
                }
            }
            Some(Msg::ImageFindings(f)) => {
                let reference = f.reference.clone();
                // On disk first, for a restart while the Sensor is away.
                if let Err(error) = findings.store(&f) {
                    tracing::warn!(image = %reference, %error, "image findings not kept on disk");
                }
                let (result, images) = match snapshot.as_mut() {
                    Some(s) => (s.apply_image(f), None),
                    None => {
                        let mut live = state.resources.write().unwrap_or_else(|e| e.into_inner());
                        (live.apply_image(f), Some(live.images()))
                    }
                };
                if let Some(n) = images {
                    state
                        .metrics
                        .image_findings
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                if let Err(error) = result {
                    state.metrics.image_findings_refused.inc();
                    tracing::warn!(image = %reference, %error, "image findings not kept");
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// `Report` of alerts encoded already: the queue holds them as the bytes of an
/// `AdmissionAlerts` message, written when each denial was queued, and they go out as they are
/// instead of being built into messages and encoded again.
#[derive(Debug, Clone, Copy, Default)]
struct EncodedAlerts;

impl Codec for EncodedAlerts {
    type Encode = Bytes;
    type Decode = AdmissionReportAck;
    type Encoder = EncodedAlerts;
    type Decoder = Ack;

    fn encoder(&mut self) -> EncodedAlerts {
        EncodedAlerts
    }

    fn decoder(&mut self) -> Ack {
        Ack
    }
}

impl Encoder for EncodedAlerts {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// The Sensor's answer to a report.
#[derive(Debug, Clone, Copy, Default)]
struct Ack;

impl Decoder for Ack {
    type Item = AdmissionReportAck;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<AdmissionReportAck>, Status> {
        AdmissionReportAck::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("the Sensor's acknowledgement: {e}")))
    }
}

/// Sends one batch of encoded alerts.
async fn send_report(
    grpc: &mut tonic::client::Grpc<Channel>,
    alerts: Bytes,
) -> Result<tonic::Response<AdmissionReportAck>, Status> {
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("the Sensor link is not ready: {e}")))?;
    let path = PathAndQuery::try_from(format!("/{SERVICE_NAME}/Report"))
        .map_err(|e| Status::internal(format!("report path: {e}")))?;
    grpc.unary(tonic::Request::new(alerts), path, EncodedAlerts)
        .await
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands queued alerts to the Sensor until the task is dropped.
pub async fn report(channel: Channel, state: Arc<State>, overflow: Overflow) {
    // Files are written and read on the blocking pool, never on the threads serving reviews.
    let overflow = Arc::new(std::sync::Mutex::new(overflow));
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut delay = INITIAL_BACKOFF;
    // Whether the last report was delivered (at start: try).
    let mut delivering = true;
    loop {
        // The Sensor takes reports and the queue has room: the oldest alerts kept on disk go
        // first.
        if delivering
            && lock(&overflow).segments() > 0
            && state.alerts.len() <= state.alerts.capacity() / 4
        {
            let o = Arc::clone(&overflow);
            match tokio::task::spawn_blocking(move || lock(&o).take_oldest()).await {
                Ok(Some(Ok(batch))) => state.alerts.requeue(batch, &state.metrics),
                Ok(Some(Err(error))) => tracing::error!(%error, "alerts kept on disk lost"),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "reading alerts kept on disk failed"),
            }
        }
        if state.alerts.is_empty() && state.scan_wants.is_empty() {
            tokio::select! {
                () = state.alerts.ready.notified() => {}
                () = state.scan_wants.ready.notified() => {}
            }
        }
        if state.alerts.len() < MAX_ADMISSION_REPORT {
            // A burst's alerts go in one report, and a retry storm's identical attempts join
            // the alerts waiting, instead of one round trip (and one alert) an attempt.
            tokio::time::sleep(REPORT_LINGER).await;
        }
        let batch = state.alerts.take_for_report(MAX_ADMISSION_REPORT);
        // Images met without findings ride along, for the Sensor to have Central scan them.
        let images = state.scan_wants.take();
        if batch.is_empty() && images.is_empty() {
            continue;
        }
        let n = batch.alerts;
        let mut report = batch.bytes;
        let alerts_end = report.len();
        crate::alerts::append_scan_images(&images, &mut report);
        let report = Bytes::from(report);
        let sent =
            tokio::time::timeout(REPORT_TIMEOUT, send_report(&mut grpc, report.clone())).await;
        match sent {
            Ok(Ok(_)) => {
                state.alerts.delivered();
                state.metrics.alerts_reported.inc_by(n as u64);
                state.metrics.scans_asked.inc_by(images.len() as u64);
                delay = INITIAL_BACKOFF;
                delivering = true;
                continue;
            }
            Ok(Err(status)) => {
                tracing::warn!(%status, alerts = n, images = images.len(), "report not delivered to the Sensor; retrying");
            }
            Err(_) => {
                tracing::warn!(
                    alerts = n,
                    images = images.len(),
                    "the Sensor did not take the report in time; retrying"
                );
            }
        }
        if n > 0 {
            // The alerts' part of the report (the images are put back on their own).
            let mut bytes = Vec::from(report);
            bytes.truncate(alerts_end);
            state
                .alerts
                .not_delivered(Batch { bytes, alerts: n }, &state.metrics);
        }
        state.scan_wants.requeue(images);
        delivering = false;
        spill_excess(&state, &overflow).await;
        // Waits out the backoff, moving the oldest alerts to disk whenever the queue passes
        // half its capacity meanwhile (a storm of distinct denials with the Sensor away).
        let pause = tokio::time::sleep(delay.mul_f64(rand::random_range(0.5..1.5)));
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                () = state.alerts.high_water.notified() => spill_excess(&state, &overflow).await,
            }
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// With the Sensor away and the queue past half its capacity, moves its oldest alerts to disk
/// until a quarter is left (the request path never writes); beyond the disk's bound they are
/// dropped and counted, as the queue would have.
async fn spill_excess(state: &State, overflow: &Arc<std::sync::Mutex<Overflow>>) {
    let capacity = state.alerts.capacity();
    let len = state.alerts.len();
    if len <= capacity / 2 {
        return;
    }
    let batch = state.alerts.take(len - capacity / 4);
    let n = batch.alerts as u64;
    let o = Arc::clone(overflow);
    let spilled = tokio::task::spawn_blocking(move || lock(&o).spill(&batch))
        .await
        .unwrap_or_else(|e| Err(format!("the writer failed: {e}")));
    match spilled {
        Ok(()) => {
            state.metrics.alerts_spilled.inc_by(n);
        }
        Err(error) => {
            tracing::warn!(%error, "alerts dropped: the Sensor is away and the disk's share is full");
            state.metrics.alerts_dropped.inc_by(n);
        }
    }
}
