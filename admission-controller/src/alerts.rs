//! Alerts waiting for the Sensor: a bounded queue that drops the oldest (and counts them) when
//! the Sensor is away for long, so a denial storm cannot grow memory.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Mutex;

use rampart_proto::v1::AdmissionAlert;

use crate::metrics::Metrics;

/// The alerts one review raised: what they share (deployment, request, user, time), once, and
/// per violated policy what is its own. A denial of seven policies is one record of a few
/// allocations instead of seven messages of a dozen strings each; the messages are built when
/// the alerts are handed to the Sensor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewAlerts {
    /// Every field but the policy's own (`policy_id`, `violations`, `enforcement_action`).
    pub common: AdmissionAlert,
    pub policies: Vec<PolicyAlert>,
}

/// One violated policy's part of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAlert {
    pub policy_id: String,
    pub violations: Vec<String>,
    /// Empty when the violation was only recorded (break-glass, not enforced).
    pub enforcement_action: Cow<'static, str>,
}

impl ReviewAlerts {
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The alert messages, as the Sensor receives them.
    pub fn to_alerts(&self) -> Vec<AdmissionAlert> {
        self.policies
            .iter()
            .map(|p| message(&self.common, p.clone()))
            .collect()
    }
}

/// One alert message: a policy's part over the review's common one.
fn message(common: &AdmissionAlert, p: PolicyAlert) -> AdmissionAlert {
    AdmissionAlert {
        policy_id: p.policy_id,
        violations: p.violations,
        enforcement_action: p.enforcement_action.into_owned(),
        ..common.clone()
    }
}

impl From<AdmissionAlert> for ReviewAlerts {
    fn from(mut a: AdmissionAlert) -> ReviewAlerts {
        let policy = PolicyAlert {
            policy_id: std::mem::take(&mut a.policy_id),
            violations: std::mem::take(&mut a.violations),
            enforcement_action: Cow::Owned(std::mem::take(&mut a.enforcement_action)),
        };
        ReviewAlerts {
            common: a,
            policies: vec![policy],
        }
    }
}

#[derive(Debug, Default)]
struct Queued {
    records: VecDeque<ReviewAlerts>,
    /// Alerts in all records.
    count: usize,
}

impl Queued {
    /// Drops the `n` oldest alerts.
    fn drop_oldest(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.records.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.count -= front.len();
                self.records.pop_front();
            } else {
                front.policies.drain(..n);
                self.count -= n;
                n = 0;
            }
        }
    }
}

/// Alerts waiting for the Sensor, bounded by their number.
#[derive(Debug)]
pub struct AlertQueue {
    queue: Mutex<Queued>,
    capacity: usize,
    pub ready: tokio::sync::Notify,
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        AlertQueue {
            queue: Mutex::new(Queued::default()),
            capacity: capacity.max(1),
            ready: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Alerts waiting.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues one review's alerts, dropping (and counting) the oldest beyond capacity.
    pub fn push(&self, alerts: ReviewAlerts, metrics: &Metrics) {
        if alerts.is_empty() {
            return;
        }
        let mut q = self.lock();
        q.count += alerts.len();
        q.records.push_back(alerts);
        let over = q.count.saturating_sub(self.capacity);
        q.drop_oldest(over);
        drop(q);
        if over > 0 {
            metrics.alerts_dropped.inc_by(over as u64);
        }
        self.ready.notify_one();
    }

    /// Up to `max` of the oldest alerts, as messages.
    pub fn take(&self, max: usize) -> Vec<AdmissionAlert> {
        let mut q = self.lock();
        let mut out = Vec::with_capacity(max.min(q.count));
        while out.len() < max {
            let want = max - out.len();
            let Some(front) = q.records.front_mut() else {
                break;
            };
            let n = front.len().min(want);
            let whole = n == front.len();
            out.extend(front.policies.drain(..n).map(|p| message(&front.common, p)));
            q.count -= n;
            if whole {
                q.records.pop_front();
            }
        }
        out
    }

    /// Puts back alerts the Sensor did not take, first in line; the oldest beyond capacity
    /// are dropped (and counted).
    pub fn requeue(&self, alerts: Vec<AdmissionAlert>, metrics: &Metrics) {
        let mut q = self.lock();
        for a in alerts.into_iter().rev() {
            q.count += 1;
            q.records.push_front(ReviewAlerts::from(a));
        }
        let over = q.count.saturating_sub(self.capacity);
        q.drop_oldest(over);
        drop(q);
        if over > 0 {
            metrics.alerts_dropped.inc_by(over as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> AdmissionAlert {
        AdmissionAlert {
            policy_id: id.into(),
            ..Default::default()
        }
    }

    fn review(ids: &[&str]) -> ReviewAlerts {
        ReviewAlerts {
            common: AdmissionAlert {
                name: format!("dep-{}", ids.join("")),
                ..Default::default()
            },
            policies: ids
                .iter()
                .map(|id| PolicyAlert {
                    policy_id: id.to_string(),
                    violations: vec![format!("{id} violated")],
                    enforcement_action: Cow::Borrowed("FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_review_record_becomes_one_message_per_policy_with_the_common_fields() {
        let q = AlertQueue::new(10);
        q.push(review(&["a", "b", "c"]), &Metrics::new());
        assert_eq!(q.len(), 3);
        let first = q.take(2);
        let rest = q.take(5);
        assert_eq!(q.len(), 0);
        let got: Vec<(String, String, Vec<String>, String)> = first
            .into_iter()
            .chain(rest)
            .map(|a| (a.policy_id, a.name, a.violations, a.enforcement_action))
            .collect();
        let want: Vec<(String, String, Vec<String>, String)> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    "dep-abc".to_string(),
                    vec![format!("{id} violated")],
                    "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT".to_string(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bounded_oldest_dropped_and_counted_requeue_keeps_order() {
        let metrics = Metrics::new();
        let q = AlertQueue::new(3);
        q.push(review(&["a", "b"]), &metrics);
        q.push(review(&["c", "d"]), &metrics);
        assert_eq!(metrics.alerts_dropped.get(), 1);
        let taken = q.take(2);
        let ids: Vec<_> = taken.iter().map(|a| a.policy_id.as_str()).collect();
        assert_eq!(ids, vec!["b", "c"]);
        q.push(review(&["e", "f"]), &metrics);
        q.requeue(taken, &metrics);
        let ids: Vec<_> = q.take(10).into_iter().map(|a| a.policy_id).collect();
        // The requeued alerts are the oldest, so they are the ones dropped beyond capacity.
        assert_eq!(ids, vec!["d", "e", "f"]);
        assert_eq!(metrics.alerts_dropped.get(), 3);
        q.requeue(vec![alert("g")], &metrics);
        assert_eq!(q.take(1)[0].policy_id, "g", "a requeued alert goes first");
    }
}
