//! Rampart Central: where every cluster's deployments, policies and alerts meet.
//!
//! ```text
//!  Sensors ──mTLS gRPC──▶ ingest ──group commit──▶ store (sled, behind store::Backend)
//!                           │                          ▲
//!                           └─▶ detection/alerts ──────┘◀── HTTP API (axum) ◀── CLI, UI
//! ```
//!
//! Built so far: the store. The stream service, PKI, API and auth follow.

pub mod alerts;
pub mod commit;
pub mod detect;
pub mod hub;
pub mod model;
pub mod pki;
pub mod runtime;
pub mod server;
pub mod store;
pub mod tls;
