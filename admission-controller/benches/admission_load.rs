//! The webhook under load over real HTTPS: keep-alive HTTP/1.1 connections on loopback send the
//! typical ~10 KB AdmissionReview at fixed request rates to the real server (every default
//! deploy-time policy enforced), and the latency of each request is recorded from the moment it
//! was due — a request that waits for a busy connection counts its wait, so a server falling
//! behind shows in the tail instead of slowing the client down (no coordinated omission). The
//! two handlers run each rate in alternating slices, and each slice's p99 is shown: a stall of
//! this shared VM shows as one slice's outlier, on whichever handler it fell.
//!
//! In the same run a no-op handler on the same stack (rustls, hyper, the server's connection
//! handling; it reads the body and answers a fixed review) gives the ceiling, and both are driven
//! as fast as they answer to compare throughput — in alternating slices, pair by pair, as the
//! shared machine's speed drifts between longer runs.
//!
//! Last, 50 to 500 concurrent clients (a connection each, the next request sent as soon as the
//! last is answered), as other admission controllers' published load tests count them: the
//! average, p95, p99 and maximum latency a client sees when the controller is the bottleneck.
//!
//! `cargo bench -p rampart-admission --bench admission_load` (`-- --quick` for a short run,
//! `-- --saturate rampart [--connections N] [--h2]` for one handler alone, as fast as
//! answered, under a profiler; `--h2`: over HTTP/2, that many streams in flight on one
//! connection, as a client that negotiates it sends them — the API server speaks HTTP/1.1 to
//! admission webhooks; `-- --train` for the profile-guided build's training run, which
//! `scripts/pgo-build` makes: reviews of the repository's own manifests, never this one).
//! Server and client each get a two-thread runtime on the same machine; the denials' alerts go
//! over gRPC, as the binary sends them, to a minimal Sensor on a thread of its own.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rampart_admission::decide::Settings;
use rampart_admission::metrics::Metrics;
use rampart_admission::sensor_link;
use rampart_admission::server::{self, State};
use rampart_admission::tls::{ReloadingCert, server_config};
use rampart_proto::v1::admission_control_service_server::{
    AdmissionControlService, AdmissionControlServiceServer,
};
use rampart_proto::v1::{AdmissionAlerts, AdmissionReportAck, AdmissionUpdate, AdmissionWatch};
use std::sync::atomic::{AtomicU64, Ordering};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Connections the fixed-rate client keeps open (the API server keeps a pool of them too).
const CONNECTIONS: usize = 16;
const RATES: [u64; 3] = [500, 1_000, 2_000];
/// Thread names, to tell the server's CPU time from the client's.
const SERVER_THREADS: &str = "bench-server";
const CLIENT_THREADS: &str = "bench-client";
const SENSOR_THREAD: &str = "bench-sensor";

struct Servers {
    real: SocketAddr,
    noop: SocketAddr,
    /// The real server's state: its alert queue and metrics.
    state: Arc<State>,
    sensor: Arc<Sensor>,
    /// Keeps the certificate files.
    _dir: tempfile::TempDir,
    ca: String,
}

fn start_servers(rt: &tokio::runtime::Runtime) -> Servers {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = rampart_test_support::serving_cert(dir.path()).expect("certificate");
    let cert = Arc::new(
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))
            .expect("certificate"),
    );
    let tls = Arc::new(server_config(cert, None).expect("tls"));
    let state = Arc::new(State::new(
        Settings::default(),
        Arc::new(Metrics::new()),
        4 * 1024 * 1024,
        Duration::from_secs(5),
        10_000,
    ));
    state.set_policies(common::all_enforced());
    let sensor = Arc::new(Sensor::default());
    // The Sensor is another process in a cluster (on another node, most often): its own thread
    // here, so that its decoding does not hold up the server's.
    let sensor_addr = {
        let sensor = Arc::clone(&sensor);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(SENSOR_THREAD.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    tx.send(grpc.local_addr().expect("addr")).expect("address");
                    tonic::transport::Server::builder()
                        .add_service(AdmissionControlServiceServer::from_arc(sensor))
                        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc))
                        .await
                        .expect("sensor");
                });
            })
            .expect("sensor thread");
        rx.recv().expect("the Sensor's address")
    };
    let (real, noop) = rt.block_on(async {
        let real = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let noop = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addrs = (
            real.local_addr().expect("addr"),
            noop.local_addr().expect("addr"),
        );
        // Denials' alerts leave for a Sensor as the binary's link sends them (batches over
        // gRPC; plaintext here, where the binary's link is mTLS), so the queue's and the
        // report's costs are in the figures.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{sensor_addr}"))
            .expect("endpoint")
            .connect_lazy();
        let overflow = rampart_admission::overflow::Overflow::open(
            &dir.path().join("alerts-overflow"),
            rampart_admission::DEFAULT_ALERT_OVERFLOW_BYTES,
        );
        tokio::spawn(sensor_link::report(channel, Arc::clone(&state), overflow));
        tokio::spawn(server::serve(real, Arc::clone(&tls), Arc::clone(&state)));
        tokio::spawn(server::serve_with(noop, tls, noop_handler));
        addrs
    });
    Servers {
        real,
        noop,
        state,
        sensor,
        _dir: dir,
        ca,
    }
}

