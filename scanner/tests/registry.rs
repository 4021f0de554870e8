//! Image scanning against a real registry: Debian's `docker-registry` (the distribution
//! registry, installed by the test command) started on loopback per test, images pushed by the
//! test itself from real package databases — this machine's `/var/lib/dpkg/status`, Python
//! packages installed with `pip install --target`, an apk database of packages Alpine's secdb
//! names — then pulled, unpacked and matched against the real advisories in `../shared/data`.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_client::manifest::OciImageIndex;
use oci_client::secrets::RegistryAuth;
use rampart_scanner::image::{self, ImageScan, ScanError};
use rampart_scanner::layers::{Limits, sha256_digest};
use rampart_scanner::registry::{Credentials, PullError, PullLimits, PullOptions};
use rampart_scanner::vulndb::VulnDb;
use rampart_test_support::registry::{Registry, layer, layer_with_modes, pip_install, push, tree};

fn options(registry: &Registry) -> PullOptions {
    PullOptions {
        insecure: vec![registry.host.clone()],
        ..PullOptions::default()
    }
}

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(dir)
}

fn os_release_debian() -> Vec<u8> {
    std::fs::read("/etc/os-release").expect("this machine's os-release")
}

/// The apk database of real secdb entries: musl 1.1.22-r2 (v3.10 fixed CVE-2019-14697 in
/// r3) and libcrypto1.1 from openssl 1.1.1c-r0 (fixed CVE-2019-1547 and more in 1.1.1d-r0).
fn apk_db() -> Vec<u8> {
    b"C:Q1aaaa=\nP:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n\
C:Q1bbbb=\nP:libcrypto1.1\nV:1.1.1c-r0\nA:x86_64\no:openssl\n\n\
C:Q1cccc=\nP:zlib\nV:1.2.11-r1\nA:x86_64\no:zlib\n\n"
        .to_vec()
}

fn pypa_db() -> VulnDb {
    let mut db = VulnDb::new();
    let stats = db
        .load_path(&data("osv-pypa/vulns"))
        .expect("read osv-pypa");
    assert!(
        stats.rejected.is_empty(),
        "{:?}",
        &stats.rejected[..3.min(stats.rejected.len())]
    );
    assert!(stats.osv_records > 2000, "{stats:?}");
    db
}

fn ids(scan: &ImageScan, package: &str) -> Vec<(String, Option<String>)> {
    scan.components
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case(package))
        .flat_map(|c| &c.vulnerabilities)
        .map(|v| (v.id.clone(), v.fixed_by.clone()))
        .collect()
}

