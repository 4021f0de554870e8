//! Prometheus metrics, served on `/metrics`. Labels are bounded: clusters (the fleet), API
//! routes (the router's patterns, never raw paths), methods and status codes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    pub cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnforcementLabels {
    pub cluster: String,
    /// The enforcement action (a closed set); unknown actions are counted as `OTHER`.
    pub action: String,
    pub succeeded: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub sensor_messages: Family<ClusterLabel, Counter>,
    pub sensor_connected: Family<ClusterLabel, Gauge>,
    pub sensor_dropped_events: Family<ClusterLabel, Gauge>,
    pub sensor_buffered_events: Family<ClusterLabel, Gauge>,
    pub enforcements: Family<EnforcementLabels, Counter>,
    pub alerts_opened: Counter,
    pub alerts_resolved: Counter,
    /// Runtime alerts naming a deployment or policy Central does not know.
    pub runtime_alerts_dropped: Counter,
    pub policy_revision: Gauge,
    pub reassessments: Counter,
    pub reassessment_seconds: Histogram,
    pub http_requests: Family<RouteLabels, Counter>,
    pub http_seconds: Family<RouteLabel, Histogram>,
    pub auth_failures: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new(refusals: &crate::tls::RefusalLog, images: &crate::images::Images) -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let m = Metrics {
            sensor_messages: Family::default(),
            sensor_connected: Family::default(),
            sensor_dropped_events: Family::default(),
            sensor_buffered_events: Family::default(),
            enforcements: Family::default(),
            alerts_opened: Counter::default(),
            alerts_resolved: Counter::default(),
            runtime_alerts_dropped: Counter::default(),
            policy_revision: Gauge::default(),
            reassessments: Counter::default(),
            reassessment_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(latency_histogram),
            auth_failures: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "sensor_messages",
            "Messages received from Sensors",
            m.sensor_messages.clone(),
        );
        registry.register(
            "sensor_connected",
            "1 while the cluster's Sensor is connected",
            m.sensor_connected.clone(),
        );
        registry.register(
            "sensor_dropped_events",
            "Runtime events the Sensor reported dropping because its bounded buffer was full",
            m.sensor_dropped_events.clone(),
        );
        registry.register(
            "sensor_buffered_events",
            "Runtime events the Sensor held for Central at its last health report",
            m.sensor_buffered_events.clone(),
        );
        registry.register(
            "enforcements",
            "Enforcements the Sensors reported, by action and outcome",
            m.enforcements.clone(),
        );
        registry.register("alerts_opened", "Alerts opened", m.alerts_opened.clone());
        registry.register(
            "alerts_resolved",
            "Alerts resolved (automatically or by users)",
            m.alerts_resolved.clone(),
        );
        registry.register(
            "runtime_alerts_dropped",
            "Runtime alerts dropped: their deployment or policy is unknown",
            m.runtime_alerts_dropped.clone(),
        );
        registry.register(
            "policy_revision",
            "Revision of the policy set",
            m.policy_revision.clone(),
        );
        registry.register(
            "reassessments",
            "Reassessments of every deployment after policy changes",
            m.reassessments.clone(),
        );
        registry.register(
            "reassessment_seconds",
            "Duration of a reassessment",
            m.reassessment_seconds.clone(),
        );
        registry.register(
            "certificate_refusals",
            "Sensor connections refused (certificate or identity)",
            refusals.counter(),
        );
        registry.register(
            "http_requests",
            "API requests by route, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route",
            m.http_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "API requests refused for missing or wrong credentials",
            m.auth_failures.clone(),
        );
        registry.register(
            "image_scans",
            "Image scans by outcome (scanned, failed)",
            images.scans.clone(),
        );
        registry.register(
            "image_scan_queue_dropped",
            "Image scans not queued because the queue was full (asked for again later)",
            images.queue_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
