//! Alpine's security database (secdb): per release and repository, each source package's
//! `secfixes` — the package version that fixed each list of CVEs. A package installed below a
//! fix is affected by that fix's CVEs; a fix version of `0` marks CVEs that never affected
//! Alpine's build.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::version::{Ecosystem, VersionError, compare};

/// One secdb file (`v3.18/main.json` or its YAML form).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecDb {
    pub distroversion: String,
    pub reponame: String,
    pub packages: Vec<Entry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub pkg: Fixes,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Fixes {
    pub name: String,
    /// Fixed version → the CVEs (sometimes with a note: `CVE-2019-1 (aarch64 only)`) it fixed.
    pub secfixes: BTreeMap<String, Option<Vec<String>>>,
}

/// A CVE affecting an installed package, and the version that fixed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub cve: String,
    pub fixed_by: String,
}

impl SecDb {
    /// The CVEs `package` (a source package name, apk's origin) at `version` is affected by,
    /// each with the first version that fixed it; sorted. A fix version the database itself
    /// writes wrongly is reported, not guessed.
    pub fn findings(&self, package: &str, version: &str) -> Result<Vec<Finding>, VersionError> {
        let mut out = Vec::new();
        for entry in self.packages.iter().filter(|e| e.pkg.name == package) {
            for (fixed, cves) in &entry.pkg.secfixes {
                if fixed == "0" {
                    continue;
                }
                if compare(Ecosystem::Alpine, version, fixed)? != Ordering::Less {
                    continue;
                }
                for cve in cves.iter().flatten() {
                    // Keep the identifier, drop any note after it.
                    let id = cve.split_whitespace().next().unwrap_or(cve);
                    out.push(Finding {
                        cve: id.to_string(),
                        fixed_by: fixed.clone(),
                    });
                }
            }
        }
        out.sort();
        // One CVE fixed in several versions (a backport and a later rebuild): the first fix.
        out.dedup_by(|later, first| {
            later.cve == first.cve && {
                if compare(Ecosystem::Alpine, &later.fixed_by, &first.fixed_by)
                    .is_ok_and(|o| o == Ordering::Less)
                {
                    first.fixed_by = later.fixed_by.clone();
                }
                true
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> SecDb {
        serde_json::from_str(
            r#"{"distroversion":"v3.10","reponame":"main","packages":[
            {"pkg":{"name":"musl","secfixes":{"1.1.22-r3":["CVE-2019-14697"],"1.1.15-r4":["CVE-2016-8859"]}}},
            {"pkg":{"name":"curl","secfixes":{"0":["CVE-2021-0000"],"7.66.0-r0":["CVE-2019-5481 (only with TLS)","CVE-2019-5482"],
             "7.66.0-r1":["CVE-2019-5482"]}}}]}"#,
        )
        .expect("secdb")
    }

    #[test]
    fn an_installed_version_below_a_fix_has_its_cves() {
        let db = db();
        let cves = |p, v| {
            db.findings(p, v)
                .expect("valid")
                .into_iter()
                .map(|f| format!("{} {}", f.cve, f.fixed_by))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cves("musl", "1.1.15-r3"),
            ["CVE-2016-8859 1.1.15-r4", "CVE-2019-14697 1.1.22-r3"]
        );
        assert_eq!(cves("musl", "1.1.22-r2"), ["CVE-2019-14697 1.1.22-r3"]);
        assert!(cves("musl", "1.1.22-r3").is_empty());
        // Notes are dropped, a CVE fixed twice is fixed by the first, "0" never applies.
        assert_eq!(
            cves("curl", "7.65.0-r0"),
            ["CVE-2019-5481 7.66.0-r0", "CVE-2019-5482 7.66.0-r0"]
        );
        assert!(cves("busybox", "1.0-r0").is_empty());
    }
}
