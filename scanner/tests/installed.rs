//! The package database readers against this machine's real databases, checked against what
//! the package managers themselves report.

use std::process::Command;

use rampart_scanner::osv::same_package;
use rampart_scanner::packages::{dpkg_status, python_metadata};
use rampart_scanner::version::Ecosystem;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn dpkg_status_lists_what_dpkg_query_lists() {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("a Debian machine");
    let mut ours: Vec<(String, String)> = dpkg_status(&status)
        .into_iter()
        .map(|c| (c.name, c.version))
        .collect();
    let listed = run(
        "dpkg-query",
        &["-W", "-f", "${db:Status-Abbrev}|${Package}|${Version}\n"],
    );
    let mut theirs: Vec<(String, String)> = listed
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|');
            let (status, name, version) = (parts.next()?, parts.next()?, parts.next()?);
            status
                .starts_with("ii")
                .then(|| (name.to_string(), version.to_string()))
        })
        .collect();
    ours.sort();
    theirs.sort();
    assert!(theirs.len() > 50, "{} packages", theirs.len());
    assert_eq!(ours, theirs);
}

#[test]
fn python_metadata_lists_what_pip_lists() {
    let python = "python3";
    let purelib = run(
        python,
        &[
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
    );
    let dir = std::path::Path::new(purelib.trim());
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(dir).expect("site-packages") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let meta = if name.ends_with(".dist-info") {
            path.join("METADATA")
        } else if name.ends_with(".egg-info") && path.is_dir() {
            path.join("PKG-INFO")
        } else if name.ends_with(".egg-info") {
            path.clone()
        } else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&meta) else {
            continue;
        };
        let c = python_metadata(&text)
            .unwrap_or_else(|| panic!("{}: no name or version", meta.display()));
        ours.push((c.name, c.version));
    }
    let listed: serde_json::Value = serde_json::from_str(&run(
        python,
        &[
            "-m",
            "pip",
            "list",
            "--format=json",
            "--path",
            dir.to_str().expect("path"),
        ],
    ))
    .expect("pip json");
    let theirs: Vec<(String, String)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(!theirs.is_empty());
    for (name, version) in &theirs {
        assert!(
            ours.iter()
                .any(|(n, v)| same_package(Ecosystem::PyPI, n, name) && v == version),
            "pip lists {name} {version}; found {ours:?}"
        );
    }
    assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
}