/// Scans `reference` from the test registry (anonymous, plain HTTP, nothing cached) against `db`.
fn scan_from(
    rt: &tokio::runtime::Runtime,
    registry: &Registry,
    reference: &str,
    db: &VulnDb,
) -> Result<ImageScan, ScanError> {
    let work = tempfile::tempdir().expect("work dir");
    rt.block_on(image::scan(
        reference,
        &Credentials::default(),
        &options(registry),
        db,
        work.path(),
        &Limits::default(),
    ))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn debian_image_with_python_packages_is_scanned_against_pypa() {
    let registry = Registry::start(&[]);
    let client = registry.client();
    let py = tempfile::tempdir().expect("tempdir");
    pip_install(py.path(), &["urllib3==1.26.4", "jinja2==2.11.2"]);
    let site = "usr/local/lib/python3.11/site-packages";
    let status = std::fs::read("/var/lib/dpkg/status").expect("this machine's dpkg status");
    let base = layer(&[
        ("etc/os-release", os_release_debian()),
        ("var/lib/dpkg/status", status.clone()),
    ]);
    let python: Vec<(String, Vec<u8>)> = tree(py.path(), site);
    let python_refs: Vec<(&str, Vec<u8>)> = python
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    let python_layer = layer(&python_refs);
    // The top layer deletes Jinja2 again: a whiteout the scan must honour.
    let jinja = python
        .iter()
        .find(|(p, _)| p.contains("Jinja2-2.11.2.dist-info"))
        .and_then(|(p, _)| p.rsplit_once("/Jinja2").map(|(d, _)| d.to_string()))
        .expect("jinja dist-info");
    let whiteout = layer(&[(&format!("{jinja}/.wh.Jinja2-2.11.2.dist-info"), Vec::new())]);
    let reference = format!("{}/apps/web:1.0", registry.host);
    let rt = runtime();
    rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &reference,
        &[base, python_layer, whiteout],
        "amd64",
    ));

    let db = pypa_db();
    let work = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("cache");
    let options = PullOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..options(&registry)
    };
    let scan = rt
        .block_on(image::scan(
            &reference,
            &Credentials::default(),
            &options,
            &db,
            work.path(),
            &Limits::default(),
        ))
        .expect("scan");

    // The dpkg packages are exactly what dpkg-query lists on this machine.
    let dpkg = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status} ${Package}\n"])
        .output()
        .expect("dpkg-query");
    let installed = String::from_utf8_lossy(&dpkg.stdout)
        .lines()
        .filter(|l| l.starts_with("installed "))
        .count();
    let debian = scan
        .components
        .iter()
        .filter(|c| c.ecosystem == "Debian")
        .count();
    assert_eq!(debian, installed);
    assert!(
        scan.os.as_deref().is_some_and(|o| o.contains("Debian")),
        "{:?}",
        scan.os
    );
    // No Debian data was given, and the scan says so instead of reporting "clean".
    assert!(
        scan.notes.iter().any(|n| n.starts_with(&format!(
            "{installed} packages were not matched: no Debian data for Debian:"
        ))),
        "{:?}",
        scan.notes
    );

    // urllib3 1.26.4 has PYSEC-2021-108, shown under its CVE with its aliases merged.
    let urllib3 = ids(&scan, "urllib3");
    assert!(
        urllib3.contains(&("CVE-2021-33503".to_string(), Some("1.26.5".to_string()))),
        "{urllib3:?}"
    );
    let v = scan
        .components
        .iter()
        .find(|c| c.name == "urllib3")
        .and_then(|c| c.vulnerabilities.iter().find(|v| v.id == "CVE-2021-33503"))
        .expect("finding");
    assert!(
        v.aliases.contains(&"PYSEC-2021-108".to_string()),
        "{:?}",
        v.aliases
    );
    assert!(v.aliases.contains(&"GHSA-q2q7-5pp4-w6pg".to_string()));
    // Every urllib3 finding is a PyPA record that matches 1.26.4 on its own.
    for (id, _) in &urllib3 {
        let found = db.osv.iter().any(|r| {
            (r.id == *id || r.aliases.contains(id))
                && r.affects(rampart_scanner::Ecosystem::PyPI, "urllib3", "1.26.4")
                    .expect("valid")
                    .is_some()
        });
        assert!(found, "{id} does not affect urllib3 1.26.4 by itself");
    }
    // Jinja2 was whited out by the top layer: neither the package nor its CVE-2020-28493.
    assert!(ids(&scan, "jinja2").is_empty());
    assert!(!scan.components.iter().any(|c| c.name == "Jinja2"));

    // The config's facts.
    assert_eq!(scan.user, "1000");
    assert_eq!(scan.exposed_ports, vec!["8080/tcp"]);
    assert_eq!(
        scan.labels
            .get("org.opencontainers.image.source")
            .map(String::as_str),
        Some("rampart-test")
    );
    assert_eq!(scan.dockerfile[1].instruction, "RUN");
    assert_eq!(scan.dockerfile[1].value, "pip install urllib3==1.26.4");
    assert_eq!((scan.layers, scan.cached_layers), (3, 0));
    assert!(scan.summary.fixable >= 1 && scan.summary.vulnerabilities >= urllib3.len());

    // A second scan downloads no layer again.
    let again = rt
        .block_on(image::scan(
            &reference,
            &Credentials::default(),
            &options,
            &db,
            work.path(),
            &Limits::default(),
        ))
        .expect("rescan");
    assert_eq!(again.cached_layers, 3);
    assert_eq!(again.digest, scan.digest);
}

#[test]
fn alpine_image_is_matched_against_the_real_secdb() {
    let registry = Registry::start(&[]);
    let client = registry.client();
    let rt = runtime();
    let reference = format!("{}/base/alpine:3.10", registry.host);
    let layers = [layer(&[
        (
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.10.9\nPRETTY_NAME=\"Alpine Linux v3.10\"\n"
                .to_vec(),
        ),
        ("lib/apk/db/installed", apk_db()),
    ])];
    rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &reference,
        &layers,
        "amd64",
    ));
    let mut db = VulnDb::new();
    db.load_path(&data("alpine-secdb/v3.10")).expect("secdb");
    let scan = scan_from(&rt, &registry, &reference, &db).expect("scan");
    assert_eq!(scan.os_id.as_deref(), Some("alpine"));
    assert!(
        ids(&scan, "musl").contains(&("CVE-2019-14697".to_string(), Some("1.1.22-r3".to_string()))),
        "{:?}",
        ids(&scan, "musl")
    );
    // libcrypto1.1 is matched by its origin, openssl.
    let openssl = ids(&scan, "libcrypto1.1");
    assert!(
        openssl.contains(&("CVE-2019-1547".to_string(), Some("1.1.1d-r0".to_string()))),
        "{openssl:?}"
    );
    // Each finding is one the secdb itself gives for the origin at that version.
    for c in &scan.components {
        let expected: Vec<String> = db.secdb["v3.10"]
            .iter()
            .flat_map(|s| s.findings(&c.source, &c.version).expect("valid"))
            .map(|f| f.cve)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut got: Vec<String> = c.vulnerabilities.iter().map(|v| v.id.clone()).collect();
        got.sort();
        assert_eq!(got, expected, "{}", c.name);
    }
    // The same image scanned with only v3.9's data says the branch is missing.
    let mut old = VulnDb::new();
    old.load_path(&data("alpine-secdb/v3.9")).expect("secdb");
    let scan = scan_from(&rt, &registry, &reference, &old).expect("scan");
    assert!(scan.components.iter().all(|c| c.vulnerabilities.is_empty()));
    assert!(
        scan.notes
            .iter()
            .any(|n| n == "3 packages were not matched: no Alpine secdb for v3.10 is loaded"),
        "{:?}",
        scan.notes
    );
}

