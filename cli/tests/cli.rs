//! The `rampart` command end to end: outputs (snapshots), exit codes, bad input, policies.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use clap::Parser;

const MIXED: &str = "tests/fixtures/mixed.yaml";

/// Runs the CLI in-process from the crate directory; returns (exit code, stdout, stderr).
fn rampart(args: &[&str]) -> (u8, String, String) {
    let cli =
        rampart_cli::Cli::try_parse_from(std::iter::once("rampart").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("bad test arguments: {e}"));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = rampart_cli::run(cli, &mut out, &mut err);
    // ExitCode has no accessor; its Debug form carries the number.
    let code_text = format!("{code:?}");
    let code: u8 = code_text
        .trim_start_matches("ExitCode(unix_exit_status(")
        .trim_end_matches("))")
        .parse()
        .unwrap_or_else(|_| panic!("unexpected ExitCode debug form {code_text}"));
    (
        code,
        String::from_utf8(out).expect("utf8"),
        String::from_utf8(err).expect("utf8"),
    )
}

#[test]
fn table_output_and_summary() {
    let (code, out, _) = rampart(&["deployment", "check", "-f", MIXED, "--fail-on", "never"]);
    assert_eq!(code, 2, "a broken document makes it an input error");
    insta::assert_snapshot!("table", out);
}

