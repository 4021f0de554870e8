//! Prometheus metrics on the health port. Labels are bounded: two endpoints, six outcomes, the
//! policies of the set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::decide::Outcome;

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

/// The webhook's endpoints, as metrics label them.
const ENDPOINTS: [&str; 2] = ["validate", "events"];

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
    /// Enforced policies on image data alone.
    pub policies_on_image_data: Gauge,
    /// Images Central's findings are held for.
    pub image_findings: Gauge,
    /// Findings not kept: over the controller's bound, or unreadable.
    pub image_findings_refused: Counter,
    /// Images met without findings and sent to the Sensor for Central to scan.
    pub scans_asked: Counter,
    /// Reviews answered by the failure mode because their decision took longer than the
    /// decision budget.
    pub over_budget: Counter,
    pub sensor_connected: Gauge,
    pub alerts_reported: Counter,
    pub alerts_dropped: Counter,
    /// Alerts moved to the cache directory while the Sensor was away (read back later).
    pub alerts_spilled: Counter,
    /// Warnings given in answers (policies not enforced, break-glass, failure mode).
    pub warnings: Counter,
    /// Reviews counted on an identical review's alerts still waiting instead of raising their
    /// own.
    pub alerts_coalesced: Counter,
    pub certificate_reloads: Counter,
    /// Changed certificate files that could not be loaded (the previous pair stays in use).
    pub certificate_reload_failures: Counter,
    /// Decision lines the log budget held back.
    pub log_lines_withheld: Counter,
    /// `decisions`' series by endpoint (`validate`, `events`) and outcome, created up front:
    /// every series is exported from the start, and a request counts without a look-up.
    decision_series: [[Counter; Outcome::ALL.len()]; 2],
    /// `latency`'s series by endpoint, likewise.
    latency_series: [Histogram; 2],
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rampart_admission");
        let decisions: Family<DecisionLabels, Counter> = Family::default();
        // 50 µs .. ~1.6 s
        let latency: Family<EndpointLabel, Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 16)));
        let decision_series = ENDPOINTS.map(|endpoint| {
            Outcome::ALL.map(|outcome| {
                decisions
                    .get_or_create(&DecisionLabels {
                        endpoint,
                        outcome: outcome.as_str(),
                    })
                    .clone()
            })
        });
        let latency_series =
            ENDPOINTS.map(|endpoint| latency.get_or_create(&EndpointLabel { endpoint }).clone());
        let m = Metrics {
            registry: Registry::default(),
            decisions,
            policy_violations: Family::default(),
            latency,
            rejected: Family::default(),
            policy_revision: Family::default(),
            policy_age_seconds: Gauge::default(),
            policies_enforced: Gauge::default(),
            policies_on_image_data: Gauge::default(),
            image_findings: Gauge::default(),
            image_findings_refused: Counter::default(),
            scans_asked: Counter::default(),
            over_budget: Counter::default(),
            sensor_connected: Gauge::default(),
            alerts_reported: Counter::default(),
            alerts_dropped: Counter::default(),
            alerts_spilled: Counter::default(),
            warnings: Counter::default(),
            alerts_coalesced: Counter::default(),
            certificate_reloads: Counter::default(),
            certificate_reload_failures: Counter::default(),
            log_lines_withheld: Counter::default(),
            decision_series,
            latency_series,
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
            "policies_on_image_data",
            "Enforced policies that test image data alone (CVEs, components, image age): evaluated for the images Central has findings for",
            m.policies_on_image_data.clone(),
        );
        registry.register(
            "image_findings",
            "Images whose findings from Central the controller holds",
            m.image_findings.clone(),
        );
        registry.register(
            "image_findings_refused",
            "Image findings not kept: over the controller's bound, or unreadable",
            m.image_findings_refused.clone(),
        );
        registry.register(
            "sensor_connected",
            "1 while the stream from the Sensor is up",
            m.sensor_connected.clone(),
        );
        registry.register(
            "decisions_over_budget",
            "Reviews answered by the failure mode because their decision took longer than the decision budget",
            m.over_budget.clone(),
        );
        registry.register(
            "image_scans_asked",
            "Images met without Central's findings and sent to the Sensor for Central to scan",
            m.scans_asked.clone(),
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
            "warnings",
            "Warnings given in answers: violated policies that are not enforced, break-glass admissions, failure-mode answers",
            m.warnings.clone(),
        );
        registry.register(
            "alerts_spilled",
            "Alerts moved to the cache directory because the queue passed half its capacity while the Sensor was away; they are sent when it is back",
            m.alerts_spilled.clone(),
        );
        registry.register(
            "alert_attempts_coalesced",
            "Reviews counted on an identical review's alerts still waiting for the Sensor (a retry storm), instead of queueing alerts of their own",
            m.alerts_coalesced.clone(),
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
        registry.register(
            "log_lines_withheld",
            "Decision and refusal log lines held back by the log budget (each line written says how many came before it)",
            m.log_lines_withheld.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The `decisions` series of `endpoint` (`validate` or `events`) and `outcome`.
    pub fn decision(&self, endpoint: &'static str, outcome: Outcome) -> &Counter {
        let e = usize::from(endpoint != ENDPOINTS[0]);
        let o = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        &self.decision_series[e][o]
    }

    /// The `latency` series of `endpoint` (`validate` or `events`).
    pub fn latency_of(&self, endpoint: &'static str) -> &Histogram {
        &self.latency_series[usize::from(endpoint != ENDPOINTS[0])]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_and_outcome_counts_in_its_own_series() {
        let m = Metrics::new();
        for (n, outcome) in Outcome::ALL.into_iter().enumerate() {
            for _ in 0..=n {
                m.decision("events", outcome).inc();
            }
        }
        m.decision("validate", Outcome::Denied).inc();
        m.latency_of("events").observe(0.001);
        let text = m.render();
        for (n, outcome) in Outcome::ALL.into_iter().enumerate() {
            let line = format!(
                r#"rampart_admission_decisions_total{{endpoint="events",outcome="{}"}} {}"#,
                outcome.as_str(),
                n + 1
            );
            assert!(text.contains(&line), "{line}\n{text}");
        }
        assert!(text.contains(
            r#"rampart_admission_decisions_total{endpoint="validate",outcome="denied"} 1"#
        ));
        assert!(text.contains(
            r#"rampart_admission_decisions_total{endpoint="validate",outcome="allowed"} 0"#
        ));
        assert!(
            text.contains(
                r#"rampart_admission_request_duration_seconds_count{endpoint="events"} 1"#
            )
        );
        assert!(text.contains(
            r#"rampart_admission_request_duration_seconds_count{endpoint="validate"} 0"#
        ));
    }
}
