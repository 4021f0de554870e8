//! The Sensor's probes and metrics on a plain-HTTP port (inside the cluster, for the kubelet and
//! Prometheus; it serves no data about the cluster, only the Sensor's own state):
//! `/healthz` (the process answers), `/readyz` (every kind listed and Central connected: 503
//! until then, with the reason), `/metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Shared;
use crate::index::Kind;

#[derive(Debug)]
struct Probe {
    shared: Arc<Shared>,
    kinds: Vec<Kind>,
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(p): State<Arc<Probe>>) -> (StatusCode, String) {
    let synced = crate::lock(&p.shared.index).is_synced(&p.kinds);
    let connected = crate::lock(&p.shared.status).connected;
    match (synced, connected) {
        (true, true) => (StatusCode::OK, "ready\n".into()),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the cluster is still being listed\n".into(),
        ),
        (true, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not connected to Central\n".into(),
        ),
    }
}

/// One metric in the Prometheus text format: its help, type and one sample.
pub(crate) fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    labels: &str,
    value: u64,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// Renders the Sensor's state in the Prometheus text format.
fn render(shared: &Shared) -> String {
    let status = crate::lock(&shared.status).clone();
    let (buffered, dropped) = {
        let o = crate::lock(&shared.outbox);
        (o.len(), o.dropped())
    };
    let objects = crate::lock(&shared.index).len();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        write_metric(
            &mut out,
            &format!("rampart_sensor_{name}"),
            kind,
            help,
            "",
            value,
        );
    };
    metric(
        "central_connected",
        "gauge",
        "1 while the stream to Central is up",
        u64::from(status.connected),
    );
    metric(
        "central_connections",
        "counter",
        "Streams to Central opened",
        status.connections,
    );
    metric(
        "acked_seq",
        "gauge",
        "Highest message Central holds durably",
        status.acked_seq,
    );
    metric(
        "objects",
        "gauge",
        "Kubernetes objects in the index",
        objects as u64,
    );
    metric(
        "policies",
        "gauge",
        "Policies received from Central",
        status.policies as u64,
    );
    metric(
        "buffered_events",
        "gauge",
        "Runtime messages held for Central",
        buffered as u64,
    );
    metric(
        "dropped_events",
        "counter",
        "Runtime messages dropped because the buffer was full",
        dropped,
    );
    metric(
        "exempt_namespace_skips",
        "counter",
        "Enforcements skipped because the workload is in an exempt namespace",
        status.exempt_skips,
    );
    metric(
        "enforcements",
        "counter",
        "Enforcements carried out",
        status.enforcements,
    );
    metric(
        "failed_enforcements",
        "counter",
        "Enforcements that failed",
        status.failed_enforcements,
    );
    metric(
        "break_glass_skips",
        "counter",
        "Enforcements skipped for the break-glass annotation",
        status.break_glass_skips,
    );
    metric(
        "collectors_connected",
        "gauge",
        "Collectors connected",
        status.nodes.values().filter(|n| n.connected).count() as u64,
    );
    metric(
        "collector_unmatched_events",
        "counter",
        "Collector events no pod claimed",
        status.nodes.values().map(|n| n.unmatched).sum(),
    );
    out
}

async fn metrics(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        render(&p.shared),
    )
}

/// Binds and serves until the task is dropped; returns the bound address.
pub async fn serve(
    shared: Arc<Shared>,
    kinds: Vec<Kind>,
    addr: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(Probe { shared, kinds }));
    serve_probes(addr, app).await
}

/// Binds `addr` and serves `app` (probes and metrics, plain HTTP) until the task is dropped;
/// returns the bound address. The Sensor's and the Collector's.
pub(crate) async fn serve_probes(
    addr: std::net::SocketAddr,
    app: Router,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "health endpoint stopped");
        }
    });
    Ok((addr, task))
}
