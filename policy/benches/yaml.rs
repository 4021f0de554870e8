//! Why Rampart parses YAML the way it does: the candidates, measured on one typical
//! ~4.8 KB Deployment (`fixtures/typical-deployment.yaml`) deserialized into k8s-openapi types.
//! `rampart_saphyr_parser_composer` is what Rampart ships (see `src/yaml.rs`).
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::Deployment;
use std::hint::black_box;

const YAML: &str = include_str!("fixtures/typical-deployment.yaml");

fn yaml_parsers(c: &mut Criterion) {
    let json = serde_json::to_string(
        &serde_yaml_ng::from_str::<Deployment>(YAML).expect("fixture is valid"),
    )
    .expect("serializes");
    let mut group = c.benchmark_group("parse_deployment");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rampart_saphyr_parser_composer", |b| {
        b.iter(|| {
            let parsed = rampart_policy::manifest::parse_text(black_box(YAML));
            assert_eq!(parsed.objects.len(), 1);
            parsed
        })
    });
    group.bench_function("serde_saphyr", |b| {
        b.iter(|| serde_saphyr::from_str::<Deployment>(black_box(YAML)).expect("parses"))
    });
    group.bench_function("serde_saphyr_via_json_value", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_saphyr::from_str(black_box(YAML)).expect("parses");
            serde_json::from_value::<Deployment>(v).expect("converts")
        })
    });
    group.bench_function("serde_yaml_ng_stale_fork", |b| {
        b.iter(|| serde_yaml_ng::from_str::<Deployment>(black_box(YAML)).expect("parses"))
    });
    group.bench_function("json_fast_path", |b| {
        b.iter(|| serde_json::from_str::<Deployment>(black_box(&json)).expect("parses"))
    });
    group.finish();
}

criterion_group!(benches, yaml_parsers);
criterion_main!(benches);
