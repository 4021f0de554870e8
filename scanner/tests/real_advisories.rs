//! Version orderings checked against real advisory data in `../shared/data`: every version the
//! PyPA advisory database lists as affected must fall inside one of the record's own ranges
//! when ordered by PEP 440, and every fixed version in Alpine's security database must parse
//! as an apk version.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use rampart_scanner::{Ecosystem, compare};
use serde_json::Value;

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(dir)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("data directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn parse_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read");
    let doc = rampart_policy::yaml::split_documents(&text)
        .into_iter()
        .next()
        .expect("one document");
    rampart_policy::yaml::parse_document(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `v` is inside the OSV `events` of one range: introduced ≤ v < fixed, or
/// ≤ last_affected, or introduced with nothing after it.
fn in_range(v: &str, events: &[Value]) -> Result<bool, String> {
    let cmp = |a: &str, b: &str| compare(Ecosystem::PyPI, a, b).map_err(|e| e.to_string());
    let mut inside = false;
    for event in events {
        if let Some(start) = event["introduced"].as_str() {
            if start == "0" || cmp(v, start)? != Ordering::Less {
                inside = true;
            }
        } else if let Some(end) = event["fixed"].as_str() {
            if inside && cmp(v, end)? == Ordering::Less {
                return Ok(true);
            }
            inside = false;
        } else if let Some(end) = event["last_affected"].as_str() {
            if inside && cmp(v, end)? != Ordering::Greater {
                return Ok(true);
            }
            inside = false;
        }
    }
    Ok(inside)
}

#[test]
fn every_affected_pypi_version_falls_in_its_advisory_range_by_pep_440() {
    let mut files = Vec::new();
    yaml_files(&data("osv-pypa/vulns"), &mut files);
    assert!(files.len() > 2_000, "{} advisories", files.len());
    let (mut checked, mut outside, mut invalid) = (0usize, Vec::new(), Vec::new());
    for path in &files {
        let record = parse_yaml(path);
        for affected in record["affected"].as_array().into_iter().flatten() {
            let ranges: Vec<&Vec<Value>> = affected["ranges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["type"] == "ECOSYSTEM")
                .filter_map(|r| r["events"].as_array())
                .collect();
            if ranges.is_empty() {
                continue;
            }
            for version in affected["versions"].as_array().into_iter().flatten() {
                let Some(v) = version.as_str() else { continue };
                let verdicts: Vec<Result<bool, String>> =
                    ranges.iter().map(|events| in_range(v, events)).collect();
                if let Some(Err(e)) = verdicts.iter().find(|r| r.is_err()) {
                    invalid.push(format!("{}: {e}", path.display()));
                    continue;
                }
                checked += 1;
                if !verdicts.iter().any(|r| matches!(r, Ok(true))) {
                    outside.push(format!("{} {v}", path.display()));
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked} versions checked");
    // Two advisories contradict themselves, and PEP 440 sides with their ranges: gevent lists
    // its fix 23.9.0 (and 23.9.0.post1) as affected, and Django's ranges start at 3.2 and 4.2
    // while listing their pre-releases, which PEP 440 orders before them.
    let known = [
        ("PYSEC-2023-177.yaml", &["23.9.0", "23.9.0.post1"][..]),
        (
            "PYSEC-2023-61.yaml",
            &["3.2a1", "3.2b1", "3.2rc1", "4.2a1", "4.2b1", "4.2rc1"][..],
        ),
    ];
    outside.retain(|o| {
        !known
            .iter()
            .any(|(file, versions)| versions.iter().any(|v| o.ends_with(&format!("{file} {v}"))))
    });
    assert!(
        outside.is_empty(),
        "{} outside their ranges: {:?}",
        outside.len(),
        &outside[..outside.len().min(20)]
    );
    eprintln!(
        "{checked} listed versions checked, {} refused",
        invalid.len()
    );
    // Legacy versions that predate PEP 440 (PyPI still serves a few) are refused, not guessed.
    assert!(
        invalid.len() * 1000 < checked,
        "{} invalid: {:?}",
        invalid.len(),
        &invalid[..invalid.len().min(20)]
    );
}

#[test]
fn every_alpine_fixed_version_parses_and_orders_after_its_own_earlier_revisions() {
    let mut files = Vec::new();
    yaml_files(&data("alpine-secdb"), &mut files);
    assert!(files.len() >= 8, "{} secdb files", files.len());
    let (mut count, mut refused) = (0usize, Vec::new());
    for path in &files {
        let db = parse_yaml(path);
        for package in db["packages"].as_array().into_iter().flatten() {
            let secfixes = &package["pkg"]["secfixes"];
            for fixed in secfixes.as_object().into_iter().flat_map(|m| m.keys()) {
                // "0" marks a CVE that never affected Alpine's package.
                if fixed == "0" {
                    continue;
                }
                let earlier = match fixed.rsplit_once("-r") {
                    Some((main, _)) => format!("{main}_rc0-r0"),
                    None => format!("{fixed}_rc0"),
                };
                match compare(Ecosystem::Alpine, &earlier, fixed) {
                    Ok(order) => assert_eq!(order, Ordering::Less, "{earlier} vs {fixed}"),
                    Err(_) => refused.push(fixed.clone()),
                }
                count += 1;
            }
        }
    }
    assert!(count > 1_000, "{count} fixed versions");
    // The deprecated secdb carries a few typos that apk itself calls invalid (a dot before
    // `-r`, a revision without `r`, a letter followed by digits): refused, not guessed.
    refused.sort();
    refused.dedup();
    let typos = [
        "0.12.5.-r0",
        "0.8.21.r2",
        "1.0.4.-r0",
        "1.11-20-r0",
        "1.18.-r2",
        "1.7.5.-r1",
        "10.2.22.r0",
        "10.2.24.r0",
        "10.2.26.r0",
        "2.15.r-r1",
        "2.7.16-33",
        "4.10-1-r1",
        "4.8.0.-r1",
        "57-1-r2",
        "6.6.2p1-r0",
    ];
    assert_eq!(refused, typos);
}

#[test]
fn every_pypa_advisory_reads_as_an_osv_record_and_matches_its_own_listed_versions() {
    use rampart_scanner::osv::Record;
    let mut files = Vec::new();
    yaml_files(&data("osv-pypa/vulns"), &mut files);
    let (mut scored, mut vectors, mut matched) = (0usize, 0usize, 0usize);
    let mut aiohttp = None;
    for path in &files {
        let record: Record = serde_json::from_value(parse_yaml(path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!record.id.is_empty(), "{}", path.display());
        vectors += record
            .severity
            .iter()
            .filter(|s| s.kind == "CVSS_V3")
            .count();
        if let Some(s) = record.score() {
            assert!(s.score > 0.0 && s.score <= 10.0, "{}: {s:?}", record.id);
            scored += 1;
        }
        // A listed version is affected by its own record, whatever the ranges say (unless the
        // record was withdrawn).
        for affected in record
            .affected
            .iter()
            .filter(|_| record.withdrawn.is_none())
        {
            for v in affected.versions.iter().take(3) {
                let hit = record
                    .affects(Ecosystem::PyPI, &affected.package.name, v)
                    .unwrap_or(None);
                assert!(hit.is_some(), "{} {} {v}", record.id, affected.package.name);
                matched += 1;
            }
        }
        if record.id == "PYSEC-2021-76" {
            aiohttp = Some(record);
        }
    }
    assert_eq!(scored, vectors, "every CVSS v3 vector scores");
    assert!(matched > 5_000, "{matched}");
    let r = aiohttp.expect("PYSEC-2021-76 is in the data");
    assert!(r.aliases.iter().any(|a| a == "CVE-2021-21330"));
    let hit = r
        .affects(Ecosystem::PyPI, "AIOHTTP", "3.7.3")
        .expect("valid");
    assert_eq!(hit.and_then(|m| m.fixed_by).as_deref(), Some("3.7.4"));
    assert_eq!(
        r.affects(Ecosystem::PyPI, "aiohttp", "3.7.4")
            .expect("valid"),
        None
    );
    // PyPA gave this one no CVSS vector: no score rather than a guessed one.
    assert_eq!(r.score(), None);
}

#[test]
fn an_apk_database_of_secdb_packages_is_matched_against_the_real_secdb() {
    use rampart_scanner::packages::apk_installed;
    use rampart_scanner::secdb::SecDb;
    let db: SecDb =
        serde_json::from_value(parse_yaml(&data("alpine-secdb/v3.10/main.yaml"))).expect("secdb");
    assert_eq!(
        (db.distroversion.as_str(), db.reponame.as_str()),
        ("v3.10", "main")
    );
    // An image's installed database: musl one revision before its 2019 fix, ncurses' libraries
    // (origin ncurses) at its latest fix, and a package the secdb does not name.
    let installed = apk_installed(
        "P:musl\nV:1.1.22-r2\nA:x86_64\no:musl\n\n\
         P:ncurses-libs\nV:6.1_p20180414-r0\no:ncurses\n\n\
         P:alpine-baselayout\nV:3.1.2-r0\no:alpine-baselayout\n",
    );
    let found: Vec<(String, Vec<String>)> = installed
        .iter()
        .map(|c| {
            let f = db.findings(&c.source, &c.version).expect("valid");
            (
                c.name.clone(),
                f.into_iter()
                    .map(|f| format!("{} {}", f.cve, f.fixed_by))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        found[0],
        (
            "musl".to_string(),
            vec!["CVE-2019-14697 1.1.22-r3".to_string()]
        )
    );
    assert!(found[1].1.is_empty(), "{found:?}");
    assert!(found[2].1.is_empty(), "{found:?}");
    // Every package just before its newest fix has that fix's CVEs.
    let mut checked = 0;
    for entry in &db.packages {
        let fixes: Vec<&String> = entry.pkg.secfixes.keys().filter(|v| *v != "0").collect();
        let Some(newest) = fixes
            .iter()
            .copied()
            .max_by(|a, b| compare(Ecosystem::Alpine, a, b).unwrap_or(Ordering::Equal))
        else {
            continue;
        };
        let Some((main, _)) = newest.rsplit_once("-r") else {
            continue;
        };
        let Ok(found) = db.findings(&entry.pkg.name, &format!("{main}_rc0-r0")) else {
            continue; // a typo elsewhere in this package's fixes (see the test above)
        };
        for cve in entry.pkg.secfixes[newest].iter().flatten() {
            let id = cve.split_whitespace().next().unwrap_or(cve);
            assert!(
                found.iter().any(|f| f.cve == id),
                "{} {newest}: {id}",
                entry.pkg.name
            );
        }
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn the_index_finds_what_walking_every_record_finds() {
    use rampart_scanner::osv::{Index, Record};
    let mut files = Vec::new();
    yaml_files(&data("osv-pypa/vulns"), &mut files);
    let records: Vec<Record> = files
        .iter()
        .map(|p| serde_json::from_value(parse_yaml(p)).expect("record"))
        .collect();
    let index = Index::new(&records);
    // Real components: packages the advisories name, at listed versions, versions just past a
    // fix and a version no advisory names; names spelled as pip might.
    let mut components: Vec<(String, String)> = Vec::new();
    for r in records.iter().step_by(25) {
        for a in &r.affected {
            let name = a.package.name.to_uppercase().replace('-', "_");
            if let Some(v) = a.versions.first() {
                components.push((name.clone(), v.clone()));
            }
            for e in a.ranges.iter().flat_map(|r| &r.events) {
                if let Some(f) = &e.fixed {
                    components.push((name.clone(), f.clone()));
                }
            }
            components.push((name, "999.0".to_string()));
        }
    }
    assert!(components.len() > 200, "{}", components.len());
    let (mut total, mut hits) = (0, 0);
    for (name, version) in &components {
        let mut walked: Vec<&str> = records
            .iter()
            .filter(|r| matches!(r.affects(Ecosystem::PyPI, name, version), Ok(Some(_))))
            .map(|r| r.id.as_str())
            .collect();
        let Ok(found) = index.matches(Ecosystem::PyPI, name, version) else {
            continue; // an invalid version in some advisory of this package
        };
        let mut indexed: Vec<&str> = found.iter().map(|(r, _)| r.id.as_str()).collect();
        walked.sort_unstable();
        indexed.sort_unstable();
        assert_eq!(indexed, walked, "{name} {version}");
        total += 1;
        hits += indexed.len();
    }
    assert!(
        total > 200 && hits > 100,
        "{total} components, {hits} matches"
    );
}
