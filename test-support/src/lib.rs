//! What Rampart's tests and demos share. No real Kubernetes API server can run on the machines
//! that build Rampart, so [`apiserver`] is one: it speaks the real list/watch protocol over HTTPS,
//! and kube-rs (the Sensor's client) runs against it unchanged, from a kubeconfig.
//! [`demo`] seeds it with a small realistic cluster for `rampart up --demo`.

pub mod apiserver;
pub mod demo;
mod patch;

pub use apiserver::{ApiServer, Error};

/// Polls `check` until it returns `Some`, or panics after `deadline` (tests wait for outcomes
/// this way instead of sleeping).
pub fn eventually<T>(
    what: &str,
    deadline: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
