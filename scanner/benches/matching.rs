//! The scanner's inner loops: ordering versions (dpkg over this machine's installed packages,
//! PEP 440 over PyPA's listed versions) and matching components against advisories (every
//! PyPA record for a package, for each of its listed versions).
//!
//! `cargo bench -p rampart-scanner --bench matching`

use std::cmp::Ordering;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_scanner::osv::{Index, Record};
use rampart_scanner::{Ecosystem, compare};

fn records() -> Vec<Record> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("data") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/osv-pypa/vulns"),
        &mut files,
    );
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read");
            let doc = rampart_policy::yaml::split_documents(&text)
                .into_iter()
                .next()
                .expect("doc");
            serde_json::from_value(rampart_policy::yaml::parse_document(doc).expect("yaml"))
                .expect("record")
        })
        .collect()
}

fn matching(c: &mut Criterion) {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("dpkg status");
    let debs: Vec<String> = rampart_scanner::packages::dpkg_status(&status)
        .into_iter()
        .map(|c| c.version)
        .collect();
    let records = records();
    let index = Index::new(&records);
    // Components: each package at each version its advisories list (real versions).
    let mut components: Vec<(String, String)> = Vec::new();
    for r in &records {
        for a in &r.affected {
            for v in a.versions.iter().step_by(7) {
                components.push((a.package.name.to_ascii_lowercase(), v.clone()));
            }
        }
    }
    components.truncate(20_000);
    let pep: Vec<&str> = components.iter().map(|(_, v)| v.as_str()).collect();

    let mut group = c.benchmark_group("scanner");
    group.throughput(Throughput::Elements(debs.len() as u64 - 1));
    group.bench_function(format!("dpkg_compare_{}_neighbours", debs.len() - 1), |b| {
        b.iter(|| {
            debs.windows(2)
                .filter(|w| compare(Ecosystem::Debian, &w[0], &w[1]) == Ok(Ordering::Less))
                .count()
        })
    });
    group.throughput(Throughput::Elements(pep.len() as u64 - 1));
    group.bench_function(
        format!("pep440_compare_{}_neighbours", pep.len() - 1),
        |b| {
            b.iter(|| {
                pep.windows(2)
                    .filter(|w| compare(Ecosystem::PyPI, w[0], w[1]) == Ok(Ordering::Less))
                    .count()
            })
        },
    );
    group.throughput(Throughput::Elements(components.len() as u64));
    group.bench_function(
        format!(
            "match_{}_components_against_{}_advisories",
            components.len(),
            records.len()
        ),
        |b| {
            b.iter(|| {
                let mut hits = 0usize;
                for (name, version) in &components {
                    if let Ok(found) = index.matches(Ecosystem::PyPI, name, black_box(version)) {
                        hits += found.len();
                    }
                }
                hits
            })
        },
    );
    group.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
