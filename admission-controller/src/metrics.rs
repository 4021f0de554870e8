//! Prometheus metrics on the health port. Labels are bounded: two endpoints, six outcomes, the
//! policies of the set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub endpoint: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    /// `malformed`, `too_large`, `timeout`, `method`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabel {
    pub revision: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub decisions: Family<DecisionLabels, Counter>,
    pub policy_violations: Family<PolicyLabel, Counter>,
    pub latency: Family<EndpointLabel, Histogram>,
    pub rejected: Family<RejectLabel, Counter>,
    /// 1 for the revision in use (info-style).
    pub policy_revision: Family<RevisionLabel, Gauge>,
    pub policy_age_seconds: Gauge,
    pub policies_enforced: Gauge,
    pub sensor_connected: Gauge,
    pub alerts_reported: Counter,
    pub alerts_dropped: Counter,
    pub certificate_reloads: Counter,
    /// Changed certificate files that could not be loaded (the previous pair stays in use).
    pub certificate_reload_failures: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rampart_admission");
        let m = Metrics {
            registry: Registry::default(),
            decisions: Family::default(),
            policy_violations: Family::default(),
            // 50 µs .. ~1.6 s
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
            }),
            rejected: Family::default(),
            policy_revision: Family::default(),
            policy_age_seconds: Gauge::default(),
            policies_enforced: Gauge::default(),
            sensor_connected: Gauge::default(),
            alerts_reported: Counter::default(),
            alerts_dropped: Counter::default(),
            certificate_reloads: Counter::default(),
            certificate_reload_failures: Counter::default(),
        };
        registry.register(
            "decisions",
            "Admission decisions by endpoint and outcome",
            m.decisions.clone(),
        );
        registry.register(
            "policy_violations",
            "Requests that violated an enforced policy (denied or let through by break-glass), by policy",
            m.policy_violations.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its answer, by endpoint",
            m.latency.clone(),
        );
        registry.register(
            "rejected_requests",
            "Requests answered without a review (malformed, too large, too slow)",
            m.rejected.clone(),
        );
        registry.register(
            "policy_revision",
            "The policy set in use (1 for its revision)",
            m.policy_revision.clone(),
        );
        registry.register(
            "policy_age_seconds",
            "Seconds since the policy set in use was received",
            m.policy_age_seconds.clone(),
        );
        registry.register(
            "policies_enforced",
            "Policies the controller enforces",
            m.policies_enforced.clone(),
        );
        registry.register(
            "sensor_connected",
            "1 while the stream from the Sensor is up",
            m.sensor_connected.clone(),
        );
        registry.register(
            "alerts_reported",
            "Alerts handed to the Sensor",
            m.alerts_reported.clone(),
        );
        registry.register(
            "alerts_dropped",
            "Alerts dropped because the bounded queue was full while the Sensor was away",
            m.alerts_dropped.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads after the files changed",
            m.certificate_reloads.clone(),
        );
        registry.register(
            "certificate_reload_failures",
            "Changed serving certificate files that could not be loaded; the previous pair stays in use",
            m.certificate_reload_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
