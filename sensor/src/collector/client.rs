//! The Collector's stream to its Sensor: mTLS, hello, then the outbox's messages with sequence
//! numbers; acknowledged messages leave the outbox, the rest is resent after a reconnect
//! (jittered exponential backoff). Health goes out every few seconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_proto::collector::collector_message::Msg;
use rampart_proto::collector::collector_service_client::CollectorServiceClient;
use rampart_proto::collector::{CollectorHealth, CollectorHello, CollectorMessage};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::{Config, Mode, Status};
use crate::outbox::Outbox;

const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const BATCH: usize = 512;
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(
    config: Config,
    mode: Mode,
    outbox: Arc<Mutex<Outbox<Msg>>>,
    ready: Arc<tokio::sync::Notify>,
    status: Arc<Mutex<Status>>,
) {
    let mut seq = 0u64;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let started = std::time::Instant::now();
        if let Err(error) = session(&config, mode, &outbox, &ready, &status, &mut seq).await {
            tracing::warn!(%error, "stream to the Sensor failed; reconnecting");
        }
        crate::lock(&status).connected = false;
        crate::lock(&outbox).requeue_in_flight();
        if started.elapsed() > MAX_BACKOFF {
            backoff = INITIAL_BACKOFF;
        }
        tokio::time::sleep(backoff.mul_f64(rand::random_range(0.5..1.5))).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn health(mode: Mode, outbox: &Mutex<Outbox<Msg>>, status: &Mutex<Status>) -> Msg {
    let (buffered, dropped) = {
        let o = crate::lock(outbox);
        (o.len() as u64, o.dropped())
    };
    let s = crate::lock(status);
    Msg::Health(CollectorHealth {
        mode: mode.as_str().to_string(),
        dropped_events: dropped,
        rate_limited_events: s.rate_limited,
        buffered_events: buffered,
        time_unix_ms: super::unix_ms(),
    })
}

async fn session(
    config: &Config,
    mode: Mode,
    outbox: &Arc<Mutex<Outbox<Msg>>>,
    ready: &tokio::sync::Notify,
    status: &Arc<Mutex<Status>>,
    seq: &mut u64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let s = &config.sensor;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&s.ca_pem))
        .identity(Identity::from_pem(&s.cert_pem, &s.key_pem))
        .domain_name(s.server_name.clone());
    let channel = Channel::from_shared(s.endpoint.clone())?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<CollectorMessage>(BATCH * 2);
    tx.send(CollectorMessage {
        seq: 0,
        msg: Some(Msg::Hello(CollectorHello {
            node_name: config.node_name.clone(),
            collector_version: env!("CARGO_PKG_VERSION").to_string(),
            mode: mode.as_str().to_string(),
        })),
    })
    .await?;
    let mut acks = CollectorServiceClient::new(channel)
        .push(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    crate::lock(status).connected = true;
    tracing::info!(sensor = %s.endpoint, "connected to the Sensor");
    let reader = {
        let outbox = Arc::clone(outbox);
        let status = Arc::clone(status);
        async move {
            while let Some(ack) = acks.message().await? {
                crate::lock(&outbox).ack(ack.seq);
                crate::lock(&status).acked_seq = ack.seq;
            }
            Ok::<(), tonic::Status>(())
        }
    };
    tokio::pin!(reader);
    let mut beat = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        let batch = crate::lock(outbox).take(BATCH);
        let full = batch.len() == BATCH;
        for msg in batch {
            *seq += 1;
            crate::lock(outbox).sent(*seq, msg.clone());
            tx.send(CollectorMessage {
                seq: *seq,
                msg: Some(msg),
            })
            .await?;
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = ready.notified() => {}
            _ = beat.tick() => {
                tx.send(CollectorMessage { seq: 0, msg: Some(health(mode, outbox, status)) }).await?;
            }
            r = &mut reader => {
                r?;
                return Err("the Sensor closed the stream".into());
            }
        }
    }
}
