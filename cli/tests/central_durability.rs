//! Central as a real process: kill -9 in the middle of a Sensor stream, restart, and check that
//! every acknowledged event survived and the Sensor resumes where Central says.

mod common;

use std::process::Command;
use std::time::Duration;

use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_client::SensorServiceClient;
use rampart_proto::v1::{MsgFromSensor, ResourceAction, ResourceEvent, ResourceKind, SensorHello};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const EVENTS: u64 = 20_000;

fn event(seq: u64) -> MsgFromSensor {
    let object = format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"app-{seq}","namespace":"shop"}}}}"#
    );
    MsgFromSensor {
        seq,
        msg: Some(FromSensor::Event(ResourceEvent {
            action: ResourceAction::Sync as i32,
            kind: ResourceKind::Deployment as i32,
            id: format!("uid-{seq}"),
            namespace: "shop".into(),
            name: format!("app-{seq}"),
            object_json: object.into_bytes(),
            content_hash: seq,
            context: None,
        })),
    }
}

struct Session {
    tx: tokio::sync::mpsc::Sender<MsgFromSensor>,
    rx: tonic::Streaming<rampart_proto::v1::MsgToSensor>,
    acked_at_hello: u64,
}

async fn open(endpoint: &str, bundle: &std::path::Path) -> Session {
    let read = |f: &str| std::fs::read_to_string(bundle.join(f)).expect("bundle file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(
            read("sensor.pem"),
            read("sensor-key.pem"),
        ))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{endpoint}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    eprintln!("connected to {endpoint}");
    let (tx, rx) = tokio::sync::mpsc::channel(EVENTS as usize + 16);
    tx.send(MsgFromSensor {
        seq: 0,
        msg: Some(FromSensor::Hello(SensorHello {
            cluster_name: "prod".into(),
            sensor_version: "test".into(),
            ..SensorHello::default()
        })),
    })
    .await
    .expect("hello");
    let mut rx = SensorServiceClient::new(channel)
        .communicate(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let acked_at_hello = loop {
        match rx.message().await.expect("ok").and_then(|m| m.msg) {
            Some(ToSensor::Hello(h)) => break h.acked_seq,
            Some(_) => {}
            None => panic!("stream closed before CentralHello"),
        }
    };
    Session {
        tx,
        rx,
        acked_at_hello,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_and_the_sensor_resumes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bundle = dir.path().join("bundle");
    common::init_bundle(&data, &bundle, "prod");
    eprintln!("bundle issued");

    let central = common::start_central(&data);
    let endpoint = central.sensor.clone();
    eprintln!("central at {endpoint}");
    let mut session = open(&endpoint, &bundle).await;
    eprintln!("hello received");
    assert_eq!(session.acked_at_hello, 0);
    for seq in 1..=EVENTS {
        session.tx.send(event(seq)).await.expect("queue");
    }
    // Kill Central (SIGKILL: no shutdown code runs) once part of the stream is acknowledged.
    let mut last_ack = 0;
    while last_ack < EVENTS / 4 {
        match tokio::time::timeout(Duration::from_secs(30), session.rx.message())
            .await
            .expect("acks arrive")
        {
            Ok(Some(m)) => {
                if let Some(ToSensor::Ack(a)) = m.msg {
                    last_ack = a.seq;
                }
            }
            other => panic!("stream ended early: {other:?}"),
        }
    }
    eprintln!("killing central after ack {last_ack}");
    drop(central); // SIGKILL, then reaped
    drop(session);

    // Restart on the same data: Central knows at least everything it acknowledged.
    let mut central = common::start_central(&data);
    let endpoint = central.sensor.clone();
    let mut session = open(&endpoint, &bundle).await;
    eprintln!("restarted; central remembers {}", session.acked_at_hello);
    assert!(
        session.acked_at_hello >= last_ack,
        "acked {last_ack} before the kill, Central remembers {}",
        session.acked_at_hello
    );
    for seq in session.acked_at_hello + 1..=EVENTS {
        session.tx.send(event(seq)).await.expect("queue");
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(30), session.rx.message())
            .await
            .expect("acks arrive")
        {
            Ok(Some(m)) => {
                if let Some(ToSensor::Ack(a)) = m.msg
                    && a.seq == EVENTS
                {
                    break;
                }
            }
            other => panic!("stream ended early: {other:?}"),
        }
    }
    eprintln!("all acknowledged; stopping central");
    drop(session);
    // Stop Central gracefully and count what the store holds.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(central.child.id().to_string())
        .status();
    let exited = tokio::task::spawn_blocking(move || central.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exited.success(), "graceful stop on SIGTERM: {exited:?}");
    let store = rampart_central::store::Store::open(
        rampart_central::store::SledBackend::open(&data.join("store")).expect("backend"),
    )
    .expect("store");
    let mut count = 0;
    store
        .for_each_deployment_id("prod", |_| count += 1)
        .expect("scan");
    assert_eq!(count, EVENTS as usize, "every event is stored exactly once");
    assert_eq!(
        store
            .cluster("prod")
            .expect("get")
            .expect("cluster")
            .acked_seq,
        EVENTS
    );
}
