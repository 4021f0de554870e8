//! The CLI against a real Central process over HTTPS: tokens, roles, `deployment check
//! --remote` giving the same report as a local check, policy management, alerts, clusters and
//! init bundles through the API, and clear errors for wrong credentials or CA.

mod common;

use std::process::Command;

/// Runs `rampart` with the given args; returns (exit code, stdout, stderr).
fn rampart(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_remove("RAMPART_ENDPOINT")
        .env_remove("RAMPART_API_TOKEN")
        .env_remove("RAMPART_ADMIN_PASSWORD")
        .env_remove("RAMPART_CA")
        .output()
        .expect("run rampart");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mixed.yaml");

#[test]
fn the_cli_drives_central_over_its_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = common::start_central(&dir.path().join("data"));
    let password = central
        .password
        .clone()
        .expect("first start prints the password");
    let with = |auth: &[&str], args: &[&str]| {
        let mut all = vec!["-e", &central.api, "--ca", &central.ca];
        all.extend_from_slice(auth);
        all.extend_from_slice(args);
        rampart(&all)
    };
    let admin = ["--password", password.as_str()];

    // Tokens: created by the admin, printed once.
    let (code, out, err) = with(
        &admin,
        &["central", "token", "create", "--name", "ci", "--role", "ci"],
    );
    assert_eq!(code, 0, "{err}");
    let ci_token = out.lines().next().expect("token line").trim().to_string();
    assert!(ci_token.starts_with("rpt_"), "{out}");
    let ci = ["--token", ci_token.as_str()];
    // `deployment check --remote` of the fixture, as CI runs it.
    let remote_check = || {
        with(
            &ci,
            &[
                "deployment",
                "check",
                "--remote",
                "-f",
                FIXTURE,
                "-o",
                "json",
            ],
        )
    };
    let (_, list, _) = with(&admin, &["central", "token", "list"]);
    assert!(
        list.contains("Continuous Integration") && !list.contains(&ci_token),
        "{list}"
    );

    // `deployment check --remote` gives exactly the local report (same engine, same defaults).
    let (local_code, local, _) = rampart(&["deployment", "check", "-f", FIXTURE, "-o", "json"]);
    let (remote_code, remote, err) = remote_check();
    assert_eq!(remote_code, local_code, "{err}");
    assert_eq!(remote, local);
    assert!(remote.contains("Privileged Container"));

    // The CI role detects and nothing else.
    let (code, _, err) = with(&ci, &["policy", "disable", "Privileged Container"]);
    assert_eq!(code, 2);
    assert!(err.contains("403") && err.contains("may not"), "{err}");

    // The admin disables a policy: remote checks stop reporting it.
    let (code, out, err) = with(&admin, &["policy", "disable", "privileged-container"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Disabled 'Privileged Container'"), "{out}");
    let (_, remote, _) = remote_check();
    assert!(
        !remote.contains("\"Privileged Container\""),
        "disabled policies are not run"
    );
    let (_, listed, _) = with(&admin, &["policy", "list", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let privileged = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["name"] == "Privileged Container")
        .expect("listed");
    assert_eq!(privileged["disabled"], true);
    assert_eq!(
        with(&admin, &["policy", "enable", "Privileged Container"]).0,
        0
    );

    // Enforcement, switched on and off by name: remote checks then fail on the policy.
    let breaks = || {
        let (_, remote, _) = remote_check();
        let report: serde_json::Value = serde_json::from_str(&remote).expect("json");
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
            .find(|f| f["policy"] == "Privileged Container")
            .expect("the fixture runs a privileged container")["breaks_build"]
            == true
    };
    assert!(!breaks(), "not enforced by default");
    let (code, out, err) = with(&admin, &["policy", "enforce", "privileged-container"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "Enforced 'Privileged Container' at DEPLOY (SCALE_TO_ZERO_ENFORCEMENT): admission \
         controllers refuse workloads that violate it, and Sensors scale down those that get in."
    );
    assert!(breaks(), "an enforced policy breaks the check");
    let (_, listed, _) = with(&admin, &["policy", "list"]);
    let row = listed
        .lines()
        .find(|l| l.contains("| Privileged Container "))
        .expect("listed");
    assert!(row.contains("| DEPLOY   |"), "{row}");
    // A stage the policy lacks is refused with the stages it has, and nothing changes.
    let (code, _, err) = with(
        &admin,
        &[
            "policy",
            "enforce",
            "Privileged Container",
            "--stage",
            "runtime",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("'Privileged Container' has no RUNTIME stage to enforce (its stages: DEPLOY)"),
        "{err}"
    );
    // An exec policy is enforced by refusing the request.
    let (code, out, err) = with(
        &admin,
        &["policy", "enforce", "Kubernetes Actions: Exec into Pod"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("at RUNTIME (FAIL_KUBE_REQUEST_ENFORCEMENT): admission controllers refuse"),
        "{out}"
    );
    // The CI role may not.
    let (code, _, err) = with(&ci, &["policy", "unenforce", "Privileged Container"]);
    assert_eq!(code, 2);
    assert!(err.contains("403"), "{err}");
    let (code, out, err) = with(&admin, &["policy", "unenforce", "Privileged Container"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "'Privileged Container' is not enforced at DEPLOY; it still raises alerts."
    );
    assert!(!breaks());

    // Import a custom policy; importing it again is refused (exit 1) unless --overwrite.
    let policy = dir.path().join("custom.json");
    std::fs::write(
        &policy,
        r#"{"name":"No busybox","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],
            "policySections":[{"policyGroups":[{"fieldName":"Image Remote","values":[{"value":"r/.*busybox.*"}]}]}]}"#,
    )
    .expect("write");
    let policy = policy.to_str().expect("utf-8");
    let (code, out, err) = with(&admin, &["policy", "import", "-f", policy]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = with(&admin, &["policy", "import", "-f", policy]);
    assert_eq!(code, 1);
    assert!(
        err.contains("exists") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(
        with(&admin, &["policy", "import", "--overwrite", "-f", policy]).0,
        0
    );
    let (code, got, _) = with(&admin, &["policy", "get", "No busybox"]);
    assert_eq!(code, 0);
    assert!(got.contains("\"Image Remote\""), "{got}");

    // Clusters, alerts and init bundles over the API.
    let bundle = dir.path().join("bundle");
    let (code, out, err) = with(
        &admin,
        &[
            "central",
            "init-bundle",
            "generate",
            "edge",
            "--output-dir",
            bundle.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(bundle.join("sensor-key.pem").exists());
    // As Secrets on standard output, for `| kubectl apply -f -`: nothing there but manifests
    // (what it says is in comments), the three the manifests in deploy/ mount.
    let (code, out, err) = with(
        &admin,
        &[
            "central",
            "init-bundle",
            "generate",
            "edge-2",
            "--output-secrets",
            "-",
            "--output-dir",
            dir.path().join("bundle-2").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let docs: Vec<serde_json::Value> = rampart_policy::yaml::split_documents(&out)
        .into_iter()
        .map(|d| rampart_policy::yaml::parse_document(d).expect("only YAML on stdout"))
        .filter(|d| !d.is_null())
        .collect();
    assert!(docs.iter().all(|d| d["kind"] == "Secret"), "{out}");
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "rampart-sensor-bundle",
            "rampart-admission-bundle",
            "rampart-collector-bundle"
        ]
    );
    assert!(out.contains("# Bundle id: "), "{out}");
    let (_, bundles, _) = with(&admin, &["central", "init-bundle", "list"]);
    assert!(bundles.contains("edge"), "{bundles}");
    let (code, clusters, err) = with(&admin, &["cluster", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(clusters.contains("CLUSTER"), "{clusters}");
    let (code, alerts, err) = with(&admin, &["alert", "list", "-q", "Severity:HIGH"]);
    assert_eq!(code, 0, "{err}");
    assert!(alerts.contains("0 of 0 alerts"), "{alerts}");

    // Clear errors: no credentials, a wrong password, the wrong CA, no endpoint.
    let (code, _, err) = with(&[], &["cluster", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("401") && err.contains("--token"), "{err}");
    let (code, _, err) = with(&["--password", "wrong"], &["cluster", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid credentials"), "{err}");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::copy(bundle.join("sensor.pem"), &other_ca).expect("copy");
    let (code, _, err) = rampart(&[
        "-e",
        &central.api,
        "--ca",
        other_ca.to_str().expect("utf-8"),
        "--password",
        &password,
        "cluster",
        "list",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--ca"), "{err}");
    let (code, _, err) = rampart(&["alert", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("-e/--endpoint"), "{err}");
}
