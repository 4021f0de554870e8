//! What Rampart's tests share. No real Kubernetes API server can run on the machines that build
//! Rampart, so [`apiserver`] is one: it speaks the real list/watch protocol over HTTPS, and
//! kube-rs (the Sensor's client) runs against it unchanged, from a kubeconfig.

pub mod apiserver;
mod patch;

pub use apiserver::{ApiServer, Error};

/// Polls `check` until it returns `Some`, or panics after `deadline` (tests wait for outcomes
/// this way instead of sleeping a fixed time).
pub async fn eventually<T>(
    what: &str,
    deadline: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