/// The Sensor's side of the alert report, as little as it can be: it takes each batch and says
/// how many alerts it took (the real Sensor queues them for Central, on its own node).
#[derive(Default)]
struct Sensor {
    reported: AtomicU64,
    /// The attempts the reported alerts stand for (one each, and those coalesced into it).
    attempts: AtomicU64,
}

#[tonic::async_trait]
impl AdmissionControlService for Sensor {
    type WatchStream = tonic::codegen::BoxStream<AdmissionUpdate>;

    async fn watch(
        &self,
        _: tonic::Request<AdmissionWatch>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the benchmark's Sensor only takes reports",
        ))
    }

    async fn report(
        &self,
        request: tonic::Request<AdmissionAlerts>,
    ) -> Result<tonic::Response<AdmissionReportAck>, tonic::Status> {
        let alerts = request.into_inner().alerts;
        let accepted = alerts.len();
        self.reported.fetch_add(accepted as u64, Ordering::Relaxed);
        let attempts: u64 = alerts.iter().map(|a| a.repeats.saturating_add(1)).sum();
        self.attempts.fetch_add(attempts, Ordering::Relaxed);
        Ok(tonic::Response::new(AdmissionReportAck {
            accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
        }))
    }
}

/// How many of the denials' alerts the Sensor took (and how many attempts they stand for: the
/// benchmark repeats one review, so a saturated run's denials coalesce), and how many the full
/// queue dropped.
fn print_reports(servers: &Servers) {
    println!(
        "\nalerts: {} reported to the Sensor, standing for {} (one a violated policy a denial; {} reviews joined alerts still waiting); {} dropped by the full queue, {} queued at the end",
        servers.sensor.reported.load(Ordering::Relaxed),
        servers.sensor.attempts.load(Ordering::Relaxed),
        servers.state.metrics.alerts_coalesced.get(),
        servers.state.metrics.alerts_dropped.get(),
        servers.state.alerts.len()
    );
}

/// Reads the body and answers an allowing review without looking at it.
async fn noop_handler(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let _ = req.into_body().collect().await;
    Response::new(Full::new(Bytes::from_static(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}"#,
    )))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type Sender2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// How the client reaches a handler as fast as it answers.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// HTTP/1.1 over this many connections, one request at a time on each.
    Http1(usize),
    /// HTTP/2 over one connection with this many streams in flight.
    Http2(usize),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Http1(n) => write!(f, "{n} connections"),
            Transport::Http2(n) => write!(f, "HTTP/2, {n} streams on one connection"),
        }
    }
}

/// One request at a time: a connection's, or a stream's of a shared HTTP/2 connection.
enum Lane {
    Http1(Sender),
    Http2(Sender2),
}

impl Lane {
    async fn send(&mut self, body: &Bytes) -> bool {
        match self {
            Lane::Http1(s) => send(s, body).await,
            Lane::Http2(s) => send_h2(s, body).await,
        }
    }
}

/// The client's TLS set-ups: without ALPN (HTTP/1.1), and offering `h2`.
struct Connectors {
    h1: tokio_rustls::TlsConnector,
    h2: tokio_rustls::TlsConnector,
}

/// A TLS connection to `addr` (no Nagle delay, as the API server's client).
async fn tls_stream(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tls.connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("handshake")
}

