//! Helpers shared by the integration tests: a Sensor's side of the stream.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_client::SensorServiceClient;
use rampart_proto::v1::{
    MsgFromSensor, MsgToSensor, ResourceAction, ResourceEvent, ResourceKind, SensorHello,
    SyncMarker,
};
use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Identity,
) -> Result<SensorServiceClient<Channel>, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(identity)
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(SensorServiceClient::new(channel))
}

pub async fn send_all(stream: &Stream, messages: impl IntoIterator<Item = MsgFromSensor>) {
    for m in messages {
        stream.tx.send(m).await.expect("send");
    }
}

/// An open stream: send with `tx`, read Central's messages from `rx`.
#[derive(Debug)]
pub struct Stream {
    pub tx: mpsc::Sender<MsgFromSensor>,
    pub rx: tonic::Streaming<MsgToSensor>,
    /// What [`until_ack`] read past on its way (neither acks nor notices), in order.
    pub passed: Vec<ToSensor>,
}

pub async fn open_stream(
    client: &mut SensorServiceClient<Channel>,
    cluster: &str,
) -> Result<Stream, tonic::Status> {
    open_stream_with(client, cluster, &[]).await
}

/// [`open_stream`], the hello listing `capabilities`.
pub async fn open_stream_with(
    client: &mut SensorServiceClient<Channel>,
    cluster: &str,
    capabilities: &[&str],
) -> Result<Stream, tonic::Status> {
    let (tx, rx) = mpsc::channel(8192);
    tx.send(MsgFromSensor {
        seq: 0,
        msg: Some(FromSensor::Hello(SensorHello {
            protocol_minor: 0,
            sensor_version: "test".into(),
            cluster_name: cluster.into(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            ..SensorHello::default()
        })),
    })
    .await
    .expect("queue hello");
    let rx = client
        .communicate(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok(Stream {
        tx,
        rx,
        passed: Vec::new(),
    })
}

pub async fn next(stream: &mut Stream) -> Result<ToSensor, tonic::Status> {
    let msg = tokio::time::timeout(Duration::from_secs(20), stream.rx.message())
        .await
        .expect("Central answers within 20 s")?
        .expect("stream open");
    Ok(msg.msg.expect("message has a body"))
}

/// Reads until the ack for `seq`, returning notices seen on the way.
pub async fn until_ack(stream: &mut Stream, seq: u64) -> Vec<rampart_proto::v1::Notice> {
    let mut notices = Vec::new();
    loop {
        match next(stream).await.expect("no error") {
            ToSensor::Ack(a) if a.seq >= seq => return notices,
            ToSensor::Notice(n) => notices.push(n),
            ToSensor::Ack(_) => {}
            other => stream.passed.push(other),
        }
    }
}

pub fn deployment_event(seq: u64, i: usize) -> MsgFromSensor {
    let object = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("web-{i}"), "namespace": "shop", "uid": format!("uid-{i}")},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    });
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: ResourceKind::Deployment as i32,
            id: format!("uid-{i}"),
            namespace: "shop".into(),
            name: format!("web-{i}"),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: i as u64,
            context: None,
        })),
    }
}

pub fn synced(seq: u64) -> MsgFromSensor {
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Synced(SyncMarker {
            kinds: vec![ResourceKind::Deployment as i32],
            unchanged_ids: vec![],
        })),
    }
}

pub fn workload_event(
    seq: u64,
    name: &str,
    privileged: bool,
    action: ResourceAction,
) -> MsgFromSensor {
    let object = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": privileged}}]}}}
    });
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: action as i32,
            kind: ResourceKind::Deployment as i32,
            id: format!("uid-{name}"),
            namespace: "shop".into(),
            name: name.into(),
            object_json: serde_json::to_vec(&object).expect("json"),
            content_hash: seq,
            context: None,
        })),
    }
}

/// Connects as the Sensor of `bundle` (the answer of `POST /v1/init-bundles`) for `cluster`,
/// sends `messages` and waits until Central acknowledges the last; the stream stays open.
pub fn sensor_sends(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    bundle: &serde_json::Value,
    cluster: &str,
    messages: Vec<MsgFromSensor>,
) -> Stream {
    sensor_sends_with(runtime, addr, bundle, cluster, &[], messages)
}

/// [`sensor_sends`] from a Sensor listing `capabilities`.
pub fn sensor_sends_with(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    bundle: &serde_json::Value,
    cluster: &str,
    capabilities: &[&str],
    messages: Vec<MsgFromSensor>,
) -> Stream {
    let sensor = bundle["certs"]
        .as_array()
        .expect("certs")
        .iter()
        .find(|c| c["service"] == "sensor")
        .expect("sensor cert");
    let identity = Identity::from_pem(
        sensor["certPem"].as_str().expect("cert"),
        sensor["keyPem"].as_str().expect("key"),
    );
    let ca = bundle["caPem"].as_str().expect("ca").to_string();
    let last = messages.last().map_or(0, |m| m.seq);
    runtime.block_on(async move {
        let mut client = connect(addr, &ca, identity).await.expect("connects");
        let mut stream = open_stream_with(&mut client, cluster, capabilities)
            .await
            .expect("stream");
        send_all(&stream, messages).await;
        until_ack(&mut stream, last).await;
        stream
    })
}

/// One observed flow, as a Sensor reports it (an empty deployment id: the peer is outside).
pub fn flow(
    seq: u64,
    source: &str,
    destination: &str,
    external: &str,
    port: u32,
) -> rampart_proto::v1::MsgFromSensor {
    rampart_proto::v1::MsgFromSensor {
        seq,
        msg: Some(rampart_proto::v1::msg_from_sensor::Msg::NetworkFlows(
            rampart_proto::v1::NetworkFlowBatch {
                flows: vec![rampart_proto::v1::NetworkFlow {
                    source_deployment_id: source.into(),
                    destination_deployment_id: destination.into(),
                    external_peer: external.into(),
                    port,
                    protocol: "TCP".into(),
                    first_seen_unix_ms: 1_000,
                    last_seen_unix_ms: 2_000,
                    closed: false,
                    process_exe_path: "/app".into(),
                }],
                listens: Vec::new(),
            },
        )),
    }
}
