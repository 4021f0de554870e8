//! The webhook's per-request work without the network: decode a realistic AdmissionReview (an
//! UPDATE of a Deployment with managedFields, status and oldObject, ~9 KB) and decide it against
//! every default deploy-time policy enforced. The HTTPS load benchmark (fixed request rates,
//! latency histogram, no-op ceiling) is `admission_load`.
use std::hint::black_box;

mod common;

use common::{all_enforced, typical_review};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_admission::decide::{Inputs, Settings, validate};
use rampart_admission::resources::Resources;
use rampart_admission::review;
use rampart_policy::{Deployment, EvalContext, Outcome, WorkloadKind, evaluate};

fn decide(c: &mut Criterion) {
    let policies = all_enforced();
    let body = typical_review();
    let settings = Settings::default();
    let resources = Resources::default();
    let mut group = c.benchmark_group("admission");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        format!(
            "decode_and_decide_{}_bytes_{}_policies_evaluated_of_{}_enforced",
            body.len(),
            policies.image_from,
            policies.deploy.len()
        ),
        |b| {
            // As in the server: the review's unscanned image is asked for once a minute.
            let scan_wants = rampart_admission::scan_wants::ScanWants::default();
            b.iter(|| {
                let (version, mut req) = review::decode(black_box(&body)).expect("review");
                let d = validate(
                    &mut req,
                    Inputs {
                        settings: &settings,
                        policies: Some(&policies),
                        resources: &resources,
                        now_unix_ms: 0,
                        scan_wants: Some(&scan_wants),
                    },
                );
                black_box(review::encode(&version, &req.uid, &d.answer))
            })
        },
    );
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            black_box(
                review::decode(black_box(&body))
                    .expect("review")
                    .1
                    .uid
                    .len(),
            )
        })
    });
    // The whole handler past HTTP: decision, metrics, alert queue, answer.
    let state = rampart_admission::State::new(
        Settings::default(),
        std::sync::Arc::new(rampart_admission::metrics::Metrics::new()),
        4 << 20,
        std::time::Duration::from_secs(5),
        10_000,
    );
    state.set_policies(all_enforced());
    group.bench_function("state_review", |b| {
        b.iter(|| {
            black_box(state.review(
                rampart_admission::server::Endpoint::Validate,
                black_box(&body),
            ))
        })
    });
    // The stages of a decision, to see where its time goes.
    let parsed: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let object = parsed["request"]["object"].to_string();
    let object = object.as_str();
    let decode_workload = || {
        let mut de = serde_json::Deserializer::from_str(object);
        rampart_policy::manifest::decode_workload(WorkloadKind::Deployment, &mut de)
            .expect("workload")
    };
    // The object alone: the fast decoder the controller uses, and serde, the reference.
    group.bench_function("stage_decode_workload", |b| {
        b.iter(|| {
            let mut s = rampart_admission::scan::Scanner::new(black_box(object));
            black_box(
                rampart_policy::workload::decode_workload_json(WorkloadKind::Deployment, &mut s)
                    .expect("workload"),
            )
        })
    });
    group.bench_function("stage_decode_workload_serde", |b| {
        b.iter(|| black_box(decode_workload()))
    });
    // Passing over a value unread, as `oldObject` is.
    group.bench_function(format!("stage_skip_{}_bytes", object.len()), |b| {
        b.iter(|| {
            let mut s = rampart_admission::scan::Scanner::new(black_box(object));
            black_box(s.value().expect("value").len())
        })
    });
    let workload = decode_workload();
    group.bench_function("stage_normalize", |b| {
        b.iter(|| black_box(Deployment::from_workload(black_box(&workload), "shop")))
    });
    let deployment = Deployment::from_workload(&workload, "shop");
    let ctx = EvalContext {
        cluster: Some("prod"),
        ..EvalContext::default()
    };
    // What a workload without image findings is evaluated by.
    let evaluated = &policies.deploy[..policies.image_from];
    let violated = evaluated
        .iter()
        .filter(|p| matches!(evaluate(p, &deployment, &ctx), Outcome::Violated(_)))
        .count();
    group.bench_function(format!("stage_evaluate_{violated}_violated"), |b| {
        b.iter(|| {
            evaluated
                .iter()
                .filter(|p| {
                    matches!(
                        evaluate(p, black_box(&deployment), &ctx),
                        Outcome::Violated(_)
                    )
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
