//! What each enforced default policy costs on the benchmarks' typical Deployment (the one the
//! denied UPDATE carries), most expensive first; `V` marks the policies it violates, whose
//! violations' texts are built too. Warm, each policy timed over 20,000 evaluations:
//!
//! ```text
//! cargo run --release -p rampart-admission --example policy_costs
//! ONLY="Secret Mounted" valgrind --tool=callgrind '--toggle-collect=*engine*violations*' \
//!     target/release/examples/policy_costs
//! ```
//!
//! With `ONLY=<name prefix>`, only the policies so named are evaluated, 300 times each, for an
//! instruction profiler.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use rampart_policy::engine::violations;
use rampart_policy::{Deployment, EvalContext, WorkloadKind};

fn main() {
    let set = common::all_enforced();
    let object = common::typical_object();
    let workload = rampart_policy::workload::decode_workload(WorkloadKind::Deployment, &object)
        .expect("the typical Deployment decodes");
    let deployment = Deployment::from_owned(workload, "shop");
    let ctx = EvalContext {
        cluster: Some("prod"),
        ..EvalContext::default()
    };
    let only = std::env::var("ONLY").ok();
    let mut rows = Vec::new();
    for p in &set.deploy[..set.image_from] {
        if only
            .as_ref()
            .is_some_and(|o| !p.policy.name.starts_with(o.as_str()))
        {
            continue;
        }
        let n = if only.is_some() { 300 } else { 20_000 };
        let started = std::time::Instant::now();
        for _ in 0..n {
            black_box(violations(black_box(p), black_box(&deployment), &ctx));
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(n);
        let violated = violations(p, &deployment, &ctx).is_some();
        rows.push((ns, p.policy.name.clone(), violated));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = rows.iter().map(|r| r.0).sum();
    println!("{total:.0} ns for {} policies", rows.len());
    for (ns, name, violated) in rows {
        println!("{ns:7.0} ns {} {name}", if violated { "V" } else { " " });
    }
}
