//! A whole scan of a ~400-package Debian image through a real registry (Debian's
//! `docker-registry` on loopback), with the vulnerability data already in memory ("warm DB"):
//! pull (every blob's digest checked), apply the layer, read the packages, match.
//!
//! The image is built from this machine: the first 400 installed dpkg packages by name (those
//! under 20 MB installed, so no toolchain or SDK of hundreds of MB), every
//! regular file each of them installed (real content, real sizes, real modes), their stanzas
//! of `/var/lib/dpkg/status`, and `/etc/os-release`. Matched against PyPA's advisories and
//! Alpine's secdb from `../shared/data`.
//!
//! `cargo bench -p rampart-scanner --bench scan` (needs /usr/bin/docker-registry)

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use oci_client::client::ImageLayer;
use oci_client::secrets::RegistryAuth;
use rampart_scanner::image;
use rampart_scanner::layers::Limits;
use rampart_scanner::registry::{Credentials, PullOptions};
use rampart_scanner::report::Matcher;
use rampart_scanner::vulndb::VulnDb;
use rampart_test_support::registry::{Registry, layer_with_modes, push};

const PACKAGES: usize = 400;
const RUNS: usize = 7;

/// The stanzas of installed packages in `status`, by package name.
fn installed_stanzas(status: &str) -> Vec<(String, String)> {
    status
        .split("\n\n")
        .filter(|s| s.contains("Status: install ok installed"))
        .filter_map(|s| {
            let name = s.lines().find_map(|l| l.strip_prefix("Package: "))?;
            Some((name.to_string(), format!("{}\n", s.trim_end())))
        })
        .collect()
}

fn package_files(package: &str) -> Vec<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-L", package])
        .output()
        .expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn build_layer() -> (ImageLayer, usize, usize, u64) {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("dpkg status");
    let mut stanzas = installed_stanzas(&status);
    stanzas.sort();
    // This machine also carries toolchains and SDKs of hundreds of MB each (LLVM, a JDK, a
    // cloud CLI), which no 400-package application image holds: packages over 20 MB are left
    // out, which gives an image of about 470 MB.
    stanzas.retain(|(_, s)| {
        s.lines()
            .find_map(|l| l.strip_prefix("Installed-Size: "))
            .and_then(|k| k.trim().parse::<u64>().ok())
            .is_some_and(|kib| kib < 20_000)
    });
    stanzas.truncate(PACKAGES);
    let packages = stanzas.len();
    let mut seen = BTreeSet::new();
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let mut bytes = 0u64;
    for (name, _) in &stanzas {
        for path in package_files(name) {
            let p = Path::new(&path);
            let Ok(meta) = std::fs::symlink_metadata(p) else {
                continue;
            };
            if !meta.is_file() || !seen.insert(path.clone()) {
                continue;
            }
            let Ok(body) = std::fs::read(p) else { continue };
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            bytes += body.len() as u64;
            entries.push((path.trim_start_matches('/').to_string(), body, mode));
        }
    }
    let files = entries.len();
    let status: String = stanzas.iter().map(|(_, s)| format!("{s}\n")).collect();
    entries.push(("var/lib/dpkg/status".into(), status.into_bytes(), 0o644));
    let os = std::fs::read("/etc/os-release").expect("os-release");
    entries.push(("etc/os-release".into(), os, 0o644));
    let refs: Vec<(&str, Vec<u8>, u32)> = entries
        .iter()
        .map(|(p, b, m)| (p.as_str(), b.clone(), *m))
        .collect();
    (layer_with_modes(&refs), packages, files, bytes)
}

fn data(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(dir)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    rampart_test_support::registry::install_crypto();
    let (layer, packages, files, bytes) = build_layer();
    let gz_len = layer.data.len();
    let registry = Registry::start(&[]);
    let reference = format!("{}/bench/debian:400", registry.host);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[layer],
        "amd64",
    ));

    let started = Instant::now();
    let mut db = VulnDb::new();
    db.load_path(&data("osv-pypa/vulns")).expect("pypa");
    db.load_path(&data("alpine-secdb")).expect("secdb");
    let load = started.elapsed();
    let started = Instant::now();
    let matcher = Matcher::new(&db);
    let prepare = started.elapsed();

    let cache = tempfile::tempdir().expect("cache");
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut pulls = Vec::new();
    let mut analyses = Vec::new();
    let mut matches = Vec::new();
    let mut components = 0;
    for run in 0..RUNS {
        for cached in [false, true] {
            let work = tempfile::tempdir().expect("work");
            let options = PullOptions {
                insecure: vec![registry.host.clone()],
                cache_dir: cached.then(|| cache.path().to_path_buf()),
                ..PullOptions::default()
            };
            let t0 = Instant::now();
            let pulled = runtime
                .block_on(rampart_scanner::registry::pull(
                    &reference,
                    &Credentials::default(),
                    &options,
                    work.path(),
                ))
                .expect("pull");
            let t1 = Instant::now();
            let facts = image::facts_of_pulled(&pulled, &Limits::default()).expect("facts");
            let t2 = Instant::now();
            let scan = image::assemble(&facts, &matcher);
            let t3 = Instant::now();
            components = scan.summary.components;
            // The first cached run fills the cache; it is not a warm run.
            if cached && run > 0 {
                warm.push(t3 - t0);
            } else if !cached {
                cold.push(t3 - t0);
                pulls.push(t1 - t0);
                analyses.push(t2 - t1);
                matches.push(t3 - t2);
            }
        }
    }
    println!(
        "image: {packages} dpkg packages, {files} files, {:.1} MB uncompressed, {:.1} MB gzipped; {components} components read",
        bytes as f64 / 1e6,
        gz_len as f64 / 1e6
    );
    println!(
        "vulnerability data: {} OSV records, {} Alpine branches; loaded from files in {}, matcher prepared in {}",
        db.osv.len(),
        db.secdb.len(),
        ms(load),
        ms(prepare)
    );
    println!("| stage (median of {RUNS}) | time |");
    println!("|---|---|");
    println!("| whole scan, layer downloaded | {} |", ms(median(cold)));
    println!(
        "| whole scan, layer cached by digest | {} |",
        ms(median(warm))
    );
    println!(
        "| pull (manifest, config, layer; digests checked) | {} |",
        ms(median(pulls))
    );
    println!(
        "| apply the layer and read the packages | {} |",
        ms(median(analyses))
    );
    println!(
        "| match {components} components | {} |",
        ms(median(matches))
    );
}