async fn connect_h2(addr: SocketAddr, tls: &tokio_rustls::TlsConnector) -> Sender2 {
    let stream = tls_stream(addr, tls).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("http/2 handshake");
    tokio::spawn(conn);
    sender
}

async fn connect(addr: SocketAddr, tls: &tokio_rustls::TlsConnector) -> Sender {
    let stream = tls_stream(addr, tls).await;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http handshake");
    tokio::spawn(conn);
    sender
}

/// The request of one review.
fn request(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .expect("request")
}

/// Sends one review and waits for the whole answer; whether it was a well-formed review.
async fn send(sender: &mut Sender, body: &Bytes) -> bool {
    well_formed(sender.send_request(request(body)).await).await
}

/// [`send`] over HTTP/2.
async fn send_h2(sender: &mut Sender2, body: &Bytes) -> bool {
    well_formed(sender.send_request(request(body)).await).await
}

/// Whether an answer is a well-formed review, read whole.
async fn well_formed(answer: hyper::Result<hyper::Response<Incoming>>) -> bool {
    let Ok(response) = answer else {
        return false;
    };
    let ok = response.status().is_success();
    match response.into_body().collect().await {
        Ok(b) => ok && b.to_bytes().starts_with(b"{\"apiVersion\""),
        Err(_) => false,
    }
}

/// The answer to one request, as text.
async fn answer(addr: SocketAddr, tls: &tokio_rustls::TlsConnector, body: &Bytes) -> String {
    let mut sender = connect(addr, tls).await;
    let request = Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .expect("request");
    let response = sender.send_request(request).await.expect("answered");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    failed: usize,
    elapsed: Duration,
}

/// `rate` requests a second for `length`, spread over the connections; latency from each
/// request's due time (or its actual start when the connection was idle and the timer late).
async fn fixed_rate(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    body: &Bytes,
    rate: u64,
    length: Duration,
) -> Run {
    let total = (rate as f64 * length.as_secs_f64()).round() as u64;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        senders.push(connect(addr, tls).await);
    }
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::new();
    for (lane, mut sender) in senders.into_iter().enumerate() {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            let mut i = lane as u64;
            while i < total {
                let due = start + interval * u32::try_from(i).expect("count");
                let began = if tokio::time::Instant::now() >= due {
                    due
                } else {
                    tokio::time::sleep_until(due).await;
                    tokio::time::Instant::now()
                };
                if send(&mut sender, &body).await {
                    latencies.push(began.elapsed());
                } else {
                    failed += 1;
                }
                i += CONNECTIONS as u64;
            }
            (latencies, failed)
        }));
    }
    let mut run = Run::default();
    for t in tasks {
        let (l, f) = t.await.expect("lane");
        run.latencies.extend(l);
        run.failed += f;
    }
    run.elapsed = start.elapsed();
    run.latencies.sort_unstable();
    run
}

/// `clients` connections, each sending its next request as soon as the last is answered, for
/// `length`: every request's latency (closed loop, as load tests of admission controllers count
/// concurrent clients). The connections are all open before the clock starts.
async fn closed_loop(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    body: &Bytes,
    clients: usize,
    length: Duration,
) -> Run {
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(connect(addr, tls).await);
    }
    let start = Instant::now();
    let until = start + length;
    let mut tasks = Vec::with_capacity(clients);
    for mut sender in senders {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut failed) = (Vec::new(), 0usize);
            while Instant::now() < until {
                let began = Instant::now();
                if send(&mut sender, &body).await {
                    latencies.push(began.elapsed());
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut run = Run::default();
    for t in tasks {
        let (l, f) = t.await.expect("client");
        run.latencies.extend(l);
        run.failed += f;
    }
    run.elapsed = start.elapsed();
    run.latencies.sort_unstable();
    run
}

/// This process's soft limit on open files (`/proc/self/limits`), if it has one.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Concurrent clients counted as Kyverno's published load test counts them.
const CLIENTS: [usize; 4] = [50, 100, 200, 500];

/// Fixed-rate slices of the two handlers, alternating (the order swapped every pair) as the
/// saturated runs are, so that a slow moment of this shared VM falls on both: each handler's
/// slices merged, and the p99 of each slice.
async fn fixed_rate_interleaved(
    addrs: [SocketAddr; 2],
    tls: &tokio_rustls::TlsConnector,
    body: &Bytes,
    rate: u64,
    slice: Duration,
    pairs: usize,
) -> [(Run, Vec<Duration>); 2] {
    let mut merged: [(Run, Vec<Duration>); 2] = Default::default();
    for pair in 0..pairs {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let run = fixed_rate(addrs[i], tls, body, rate, slice).await;
            let (all, p99s) = &mut merged[i];
            p99s.push(percentile(&run.latencies, 99.0));
            all.latencies.extend(run.latencies);
            all.failed += run.failed;
            all.elapsed += run.elapsed;
        }
    }
    for (run, _) in &mut merged {
        run.latencies.sort_unstable();
    }
    merged
}