#[test]
fn an_index_resolves_to_the_requested_platform() {
    let registry = Registry::start(&[]);
    let client = registry.client();
    let rt = runtime();
    let host = &registry.host;
    let os = |name: &str| {
        layer(&[(
            "etc/os-release",
            format!("ID=alpine\nVERSION_ID=3.10.0\nPRETTY_NAME=\"{name}\"\n").into_bytes(),
        )])
    };
    let amd = rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &format!("{host}/multi/app:amd64"),
        &[os("built for amd64")],
        "amd64",
    ));
    let arm = rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &format!("{host}/multi/app:arm64"),
        &[os("built for arm64")],
        "arm64",
    ));
    let index: OciImageIndex = serde_json::from_value(serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd.0, "size": amd.1,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm.0, "size": arm.1,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
        ]
    }))
    .expect("index");
    let reference = format!("{host}/multi/app:1.0");
    rt.block_on(client.push_manifest_list(
        &reference.parse().expect("reference"),
        &RegistryAuth::Anonymous,
        index,
    ))
    .expect("push index");
    let db = VulnDb::new();
    let work = tempfile::tempdir().expect("tempdir");
    let scan_for = |platform: &str| {
        let options = PullOptions {
            platform: platform.parse().expect("platform"),
            ..options(&registry)
        };
        rt.block_on(image::scan(
            &reference,
            &Credentials::default(),
            &options,
            &db,
            work.path(),
            &Limits::default(),
        ))
    };
    let arm_scan = scan_for("linux/arm64").expect("arm64 scan");
    assert_eq!(arm_scan.os.as_deref(), Some("built for arm64"));
    assert_eq!(arm_scan.digest, arm.0);
    assert!(arm_scan.index_digest.is_some());
    assert_eq!(arm_scan.platform, "linux/arm64");
    let amd_scan = scan_for("linux/amd64").expect("amd64 scan");
    assert_eq!(amd_scan.os.as_deref(), Some("built for amd64"));
    match scan_for("linux/s390x") {
        Err(ScanError::Pull(PullError::NoPlatform { available, .. })) => {
            assert_eq!(available, "linux/amd64, linux/arm64/v8");
        }
        other => panic!("expected no platform, got {other:?}"),
    }
}

#[test]
fn credentials_are_required_and_used() {
    let registry = Registry::start(&[("ci", "s3cret")]);
    let client = registry.client();
    let rt = runtime();
    let reference = format!("{}/private/app:1", registry.host);
    let auth = RegistryAuth::Basic("ci".into(), "s3cret".into());
    rt.block_on(push(
        &client,
        &auth,
        &reference,
        &[layer(&[(
            "etc/os-release",
            b"ID=alpine\nVERSION_ID=3.10.1\n".to_vec(),
        )])],
        "amd64",
    ));
    let db = VulnDb::new();
    let work = tempfile::tempdir().expect("tempdir");
    let scan_with = |creds: &Credentials| {
        rt.block_on(image::scan(
            &reference,
            creds,
            &options(&registry),
            &db,
            work.path(),
            &Limits::default(),
        ))
    };
    let err = scan_with(&Credentials::default()).expect_err("anonymous refused");
    assert!(
        matches!(err, ScanError::Pull(PullError::Registry { .. })),
        "{err}"
    );
    let wrong = Credentials::from_docker_config(&format!(
        r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
        registry.host,
        base64_encode("ci:wrong")
    ))
    .expect("config");
    assert!(scan_with(&wrong).is_err());
    let right = Credentials::from_docker_config(&format!(
        r#"{{"auths":{{"http://{}/":{{"auth":"{}"}}}}}}"#,
        registry.host,
        base64_encode("ci:s3cret")
    ))
    .expect("config");
    let scan = scan_with(&right).expect("scan with the config.json credentials");
    assert_eq!(scan.os_id.as_deref(), Some("alpine"));
    // The error text never carries the password.
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn tampered_blobs_and_oversized_layers_are_refused() {
    let registry = Registry::start(&[]);
    let client = registry.client();
    let rt = runtime();
    let reference = format!("{}/t/app:1", registry.host);
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let l = layer(&[("etc/os-release", b"ID=alpine\n".to_vec()), ("blob", big)]);
    let digest = sha256_digest(&l.data);
    rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &reference,
        &[l],
        "amd64",
    ));
    let db = VulnDb::new();
    let work = tempfile::tempdir().expect("tempdir");

    let small = PullOptions {
        limits: PullLimits {
            layer_bytes: 4096,
            ..PullLimits::default()
        },
        ..options(&registry)
    };
    let err = rt
        .block_on(image::scan(
            &reference,
            &Credentials::default(),
            &small,
            &db,
            work.path(),
            &Limits::default(),
        ))
        .expect_err("too large");
    assert!(
        matches!(err, ScanError::Pull(PullError::TooLarge { .. })),
        "{err}"
    );

    // Flip bytes of the layer in the registry's own storage: the download must fail its digest.
    let hex = digest.trim_start_matches("sha256:");
    let stored = registry
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&stored).expect("stored blob");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&stored, bytes).expect("tamper");
    let err = scan_from(&rt, &registry, &reference, &db).expect_err("tampered");
    let text = err.to_string();
    assert!(text.contains("igest"), "{text}");
    // Nothing unverified is left where the cache would pick it up.
    assert!(!work.path().join("blobs/sha256").join(hex).exists());
}

