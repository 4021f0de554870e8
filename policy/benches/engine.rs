//! Hot path of every component: all enabled default deploy-time policies against one typical
//! deployment. Criterion reports the mean per iteration; the median and p99 per deployment in
//! `docs/benchmarks.md` come from `engine_latency_percentiles` below, which times single
//! evaluations.
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_policy::compile::compile;
use rampart_policy::defaults::default_policies;
use rampart_policy::manifest::{ObjectBody, parse_text};
use rampart_policy::{Deployment, EvalContext, LifecycleStage, evaluate};

fn typical_deployment() -> Deployment {
    let parsed = parse_text(include_str!("fixtures/typical-deployment.yaml"));
    match &parsed.objects[0].body {
        ObjectBody::Workload(w) => Deployment::from_workload(w, "default"),
        _ => panic!("fixture is a workload"),
    }
}

fn engine(c: &mut Criterion) {
    let policies: Vec<_> = default_policies()
        .into_iter()
        .filter(|p| !p.disabled && p.has_stage(LifecycleStage::Deploy))
        .map(|p| compile(&p).expect("default policies compile"))
        .collect();
    let deployment = typical_deployment();
    let ctx = EvalContext::default();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        format!(
            "all_{}_enabled_deploy_policies_one_deployment",
            policies.len()
        ),
        |b| {
            b.iter(|| {
                for p in &policies {
                    black_box(evaluate(p, black_box(&deployment), &ctx));
                }
            })
        },
    );
    group.bench_function("normalize_typical_deployment", |b| {
        let parsed = parse_text(include_str!("fixtures/typical-deployment.yaml"));
        let ObjectBody::Workload(w) = &parsed.objects[0].body else {
            panic!("workload")
        };
        b.iter(|| Deployment::from_workload(black_box(w), "default"))
    });
    group.finish();

    // Per-deployment latency distribution (the admission webhook's budget is per request).
    let mut samples: Vec<u128> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            for p in &policies {
                black_box(evaluate(p, black_box(&deployment), &ctx));
            }
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let pct = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "engine_latency_percentiles: {} policies, median {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs per deployment",
        policies.len(),
        pct(0.5) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        pct(0.999) as f64 / 1000.0
    );
}

criterion_group!(benches, engine);
criterion_main!(benches);
