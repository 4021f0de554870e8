//! Rampart Central: where every cluster's deployments, policies and alerts meet.
//!
//! ```text
//!  Sensors ──mTLS gRPC──▶ ingest ──group commit──▶ store (sled, behind store::Backend)
//!                           │                          ▲
//!                           └─▶ detection/alerts ──────┘◀── HTTP API (axum) ◀── CLI, UI
//! ```
//!

pub mod activity;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod baselines;
pub mod commit;
pub mod core;
pub mod hub;
pub mod images;
pub mod lanes;
pub mod metrics;
pub mod model;
pub mod netbaselines;
pub mod netgraph;
pub mod netpolicies;
pub mod orders;
pub mod pki;
pub mod policies;
pub mod reassess;
pub mod risk;
pub mod runtime;
pub mod search;
pub mod server;
pub mod store;
pub mod tls;
pub mod ui;