/// As many requests as answered in `length` over `transport`, each connection or stream busy;
/// requests/s.
async fn saturate(
    addr: SocketAddr,
    tls: &Connectors,
    body: &Bytes,
    transport: Transport,
    length: Duration,
) -> (f64, usize) {
    saturate_with(addr, tls, std::slice::from_ref(body), transport, length).await
}

/// [`saturate`] with several bodies, each connection or stream sending them in turn from its
/// own place in the list.
async fn saturate_with(
    addr: SocketAddr,
    tls: &Connectors,
    bodies: &[Bytes],
    transport: Transport,
    length: Duration,
) -> (f64, usize) {
    let mut lanes = Vec::new();
    match transport {
        Transport::Http1(connections) => {
            for _ in 0..connections {
                lanes.push(Lane::Http1(connect(addr, &tls.h1).await));
            }
        }
        Transport::Http2(streams) => {
            let sender = connect_h2(addr, &tls.h2).await;
            lanes.extend((0..streams).map(|_| Lane::Http2(sender.clone())));
        }
    }
    let start = Instant::now();
    let until = start + length;
    let mut tasks = Vec::new();
    for (n, mut lane) in lanes.into_iter().enumerate() {
        let bodies = bodies.to_vec();
        tasks.push(tokio::spawn(async move {
            let (mut done, mut failed) = (0usize, 0usize);
            let mut next = n;
            while Instant::now() < until {
                let body = &bodies[next % bodies.len()];
                next += 1;
                if lane.send(body).await {
                    done += 1;
                } else {
                    failed += 1;
                }
            }
            (done, failed)
        }));
    }
    let (mut done, mut failed) = (0, 0);
    for t in tasks {
        let (d, f) = t.await.expect("lane");
        done += d;
        failed += f;
    }
    (done as f64 / start.elapsed().as_secs_f64(), failed)
}

/// Alternating slices of the two handlers at each fixed rate.
const FIXED_RATE_PAIRS: usize = 4;

/// Alternating slices per comparison of the two handlers, and per request of the mix.
const PAIRS: usize = 6;
const MIX_PAIRS: usize = 3;

/// One handler driven as fast as it answers for a while.
struct Saturated {
    rps: f64,
    failed: usize,
    /// CPU µs per request of the server's and the client's threads (procfs).
    server: Option<f64>,
    client: Option<f64>,
}

impl Saturated {
    async fn measure(
        addr: SocketAddr,
        tls: &Connectors,
        body: &Bytes,
        transport: Transport,
        length: Duration,
    ) -> Saturated {
        let before = (cpu_time(SERVER_THREADS), cpu_time(CLIENT_THREADS));
        let (rps, failed) = saturate(addr, tls, body, transport, length).await;
        let requests = rps * length.as_secs_f64();
        Saturated {
            rps,
            failed,
            server: cpu_per_request(before.0, SERVER_THREADS, requests),
            client: cpu_per_request(before.1, CLIENT_THREADS, requests),
        }
    }

    /// The slices together: mean rate, all failures, CPU weighted by requests.
    fn total(runs: &[Saturated]) -> Saturated {
        let n = runs.len().max(1) as f64;
        let weighted = |f: fn(&Saturated) -> Option<f64>| {
            let requests: f64 = runs.iter().map(|r| r.rps).sum();
            runs.iter()
                .map(|r| f(r).map(|v| v * r.rps))
                .sum::<Option<f64>>()
                .map(|v| v / requests)
        };
        Saturated {
            rps: runs.iter().map(|r| r.rps).sum::<f64>() / n,
            failed: runs.iter().map(|r| r.failed).sum(),
            server: weighted(|r| r.server),
            client: weighted(|r| r.client),
        }
    }
}

