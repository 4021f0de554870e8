//! Enforcement orders from Central to a cluster's Sensor: routed to the cluster's live stream
//! (an order is about the cluster as it is now, so it is not queued for a Sensor that is away —
//! the caller learns at once and can retry).

use std::collections::{HashMap, VecDeque};

use rampart_proto::v1::EnforcementOrder;
use tokio::sync::mpsc;

/// Orders queued per stream.
pub const ORDER_QUEUE: usize = 64;
/// Orders remembered (order id → alert id) to match reports.
const REMEMBERED: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OrderError {
    #[error("the Sensor of cluster '{0}' is not connected")]
    NotConnected(String),
    #[error("the Sensor of cluster '{0}' has too many orders queued; retry")]
    Busy(String),
}

#[derive(Debug, Default)]
pub struct OrderRouter {
    inner: std::sync::Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, (u64, mpsc::Sender<EnforcementOrder>)>,
    alerts: HashMap<String, String>,
    sent: VecDeque<String>,
}

impl OrderRouter {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A stream of `cluster` started; orders go to it until it ends.
    pub fn register(&self, cluster: &str, session: u64) -> mpsc::Receiver<EnforcementOrder> {
        let (tx, rx) = mpsc::channel(ORDER_QUEUE);
        self.inner()
            .sessions
            .insert(cluster.to_string(), (session, tx));
        rx
    }

    pub fn unregister(&self, cluster: &str, session: u64) {
        let mut inner = self.inner();
        if inner
            .sessions
            .get(cluster)
            .is_some_and(|(s, _)| *s == session)
        {
            inner.sessions.remove(cluster);
        }
    }

    pub fn send(&self, cluster: &str, order: EnforcementOrder) -> Result<(), OrderError> {
        let mut inner = self.inner();
        let Some((_, tx)) = inner.sessions.get(cluster) else {
            return Err(OrderError::NotConnected(cluster.to_string()));
        };
        let id = order.order_id.clone();
        let alert = order.alert_id.clone();
        tx.try_send(order).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => OrderError::Busy(cluster.to_string()),
            mpsc::error::TrySendError::Closed(_) => OrderError::NotConnected(cluster.to_string()),
        })?;
        inner.alerts.insert(id.clone(), alert);
        inner.sent.push_back(id);
        while inner.sent.len() > REMEMBERED {
            if let Some(old) = inner.sent.pop_front() {
                inner.alerts.remove(&old);
            }
        }
        Ok(())
    }

    /// The alert an order was about.
    pub fn alert_of(&self, order_id: &str) -> Option<String> {
        self.inner().alerts.get(order_id).cloned()
    }
}
