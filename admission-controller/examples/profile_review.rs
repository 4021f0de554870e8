//! The whole handler past HTTP (`State::review`) on the benchmarks' typical review, N times, for
//! an instruction profiler — the numbers in docs/benchmarks.md come from:
//!
//! ```text
//! cargo build --release -p rampart-admission --example profile_review
//! valgrind --tool=callgrind '--toggle-collect=*State*review*' \
//!     target/release/examples/profile_review 300
//! ```
//!
//! With `0` it prints the answer once instead.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use rampart_admission::server::Endpoint;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 300,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: profile_review [ITERATIONS]: {e}");
            std::process::exit(2);
        }
    };
    let body = common::typical_review();
    let state = rampart_admission::State::new(
        rampart_admission::decide::Settings::default(),
        std::sync::Arc::new(rampart_admission::metrics::Metrics::new()),
        4 << 20,
        std::time::Duration::from_secs(5),
        10_000,
    );
    state.set_policies(common::all_enforced());
    if n == 0 {
        let (status, answer) = state.review(Endpoint::Validate, &body);
        println!("{status} {}", String::from_utf8_lossy(&answer));
        return;
    }
    for _ in 0..n {
        black_box(state.review(Endpoint::Validate, black_box(&body)));
    }
}