/// `pairs` slices of each of two handlers (address and body), alternating, the first of each
/// pair swapped every pair.
async fn interleaved(
    handlers: [(SocketAddr, &Bytes); 2],
    tls: &Connectors,
    transport: Transport,
    slice: Duration,
    pairs: usize,
) -> (Vec<Saturated>, Vec<Saturated>) {
    let mut runs: [Vec<Saturated>; 2] = [Vec::new(), Vec::new()];
    for pair in 0..pairs {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (addr, body) = handlers[i];
            runs[i].push(Saturated::measure(addr, tls, body, transport, slice).await);
        }
    }
    let [a, b] = runs;
    (a, b)
}

/// Each pair's ratio of the first handler's rate to the second's, sorted.
fn ratios(a: &[Saturated], b: &[Saturated]) -> Vec<f64> {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.rps / b.rps).collect();
    r.sort_by(f64::total_cmp);
    r
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn us(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

/// CPU time the threads named `name` have used so far, from procfs (clock ticks of 10 ms; runs
/// last seconds, so the error is a few per cent). `None` where procfs is not there.
fn cpu_time(name: &str) -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the parenthesised name: state is the 3rd field, utime and stime the 14th
        // and 15th.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_millis(ticks * 10))
}

/// CPU µs per request the threads named `name` used since `before` over `requests`; `None`
/// where procfs is not there.
fn cpu_per_request(before: Option<Duration>, name: &str, requests: f64) -> Option<f64> {
    before
        .zip(cpu_time(name))
        .and_then(|(before, now)| now.checked_sub(before))
        .map(|used| used.as_secs_f64() * 1e6 / requests)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Counts per latency bucket (upper bounds in ms), for the histogram line.
fn histogram(sorted: &[Duration]) -> String {
    const BOUNDS_MS: [f64; 9] = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 100.0, f64::INFINITY];
    let mut counts = [0usize; BOUNDS_MS.len()];
    for d in sorted {
        let v = d.as_secs_f64() * 1000.0;
        let slot = BOUNDS_MS.iter().position(|b| v <= *b).unwrap_or(0);
        counts[slot] += 1;
    }
    BOUNDS_MS
        .iter()
        .zip(counts)
        .map(|(b, c)| {
            if b.is_finite() {
                format!("≤{b}ms:{c}")
            } else {
                format!(">100ms:{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The log the binary writes (`cli/src/main.rs`: `info`, plain text, one unbuffered write a
/// line), into `/dev/null`: denials are logged within the server's log budget, as shipped.
fn install_the_binarys_log() {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,h2=warn,tower=warn,hyper=warn,sled=warn",
        ))
        .with_writer(Arc::new(null))
        .with_ansi(false)
        .init();
}

/// The training run: every training review, both handlers, as fast as answered over 32 and 8
/// connections, twice in turn; the denials' alerts go to the Sensor as in the benchmark.
fn train(client_rt: &tokio::runtime::Runtime, servers: &Servers, connectors: &Connectors) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reviews: Vec<Bytes> = common::train::training_reviews(&repo)
        .into_iter()
        .map(Bytes::from)
        .collect();
    assert!(
        !reviews.is_empty(),
        "no manifest to train on under {}",
        repo.display()
    );
    println!("training on {} reviews", reviews.len());
    client_rt.block_on(async {
        for _ in 0..2 {
            for (name, addr) in [("rampart", servers.real), ("no-op", servers.noop)] {
                for connections in [32, 8] {
                    let (rps, failed) = saturate_with(
                        addr,
                        connectors,
                        &reviews,
                        Transport::Http1(connections),
                        Duration::from_secs(3),
                    )
                    .await;
                    println!(
                        "{name}, {connections} connections: {rps:.0} requests/s, {failed} failed"
                    );
                    assert_eq!(failed, 0, "every training review is answered");
                }
            }
        }
    });
    print_reports(servers);
    let started = Instant::now();
    let outcomes = common::train::policy_roles(&repo, 300);
    assert!(outcomes > 0, "the policy library's other roles had work");
    println!(
        "the policy library's other roles: {outcomes} outcomes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("crypto provider");
    install_the_binarys_log();
    // `cargo bench` passes `--bench`; `--quick` shortens every phase.
    let quick = std::env::args().any(|a| a == "--quick");
    let length = Duration::from_secs(if quick { 2 } else { 8 });
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .expect("runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()
        .expect("runtime");
    let servers = start_servers(&server_rt);
    let tls = rampart_test_support::tls_connector(&servers.ca).expect("connector");
    let connectors = Connectors {
        h1: tls.clone(),
        h2: rampart_test_support::tls_connector_offering(&servers.ca, &[b"h2"]).expect("connector"),
    };
    // `--train`: the profile-guided build's training run (`scripts/pgo-build`): both handlers
    // answer reviews of the repository's own manifests; the typical review measured here is
    // not even built.
    if std::env::args().any(|a| a == "--train") {
        train(&client_rt, &servers, &connectors);
        return;
    }
    let body = Bytes::from(common::typical_review());
    let compliant = Bytes::from(common::compliant_create_review());
    let pod = Bytes::from(common::pod_create_review());
    println!(
        "review: {} bytes, UPDATE of a Deployment; {} connections for the fixed rates",
        body.len(),
        CONNECTIONS
    );
    // `--saturate rampart|no-op`: only that handler, as fast as answered with 32 connections
    // (`--connections N` for another count; `--h2` for that many HTTP/2 streams on one
    // connection), for a profiler to watch.
    let args: Vec<String> = std::env::args().collect();
    if let Some(only) = args
        .iter()
        .position(|a| a == "--saturate")
        .and_then(|i| args.get(i + 1))
    {
        let addr = if only == "no-op" {
            servers.noop
        } else {
            servers.real
        };
        let connections = args
            .iter()
            .position(|a| a == "--connections")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(32);
        let transport = if args.iter().any(|a| a == "--h2") {
            Transport::Http2(connections)
        } else {
            Transport::Http1(connections)
        };
        let s = client_rt.block_on(Saturated::measure(
            addr,
            &connectors,
            &body,
            transport,
            length,
        ));
        println!(
            "{only}: {:.0} requests/s, {} failed; CPU µs per request: server {}, client {}",
            s.rps,
            s.failed,
            us(s.server),
            us(s.client)
        );
        print_reports(&servers);
        return;
    }
    client_rt.block_on(async {
        // Warm both servers up (TLS sessions, allocator, caches).
        for addr in [servers.real, servers.noop] {
            saturate(
                addr,
                &connectors,
                &body,
                Transport::Http1(4),
                Duration::from_millis(500),
            )
            .await;
        }
        // Fixed rates, in alternating slices of the two handlers.
        let slice = length / FIXED_RATE_PAIRS as u32;
        println!(
            "\n| handler | rate/s | requests | failed | p50 ms | p99 ms | p99.9 ms | max ms | p99 of each {:.1} s slice, ms |",
            slice.as_secs_f64()
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mut histograms = Vec::new();
        for rate in RATES {
            let runs = fixed_rate_interleaved(
                [servers.real, servers.noop],
                &tls,
                &body,
                rate,
                slice,
                FIXED_RATE_PAIRS,
            )
            .await;
            for (name, (run, p99s)) in ["rampart", "no-op"].into_iter().zip(runs) {
                let l = &run.latencies;
                let slices: Vec<String> = p99s.into_iter().map(ms).collect();
                println!(
                    "| {name} | {rate} | {} | {} | {} | {} | {} | {} | {} |",
                    l.len(),
                    run.failed,
                    ms(percentile(l, 50.0)),
                    ms(percentile(l, 99.0)),
                    ms(percentile(l, 99.9)),
                    ms(l.last().copied().unwrap_or_default()),
                    slices.join(", "),
                );
                histograms.push(format!(
                    "{name} @ {rate}/s ({:.1} s): {}",
                    run.elapsed.as_secs_f64(),
                    histogram(l)
                ));
            }
        }
        println!();
        for h in histograms {
            println!("{h}");
        }
        // As fast as answered. This VM's speed drifts by ±20 % within minutes, so the two
        // handlers are measured in alternating slices (the order swapped every pair) and
        // compared pair by pair, at nearly the same moment, instead of in two long runs.
        let slice = length / 4;
        println!(
            "\n| handler | clients | requests/s (as fast as answered, mean of {PAIRS} slices of {:.1} s) | failed | server CPU µs/request | client CPU µs/request |",
            slice.as_secs_f64()
        );
        println!("|---|---|---|---|---|---|");
        let mut shares = Vec::new();
        // HTTP/1.1, as the API server speaks to admission webhooks (since Kubernetes 1.16, so
        // that concurrent reviews open connections and spread over the webhook's pods).
        for transport in [Transport::Http1(8), Transport::Http1(32)] {
            let (real, noop) = interleaved(
                [(servers.real, &body), (servers.noop, &body)],
                &connectors,
                transport,
                slice,
                PAIRS,
            )
            .await;
            for (name, runs) in [("rampart", &real), ("no-op", &noop)] {
                let t = Saturated::total(runs);
                println!(
                    "| {name} | {transport} | {:.0} | {} | {} | {} |",
                    t.rps,
                    t.failed,
                    us(t.server),
                    us(t.client)
                );
            }
            shares.push((transport, ratios(&real, &noop)));
        }
        println!();
        for (transport, r) in &shares {
            println!(
                "rampart reaches {:.0} % of the no-op ceiling with {transport} (median of {} interleaved pairs; {:.0}–{:.0} %)",
                100.0 * median(r),
                r.len(),
                100.0 * r.first().copied().unwrap_or_default(),
                100.0 * r.last().copied().unwrap_or_default()
            );
        }
        // Other requests of a cluster's mix, each against the no-op answering the typical
        // review, interleaved the same way.
        println!(
            "\n| request ({} bytes, {} bytes, {} bytes) | requests/s, 32 connections | of the ceiling (median of {MIX_PAIRS} pairs) | server CPU µs/request | client CPU µs/request |",
            body.len(),
            compliant.len(),
            pod.len()
        );
        println!("|---|---|---|---|---|");
        for (name, review, allowed) in [
            ("Deployment UPDATE, denied (7 policies)", &body, false),
            ("Deployment CREATE, allowed (all evaluated)", &compliant, true),
            ("Pod CREATE by its ReplicaSet, allowed", &pod, true),
        ] {
            let first = answer(servers.real, &tls, review).await;
            assert!(
                first.contains(&format!("\"allowed\":{allowed}")),
                "{name}: {first}"
            );
            let (real, noop) = interleaved(
                [(servers.real, review), (servers.noop, &body)],
                &connectors,
                Transport::Http1(32),
                slice,
                MIX_PAIRS,
            )
            .await;
            let t = Saturated::total(&real);
            println!(
                "| {name} | {:.0} | {:.0} % | {} | {} |",
                t.rps,
                100.0 * median(&ratios(&real, &noop)),
                us(t.server),
                us(t.client)
            );
        }
        // Many clients at once, each waiting for its answer before its next request: the
        // latency a client sees when the controller is the bottleneck.
        println!(
            "\n| request | concurrent clients | requests | failed | avg ms | p95 ms | p99 ms | max ms | requests/s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let user_pod = Bytes::from(common::user_pod_create_review());
        let first = answer(servers.real, &tls, &user_pod).await;
        assert!(first.contains("\"allowed\":true"), "{first}");
        for (name, addr, review) in [
            (
                "Pod CREATE by a user, allowed (all evaluated)",
                servers.real,
                &user_pod,
            ),
            ("Deployment UPDATE, denied (7 policies)", servers.real, &body),
            ("no-op handler (the stack alone)", servers.noop, &body),
        ] {
            for clients in CLIENTS {
                // Both ends of every connection are this process's files.
                let needed = 2 * clients as u64 + 256;
                if let Some(limit) = open_files_limit().filter(|l| *l < needed) {
                    println!(
                        "| {name} | {clients} | skipped: needs about {needed} open files, the limit is {limit} (`ulimit -n`) |"
                    );
                    continue;
                }
                let run = closed_loop(addr, &tls, review, clients, length / 2).await;
                let n = run.latencies.len();
                let avg = run.latencies.iter().sum::<Duration>() / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
                println!(
                    "| {name} | {clients} | {n} | {} | {} | {} | {} | {} | {:.0} |",
                    run.failed,
                    ms(avg),
                    ms(percentile(&run.latencies, 95.0)),
                    ms(percentile(&run.latencies, 99.0)),
                    ms(run.latencies.last().copied().unwrap_or_default()),
                    n as f64 / run.elapsed.as_secs_f64()
                );
            }
        }
    });
    print_reports(&servers);
}