#[test]
fn json_output() {
    let (_, out, err) = rampart(&["deployment", "check", "-f", MIXED, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON alone");
    assert!(
        err.contains("Checked 2 workload object(s)"),
        "summary goes to stderr: {err}"
    );
    insta::assert_snapshot!("json", serde_json::to_string_pretty(&v).expect("json"));
}

#[test]
fn csv_output() {
    let (_, out, _) = rampart(&[
        "deployment",
        "check",
        "-f",
        MIXED,
        "-o",
        "csv",
        "--severity-at-least",
        "high",
    ]);
    insta::assert_snapshot!("csv", out);
}

#[test]
fn junit_output() {
    let (_, out, _) = rampart(&[
        "deployment",
        "check",
        "-f",
        MIXED,
        "-o",
        "junit",
        "--categories",
        "privileges",
    ]);
    insta::assert_snapshot!("junit", out);
}

#[test]
fn sarif_output_validates_against_the_2_1_0_schema() {
    let (_, out, _) = rampart(&["deployment", "check", "-f", MIXED, "-o", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_str(&out).expect("json");
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("schemas/sarif-schema-2.1.0.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // GitHub code scanning needs a file and a line for each result.
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], MIXED);
        assert!(loc["region"]["startLine"].as_u64().is_some_and(|l| l >= 2));
    }
    insta::assert_snapshot!("sarif", out);
}

#[test]
fn exit_codes_follow_fail_on() {
    // Only the first document of the mixed file, to keep input errors out of the picture.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(MIXED).expect("fixture");
    let first = text.split("\n---\n").next().expect("first document");
    let file = dir.path().join("legacy.yaml");
    std::fs::write(&file, first).expect("write");
    let file = file.to_str().expect("utf8 path");
    // Defaults have no deploy-time enforcement, as in ACS: nothing breaks the build.
    assert_eq!(rampart(&["deployment", "check", "-f", file]).0, 0);
    assert_eq!(
        rampart(&["deployment", "check", "-f", file, "--fail-on", "any"]).0,
        1
    );
    assert_eq!(
        rampart(&["deployment", "check", "-f", file, "--fail-on", "never"]).0,
        0
    );
    // An enforced custom policy breaks it.
    let (code, out, _) = rampart(&[
        "deployment",
        "check",
        "-f",
        file,
        "--policies",
        "tests/fixtures/enforced-policy.json",
    ]);
    assert_eq!(code, 1, "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("No privileged containers in shop"))
        .expect("row");
    assert!(row.contains("| CRITICAL | yes"), "{row}");
}

#[test]
fn suppression_annotation_hides_a_finding_with_its_reason() {
    let (_, out, _) = rampart(&["deployment", "check", "-f", MIXED, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let legacy = &v["results"][0];
    let suppressed: Vec<_> = legacy["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f.get("suppressed").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["policy"], "No readiness probe");
    assert_eq!(suppressed[0]["suppressed"], "batch worker, no traffic");
}

#[test]
fn bad_input_is_reported_and_the_rest_still_checked() {
    let (code, out, _) = rampart(&["deployment", "check", "-f", MIXED]);
    assert_eq!(code, 2);
    assert!(
        out.contains("error: tests/fixtures/mixed.yaml (document 3, line"),
        "{out}"
    );
    assert!(out.contains("Deployment shop/legacy"), "{out}");
    assert!(
        out.contains("Unknown kinds (not evaluated): Widget (1)."),
        "{out}"
    );
    assert!(
        out.contains("Skipped non-workload objects: Service (1)."),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"kind: Pod\nmetadata: {name: caf\xe9}\n").expect("write");
    let (code, _, err) = rampart(&["deployment", "check", "-f", latin1.to_str().expect("path")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is not valid UTF-8 (first invalid byte at offset 30)"),
        "{err}"
    );

    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "a: 1\n".repeat(1000)).expect("write");
    let (code, _, err) = rampart(&[
        "deployment",
        "check",
        "-f",
        big.to_str().expect("path"),
        "--max-input-bytes",
        "100",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is larger than the 100-byte limit"), "{err}");

    let (code, _, err) = rampart(&["deployment", "check", "-f", "does/not/exist.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("does/not/exist.yaml does not exist"), "{err}");

    let (code, _, err) = rampart(&[
        "deployment",
        "check",
        "-f",
        MIXED,
        "--include",
        "No Such Policy",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no policy named 'No Such Policy'"), "{err}");
}

#[test]
fn directories_are_walked_recursively() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: c, image: x:1}}]}}\n"
        )
    };
    std::fs::write(dir.path().join("a/one.yml"), pod("one")).expect("write");
    std::fs::write(dir.path().join("a/b/two.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"two"},"spec":{"containers":[{"name":"c","image":"x:1"}]}}"#).expect("write");
    std::fs::write(dir.path().join("a/b/notes.txt"), pod("ignored")).expect("write");
    let (code, out, _) = rampart(&[
        "deployment",
        "check",
        "-f",
        dir.path().to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let names: Vec<_> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["two", "one"],
        "sorted paths: a/b/two.json before a/one.yml"
    );
}

#[test]
fn stdin_works_for_helm_pipelines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "deployment",
            "check",
            "-f",
            "-",
            "-o",
            "json",
            "--include",
            "Privileged Container",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(std::fs::read(MIXED).expect("fixture").as_slice())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(v["results"][0]["file"], "<stdin>");
    assert_eq!(
        v["results"][0]["findings"][0]["policy"],
        "Privileged Container"
    );
    assert_eq!(
        v["results"][0]["findings"][0]["violations"][0],
        "Container 'worker' is privileged"
    );
}

#[test]
fn microservices_demo_corpus() {
    let corpus = Path::new("../../shared/corpus/microservices-demo");
    if !corpus.exists() {
        eprintln!("skipping: {} is absent", corpus.display());
        return;
    }
    let (code, out, _) = rampart(&[
        "deployment",
        "check",
        "-f",
        corpus.to_str().expect("path"),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "no input errors and nothing enforced");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    // 12 workloads in kubernetes-manifests, 12 in release/kubernetes-manifests.yaml; the istio
    // manifests are CRDs and are listed as unknown kinds.
    assert_eq!(v["summary"]["objects"], 24);
    assert!(
        v["summary"]["unknownKinds"]["VirtualService"]
            .as_u64()
            .is_some(),
        "{}",
        v["summary"]
    );
    let redis = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["name"] == "redis-cart")
        .expect("redis-cart");
    let policies: Vec<_> = redis["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["policy"].as_str().unwrap_or_default())
        .collect();
    assert!(
        policies.contains(&"Pod Service Account Token Automatically Mounted"),
        "{policies:?}"
    );
}

#[test]
fn policy_validate_reports_every_error_and_exits_1() {
    let (code, out, err) = rampart(&[
        "policy",
        "validate",
        "-f",
        "tests/fixtures/invalid-policy.json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out, "1 valid, 1 invalid\n");
    assert!(err.contains("policy 'typo' at policySections[0].policyGroups[0].fieldName: unknown field name 'Image Tagg' (did you mean 'Image Tag'?)"), "{err}");
    let (code, out, _) = rampart(&[
        "policy",
        "validate",
        "-f",
        "tests/fixtures/enforced-policy.json",
    ]);
    assert_eq!((code, out.as_str()), (0, "1 valid, 0 invalid\n"));
}

#[test]
fn policy_export_round_trips_through_policies_flag() {
    let (code, exported, _) = rampart(&["policy", "export", "--include", "latest-tag"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&exported).expect("json");
    assert_eq!(v["policies"][0]["name"], "Latest tag");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("export.json");
    std::fs::write(&file, &exported).expect("write");
    let (_, reexported, _) = rampart(&[
        "policy",
        "export",
        "--replace-defaults",
        "--policies",
        file.to_str().expect("path"),
    ]);
    assert_eq!(reexported, exported);
}

#[test]
fn policy_list_shows_defaults() {
    let (code, out, _) = rampart(&["policy", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("| Privileged Container "), "{out}");
    assert!(
        out.contains("| Shell Spawned by Java Application "),
        "{out}"
    );
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy/defaults"))
        .expect("defaults")
        .count();
    assert!(out.contains(&format!("{files} policies.")), "{out}");
}

/// An Alpine 3.10 image in a real registry whose apk database names secdb packages.
fn alpine_image(registry: &rampart_test_support::registry::Registry) -> String {
    use rampart_test_support::registry::{layer, push};
    let client = registry.client();
    let reference = format!("{}/ci/alpine-app:1.0", registry.host);
    let layers = [layer(&[
        (
            "etc/os-release",
            b"ID=alpine\nVERSION_ID=3.10.9\nPRETTY_NAME=\"Alpine Linux v3.10\"\n".to_vec(),
        ),
        (
            "lib/apk/db/installed",
            b"P:musl\nV:1.1.22-r2\no:musl\n\nP:libcrypto1.1\nV:1.1.1c-r0\no:openssl\n\n".to_vec(),
        ),
    ])];
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(push(
            &client,
            &oci_client::secrets::RegistryAuth::Anonymous,
            &reference,
            &layers,
            "amd64",
        ));
    reference
}

const SECDB_310: &str = "../../shared/data/alpine-secdb/v3.10";

#[test]
fn image_scan_reports_matches_in_every_format_and_gates_with_fail() {
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let reference = alpine_image(&registry);
    let host = registry.host.clone();
    let base = [
        "image",
        "scan",
        "-i",
        &reference,
        "--insecure-registry",
        &host,
        "--db",
        SECDB_310,
        "--no-cache",
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        rampart(&args)
    };

    let (code, table, err) = run(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("Alpine Linux v3.10"), "{table}");
    assert!(
        table.contains("| UNKNOWN  | CVE-2019-14697 | musl"),
        "{table}"
    );
    assert!(table.contains("1.1.22-r3"), "{table}");

    let (_, json, _) = run(&["-o", "json"]);
    let scan: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(scan["os_id"], "alpine");
    assert!(
        scan["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let musl = scan["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "musl")
        .expect("musl");
    assert!(
        musl["vulnerabilities"]
            .as_array()
            .expect("vulns")
            .iter()
            .any(|v| v["id"] == "CVE-2019-14697"
                && v["fixed_by"] == "1.1.22-r3"
                && v["source"] == "alpine-secdb")
    );
    let total = scan["summary"]["vulnerabilities"].as_u64().expect("count");
    assert!(total >= 2);
    assert_eq!(scan["summary"]["fixable"].as_u64(), Some(total));

    // --fail turns findings into exit 1; a severity filter that keeps none, into 0.
    assert_eq!(run(&["--fail"]).0, 1);
    let (code, table, _) = run(&["--fail", "--severity", "critical,high"]);
    assert_eq!(code, 0);
    assert!(table.contains("No vulnerabilities found."), "{table}");

    let (_, csv, _) = run(&["-o", "csv"]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("image,digest,package,version"))
    );
    assert_eq!(lines.count() as u64, {
        // One row per (package, vulnerability).
        scan["components"]
            .as_array()
            .expect("components")
            .iter()
            .map(|c| c["vulnerabilities"].as_array().map_or(0, Vec::len) as u64)
            .sum::<u64>()
    });

    let (_, sarif, _) = run(&["-o", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_str(&sarif).expect("sarif json");
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("schemas/sarif-schema-2.1.0.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        sarif["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .any(|r| r["ruleId"] == "CVE-2019-14697")
    );

    let (_, bom, _) = run(&["-o", "cyclonedx"]);
    let bom: serde_json::Value = serde_json::from_str(&bom).expect("cyclonedx json");
    assert_eq!(bom["bomFormat"], "CycloneDX");
    let purls: Vec<&str> = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(
        purls.contains(&"pkg:apk/alpine/musl@1.1.22-r2"),
        "{purls:?}"
    );
    let vuln = bom["vulnerabilities"]
        .as_array()
        .expect("vulnerabilities")
        .iter()
        .find(|v| v["id"] == "CVE-2019-14697")
        .expect("musl CVE in the BOM");
    assert_eq!(vuln["affects"][0]["ref"], "pkg:apk/alpine/musl@1.1.22-r2");
}

#[test]
fn image_scan_errors_are_clear() {
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let host = registry.host.clone();
    let missing = format!("{host}/no/such:image");
    let (code, _, err) = rampart(&[
        "image",
        "scan",
        "-i",
        &missing,
        "--insecure-registry",
        &host,
        "--no-cache",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains(&missing) && err.contains("unknown"), "{err}");
    let (code, _, err) = rampart(&["image", "scan", "-i", "UPPER/Case:bad", "--no-cache"]);
    assert_eq!(code, 2);
    assert!(err.contains("not an image reference"), "{err}");
    // A password may start with `-`: it is the option's value, not another option.
    for args in [
        &[
            "rampart",
            "-e",
            "https://central:8443",
            "--password",
            "-fG3x",
            "policy",
            "import",
            "-f",
            "p.json",
        ][..],
        &[
            "rampart",
            "image",
            "scan",
            "-i",
            "x",
            "--username",
            "u",
            "--password",
            "-x_9",
            "--no-cache",
        ],
    ] {
        rampart_cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    let err = rampart_cli::Cli::try_parse_from([
        "rampart",
        "image",
        "scan",
        "-i",
        "x",
        "--platform",
        "linux",
    ])
    .expect_err("bad platform");
    assert!(err.to_string().contains("OS/ARCH"), "{err}");
    // No data at all: the scan lists packages and says nothing was matched.
    let reference = alpine_image(&registry);
    let (code, table, err) = rampart(&[
        "image",
        "scan",
        "-i",
        &reference,
        "--insecure-registry",
        &host,
        "--no-cache",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no vulnerability data"), "{err}");
    assert!(
        table.contains("2 packages were not matched: no Alpine secdb for v3.10 is loaded"),
        "{table}"
    );
}

#[test]
fn vulndb_import_update_and_status_feed_image_scan() {
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let reference = alpine_image(&registry);
    let host = registry.host.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let store = store.to_str().expect("utf8");

    let (code, out, err) = rampart(&["vulndb", "import", SECDB_310, "--store", store]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 OSV records, 2 secdb files"), "{out}");
    let (_, status, _) = rampart(&["vulndb", "status", "--store", store, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(status["secdb_files"], 2);
    assert_eq!(status["last_import_age_days"], 0);
    assert_eq!(status["stale"], false);

    // The scan reads the store: no --db.
    let (code, table, err) = rampart(&[
        "image",
        "scan",
        "-i",
        &reference,
        "--insecure-registry",
        &host,
        "--no-cache",
        "--store",
        store,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("CVE-2019-14697"), "{table}");
    assert!(!err.contains("stale"), "{err}");

    // `update` downloads a per-ecosystem zip (served here by a real HTTP server on loopback)
    // and imports it: urllib3's PyPA records, as JSON, the way osv.dev ships them.
    let site = dir.path().join("site/PyPI");
    std::fs::create_dir_all(&site).expect("mkdir");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(site.join("all.zip")).expect("zip"));
    let pypa = Path::new("../../shared/data/osv-pypa/vulns/urllib3");
    let mut records = 0;
    for entry in std::fs::read_dir(pypa).expect("pypa") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let doc = rampart_policy::yaml::split_documents(&text)
            .into_iter()
            .next()
            .expect("doc");
        let value = rampart_policy::yaml::parse_document(doc).expect("yaml");
        let name = format!("{}.json", value["id"].as_str().expect("id"));
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(value.to_string().as_bytes()).expect("write");
        records += 1;
    }
    zip.finish().expect("zip");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir.path().join("site"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");
    let (code, out, err) = rampart(&[
        "vulndb",
        "update",
        "--ecosystems",
        "PyPI,npm",
        "--source-url",
        &url,
        "--store",
        store,
    ]);
    let _ = server.kill();
    let _ = server.wait();
    // npm is not served: that one fails, PyPI is imported, and the exit code says "partly".
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("{records} OSV records")), "{out}");
    assert!(err.contains("npm/all.zip") && err.contains("404"), "{err}");
    let (_, status, _) = rampart(&["vulndb", "status", "--store", store, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(status["osv_records"], records);
    assert_eq!(status["imports"].as_array().map(Vec::len), Some(2));
}

#[test]
fn image_check_evaluates_build_time_policies_on_the_scan() {
    use rampart_test_support::registry::{layer, push};
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let host = registry.host.clone();
    let reference = format!("{host}/ci/tools:2");
    let layers = [layer(&[
        ("etc/os-release", b"ID=alpine\nVERSION_ID=3.10.9\n".to_vec()),
        (
            "lib/apk/db/installed",
            b"P:apk-tools\nV:2.10.4-r2\no:apk-tools\n\nP:musl\nV:1.1.22-r2\no:musl\n\n".to_vec(),
        ),
    ])];
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(push(
            &registry.client(),
            &oci_client::secrets::RegistryAuth::Anonymous,
            &reference,
            &layers,
            "amd64",
        ));
    let dir = tempfile::tempdir().expect("tempdir");
    let custom = dir.path().join("musl.json");
    std::fs::write(
        &custom,
        serde_json::json!({
            "name": "No musl CVE-2019-14697", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["BUILD"], "enforcementActions": ["FAIL_BUILD_ENFORCEMENT"],
            "remediation": "Rebuild on a patched base image.",
            "policySections": [{"policyGroups": [
                {"fieldName": "CVE", "values": [{"value": "CVE-2019-14697"}]},
                {"fieldName": "Fixable", "values": [{"value": "true"}]}
            ]}]
        })
        .to_string(),
    )
    .expect("policy");
    let custom = custom.to_str().expect("utf8");
    let base = [
        "image",
        "check",
        "-i",
        &reference,
        "--insecure-registry",
        &host,
        "--no-cache",
        "--db",
        SECDB_310,
    ];

    // Defaults only: apk in the image and the image's age are violated; neither breaks the build.
    let (code, table, err) = rampart(&base);
    assert_eq!(code, 0, "{table}{err}");
    assert!(
        table.contains("Alpine Linux Package Manager (apk) in Image"),
        "{table}"
    );
    assert!(
        table.contains("component 'apk-tools' (version 2.10.4-r2)"),
        "{table}"
    );
    assert!(table.contains("90-Day Image Age"), "{table}");

    // A custom FAIL_BUILD policy on the musl CVE (fixable in 1.1.22-r3) breaks it.
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--policies", custom, "-o", "json"])
        .collect();
    let (code, json, err) = rampart(&args);
    assert_eq!(code, 1, "{json}{err}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["breaking"], 1);
    let musl = report["violated"]
        .as_array()
        .expect("violated")
        .iter()
        .find(|v| v["policy"] == "No musl CVE-2019-14697")
        .expect("custom policy violated");
    assert_eq!(musl["breaks_build"], true);
    assert!(
        musl["violations"][0]
            .as_str()
            .is_some_and(|m| m.contains("CVE-2019-14697") && m.contains("fixed by 1.1.22-r3")),
        "{musl}"
    );
    // Only the custom policy, in a category filter that excludes it: nothing is selected.
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain([
            "--policies",
            custom,
            "--replace-defaults",
            "-c",
            "Networking",
        ])
        .collect();
    let (code, _, err) = rampart(&args);
    assert_eq!(code, 2);
    assert!(err.contains("no enabled build-time policy"), "{err}");
}

/// `-e`: the scan, the build-time check and the vulnerability data go through Central, which
/// pulls from the registry itself and matches with its own store.
#[test]
fn image_scan_check_and_vulndb_through_central() {
    let registry = rampart_test_support::registry::Registry::start(&[]);
    let reference = alpine_image(&registry);
    let dir = tempfile::tempdir().expect("tempdir");
    rampart_test_support::registry::install_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = runtime
        .block_on(rampart_central::runtime::start(
            rampart_central::runtime::Config {
                data_dir: dir.path().to_path_buf(),
                sensor_listen: "127.0.0.1:0".parse().expect("addr"),
                api_listen: "127.0.0.1:0".parse().expect("addr"),
                server_names: vec!["localhost".into()],
                images: rampart_central::images::ImageSettings {
                    pull: rampart_scanner::registry::PullOptions {
                        insecure: vec![registry.host.clone()],
                        ..Default::default()
                    },
                    ..Default::default()
                },
                baselines: Default::default(),
                admin_password: None,
            },
        ))
        .expect("central");
    let endpoint = format!("https://localhost:{}", running.api_addr.port());
    let ca = running.ca_file.to_str().expect("utf8").to_string();
    let password = running.new_admin_password.clone().expect("password");
    let remote = ["-e", &endpoint, "--ca", &ca, "--password", &password];
    let with = |args: &[&str]| -> Vec<String> {
        remote
            .iter()
            .chain(args.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let args = with(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        rampart(&refs)
    };

    // A directory goes up as one zip; Central's store then holds v3.10's two files.
    let (code, out, err) = run(&["vulndb", "import", SECDB_310]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 Alpine secdb files"), "{out}");
    let (code, status, err) = run(&["vulndb", "status", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(
        (status["secdb_files"].as_u64(), status["stale"].as_bool()),
        (Some(2), Some(false))
    );

    // Central pulls and matches: the same document as a local scan, --fail gates on it.
    let (code, json, err) = run(&["image", "scan", "-i", &reference, "-o", "json", "--fail"]);
    assert_eq!(code, 1, "{json}{err}");
    let scan: serde_json::Value = serde_json::from_str(&json).expect("json");
    let musl = scan["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "musl")
        .expect("musl");
    assert!(
        musl["vulnerabilities"]
            .as_array()
            .expect("v")
            .iter()
            .any(|v| v["id"] == "CVE-2019-14697" && v["fixed_by"] == "1.1.22-r3"),
        "{musl}"
    );
    let (code, table, _) = run(&["image", "scan", "-i", &reference]);
    assert_eq!(code, 0);
    assert!(table.contains("CVE-2019-14697"), "{table}");

    // Build-time policies are Central's: a FAIL_BUILD policy imported there breaks the check.
    let policy = dir.path().join("musl.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "name": "No musl CVE-2019-14697", "severity": "HIGH_SEVERITY",
            "lifecycleStages": ["BUILD"], "enforcementActions": ["FAIL_BUILD_ENFORCEMENT"],
            "policySections": [{"policyGroups": [
                {"fieldName": "CVE", "values": [{"value": "CVE-2019-14697"}]}]}]
        })
        .to_string(),
    )
    .expect("policy");
    let (code, out, err) = run(&["policy", "import", "-f", policy.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, json, err) = run(&["image", "check", "-i", &reference, "-o", "json"]);
    assert_eq!(code, 1, "{json}{err}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["breaking"], 1, "{report}");
    assert_eq!(report["violated"][0]["policy"], "No musl CVE-2019-14697");

    // Local-only flags are refused with -e instead of being ignored.
    let (code, _, err) = run(&["image", "scan", "-i", &reference, "--db", SECDB_310]);
    assert_eq!(code, 2);
    assert!(err.contains("drop --db"), "{err}");
    // A missing image: Central's answer names it.
    let missing = format!("{}/ci/none:1", registry.host);
    let (code, _, err) = run(&["image", "scan", "-i", &missing]);
    assert_eq!(code, 2);
    assert!(err.contains("502") && err.contains("ci/none:1"), "{err}");
    drop(running);
}

/// `rampart baseline` and `rampart alert resolve --add-to-baseline` against a real Central: a
/// deployment named as people know it (cluster name, namespace/name), its learned baseline
/// listed, locked, edited.
#[test]
fn baselines_through_central() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = runtime
        .block_on(rampart_central::runtime::start(
            rampart_central::runtime::Config {
                data_dir: dir.path().to_path_buf(),
                sensor_listen: "127.0.0.1:0".parse().expect("addr"),
                api_listen: "127.0.0.1:0".parse().expect("addr"),
                server_names: vec!["localhost".into()],
                images: Default::default(),
                baselines: Default::default(),
                admin_password: None,
            },
        ))
        .expect("central");
    // What a Sensor would have reported: cluster "prod", deployment shop/web, and two
    // processes its container ran while learning.
    let core = &running.core;
    let mut batch = rampart_central::store::WriteBatch::default();
    batch
        .put_cluster(&rampart_central::model::Cluster {
            id: "c-1".into(),
            name: "prod".into(),
            ..Default::default()
        })
        .expect("cluster");
    let object = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}});
    batch
        .put_deployment(&rampart_central::model::DeploymentRecord {
            cluster_id: "c-1".into(),
            id: "uid-web".into(),
            namespace: "shop".into(),
            name: "web".into(),
            kind: "Deployment".into(),
            object: serde_json::value::to_raw_value(&object).expect("json"),
            content_hash: 1,
            updated_unix_ms: 0,
            generation: 0,
            active_alerts: Vec::new(),
            context: None,
        })
        .expect("deployment");
    let now = rampart_central::model::now_unix_ms();
    for exe in ["/usr/sbin/nginx", "/bin/sh"] {
        core.baselines
            .observe("c-1", "uid-web", "app", exe, now, &mut batch)
            .expect("observe");
    }
    runtime
        .block_on(core.committer.commit(batch))
        .expect("commit");

    let endpoint = format!("https://localhost:{}", running.api_addr.port());
    let ca = running.ca_file.to_str().expect("utf8").to_string();
    let password = running.new_admin_password.clone().expect("password");
    let run = |args: &[&str]| {
        let all: Vec<&str> = ["-e", &endpoint, "--ca", &ca, "--password", &password]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        rampart(&all)
    };
    let (code, out, err) = run(&["baseline", "list", "prod", "shop/web"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/usr/sbin/nginx") && out.contains("learning until"),
        "{out}"
    );
    let (code, out, err) = run(&["baseline", "lock", "prod", "shop/web"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Locked 1 baselines") && out.contains("locked"),
        "{out}"
    );
    let (code, out, err) = run(&[
        "baseline",
        "add",
        "prod",
        "shop/web",
        "--container",
        "app",
        "/usr/bin/curl",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Added /usr/bin/curl"), "{out}");
    let (code, _, err) = run(&[
        "baseline",
        "remove",
        "prod",
        "shop/web",
        "--container",
        "app",
        "/bin/sh",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, json, _) = run(&["baseline", "list", "prod", "shop/web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let paths: Vec<&str> = v["baselines"][0]["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter_map(|e| e["execFilePath"].as_str())
        .collect();
    assert_eq!(paths, ["/usr/bin/curl", "/usr/sbin/nginx"]);
    assert_eq!(v["baselines"][0]["lockedBy"], "USER");
    // Unknown names are clear errors.
    let (code, _, err) = run(&["baseline", "list", "prod", "shop/nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no deployment shop/nope"), "{err}");
    let (code, _, err) = run(&["baseline", "list", "prod", "web"]);
    assert_eq!(code, 2);
    assert!(err.contains("NAMESPACE/NAME"), "{err}");
    let (code, _, err) = run(&[
        "baseline",
        "add",
        "prod",
        "shop/web",
        "--container",
        "sidecar",
        "/bin/x",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no container 'sidecar'"), "{err}");
    // A deploy-time alert cannot add to a baseline.
    let (code, _, err) = run(&["alert", "resolve", "--add-to-baseline", "no-such-alert"]);
    assert_eq!(code, 2);
    assert!(err.contains("404") || err.contains("no alert"), "{err}");
    let (code, _, err) = run(&["baseline", "unlock", "prod", "shop/web"]);
    assert_eq!(code, 0, "{err}");
    assert!(core.baselines.locked_in("c-1").is_empty());

    // Network baselines: web learned a flow to the Internet; lock it, accept another peer,
    // reject one.
    let mut batch = rampart_central::store::WriteBatch::default();
    core.netbaselines
        .observe(
            "c-1",
            "uid-web",
            rampart_central::netbaselines::Peer {
                ingress: false,
                peer: "internet".into(),
                port: 443,
                protocol: "TCP".into(),
            },
            now,
            &mut batch,
        )
        .expect("observe");
    runtime
        .block_on(core.committer.commit(batch))
        .expect("commit");
    let has_row = |out: &str, cells: &[&str]| {
        out.lines().any(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                == cells
        })
    };
    let (code, out, err) = run(&["netbaseline", "list", "prod", "shop/web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Not locked."), "{out}");
    assert!(
        has_row(&out, &["outgoing to", "internet", "443/TCP", "learned"]),
        "{out}"
    );
    let (code, out, err) = run(&["netbaseline", "lock", "prod", "shop/web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Locked"), "{out}");
    let (code, out, err) = run(&[
        "netbaseline",
        "accept",
        "prod",
        "shop/web",
        "--peer",
        "shop/web",
        "--port",
        "8080",
        "--incoming",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        has_row(&out, &["incoming from", "shop/web", "8080/TCP", "accepted"]),
        "{out}"
    );
    let (code, out, err) = run(&[
        "netbaseline",
        "reject",
        "prod",
        "shop/web",
        "--peer",
        "private",
        "--port",
        "22",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("REJECTED"), "{out}");
    let (code, _, err) = run(&[
        "netbaseline",
        "accept",
        "prod",
        "shop/web",
        "--peer",
        "shop/nowhere",
        "--port",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no deployment shop/nowhere"), "{err}");

    // NetworkPolicies from Central: web has no flows yet, so it gets a deny-all policy with DNS
    // kept; the flow export names it.
    let (code, out, err) = run(&["netpol", "generate", "--cluster", "prod"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name: rampart-generated-web"), "{out}");
    assert!(out.contains("port: 53"), "{out}");
    assert!(
        err.contains("1 NetworkPolicies from observed flows (1 to add"),
        "{err}"
    );
    let (code, out, err) = run(&["netpol", "flows", "--cluster", "prod"]);
    assert_eq!(code, 0, "{err}");
    let graph: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(graph["nodes"][0]["name"], "web", "{graph}");
}

/// Offline NetworkPolicy generation: manifests (workloads, a LoadBalancer Service, a namespace,
/// an earlier generated policy) plus a flow export; the YAML applies to the flows it was made
/// from and blocks the one left out as anomalous.
#[test]
fn netpol_generate_offline_from_manifests_and_a_flow_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deployment = |ns: &str, name: &str, port: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}, pod-template-hash: abc}}}}\n    spec: {{containers: [{{name: c, image: x:1, ports: [{{name: main, containerPort: {port}}}]}}]}}\n"
        )
    };
    let manifests = [
        deployment("shop", "web", 8080),
        deployment("shop", "db", 5432),
        deployment("batch", "report", 9000),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80, targetPort: main}]}\n".into(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: shop}}\n".into(),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: rampart-generated-db\n  namespace: shop\n  labels: {network-policy-generator.rampart.io/generated: \"true\"}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]\n".into(),
    ];
    std::fs::create_dir_all(dir.path().join("k8s")).expect("mkdir");
    std::fs::write(dir.path().join("k8s/all.yaml"), manifests.join("---\n")).expect("write");
    let flows = serde_json::json!({
        "nodes": [
            {"id": "u1", "kind": "DEPLOYMENT", "name": "web", "namespace": "shop"},
            {"id": "u2", "kind": "DEPLOYMENT", "name": "db", "namespace": "shop"},
            {"id": "u3", "kind": "DEPLOYMENT", "name": "report", "namespace": "batch"},
            {"id": "u9", "kind": "DEPLOYMENT", "name": "elsewhere", "namespace": "other"},
            {"id": "cidr:partner", "kind": "CIDR_BLOCK", "name": "partner", "cidr": "203.0.113.0/24"}
        ],
        "edges": [
            {"source": "u1", "destination": "u2", "port": 5432, "protocol": "TCP", "anomalous": false},
            {"source": "u3", "destination": "u2", "port": 5432, "protocol": "TCP", "anomalous": false},
            {"source": "u1", "destination": "cidr:partner", "port": 443, "protocol": "TCP", "anomalous": false},
            {"source": "u3", "destination": "u1", "port": 8080, "protocol": "TCP", "anomalous": true},
            {"source": "u9", "destination": "u2", "port": 5432, "protocol": "TCP", "anomalous": false}
        ]
    });
    let flows_path = dir.path().join("flows.json");
    std::fs::write(&flows_path, flows.to_string()).expect("write");
    let k8s = dir.path().join("k8s");
    let (code, out, err) = rampart(&[
        "netpol",
        "generate",
        k8s.to_str().expect("path"),
        "--flows",
        flows_path.to_str().expect("path"),
        "--skip-anomalous",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json on stdout");
    let policy = |name: &str| {
        report["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {report}"))
    };
    assert_eq!(report["policies"].as_array().map(Vec::len), Some(3));
    let db = policy("rampart-generated-db");
    assert_eq!(db["action"], "REPLACE");
    let db_yaml = db["yaml"].as_str().expect("yaml");
    assert!(
        db_yaml.contains("kubernetes.io/metadata.name: batch"),
        "report in another namespace: {db_yaml}"
    );
    let web = policy("rampart-generated-web");
    let web_yaml = web["yaml"].as_str().expect("yaml");
    assert!(web_yaml.contains("cidr: 203.0.113.0/24"), "{web_yaml}");
    assert!(
        web_yaml.contains("port: 8080"),
        "the LoadBalancer's named target port stays open: {web_yaml}"
    );
    assert!(web_yaml.contains("port: 53"), "DNS egress kept: {web_yaml}");
    assert!(!web_yaml.contains("pod-template-hash"), "{web_yaml}");
    // The anomalous flow was left out of generation, so the policies block it: web's
    // LoadBalancer port is open to everyone, but report's egress does not include web.
    let anomalous = serde_json::json!({"source": "batch/report", "destination": "shop/web", "port": 8080, "protocol": "TCP"});
    assert_eq!(report["flows"], 4, "{report}");
    assert_eq!(
        report["blockedAfter"],
        serde_json::json!([anomalous]),
        "{report}"
    );
    assert_eq!(
        policy("rampart-generated-report")["blocks"],
        serde_json::json!([anomalous])
    );
    assert_eq!(
        web["blocks"],
        serde_json::json!([]),
        "exposed port 8080 is open to all"
    );
    // The existing db policy lets only web in; the new one lets report in too.
    assert_eq!(
        report["blockedNow"][0]["source"], "batch/report",
        "{report}"
    );
    assert!(
        report["skipped"]
            .to_string()
            .contains("1 flows of the export"),
        "{report}"
    );

    // Without the Service web's port is closed: web's own policy blocks the flow as well.
    std::fs::write(
        dir.path().join("k8s/all.yaml"),
        manifests
            .iter()
            .filter(|m| !m.contains("kind: Service"))
            .cloned()
            .collect::<Vec<_>>()
            .join("---\n"),
    )
    .expect("write");
    let (code, out, err) = rampart(&[
        "netpol",
        "generate",
        k8s.to_str().expect("path"),
        "--flows",
        flows_path.to_str().expect("path"),
        "--skip-anomalous",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("kind: NetworkPolicy").count(), 3, "{out}");
    assert!(
        err.contains("1 blocked once applied"),
        "summary on stderr: {err}"
    );
    assert!(
        err.contains(
            "shop/rampart-generated-web would block:\n    batch/report → shop/web 8080/TCP"
        ),
        "{err}"
    );

    // Bad input is named.
    std::fs::write(&flows_path, "{\"not\": \"a graph\"}").expect("write");
    let (code, _, err) = rampart(&[
        "netpol",
        "generate",
        k8s.to_str().expect("path"),
        "--flows",
        flows_path.to_str().expect("path"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a network graph export"), "{err}");
    let (code, _, err) = rampart(&["netpol", "generate"]);
    assert_eq!(code, 2);
    assert!(err.contains("--cluster"), "{err}");
    let (code, _, err) = rampart(&[
        "netpol",
        "generate",
        k8s.to_str().expect("path"),
        "--from",
        "baseline",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("baselines are kept in Central"), "{err}");
}

#[test]
fn sensor_print_rbac_writes_the_committed_role_and_otherwise_the_bundle_is_required() {
    let (code, out, err) = rampart(&["sensor", "--print-rbac"]);
    assert_eq!(code, 0, "{err}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/sensor/rbac.yaml"
    ))
    .expect("deploy/sensor/rbac.yaml");
    assert_eq!(out, committed);
    let (code, out, _) = rampart(&["sensor", "--print-rbac", "security"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("  namespace: \"security\"") && !out.contains("namespace: \"rampart\""),
        "{out}"
    );
    // Without the flag the Sensor needs its bundle (its certificate names the cluster).
    let refused = rampart_cli::Cli::try_parse_from(["rampart", "sensor"]).expect_err("refused");
    let text = refused.to_string();
    assert!(text.contains("--bundle-dir"), "{text}");
}
