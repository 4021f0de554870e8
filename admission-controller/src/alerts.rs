//! Alerts waiting for the Sensor: a bounded queue that drops the oldest (and counts them) when
//! the Sensor is away for long, so a denial storm cannot grow memory.

use std::collections::VecDeque;
use std::sync::Mutex;

use rampart_proto::v1::AdmissionAlert;

use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AlertQueue {
    queue: Mutex<VecDeque<AdmissionAlert>>,
    capacity: usize,
    pub ready: tokio::sync::Notify,
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        AlertQueue {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<AdmissionAlert>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&self, alerts: Vec<AdmissionAlert>, metrics: &Metrics) {
        let mut q = self.lock();
        for a in alerts {
            if q.len() >= self.capacity {
                q.pop_front();
                metrics.alerts_dropped.inc();
            }
            q.push_back(a);
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Up to `max` alerts, oldest first.
    pub fn take(&self, max: usize) -> Vec<AdmissionAlert> {
        let mut q = self.lock();
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// Puts back alerts that could not be delivered, ahead of newer ones (dropping the oldest
    /// beyond capacity).
    pub fn requeue(&self, alerts: Vec<AdmissionAlert>, metrics: &Metrics) {
        let mut q = self.lock();
        for a in alerts.into_iter().rev() {
            q.push_front(a);
        }
        while q.len() > self.capacity {
            q.pop_front();
            metrics.alerts_dropped.inc();
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

    #[test]
    fn bounded_oldest_dropped_and_counted_requeue_keeps_order() {
        let metrics = Metrics::new();
        let q = AlertQueue::new(3);
        q.push(vec![alert("a"), alert("b")], &metrics);
        q.push(vec![alert("c"), alert("d")], &metrics);
        assert_eq!(metrics.alerts_dropped.get(), 1);
        let taken = q.take(2);
        let ids: Vec<_> = taken.iter().map(|a| a.policy_id.as_str()).collect();
        assert_eq!(ids, vec!["b", "c"]);
        q.push(vec![alert("e"), alert("f")], &metrics);
        q.requeue(taken, &metrics);
        let ids: Vec<_> = q.take(10).into_iter().map(|a| a.policy_id).collect();
        // The requeued alerts are the oldest, so they are the ones dropped beyond capacity.
        assert_eq!(ids, vec!["d", "e", "f"]);
        assert_eq!(metrics.alerts_dropped.get(), 3);
        q.requeue(vec![alert("g")], &metrics);
        assert_eq!(q.take(1)[0].policy_id, "g", "a requeued alert goes first");
    }
}