/// A jar holding `pom.properties` for each `(group, artifact, version)`.
fn jar(artifacts: &[(&str, &str, &str)], nested: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    w.start_file("META-INF/MANIFEST.MF", options)
        .expect("entry");
    w.write_all(b"Manifest-Version: 1.0\r\n").expect("write");
    for (g, a, v) in artifacts {
        w.start_file(format!("META-INF/maven/{g}/{a}/pom.properties"), options)
            .expect("entry");
        write!(w, "groupId={g}\nartifactId={a}\nversion={v}\n").expect("write");
    }
    for (name, body) in nested {
        w.start_file(*name, options).expect("entry");
        w.write_all(body).expect("write");
    }
    w.finish().expect("zip").into_inner()
}

#[test]
fn java_archives_are_scanned_for_maven_artifacts() {
    let registry = Registry::start(&[]);
    let client = registry.client();
    let rt = runtime();
    let reference = format!("{}/java/app:1", registry.host);
    // A Spring Boot style fat jar whose BOOT-INF/lib carries log4j-core 2.14.1.
    let log4j = jar(&[("org.apache.logging.log4j", "log4j-core", "2.14.1")], &[]);
    let app = jar(
        &[("com.example", "shop", "1.0.0")],
        &[("BOOT-INF/lib/log4j-core-2.14.1.jar", log4j)],
    );
    let patched = jar(&[("org.apache.logging.log4j", "log4j-api", "2.17.1")], &[]);
    rt.block_on(push(
        &client,
        &RegistryAuth::Anonymous,
        &reference,
        &[
            layer(&[
                ("etc/os-release", os_release_debian()),
                ("app/shop.jar", app),
                ("app/lib/log4j-api-2.17.1.jar", patched),
            ]),
            // A real Go binary (Debian's registry itself), executable, and the same bytes
            // not executable: only the first is read as a binary.
            layer_with_modes(&[
                (
                    "usr/bin/registry",
                    std::fs::read("/usr/bin/docker-registry").expect("go binary"),
                    0o755,
                ),
                (
                    "usr/share/registry.bak",
                    std::fs::read("/usr/bin/docker-registry").expect("go binary"),
                    0o644,
                ),
            ]),
        ],
        "amd64",
    ));
    // GHSA-jfh8-c2jp-5v3q (Log4Shell) as GitHub publishes its affected ranges.
    let mut db = VulnDb::new();
    let mut stats = Default::default();
    db.load_text(
        r#"{"id":"GHSA-jfh8-c2jp-5v3q","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2021-44228"],
            "summary":"Remote code injection in Log4j",
            "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
            "affected":[
              {"package":{"ecosystem":"Maven","name":"org.apache.logging.log4j:log4j-core"},
               "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.13.0"},{"fixed":"2.15.0"}]},
                         {"type":"ECOSYSTEM","events":[{"introduced":"2.0-beta9"},{"fixed":"2.3.1"}]}]}]}"#,
        false,
        &mut stats,
    )
    .expect("record");
    let scan = scan_from(&rt, &registry, &reference, &db).expect("scan");
    let maven: Vec<(&str, &str, &str)> = scan
        .components
        .iter()
        .filter(|c| c.ecosystem == "Maven")
        .map(|c| (c.name.as_str(), c.version.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(
        maven,
        vec![
            ("com.example:shop", "1.0.0", "app/shop.jar"),
            (
                "org.apache.logging.log4j:log4j-api",
                "2.17.1",
                "app/lib/log4j-api-2.17.1.jar"
            ),
            (
                "org.apache.logging.log4j:log4j-core",
                "2.14.1",
                "app/shop.jar"
            ),
        ]
    );
    let log4shell = scan
        .components
        .iter()
        .find(|c| c.name.ends_with(":log4j-core"))
        .and_then(|c| c.vulnerabilities.first())
        .expect("log4shell found");
    assert_eq!(log4shell.id, "CVE-2021-44228");
    assert_eq!(log4shell.fixed_by.as_deref(), Some("2.15.0"));
    assert_eq!(log4shell.cvss, Some(10.0));
    let go: Vec<(&str, &str, &str)> = scan
        .components
        .iter()
        .filter(|c| c.ecosystem == "Go")
        .map(|c| (c.name.as_str(), c.version.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(go.len(), 1, "{go:?}");
    assert_eq!((go[0].0, go[0].2), ("stdlib", "usr/bin/registry"));
    assert!(go[0].1.starts_with("1."), "{go:?}");
    assert_eq!(scan.summary.by_severity.get("CRITICAL"), Some(&1));
}

/// One entry of a Debian changelog: the version it released and the CVEs it names.
struct ChangelogEntry {
    version: String,
    cves: std::collections::BTreeSet<String>,
}

/// The entries of `/usr/share/doc/PACKAGE/changelog.Debian.gz`, newest first.
fn changelog(package: &str) -> Option<Vec<ChangelogEntry>> {
    use std::io::Read;
    let file = std::fs::File::open(format!("/usr/share/doc/{package}/changelog.Debian.gz")).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .ok()?;
    let mut entries: Vec<ChangelogEntry> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            let version = line.split_once('(')?.1.split_once(')')?.0.to_string();
            entries.push(ChangelogEntry {
                version,
                cves: Default::default(),
            });
        } else if let Some(e) = entries.last_mut() {
            e.cves.extend(cves_in(line));
        }
    }
    Some(entries)
}

/// `CVE-YYYY-NNNN…` tokens of a line.
fn cves_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("CVE-") {
        let tail = &rest[i + 4..];
        let year: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let after_year = &tail[year.len()..];
        if year.len() == 4 && after_year.starts_with('-') {
            let num: String = after_year[1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if num.len() >= 4 {
                out.push(format!("CVE-{year}-{num}"));
            }
        }
        rest = tail;
    }
    out
}

#[test]
fn debian_packages_are_matched_against_osv_debian_records_written_from_real_changelogs() {
    use rampart_scanner::{Ecosystem, compare};
    // This machine's installed packages whose binary is their source (no `Source:` field), and
    // whose changelog names CVEs fixed in an entry that has an older entry after it.
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("dpkg status");
    let os = std::fs::read_to_string("/etc/os-release").expect("os-release");
    let major = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| {
            v.trim_matches('"')
                .split('.')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .expect("a Debian release with VERSION_ID");
    let release = format!("Debian:{major}");
    let mut chosen: Vec<(String, String, String, ChangelogEntry)> = Vec::new(); // (package, installed, previous, fixing entry)
    for stanza in status.split("\n\n") {
        if chosen.len() == 4 {
            break;
        }
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::to_string)
        };
        let (Some(package), Some(version)) = (field("Package: "), field("Version: ")) else {
            continue;
        };
        if field("Source: ").is_some() || !stanza.contains("Status: install ok installed") {
            continue;
        }
        let Some(entries) = changelog(&package) else {
            continue;
        };
        let Some(i) = entries.iter().position(|e| !e.cves.is_empty()) else {
            continue;
        };
        let Some(previous) = entries.get(i + 1) else {
            continue;
        };
        // The fixing entry must order after the previous one (changelogs are newest first).
        if compare(Ecosystem::Debian, &entries[i].version, &previous.version).ok()
            != Some(std::cmp::Ordering::Greater)
        {
            continue;
        }
        let previous = previous.version.clone();
        let fixing = entries.into_iter().nth(i).expect("entry");
        chosen.push((package, version, previous, fixing));
    }
    assert!(
        chosen.len() >= 2,
        "this machine has too few packages whose changelog names CVEs"
    );

    // One OSV record per CVE, as osv.dev publishes Debian's: DEBIAN-CVE-… naming the CVE
    // upstream, the source package in the release's ecosystem, fixed at the changelog's version.
    let mut db = VulnDb::new();
    let mut stats = Default::default();
    for (package, _, _, entry) in &chosen {
        for cve in &entry.cves {
            let record = serde_json::json!({
                "id": format!("DEBIAN-{cve}"), "upstream": [cve], "modified": "2026-01-01T00:00:00Z",
                "summary": format!("{cve} in {package}"),
                "affected": [{"package": {"ecosystem": release, "name": package},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": entry.version}]}]}]
            });
            db.add(rampart_scanner::vulndb::Doc::Osv(record), &mut stats)
                .expect("record");
        }
    }

    let registry = Registry::start(&[]);
    let rt = runtime();
    let scan_with = |status: String, tag: &str| -> ImageScan {
        let reference = format!("{}/debian/changelogs:{tag}", registry.host);
        rt.block_on(push(
            &registry.client(),
            &RegistryAuth::Anonymous,
            &reference,
            &[layer(&[
                ("etc/os-release", os_release_debian()),
                ("var/lib/dpkg/status", status.into_bytes()),
            ])],
            "amd64",
        ));
        scan_from(&rt, &registry, &reference, &db).expect("scan")
    };

    // As installed: affected only where the installed version is below the fix (normally none).
    let installed = scan_with(status.clone(), "installed");
    for (package, version, _, entry) in &chosen {
        let expected: Vec<(String, Option<String>)> = if compare(
            Ecosystem::Debian,
            version,
            &entry.version,
        ) == Ok(std::cmp::Ordering::Less)
        {
            entry
                .cves
                .iter()
                .map(|c| (c.clone(), Some(entry.version.clone())))
                .collect()
        } else {
            Vec::new()
        };
        let mut got = ids(&installed, package);
        got.sort();
        assert_eq!(got, expected, "{package} {version}");
    }
    assert!(
        !installed.notes.iter().any(|n| n.contains("no Debian data")),
        "{:?}",
        installed.notes
    );

    // Each chosen package rolled back to the version before its fix: exactly the fix's CVEs,
    // each fixed by the changelog's version, shown under the CVE id with its Debian id as alias.
    let mut rolled = status.clone();
    for (package, version, previous, _) in &chosen {
        let stanza_start = rolled
            .find(&format!("Package: {package}\n"))
            .expect("stanza");
        let at = stanza_start
            + rolled[stanza_start..]
                .find(&format!("Version: {version}\n"))
                .expect("version line");
        rolled.replace_range(
            at..at + format!("Version: {version}\n").len(),
            &format!("Version: {previous}\n"),
        );
    }
    let old = scan_with(rolled, "rolled-back");
    for (package, _, previous, entry) in &chosen {
        let mut got = ids(&old, package);
        got.sort();
        let expected: Vec<(String, Option<String>)> = entry
            .cves
            .iter()
            .map(|c| (c.clone(), Some(entry.version.clone())))
            .collect();
        assert_eq!(got, expected, "{package} at {previous}");
        let c = old
            .components
            .iter()
            .find(|c| c.name == *package)
            .expect("component");
        assert!(
            c.vulnerabilities
                .iter()
                .all(|v| v.aliases == vec![format!("DEBIAN-{}", v.id)]),
            "{:?}",
            c.vulnerabilities
        );
    }
    // Records of another release never apply.
    let mut other = VulnDb::new();
    for r in &db.osv {
        let mut v = serde_json::to_value(serde_json::json!({
            "id": r.id, "upstream": r.upstream, "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:9", "name": r.affected[0].package.name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "999:0"}]}]}]
        }))
        .expect("json");
        v["summary"] = "other release".into();
        other
            .add(rampart_scanner::vulndb::Doc::Osv(v), &mut stats)
            .expect("record");
    }
    let m = rampart_scanner::report::Matcher::new(&other);
    let facts_scan = image::assemble(
        &rt.block_on(async {
            let work = tempfile::tempdir().expect("tempdir");
            let pulled = rampart_scanner::registry::pull(
                &format!("{}/debian/changelogs:installed", registry.host),
                &Credentials::default(),
                &options(&registry),
                work.path(),
            )
            .await
            .expect("pull");
            image::facts_of_pulled(&pulled, &Limits::default()).expect("facts")
        }),
        &m,
    );
    assert!(
        facts_scan
            .components
            .iter()
            .all(|c| c.vulnerabilities.is_empty()),
        "Debian:9 records matched a Debian {major} image"
    );
    assert!(
        facts_scan
            .notes
            .iter()
            .any(|n| n.contains(&format!("no Debian data for {release}"))),
        "{:?}",
        facts_scan.notes
    );
}

