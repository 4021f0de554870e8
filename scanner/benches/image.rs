//! The image pipeline's hot path once the blobs are local: applying a gzipped layer (gunzip,
//! tar walk, hashing for the diff_id, keeping the files analysis wants), reading the inventory
//! off the rebuilt filesystem, and loading PyPA's advisories from their YAML files and from the
//! vulnerability store.
//!
//! The layer is built from this machine: `/var/lib/dpkg/status` plus every file under the
//! Python standard library directory (thousands of real files of real sizes), and the Python
//! packages' metadata the interpreter has installed.
//!
//! `cargo bench -p rampart-scanner --bench image`

use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_scanner::analyze;
use rampart_scanner::layers::{Compression, Filesystem, Limits};
use rampart_scanner::vulndb::VulnDb;

fn add_tree(b: &mut tar::Builder<Vec<u8>>, dir: &Path, prefix: &str, files: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            add_tree(b, &path, &name, files);
        } else if meta.is_file() {
            let Ok(body) = std::fs::read(&path) else {
                continue;
            };
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            // Real modes: executables (scripts, .so files) are read for Go build information.
            h.set_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()));
            b.append_data(&mut h, &name, &body[..]).expect("append");
            *files += 1;
        }
    }
}

fn python_dirs() -> Vec<std::path::PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig,site;print(sysconfig.get_paths()['stdlib']);print('\\n'.join(site.getsitepackages()))",
        ])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_dir())
        .collect()
}

fn image(c: &mut Criterion) {
    let mut b = tar::Builder::new(Vec::new());
    let status = std::fs::read("/var/lib/dpkg/status").expect("dpkg status");
    let mut h = tar::Header::new_gnu();
    h.set_size(status.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "var/lib/dpkg/status", &status[..])
        .expect("append");
    let mut files = 1;
    for (i, dir) in python_dirs().iter().enumerate() {
        add_tree(&mut b, dir, &format!("usr/lib/python-{i}"), &mut files);
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    let gz = gz.finish().expect("gzip");
    eprintln!(
        "layer: {files} files, {} bytes uncompressed, {} gzipped",
        tar.len(),
        gz.len()
    );
    let limits = Limits::default();

    let mut group = c.benchmark_group("image");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(tar.len() as u64));
    group.bench_function(format!("apply_gzip_layer_{files}_files"), |bench| {
        bench.iter(|| {
            let mut fs = Filesystem::new();
            fs.apply(
                &gz[..],
                Compression::Gzip,
                None,
                &analyze::Analyzers,
                &limits,
            )
            .expect("apply");
            black_box(fs.len())
        })
    });
    group.bench_function(format!("apply_plain_layer_{files}_files"), |bench| {
        bench.iter(|| {
            let mut fs = Filesystem::new();
            fs.apply(
                &tar[..],
                Compression::None,
                None,
                &analyze::Analyzers,
                &limits,
            )
            .expect("apply");
            black_box(fs.len())
        })
    });
    let mut fs = Filesystem::new();
    fs.apply(
        &tar[..],
        Compression::None,
        None,
        &analyze::Analyzers,
        &limits,
    )
    .expect("apply");
    let packages = analyze::inventory(&fs).packages.len();
    group.throughput(Throughput::Elements(packages as u64));
    group.bench_function(format!("inventory_{packages}_packages"), |bench| {
        bench.iter(|| black_box(analyze::inventory(&fs).packages.len()))
    });
    let pypa = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/osv-pypa/vulns");
    let records = VulnDb::new().load_path(&pypa).expect("load").osv_records;
    group.throughput(Throughput::Elements(records as u64));
    group.bench_function(format!("load_pypa_{records}_yaml_records"), |bench| {
        bench.iter(|| {
            let mut db = VulnDb::new();
            black_box(db.load_path(&pypa).expect("load").osv_records)
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rampart_scanner::store::Store::open(dir.path()).expect("store");
    store.import(&pypa).expect("import");
    group.bench_function(format!("store_load_pypa_{records}_records"), |bench| {
        bench.iter(|| black_box(store.load().expect("load").osv.len()))
    });
    group.finish();
}

criterion_group!(benches, image);
criterion_main!(benches);
