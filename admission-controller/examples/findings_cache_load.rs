//! How long a controller's start takes to read Central's image findings back from its disk
//! (`findings_cache.rs`): N images of a Debian-sized inventory (400 packages, a tenth of them
//! with two vulnerabilities), written once, then read into a cluster view.
//!
//! ```text
//! cargo run --release -p rampart-admission --example findings_cache_load [IMAGES]
//! ```

use std::time::Instant;

use rampart_admission::findings_cache::FindingsCache;
use rampart_admission::resources::Resources;
use rampart_policy::image_data::{ImageComponent, ImageData, ImageVuln, VulnSeverity};
use rampart_proto::v1::ImageFindings;

fn main() {
    let images: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = FindingsCache::new(dir.path());
    let data = ImageData {
        scanned: true,
        os: "debian:12".into(),
        components: (0..400)
            .map(|i| ImageComponent {
                name: format!("package-{i}"),
                version: format!("1.{i}.0-1+deb12u1"),
                vulns: if i % 10 == 0 {
                    (0..2)
                        .map(|v| ImageVuln {
                            cve: format!("CVE-2024-{:05}", i * 10 + v),
                            cvss: Some(7.5),
                            severity: VulnSeverity::Important,
                            fixed_by: Some(format!("1.{i}.1-1")),
                            published: Some(1_700_000_000),
                            fix_available: None,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect(),
        ..ImageData::default()
    };
    let json = serde_json::to_vec(&data).expect("json");
    let started = Instant::now();
    for i in 0..images {
        cache
            .store(&ImageFindings {
                reference: format!("registry.example.com/team-{}/app-{i}:1.0.{i}", i % 40),
                image_data_json: json.clone(),
            })
            .expect("stored");
    }
    let written = started.elapsed();
    let started = Instant::now();
    let mut view = Resources::default();
    let loaded = FindingsCache::new(dir.path()).load_into(&mut view);
    let read = started.elapsed();
    println!(
        "{images} images of {} bytes of findings each ({} MB on disk): written in {written:.2?}, read back into the view in {read:.2?} ({} held, {} skipped)",
        json.len(),
        cache.bytes() / 1_000_000,
        loaded.images,
        loaded.skipped.len()
    );
}