/// Runs a command, failing the test with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (./scripts/test installs rpm)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_rpm_database_written_by_rpm_is_read_and_matched() {
    // Real packages built by rpmbuild and installed into a fresh rpmdb.sqlite by rpm itself:
    // `demo` and its subpackage `libdemo` (epoch 2), and `tool` without an epoch.
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path().join("top");
    let spec = dir.path().join("demo.spec");
    std::fs::write(
        &spec,
        "Name: demo\nVersion: 3.1\nRelease: 4.el9\nEpoch: 2\nSummary: demo\nLicense: MIT\nBuildArch: noarch\n\
         %description\ndemo\n%package -n libdemo\nSummary: lib\n%description -n libdemo\nlib\n\
         %files -n libdemo\n%files\n",
    )
    .expect("spec");
    let tool = dir.path().join("tool.spec");
    std::fs::write(
        &tool,
        "Name: tool\nVersion: 1.0.2\nRelease: 1.el9\nSummary: tool\nLicense: MIT\nBuildArch: noarch\n\
         %description\ntool\n%files\n",
    )
    .expect("spec");
    for s in [&spec, &tool] {
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg(s));
    }
    let dbpath = dir.path().join("root/var/lib/rpm");
    std::fs::create_dir_all(&dbpath).expect("dbpath");
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&dbpath)
        .arg("--initdb"));
    let rpms: Vec<PathBuf> = std::fs::read_dir(top.join("RPMS/noarch"))
        .expect("rpms")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(rpms.len(), 3);
    run(Command::new("rpm")
        .args([
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--notriggers",
            "--dbpath",
        ])
        .arg(&dbpath)
        .args(&rpms));
    // What rpm itself says is installed.
    let listed = run(Command::new("rpm")
        .args(["-qa", "--dbpath"])
        .arg(&dbpath)
        .args([
            "--qf",
            "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{SOURCERPM}\\n",
        ]));
    let mut expected: Vec<(String, String, String)> = listed
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next().expect("name").to_string();
            let evr = parts
                .next()
                .expect("evr")
                .trim_start_matches("0:")
                .to_string();
            let srpm = parts.next().expect("srpm");
            (
                name,
                evr,
                srpm.split('-').next().expect("source").to_string(),
            )
        })
        .collect();
    expected.sort();
    let sqlite = std::fs::read(dbpath.join("rpmdb.sqlite")).expect("rpmdb.sqlite");
    let (components, problems) = rampart_scanner::rpm::rpmdb_sqlite(&sqlite).expect("reads");
    assert!(problems.is_empty(), "{problems:?}");
    let mut got: Vec<(String, String, String)> = components
        .iter()
        .map(|c| (c.name.clone(), c.version.clone(), c.source.clone()))
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(
        got,
        [
            ("demo".into(), "2:3.1-4.el9".into(), "demo".into()),
            ("libdemo".into(), "2:3.1-4.el9".into(), "demo".into()),
            ("tool".into(), "1.0.2-1.el9".into(), "tool".into()),
        ]
    );

    // The image: Rocky Linux 9 with that database, and a BerkeleyDB file rpm no longer writes.
    let registry = Registry::start(&[]);
    let rt = runtime();
    let reference = format!("{}/rocky/app:9", registry.host);
    rt.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[layer(&[
            (
                "etc/os-release",
                b"NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n".to_vec(),
            ),
            ("var/lib/rpm/rpmdb.sqlite", sqlite.clone()),
        ])],
        "amd64",
    ));
    // Advisories for Rocky Linux 9: libdemo fixed in 2:3.1-5.el9 (by its binary name), the
    // source `tool` fixed in 1.0.1 (not affected), and one for Rocky Linux 8 (never applies).
    let mut db = VulnDb::new();
    let mut stats = Default::default();
    for (id, eco, name, fixed) in [
        ("RLSA-2026:0001", "Rocky Linux:9", "libdemo", "2:3.1-5.el9"),
        ("RLSA-2026:0002", "Rocky Linux:9", "tool", "1.0.1-1.el9"),
        ("RLSA-2026:0003", "Rocky Linux:8", "demo", "2:9.9-1.el8"),
    ] {
        db.add(
            rampart_scanner::vulndb::Doc::Osv(serde_json::json!({
                "id": id, "upstream": [format!("CVE-2026-{}", &id[10..])], "modified": "2026-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": eco, "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
            })),
            &mut stats,
        )
        .expect("record");
    }
    let scan = scan_from(&rt, &registry, &reference, &db).expect("scan");
    assert_eq!(scan.summary.components, 3, "{:?}", scan.notes);
    assert_eq!(
        ids(&scan, "libdemo"),
        [("CVE-2026-0001".to_string(), Some("2:3.1-5.el9".to_string()))]
    );
    assert!(ids(&scan, "tool").is_empty());
    assert!(
        ids(&scan, "demo").is_empty(),
        "Rocky Linux 8's record never applies to 9"
    );

    // A BerkeleyDB database and a corrupt SQLite one are said, not passed over as clean.
    let reference = format!("{}/centos/app:7", registry.host);
    let mut truncated = sqlite.clone();
    truncated.truncate(4096);
    rt.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[layer(&[
            (
                "etc/os-release",
                b"ID=\"centos\"\nVERSION_ID=\"7\"\n".to_vec(),
            ),
            ("var/lib/rpm/Packages", vec![0u8; 8192]),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", truncated),
        ])],
        "amd64",
    ));
    let scan = scan_from(&rt, &registry, &reference, &db).expect("scan");
    assert_eq!(scan.summary.components, 0);
    assert!(
        scan.notes
            .iter()
            .any(|n| n.starts_with("/var/lib/rpm/Packages: unsupported rpmdb format (BerkeleyDB")),
        "{:?}",
        scan.notes
    );
    assert!(
        scan.notes.iter().any(|n| n
            .starts_with("/usr/lib/sysimage/rpm/rpmdb.sqlite: the rpm database could not be read")),
        "{:?}",
        scan.notes
    );
}

