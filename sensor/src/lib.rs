//! The Sensor: one per cluster. It watches the Kubernetes API, keeps a pure in-memory
//! [`index::Index`] of what it saw, and streams the changes to Central over mTLS.
//!
//! ```text
//!   kube-rs watchers ──▶ Index (owner roll-up, exposure, RBAC, NetworkPolicy coverage)
//!                          │ dirty entries, deduplicated by content hash
//!                          ▼
//!                    Central stream (hello, sync, synced marker, changes, acks)
//! ```

pub mod index;
