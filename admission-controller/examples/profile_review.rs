//! The whole handler past HTTP (`State::review`) on the benchmarks' typical review, N times, for
//! an instruction profiler — the numbers in docs/benchmarks.md come from:
//!
//! ```text
//! cargo build --release -p rampart-admission --example profile_review
//! valgrind --tool=callgrind '--toggle-collect=*State*review*' \
//!     target/release/examples/profile_review 300
//! ```
//!
//! With `0` it prints the answer once instead; with `--log` each denial is also logged as the
//! binary logs it (into `/dev/null`, no log budget), to count the line's cost; with
//! `--compliant` the review is the allowed CREATE of the compliant Deployment instead, with
//! `--pod` a pod's CREATE by its ReplicaSet; with `--warned` no policy is enforced and every
//! default deploy-time policy warns instead.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use rampart_admission::server::Endpoint;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let log = std::env::args().any(|a| a == "--log");
    let n: usize = match std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse())
    {
        None => 300,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: profile_review [ITERATIONS]: {e}");
            std::process::exit(2);
        }
    };
    let body = if std::env::args().any(|a| a == "--compliant") {
        common::compliant_create_review()
    } else if std::env::args().any(|a| a == "--pod") {
        common::pod_create_review()
    } else {
        common::typical_review()
    };
    let mut state = rampart_admission::State::new(
        rampart_admission::decide::Settings::default(),
        std::sync::Arc::new(rampart_admission::metrics::Metrics::new()),
        4 << 20,
        std::time::Duration::from_secs(5),
        10_000,
    );
    if log {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::sync::Arc::new(null))
            .with_ansi(false)
            .init();
        state.log_budget = rampart_admission::log_budget::LogBudget::new(0);
    }
    state.set_policies(if std::env::args().any(|a| a == "--warned") {
        common::all_warned()
    } else {
        common::all_enforced()
    });
    if n == 0 {
        let (status, answer) = state.review(Endpoint::Validate, &body);
        println!("{status} {}", String::from_utf8_lossy(&answer));
        return;
    }
    for _ in 0..n {
        black_box(state.review(Endpoint::Validate, black_box(&body)));
    }
}