#[test]
fn a_rust_binary_built_with_cargo_auditable_is_scanned_for_its_crates() {
    use std::io::Write;
    // A real executable with a `.dep-v0` section added the way cargo-auditable lays it out:
    // zlib-compressed JSON of the dependency tree. The crates are real: smallvec 1.6.0 (before
    // RUSTSEC-2021-0003's fix), serde, and cc as a build-time dependency (not in the binary).
    let deps = serde_json::json!({"packages": [
        {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2, 3], "root": true},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
        {"name": "serde", "version": "1.0.130", "source": "crates.io"},
        {"name": "cc", "version": "1.0.70", "source": "crates.io", "kind": "build"}
    ]});
    let dir = tempfile::tempdir().expect("tempdir");
    let section = dir.path().join("dep-v0");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(deps.to_string().as_bytes()).expect("zlib");
    std::fs::write(&section, z.finish().expect("zlib")).expect("section");
    let binary = dir.path().join("app");
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .args([
            "--set-section-flags",
            ".dep-v0=noload,readonly",
            "/bin/true",
        ])
        .arg(&binary));
    let bytes = std::fs::read(&binary).expect("binary");
    let crates = rampart_scanner::rustbinary::audit_data(&bytes).expect("audit data");
    let names: Vec<(&str, &str)> = crates
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("app", "0.1.0"),
            ("serde", "1.0.130"),
            ("smallvec", "1.6.0")
        ]
    );
    // The same executable without the section, and a non-ELF file, carry nothing.
    let plain = std::fs::read("/bin/true").expect("/bin/true");
    assert!(rampart_scanner::rustbinary::audit_data(&plain).is_none());
    assert!(rampart_scanner::rustbinary::audit_data(b"#!/bin/sh\necho hi\n").is_none());
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() / 2);
    assert!(rampart_scanner::rustbinary::audit_data(&cut).is_none());

    // In an image, matched against RUSTSEC-2021-0003 as OSV publishes it.
    let registry = Registry::start(&[]);
    let rt = runtime();
    let reference = format!("{}/rust/app:1", registry.host);
    rt.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[layer_with_modes(&[
            (
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\n".to_vec(),
                0o644,
            ),
            ("usr/local/bin/app", bytes.clone(), 0o755),
        ])],
        "amd64",
    ));
    let mut db = VulnDb::new();
    let mut stats = Default::default();
    db.add(
        rampart_scanner::vulndb::Doc::Osv(serde_json::json!({
            "id": "RUSTSEC-2021-0003", "aliases": ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"],
            "modified": "2023-06-13T13:10:24Z", "published": "2021-01-08T12:00:00Z",
            "summary": "Buffer overflow in SmallVec::insert_many",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "smallvec"},
                "ranges": [{"type": "SEMVER", "events": [
                    {"introduced": "0.6.3"}, {"fixed": "0.6.14"}, {"introduced": "1.0.0"}, {"fixed": "1.6.1"}]}]}]
        })),
        &mut stats,
    )
    .expect("record");
    let scan = scan_from(&rt, &registry, &reference, &db).expect("scan");
    let found: Vec<(&str, &str, &str)> = scan
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str(), c.ecosystem.as_ref()))
        .collect();
    assert_eq!(
        found,
        [
            ("app", "0.1.0", "crates.io"),
            ("serde", "1.0.130", "crates.io"),
            ("smallvec", "1.6.0", "crates.io")
        ]
    );
    assert_eq!(
        ids(&scan, "smallvec"),
        [("CVE-2021-25900".to_string(), Some("1.6.1".to_string()))]
    );
    assert!(ids(&scan, "serde").is_empty());
}

#[test]
fn a_layer_of_an_unknown_media_type_is_refused_by_name() {
    let registry = Registry::start(&[]);
    let rt = runtime();
    let reference = format!("{}/odd/artifact:1", registry.host);
    let tar = layer(&[("etc/os-release", b"ID=alpine\n".to_vec())]);
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(
        "test.diff_id".to_string(),
        rampart_test_support::registry::diff_id(&tar),
    );
    let odd = oci_client::client::ImageLayer::new(
        tar.data.clone(),
        "application/vnd.example.model.weights".to_string(),
        Some(annotations),
    );
    rt.block_on(push(
        &registry.client(),
        &RegistryAuth::Anonymous,
        &reference,
        &[odd],
        "amd64",
    ));
    let work = tempfile::tempdir().expect("work");
    let err = rt
        .block_on(image::scan(
            &reference,
            &Credentials::default(),
            &options(&registry),
            &VulnDb::new(),
            work.path(),
            &Limits::default(),
        ))
        .expect_err("not a filesystem layer");
    let text = err.to_string();
    assert!(
        text.contains("application/vnd.example.model.weights")
            && text.contains("not a container filesystem layer"),
        "{text}"
    );
}
