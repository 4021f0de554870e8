//! The Debian security tracker's JSON (`/tracker/data/json`): for each source package and CVE,
//! per release codename, whether the CVE is open or resolved and in which version. A package
//! below the fixed version is affected (fixable); an open CVE affects every version (no fix
//! yet); a fixed version of `0` means the release never shipped the flaw.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::version::{Ecosystem, VersionError, compare};

/// Source package → CVE → the CVE's entry.
pub type Tracker = BTreeMap<String, BTreeMap<String, Cve>>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Cve {
    pub description: Option<String>,
    pub releases: BTreeMap<String, Release>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Release {
    /// `resolved`, `open` or `undetermined`.
    pub status: String,
    pub fixed_version: Option<String>,
    /// `unimportant`, `low`, `medium`, `high`, `not yet assigned`, or with a `**` suffix.
    pub urgency: Option<String>,
}

/// A CVE affecting an installed source package in one release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub cve: String,
    /// `None` while the CVE is open in the release: nothing to upgrade to yet.
    pub fixed_by: Option<String>,
    pub urgency: Option<String>,
}

/// Parses the tracker's JSON.
pub fn parse(text: &str) -> Result<Tracker, serde_json::Error> {
    serde_json::from_str(text)
}

/// The CVEs source package `source` at `version` has in release `codename` (`bookworm`),
/// sorted by CVE.
pub fn findings(
    tracker: &Tracker,
    codename: &str,
    source: &str,
    version: &str,
) -> Result<Vec<Finding>, VersionError> {
    let mut out = Vec::new();
    let Some(cves) = tracker.get(source) else {
        return Ok(out);
    };
    for (id, cve) in cves {
        let Some(release) = cve.releases.get(codename) else {
            continue;
        };
        let fixed_by = match (release.status.as_str(), release.fixed_version.as_deref()) {
            ("resolved", Some("0")) => continue,
            ("resolved", Some(fixed)) => {
                if compare(Ecosystem::Debian, version, fixed)? != Ordering::Less {
                    continue;
                }
                Some(fixed.to_string())
            }
            ("open" | "undetermined", _) => None,
            _ => continue,
        };
        out.push(Finding {
            cve: id.clone(),
            fixed_by,
            urgency: release.urgency.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_open_and_never_affected_per_release() {
        let tracker = parse(
            r#"{"openssl":{
              "CVE-2024-0727":{"description":"PKCS12 NULL","releases":{
                 "bookworm":{"status":"resolved","fixed_version":"3.0.13-1~deb12u1","urgency":"not yet assigned"},
                 "trixie":{"status":"resolved","fixed_version":"3.1.5-1"}}},
              "CVE-2010-0001":{"releases":{"bookworm":{"status":"resolved","fixed_version":"0","urgency":"unimportant"}}},
              "CVE-2025-9999":{"releases":{"bookworm":{"status":"open","urgency":"low"}}}}}"#,
        )
        .expect("tracker json");
        let ids = |codename, version| {
            findings(&tracker, codename, "openssl", version)
                .expect("valid")
                .into_iter()
                .map(|f| (f.cve, f.fixed_by))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids("bookworm", "3.0.11-1~deb12u2"),
            [
                (
                    "CVE-2024-0727".to_string(),
                    Some("3.0.13-1~deb12u1".to_string())
                ),
                ("CVE-2025-9999".to_string(), None),
            ]
        );
        assert_eq!(
            ids("bookworm", "3.0.13-1~deb12u1"),
            [("CVE-2025-9999".to_string(), None)]
        );
        assert!(ids("bullseye", "1.1.1w-0+deb11u1").is_empty());
        assert!(
            findings(&tracker, "bookworm", "zlib", "1:1.2.13")
                .expect("valid")
                .is_empty()
        );
    }
}
