//! Sensor streams against a real Central hub on loopback with real mTLS: durable acks, resume
//! after reconnect, reconciliation, and every kind of certificate refusal.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_central::commit::Committer;
use rampart_central::core::Core;
use rampart_central::pki::{CertificateAuthority, InitBundle, Revocations, Service};
use rampart_central::server::SensorListener;
use rampart_central::store::{SledBackend, Store};
use rampart_central::tls::RefusalLog;
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::msg_to_sensor::Msg as ToSensor;
use rampart_proto::v1::sensor_service_client::SensorServiceClient;
use rampart_proto::v1::{MsgFromSensor, ResourceAction};
use tonic::transport::{Channel, Identity};

struct Central {
    addr: SocketAddr,
    ca: CertificateAuthority,
    store: Arc<Store<SledBackend>>,
    core: Arc<Core<SledBackend>>,
    revocations: Revocations,
    refusals: RefusalLog,
    _dir: tempfile::TempDir,
}

async fn start_central() -> Central {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(Store::open(SledBackend::open(dir.path()).expect("backend")).expect("store"));
    let (committer, _task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
    let ca = CertificateAuthority::generate(time::OffsetDateTime::now_utc()).expect("ca");
    let revocations = Revocations::default();
    let core = Core::new(
        Arc::clone(&store),
        committer,
        rampart_policy::defaults::default_policies(),
    )
    .expect("core");
    let refusals = core.refusals.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (addr, _server) = SensorListener {
        core: Arc::clone(&core),
        revocations: revocations.clone(),
        server_names: vec!["localhost".to_string()],
    }
    .start(&ca, listener)
    .expect("listener");
    Central {
        addr,
        ca,
        core,
        store,
        revocations,
        refusals,
        _dir: dir,
    }
}

fn cert_of(bundle: &InitBundle, service: Service) -> Identity {
    let c = bundle
        .certs
        .iter()
        .find(|c| c.service == service)
        .expect("service cert");
    Identity::from_pem(&c.cert_pem, &c.key_pem)
}

async fn connect(
    central: &Central,
    ca_pem: &str,
    identity: Identity,
) -> Result<SensorServiceClient<Channel>, tonic::transport::Error> {
    common::connect(central.addr, ca_pem, identity).await
}

/// A connected client holding a fresh Sensor certificate for `cluster`.
async fn sensor_client(central: &Central, cluster: &str) -> SensorServiceClient<Channel> {
    let bundle = central
        .ca
        .issue_bundle(cluster, time::OffsetDateTime::now_utc())
        .expect("bundle");
    connect(central, &bundle.ca_pem, cert_of(&bundle, Service::Sensor))
        .await
        .expect("connect")
}

/// Connects and opens a stream; any failure on the way as text.
async fn try_stream(
    central: &Central,
    ca_pem: &str,
    identity: Identity,
    cluster: &str,
) -> Result<(), String> {
    let mut client = connect(central, ca_pem, identity)
        .await
        .map_err(|e| e.to_string())?;
    open_stream(&mut client, cluster)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn stored(central: &Central, cluster: &str) -> usize {
    let mut n = 0;
    central
        .store
        .for_each_deployment_id(cluster, |_| n += 1)
        .expect("scan");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_ack_resume_and_reconcile() {
    let central = start_central().await;
    let mut client = sensor_client(&central, "prod").await;

    let mut stream = open_stream(&mut client, "prod").await.expect("stream");
    let ToSensor::Hello(hello) = next(&mut stream).await.expect("hello") else {
        panic!("first message is CentralHello")
    };
    assert_eq!((hello.cluster_id.as_str(), hello.acked_seq), ("prod", 0));
    assert!(
        matches!(next(&mut stream).await.expect("sync"), ToSensor::PolicySync(p) if p.revision == central.core.policies.current().sync.revision && p.policies_json.len() == central.core.policies.current().policies.len())
    );
    for i in 0..1000 {
        stream
            .tx
            .send(deployment_event(i as u64 + 1, i))
            .await
            .expect("send");
    }
    stream.tx.send(synced(1001)).await.expect("send");
    let notices = until_ack(&mut stream, 1001).await;
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(stored(&central, "prod"), 1000);
    drop(stream);

    // Reconnect: Central says where it is durable; resent messages are skipped; the resync
    // reports 900 deployments and the other 100 are reconciled away.
    let mut stream = open_stream(&mut client, "prod").await.expect("stream");
    let ToSensor::Hello(hello) = next(&mut stream).await.expect("hello") else {
        panic!("CentralHello")
    };
    assert_eq!(hello.acked_seq, 1001);
    for seq in 995..=1001 {
        stream
            .tx
            .send(deployment_event(seq, 5000 + seq as usize))
            .await
            .expect("resend");
    }
    for i in 0..900 {
        stream
            .tx
            .send(deployment_event(1002 + i as u64, i))
            .await
            .expect("send");
    }
    stream.tx.send(synced(1902)).await.expect("send");
    until_ack(&mut stream, 1902).await;
    assert_eq!(
        stored(&central, "prod"),
        900,
        "resends below the durable position were skipped and stale objects removed"
    );
    let cluster = central
        .store
        .cluster("prod")
        .expect("get")
        .expect("cluster");
    assert_eq!(cluster.acked_seq, 1902);
    assert_eq!(cluster.sync_generation, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_unknown_messages_get_notices_and_still_advance() {
    let central = start_central().await;
    let mut client = sensor_client(&central, "dev").await;
    let mut stream = open_stream(&mut client, "dev").await.expect("stream");
    let mut bad = deployment_event(1, 1);
    if let Some(FromSensor::Event(e)) = &mut bad.msg {
        e.object_json = b"{not json".to_vec();
    }
    stream.tx.send(bad).await.expect("send");
    stream
        .tx
        .send(MsgFromSensor { seq: 2, msg: None })
        .await
        .expect("send");
    let mut list = deployment_event(3, 3);
    if let Some(FromSensor::Event(e)) = &mut list.msg {
        e.object_json = b" [1, 2]".to_vec();
    }
    stream.tx.send(list).await.expect("send");
    stream.tx.send(deployment_event(4, 4)).await.expect("send");
    let notices = until_ack(&mut stream, 4).await;
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices[0].message.contains("not valid JSON"), "{notices:?}");
    assert!(
        notices[1].message.contains("unknown message kind"),
        "{notices:?}"
    );
    assert!(
        notices[2].message.contains("not a JSON object"),
        "{notices:?}"
    );
    assert_eq!(
        stored(&central, "dev"),
        1,
        "the valid event is stored, the invalid one is not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_must_not_speak_for_a_cluster_are_refused() {
    let central = start_central().await;
    let now = time::OffsetDateTime::now_utc();
    let bundle = central.ca.issue_bundle("cluster-a", now).expect("bundle");

    // Cluster A's certificate claiming to be cluster B.
    let mut client = connect(&central, &bundle.ca_pem, cert_of(&bundle, Service::Sensor))
        .await
        .expect("connect");
    let err = match open_stream(&mut client, "cluster-b").await {
        Ok(mut s) => next(&mut s).await.expect_err("refused"),
        Err(e) => e,
    };
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(
        err.message()
            .contains("certificate is for cluster 'cluster-a'"),
        "{err:?}"
    );

    // An admission-controller certificate on the Sensor stream.
    let mut client = connect(
        &central,
        &bundle.ca_pem,
        cert_of(&bundle, Service::AdmissionControl),
    )
    .await
    .expect("connect");
    let err = open_stream(&mut client, "cluster-a")
        .await
        .expect_err("wrong service");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");

    // A certificate from another CA: the handshake fails.
    let stranger = CertificateAuthority::generate(now)
        .expect("ca")
        .issue_bundle("cluster-a", now)
        .expect("bundle");
    let refused_before = central.refusals.total();
    let result = try_stream(
        &central,
        &bundle.ca_pem,
        cert_of(&stranger, Service::Sensor),
        "cluster-a",
    )
    .await;
    assert!(
        result.is_err(),
        "a foreign CA's certificate must not get a stream"
    );

    // A revoked bundle: refused at the next handshake.
    central.revocations.revoke(&bundle.record.id);
    let result = try_stream(
        &central,
        &bundle.ca_pem,
        cert_of(&bundle, Service::Sensor),
        "cluster-a",
    )
    .await;
    assert!(
        result.is_err(),
        "a revoked certificate must not get a stream"
    );

    // Refusals are visible to operators.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The foreign CA's attempts (the client may retry) and the revoked one are logged by the
    // handshake tasks; wait until the last of them, the revoked one, is there.
    while !(central.refusals.total() >= refused_before + 2
        && central
            .refusals
            .latest()
            .iter()
            .any(|r| r.reason.contains("Revoked")))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reasons: Vec<String> = central
        .refusals
        .latest()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("UnknownIssuer") || r.contains("BadSignature")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("Revoked")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("cluster-b")),
        "{reasons:?}"
    );
}

fn privileged_alerts(central: &Central) -> Vec<(String, rampart_central::alerts::AlertState)> {
    let mut out: Vec<_> = rampart_central::alerts::persist::all(&central.store)
        .expect("alerts")
        .into_iter()
        .filter(|a| a.policy_name == "Privileged Container")
        .map(|a| (a.deployment_name, a.state))
        .collect();
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(format!("{:?}", a.1).cmp(&format!("{:?}", b.1)))
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_time_alerts_open_resolve_on_fix_delete_and_resync() {
    use rampart_central::alerts::AlertState::{Active, Resolved};
    let central = start_central().await;
    let mut client = sensor_client(&central, "prod").await;
    let mut stream = open_stream(&mut client, "prod").await.expect("stream");
    let sends = [
        workload_event(1, "a", true, ResourceAction::Sync),
        workload_event(2, "b", true, ResourceAction::Sync),
        workload_event(3, "c", true, ResourceAction::Sync),
        workload_event(4, "d", false, ResourceAction::Sync),
        // Same content again right away: merged into the same alert, not a second one.
        workload_event(5, "a", true, ResourceAction::Update),
        synced(6),
    ];
    for m in sends {
        stream.tx.send(m).await.expect("send");
    }
    until_ack(&mut stream, 6).await;
    assert_eq!(
        privileged_alerts(&central),
        vec![
            ("a".into(), Active),
            ("b".into(), Active),
            ("c".into(), Active)
        ]
    );
    // Fix a, delete b; then a resync that no longer contains c.
    send_all(
        &stream,
        [
            workload_event(7, "a", false, ResourceAction::Update),
            workload_event(8, "b", true, ResourceAction::Remove),
        ],
    )
    .await;
    until_ack(&mut stream, 8).await;
    drop(stream);
    let mut stream = open_stream(&mut client, "prod").await.expect("stream");
    send_all(
        &stream,
        [
            workload_event(9, "a", false, ResourceAction::Sync),
            workload_event(10, "d", false, ResourceAction::Sync),
        ],
    )
    .await;
    stream.tx.send(synced(11)).await.expect("send");
    until_ack(&mut stream, 11).await;
    assert_eq!(
        privileged_alerts(&central),
        vec![
            ("a".into(), Resolved),
            ("b".into(), Resolved),
            ("c".into(), Resolved)
        ],
        "fixed, deleted and reconciled-away deployments resolve their alerts"
    );
    // Other default policies fired too, with specific messages.
    let all = rampart_central::alerts::persist::all(&central.store).expect("alerts");
    let a_latest = all
        .iter()
        .find(|x| x.deployment_name == "c" && x.policy_name == "Privileged Container")
        .expect("c alert");
    assert_eq!(
        a_latest.violations,
        vec!["Container 'app' is privileged".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_of_the_same_cluster_supersedes_the_old_one() {
    let central = start_central().await;
    let mut client = sensor_client(&central, "prod").await;
    let mut old = open_stream(&mut client, "prod").await.expect("stream");
    assert!(matches!(
        next(&mut old).await.expect("hello"),
        ToSensor::Hello(_)
    ));
    old.tx.send(deployment_event(1, 1)).await.expect("send");
    until_ack(&mut old, 1).await;

    // A second Sensor of the same cluster (say, a restarted pod whose old connection lingers).
    let mut new = open_stream(&mut client, "prod").await.expect("stream");
    let ToSensor::Hello(hello) = next(&mut new).await.expect("hello") else {
        panic!("CentralHello")
    };
    assert_eq!(
        hello.acked_seq, 1,
        "the new stream starts from the old one's durable position"
    );
    // The old stream is told why it ends.
    let err = loop {
        match next(&mut old).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
    assert!(err.message().contains("superseded"), "{err:?}");
    // And the new one works.
    new.tx.send(deployment_event(2, 2)).await.expect("send");
    until_ack(&mut new, 2).await;
    assert_eq!(stored(&central, "prod"), 2);
}

/// One cluster's Sensor in the fleet test: its stream and next sequence number.
struct FleetSensor {
    cluster: String,
    client: SensorServiceClient<Channel>,
    stream: Stream,
    seq: u64,
}

const FLEET_DEPLOYMENTS: usize = 1000;

fn fleet_name(cluster: &str, i: usize) -> String {
    format!("{cluster}-app-{i:04}")
}

/// Sends the events (and a sync marker) and waits until the last one is durable.
async fn fleet_send(
    mut s: FleetSensor,
    events: Vec<(String, bool, ResourceAction)>,
    sync_marker: bool,
) -> FleetSensor {
    let mut messages = Vec::with_capacity(events.len() + 1);
    for (name, privileged, action) in events {
        s.seq += 1;
        messages.push(workload_event(s.seq, &name, privileged, action));
    }
    if sync_marker {
        s.seq += 1;
        messages.push(synced(s.seq));
    }
    send_all(&s.stream, messages).await;
    until_ack(&mut s.stream, s.seq).await;
    s
}

/// Runs one phase on every cluster at once.
async fn fleet_phase(
    sensors: Vec<FleetSensor>,
    plan: impl Fn(&str) -> (Vec<(String, bool, ResourceAction)>, bool),
) -> Vec<FleetSensor> {
    let mut tasks = Vec::new();
    for s in sensors {
        let (events, marker) = plan(&s.cluster);
        tasks.push(tokio::spawn(fleet_send(s, events, marker)));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("cluster task"));
    }
    out
}

/// Active "Privileged Container" alerts per cluster, and resolved ones, from the store.
fn privileged_by_cluster(central: &Central) -> std::collections::BTreeMap<String, (usize, usize)> {
    let mut out = std::collections::BTreeMap::new();
    for a in rampart_central::alerts::persist::all(&central.store).expect("alerts") {
        if a.policy_name != "Privileged Container" {
            continue;
        }
        let e: &mut (usize, usize) = out.entry(a.cluster_id).or_default();
        match a.state {
            rampart_central::alerts::AlertState::Active => e.0 += 1,
            rampart_central::alerts::AlertState::Resolved => e.1 += 1,
            rampart_central::alerts::AlertState::Attempted => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clusters_of_a_thousand_deployments_alert_resolve_and_reconcile() {
    let central = start_central().await;
    let mut sensors = Vec::new();
    for c in 0..10 {
        let cluster = format!("cluster-{c}");
        let mut client = sensor_client(&central, &cluster).await;
        let mut stream = open_stream(&mut client, &cluster).await.expect("stream");
        assert!(matches!(
            next(&mut stream).await.expect("hello"),
            ToSensor::Hello(_)
        ));
        sensors.push(FleetSensor {
            cluster,
            client,
            stream,
            seq: 0,
        });
    }
    let every = |c: &Central| privileged_by_cluster(c).into_iter().collect::<Vec<_>>();

    // 1. Initial sync: 1,000 deployments per cluster, every 10th privileged.
    let sensors = fleet_phase(sensors, |cluster| {
        let events = (0..FLEET_DEPLOYMENTS)
            .map(|i| (fleet_name(cluster, i), i % 10 == 0, ResourceAction::Sync))
            .collect();
        (events, true)
    })
    .await;
    for s in &sensors {
        assert_eq!(stored(&central, &s.cluster), FLEET_DEPLOYMENTS);
    }
    let counts = every(&central);
    assert_eq!(counts.len(), 10);
    assert!(counts.iter().all(|(_, c)| *c == (100, 0)), "{counts:?}");

    // 2. 45 violating deployments are fixed and 50 deleted; 900, 920, ..., 980 stay violating.
    let sensors = fleet_phase(sensors, |cluster| {
        let mut events = Vec::new();
        for i in (0..FLEET_DEPLOYMENTS).step_by(20) {
            if i < 900 {
                events.push((fleet_name(cluster, i), false, ResourceAction::Update));
            }
            events.push((fleet_name(cluster, i + 10), true, ResourceAction::Remove));
        }
        (events, false)
    })
    .await;
    for s in &sensors {
        assert_eq!(stored(&central, &s.cluster), FLEET_DEPLOYMENTS - 50);
    }
    let counts = every(&central);
    assert!(counts.iter().all(|(_, c)| *c == (5, 95)), "{counts:?}");

    // 3. Each Sensor reconnects and resyncs without its last 100 deployments; 23 of the fixed
    //    ones (i = 0, 20, ..., 440) are privileged again. Reconciliation removes what the resync
    //    no longer contains (resolving the 5 still-violating ones' alerts), and the re-violations
    //    open new alerts.
    let mut reconnected = Vec::new();
    for mut s in sensors {
        drop(s.stream);
        let mut stream = open_stream(&mut s.client, &s.cluster)
            .await
            .expect("stream");
        let ToSensor::Hello(hello) = next(&mut stream).await.expect("hello") else {
            panic!("CentralHello")
        };
        assert_eq!(
            hello.acked_seq, s.seq,
            "Central resumes where it acknowledged"
        );
        reconnected.push(FleetSensor { stream, ..s });
    }
    let sensors = fleet_phase(reconnected, |cluster| {
        let events = (0..FLEET_DEPLOYMENTS - 100)
            .filter(|i| i % 20 != 10)
            .map(|i| {
                let privileged = i % 20 == 0 && i <= 440;
                (fleet_name(cluster, i), privileged, ResourceAction::Sync)
            })
            .collect();
        (events, true)
    })
    .await;
    for s in &sensors {
        // 1,000 - 50 deleted - the 95 of 900..999 still present before the resync.
        assert_eq!(stored(&central, &s.cluster), FLEET_DEPLOYMENTS - 50 - 95);
    }
    let counts = every(&central);
    assert!(counts.iter().all(|(_, c)| *c == (23, 100)), "{counts:?}");
}
