//! One lane per cluster: every alert decision for a cluster's deployments — from its Sensor
//! stream, from reassessment after a policy change, from a manual resolve — is taken holding
//! the cluster's lane, so two writers never decide from the same stale state.
//!
//! The lane also holds the [`Overlay`]: alert state decided and submitted but perhaps not yet
//! durable, so the next decision for the same deployment starts from it and not from a store
//! that has not caught up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::alerts::AlertRecord;

/// Active alerts per deployment, decided but perhaps not yet durable. Bounded: the Sensor
/// stream keeps at most `ACK_WINDOW` submissions in flight, so an entry older than
/// [`OVERLAY_SPAN`] newer entries is durable and the store answers for it. Writers that wait
/// for durability themselves (reassessment, manual resolve) [`Overlay::forget`] instead.
#[derive(Debug, Default)]
pub struct Overlay {
    active: HashMap<String, (u64, Vec<AlertRecord>)>,
    order: VecDeque<(u64, String)>,
    submissions: u64,
}

pub const OVERLAY_SPAN: u64 = 2 * crate::hub::ACK_WINDOW as u64 + 2;

impl Overlay {
    pub fn get(&self, deployment: &str) -> Option<&Vec<AlertRecord>> {
        self.active.get(deployment).map(|(_, a)| a)
    }

    pub fn set(&mut self, deployment: &str, active: Vec<AlertRecord>) {
        self.submissions += 1;
        self.active
            .insert(deployment.to_string(), (self.submissions, active));
        self.order
            .push_back((self.submissions, deployment.to_string()));
        while let Some((n, _)) = self.order.front() {
            if n + OVERLAY_SPAN >= self.submissions {
                break;
            }
            if let Some((n, d)) = self.order.pop_front()
                && self.active.get(&d).is_some_and(|(set_at, _)| *set_at == n)
            {
                self.active.remove(&d);
            }
        }
    }

    /// The store is the truth for this deployment again (its newest write is durable).
    pub fn forget(&mut self, deployment: &str) {
        self.active.remove(deployment);
    }

    pub fn clear(&mut self) {
        self.active.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

pub type Lane = Arc<tokio::sync::Mutex<Overlay>>;

/// The lanes of every cluster Central has seen since it started.
#[derive(Debug, Default)]
pub struct Lanes {
    by_cluster: std::sync::Mutex<HashMap<String, Lane>>,
}

impl Lanes {
    pub fn lane(&self, cluster: &str) -> Lane {
        let mut map = self
            .by_cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(cluster.to_string()).or_default())
    }
}
