//! The Collector's probes and metrics on a plain-HTTP port (for the kubelet and Prometheus; only
//! the Collector's own state, nothing about the node's processes):
//! `/healthz` (the scan loop is turning: 503 once it has not for [`STALL`] beyond its slowest
//! interval, so a wedged Collector is restarted), `/readyz` (connected to the Sensor: 503 until
//! then, with the reason), `/metrics` (Prometheus text).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use rampart_proto::collector::collector_message::Msg;

use super::Status;
use crate::outbox::Outbox;

/// How long past its slowest interval the scan loop may go without turning before `/healthz`
/// fails.
pub const STALL: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Probe {
    status: Arc<Mutex<Status>>,
    outbox: Arc<Mutex<Outbox<Msg>>>,
    /// The scan loop's slowest interval plus [`STALL`].
    stall_after: Duration,
}

/// Whether the scan loop last turned recently enough, and what to say.
fn liveness(
    last_scan: Option<Instant>,
    now: Instant,
    stall_after: Duration,
) -> (StatusCode, String) {
    match last_scan {
        Some(at) if now.saturating_duration_since(at) > stall_after => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stalled: the scan loop last turned {} s ago\n",
                now.saturating_duration_since(at).as_secs()
            ),
        ),
        // Before the first turn the process is starting: its first /proc walk can be long.
        _ => (StatusCode::OK, "ok\n".into()),
    }
}

async fn healthz(State(p): State<Arc<Probe>>) -> (StatusCode, String) {
    let last_scan = crate::lock(&p.status).last_scan;
    liveness(last_scan, Instant::now(), p.stall_after)
}

async fn readyz(State(p): State<Arc<Probe>>) -> (StatusCode, String) {
    if crate::lock(&p.status).connected {
        (StatusCode::OK, "ready\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not connected to the Sensor\n".into(),
        )
    }
}

/// Renders the Collector's state in the Prometheus text format.
fn render(status: &Status, buffered: usize, dropped: u64) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, labels: &str, value: u64| {
        let name = format!("rampart_collector_{name}");
        crate::health::write_metric(&mut out, &name, kind, help, labels, value);
    };
    metric(
        "info",
        "gauge",
        "How the Collector sees processes (proc-connector: every exec; proc-polling: those that live a poll interval)",
        &format!("{{mode=\"{}\"}}", status.mode),
        1,
    );
    metric(
        "sensor_connected",
        "gauge",
        "1 while the stream to the Sensor is up",
        "",
        u64::from(status.connected),
    );
    metric(
        "acked_seq",
        "gauge",
        "Highest message the Sensor acknowledged",
        "",
        status.acked_seq,
    );
    metric(
        "processes",
        "counter",
        "Container processes reported",
        "",
        status.processes,
    );
    metric(
        "connections",
        "counter",
        "Container connections and listening endpoints reported",
        "",
        status.connections,
    );
    metric(
        "rate_limited_events",
        "counter",
        "Events not reported because their container went over its rate",
        "",
        status.rate_limited,
    );
    metric(
        "buffered_events",
        "gauge",
        "Messages held for the Sensor",
        "",
        buffered as u64,
    );
    metric(
        "dropped_events",
        "counter",
        "Messages dropped because the buffer was full (the Sensor away)",
        "",
        dropped,
    );
    out
}

async fn metrics(State(p): State<Arc<Probe>>) -> impl IntoResponse {
    let status = crate::lock(&p.status).clone();
    let (buffered, dropped) = {
        let o = crate::lock(&p.outbox);
        (o.len(), o.dropped())
    };
    (
        [("content-type", "text/plain; version=0.0.4")],
        render(&status, buffered, dropped),
    )
}

/// Binds and serves until the task is dropped; returns the bound address.
pub(super) async fn serve(
    status: Arc<Mutex<Status>>,
    outbox: Arc<Mutex<Outbox<Msg>>>,
    slowest_interval: Duration,
    addr: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(Probe {
            status,
            outbox,
            stall_after: slowest_interval + STALL,
        }));
    crate::health::serve_probes(addr, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_loop_that_stopped_turning_fails_the_liveness_probe() {
        let now = Instant::now();
        let stall_after = Duration::from_secs(35);
        // Starting (no turn yet), and turning: alive.
        assert_eq!(liveness(None, now, stall_after).0, StatusCode::OK);
        let recent = now.checked_sub(Duration::from_secs(5)).expect("instant");
        assert_eq!(liveness(Some(recent), now, stall_after).0, StatusCode::OK);
        // Not for longer than its slowest interval and the grace: restart it.
        let stalled = now.checked_sub(Duration::from_secs(36)).expect("instant");
        let (code, text) = liveness(Some(stalled), now, stall_after);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text.contains("36 s ago"), "{text}");
    }

    #[test]
    fn metrics_name_the_mode_and_count_what_was_reported_and_dropped() {
        let status = Status {
            mode: "proc-polling".into(),
            connected: true,
            processes: 12,
            connections: 7,
            rate_limited: 3,
            acked_seq: 40,
            ..Status::default()
        };
        let text = render(&status, 5, 2);
        for line in [
            "rampart_collector_info{mode=\"proc-polling\"} 1",
            "rampart_collector_sensor_connected 1",
            "rampart_collector_acked_seq 40",
            "rampart_collector_processes 12",
            "rampart_collector_connections 7",
            "rampart_collector_rate_limited_events 3",
            "rampart_collector_buffered_events 5",
            "rampart_collector_dropped_events 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
