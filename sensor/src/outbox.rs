//! Runtime messages for Central (enforcement reports, process and network events) — and the
//! Collector's for its Sensor: a bounded queue that holds them while the receiver is away and
//! until it acknowledges them.
//!
//! Resource state needs no such queue — the index is the state, and a resync after reconnecting
//! sends what changed. Runtime events are history: each must be delivered or, when the bound is
//! reached, counted as dropped (oldest first) and reported — never lost silently.

use std::collections::{BTreeMap, VecDeque};

use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;

/// Default bound: queued plus sent-but-unacknowledged messages.
pub const DEFAULT_CAPACITY: usize = 50_000;

#[derive(Debug)]
pub struct Outbox<T = FromSensor> {
    capacity: usize,
    queue: VecDeque<T>,
    /// Sent with this seq, not yet acknowledged.
    in_flight: BTreeMap<u64, T>,
    dropped: u64,
    accepted: u64,
}

impl<T> Default for Outbox<T> {
    fn default() -> Outbox<T> {
        Outbox::new(DEFAULT_CAPACITY)
    }
}

impl<T> Outbox<T> {
    pub fn new(capacity: usize) -> Outbox<T> {
        Outbox {
            capacity: capacity.max(1),
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            dropped: 0,
            accepted: 0,
        }
    }

    /// Queues a message; when full, the oldest queued message is dropped and counted.
    pub fn push(&mut self, msg: T) {
        self.accepted += 1;
        while self.len() >= self.capacity {
            if self.queue.pop_front().is_some() {
                self.dropped += 1;
            } else if let Some((&seq, _)) = self.in_flight.iter().next() {
                // Everything is in flight: the oldest unacknowledged one goes.
                self.in_flight.remove(&seq);
                self.dropped += 1;
            } else {
                break;
            }
        }
        self.queue.push_back(msg);
    }

    /// Up to `max` queued messages to send now.
    pub fn take(&mut self, max: usize) -> Vec<T> {
        let n = max.min(self.queue.len());
        self.queue.drain(..n).collect()
    }

    /// A message taken with [`Outbox::take`] was sent with `seq`.
    pub fn sent(&mut self, seq: u64, msg: T) {
        self.in_flight.insert(seq, msg);
    }

    /// Central holds everything up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        let rest = self.in_flight.split_off(&(seq + 1));
        self.in_flight = rest;
    }

    /// The connection was lost: what was sent but not acknowledged goes out again first.
    pub fn requeue_in_flight(&mut self) {
        let in_flight = std::mem::take(&mut self.in_flight);
        for msg in in_flight.into_values().rev() {
            self.queue.push_front(msg);
        }
    }

    /// Messages held (queued and in flight).
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Messages dropped because the bound was reached, since the Sensor started.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn accepted(&self) -> u64 {
        self.accepted
    }
}

#[cfg(test)]
mod tests {
    use rampart_proto::v1::EnforcementReport;

    use super::*;

    fn report(n: u32) -> FromSensor {
        FromSensor::EnforcementReport(EnforcementReport {
            deployment_id: n.to_string(),
            ..EnforcementReport::default()
        })
    }

    fn ids(msgs: &[FromSensor]) -> Vec<String> {
        msgs.iter()
            .map(|m| match m {
                FromSensor::EnforcementReport(r) => r.deployment_id.clone(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn full_outbox_drops_the_oldest_and_counts_it() {
        let mut o: Outbox = Outbox::new(3);
        for n in 1..=5 {
            o.push(report(n));
        }
        assert_eq!(o.dropped(), 2);
        assert_eq!(o.accepted(), 5);
        assert_eq!(ids(&o.take(10)), ["3", "4", "5"]);
    }

    #[test]
    fn unacknowledged_messages_go_out_again_in_order_after_a_reconnect() {
        let mut o: Outbox = Outbox::new(10);
        for n in 1..=4 {
            o.push(report(n));
        }
        for (seq, m) in (10..).zip(o.take(3)) {
            o.sent(seq, m);
        }
        o.ack(10);
        assert_eq!(o.len(), 3, "two in flight, one queued");
        o.requeue_in_flight();
        assert_eq!(ids(&o.take(10)), ["2", "3", "4"]);
        assert_eq!(o.dropped(), 0);
    }

    #[test]
    fn in_flight_messages_count_against_the_bound() {
        let mut o: Outbox = Outbox::new(2);
        o.push(report(1));
        o.push(report(2));
        for (seq, m) in (1..).zip(o.take(2)) {
            o.sent(seq, m);
        }
        o.push(report(3));
        assert_eq!(o.dropped(), 1);
        o.requeue_in_flight();
        assert_eq!(ids(&o.take(10)), ["2", "3"]);
    }
}
