//! Importing a 100,000-record OSV corpus into the vulnerability store, and what follows from
//! it: the store's size on disk, loading it back, and preparing the matcher (every advisory's
//! versions parsed once).
//!
//! The corpus is PyPA's real advisories (`../shared/data/osv-pypa`, 2,661 records) written
//! out again under new ids until there are 100,000, as one JSON array per ecosystem dump —
//! the shape `rampart vulndb import` reads from osv.dev's zips. Record contents (ranges,
//! listed versions, CVSS vectors, references) are real; only ids and package names repeat.
//!
//! `cargo bench -p rampart-scanner --bench vulndb_import`

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_scanner::report::Matcher;
use rampart_scanner::store::Store;

const RECORDS: usize = 100_000;
const RUNS: usize = 3;

fn records() -> Vec<serde_json::Value> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
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
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read");
            let doc = rampart_policy::yaml::split_documents(&text)
                .into_iter()
                .next()
                .expect("doc");
            rampart_policy::yaml::parse_document(doc).expect("yaml")
        })
        .collect()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    let base = records();
    let corpus: Vec<serde_json::Value> = (0..RECORDS)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            let copy = i / base.len();
            if copy > 0 {
                let id = r["id"].as_str().unwrap_or("PYSEC").to_string();
                r["id"] = format!("{id}-c{copy}").into();
            }
            r
        })
        .collect();
    let scratch = tempfile::tempdir().expect("tempdir");
    let file = scratch.path().join("all.json");
    std::fs::write(&file, serde_json::to_vec(&corpus).expect("json")).expect("write");
    let file_bytes = std::fs::metadata(&file).expect("meta").len();
    drop(corpus);

    let mut imports = Vec::new();
    let mut loads = Vec::new();
    let mut prepares = Vec::new();
    let mut size = 0;
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("store dir");
        let store = Store::open(dir.path()).expect("store");
        let t0 = Instant::now();
        let stats = store.import(&file).expect("import");
        imports.push(t0.elapsed());
        assert_eq!(stats.osv_records, RECORDS);
        let t1 = Instant::now();
        let db = store.load().expect("load");
        loads.push(t1.elapsed());
        let t2 = Instant::now();
        let matcher = Matcher::new(&db);
        prepares.push(t2.elapsed());
        drop(matcher);
        drop(store);
        size = dir_size(dir.path());
    }
    println!(
        "corpus: {RECORDS} OSV records, one JSON array of {:.0} MB",
        file_bytes as f64 / 1e6
    );
    println!("| step (median of {RUNS}) | time | rate |");
    println!("|---|---|---|");
    let rate = |d: Duration| format!("{:.0} records/s", RECORDS as f64 / d.as_secs_f64());
    let import = median(imports);
    let load = median(loads);
    let prepare = median(prepares);
    println!(
        "| import into the store (parse, compare `modified`, insert, flush) | {} | {} |",
        secs(import),
        rate(import)
    );
    println!(
        "| load the store into memory | {} | {} |",
        secs(load),
        rate(load)
    );
    println!(
        "| prepare the matcher (index, versions parsed, scores) | {} | {} |",
        secs(prepare),
        rate(prepare)
    );
    println!("store on disk: {:.0} MB", size as f64 / 1e6);
}
