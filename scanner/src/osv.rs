//! OSV advisories (the schema osv.dev, PyPA, GitHub and the distributions publish): which
//! versions of which packages a record affects, what fixes them, and how severe it is.
//!
//! A package version is affected when its ecosystem's ordering puts it inside one of the
//! record's `ECOSYSTEM` or `SEMVER` ranges (`introduced` ≤ v < `fixed`, or ≤ `last_affected`,
//! or `introduced` with no end), or when the record lists it under `versions`. `GIT` ranges
//! name commits, which an image does not carry, and are left to the listed versions.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use serde::Deserialize;

use crate::version::{Ecosystem, Parsed, VersionError, compare};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Record {
    pub id: String,
    pub aliases: Vec<String>,
    /// The upstream vulnerabilities a distribution's record is about (Debian's
    /// `DEBIAN-CVE-…` and DSA records name their CVEs here); treated as aliases.
    pub upstream: Vec<String>,
    pub summary: String,
    pub details: String,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub withdrawn: Option<String>,
    pub severity: Vec<SeverityEntry>,
    pub affected: Vec<Affected>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SeverityEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Affected {
    pub package: Package,
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Package {
    pub name: String,
    pub ecosystem: String,
    pub purl: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

/// Severity bands, as CVSS names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The band a CVSS score falls in.
    pub fn of_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::None,
        }
    }
}

/// A record's score from one of its CVSS vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// `CVSS_V3` or `CVSS_V4`.
    pub kind: String,
    pub vector: String,
    pub score: f64,
    pub severity: Severity,
}

/// A record that affects a package version, and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The lowest fixed version above the package's, if the record names one.
    pub fixed_by: Option<String>,
}

/// Package names compare as their ecosystem does: PyPI folds case and treats runs of `-`, `_`
/// and `.` alike (PEP 503); the others compare exactly.
pub fn same_package(ecosystem: Ecosystem, a: &str, b: &str) -> bool {
    package_key(ecosystem, a) == package_key(ecosystem, b)
}

impl Record {
    /// Parses a record from JSON text.
    pub fn from_json(text: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The record's highest CVSS score (v4 preferred over v3 at equal score); vectors that do
    /// not parse are skipped.
    pub fn score(&self) -> Option<Score> {
        self.severity
            .iter()
            .filter(|s| s.kind == "CVSS_V3" || s.kind == "CVSS_V4")
            .filter_map(|s| {
                let cvss = cvss::Cvss::from_str(s.score.trim()).ok()?;
                let score = cvss.score();
                Some(Score {
                    kind: s.kind.clone(),
                    vector: s.score.clone(),
                    score,
                    severity: Severity::of_score(score),
                })
            })
            .max_by(|a, b| {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.kind.cmp(&b.kind))
            })
    }

    /// Whether the record affects `name` at `version` in `ecosystem`; withdrawn records affect
    /// nothing. An invalid version in the record or the package is an error, not a guess.
    pub fn affects(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Option<Match>, VersionError> {
        if self.withdrawn.is_some() {
            return Ok(None);
        }
        for affected in &self.affected {
            if Ecosystem::from_osv(&affected.package.ecosystem) != Some(ecosystem)
                || !same_package(ecosystem, &affected.package.name, name)
            {
                continue;
            }
            let listed = affected.versions.iter().any(|v| v == version);
            if let Some(m) = affected_match(ecosystem, affected, listed, version)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }
}

/// Whether one `affected` entry (already known to name the package) covers `version`.
fn affected_match(
    ecosystem: Ecosystem,
    affected: &Affected,
    listed: bool,
    version: &str,
) -> Result<Option<Match>, VersionError> {
    // A listed version is affected whatever the ranges say (and even when it is not valid for
    // its ecosystem: legacy versions are listed by name).
    if listed {
        let fixed_by = lowest_fix_above(ecosystem, &affected.ranges, version).unwrap_or(None);
        return Ok(Some(Match { fixed_by }));
    }
    for range in &affected.ranges {
        if range.kind != "ECOSYSTEM" && range.kind != "SEMVER" {
            continue;
        }
        if let Some(m) = range_match(ecosystem, &range.events, version)? {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// Records indexed by the packages they name, with each entry's listed versions hashed: what
/// matching an image's components looks up, instead of walking every record.
pub struct Index<'r> {
    by_package: HashMap<(Ecosystem, String), Vec<Entry<'r>>>,
}

struct Entry<'r> {
    record: &'r Record,
    affected: &'r Affected,
    listed: HashSet<&'r str>,
    /// The `ECOSYSTEM`/`SEMVER` ranges with their versions parsed once; `None` when one does
    /// not parse, and matching then goes the slow way to report it.
    parsed: Option<Vec<Vec<ParsedEvent<'r>>>>,
}

#[derive(Debug)]
enum ParsedEvent<'r> {
    /// `None` is `introduced: "0"`.
    Introduced(Option<Parsed<'r>>),
    Fixed(Parsed<'r>, &'r str),
    LastAffected(Parsed<'r>),
    Limit(Parsed<'r>),
}

fn parse_ranges<'r>(
    ecosystem: Ecosystem,
    ranges: &'r [Range],
) -> Option<Vec<Vec<ParsedEvent<'r>>>> {
    let p = |v: &'r str| crate::version::parse(ecosystem, v).ok();
    ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .map(|r| {
            r.events
                .iter()
                .map(|e| {
                    Some(if let Some(v) = &e.introduced {
                        ParsedEvent::Introduced(if v == "0" { None } else { Some(p(v)?) })
                    } else if let Some(v) = &e.fixed {
                        ParsedEvent::Fixed(p(v)?, v)
                    } else if let Some(v) = &e.last_affected {
                        ParsedEvent::LastAffected(p(v)?)
                    } else if let Some(v) = &e.limit {
                        ParsedEvent::Limit(p(v)?)
                    } else {
                        // An empty event: nothing to order, as the slow path ignores it.
                        ParsedEvent::Limit(None?)
                    })
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect()
}

/// `range_match` over parsed events.
fn parsed_range_match(version: &Parsed<'_>, events: &[ParsedEvent<'_>]) -> Option<Match> {
    let mut inside = false;
    for event in events {
        match event {
            ParsedEvent::Introduced(start) => {
                if start
                    .as_ref()
                    .is_none_or(|s| version.cmp_to(s) != Ordering::Less)
                {
                    inside = true;
                }
            }
            ParsedEvent::Fixed(end, text) => {
                if inside && version.cmp_to(end) == Ordering::Less {
                    return Some(Match {
                        fixed_by: Some(text.to_string()),
                    });
                }
                inside = false;
            }
            ParsedEvent::LastAffected(end) => {
                if inside && version.cmp_to(end) != Ordering::Greater {
                    return Some(Match { fixed_by: None });
                }
                inside = false;
            }
            ParsedEvent::Limit(end) => {
                if inside && version.cmp_to(end) != Ordering::Less {
                    inside = false;
                }
            }
        }
    }
    inside.then_some(Match { fixed_by: None })
}

/// The lowest parsed `fixed` above `version`.
fn parsed_lowest_fix_above(
    version: &Parsed<'_>,
    ranges: &[Vec<ParsedEvent<'_>>],
) -> Option<String> {
    let mut best: Option<(&Parsed<'_>, &str)> = None;
    for (fixed, text) in ranges.iter().flatten().filter_map(|e| match e {
        ParsedEvent::Fixed(p, t) => Some((p, *t)),
        _ => None,
    }) {
        if fixed.cmp_to(version) == Ordering::Greater
            && best.is_none_or(|(b, _)| fixed.cmp_to(b) == Ordering::Less)
        {
            best = Some((fixed, text));
        }
    }
    best.map(|(_, t)| t.to_string())
}

/// Whether an OSV ecosystem (`Debian:12`, `Red Hat:enterprise_linux:9::appstream`) belongs to
/// `release` (`Debian:12`, `Red Hat:enterprise_linux:9`).
fn in_release(ecosystem: &str, release: &str) -> bool {
    ecosystem
        .strip_prefix(release)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// The key a package name is looked up by in its ecosystem.
fn package_key(ecosystem: Ecosystem, name: &str) -> String {
    match ecosystem {
        Ecosystem::PyPI => name
            .split(['-', '_', '.'])
            .filter(|p| !p.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join("-"),
        _ => name.to_string(),
    }
}

impl<'r> Index<'r> {
    /// Indexes every record that is not withdrawn, under each ecosystem and package it names.
    pub fn new(records: &'r [Record]) -> Index<'r> {
        let mut by_package: HashMap<(Ecosystem, String), Vec<Entry<'r>>> = HashMap::new();
        for record in records.iter().filter(|r| r.withdrawn.is_none()) {
            for affected in &record.affected {
                let Some(ecosystem) = Ecosystem::from_osv(&affected.package.ecosystem) else {
                    continue;
                };
                by_package
                    .entry((ecosystem, package_key(ecosystem, &affected.package.name)))
                    .or_default()
                    .push(Entry {
                        record,
                        affected,
                        listed: affected.versions.iter().map(String::as_str).collect(),
                        parsed: parse_ranges(ecosystem, &affected.ranges),
                    });
            }
        }
        Index { by_package }
    }

    /// The records affecting `name` at `version`, each with what fixes it (a record once, by
    /// its first affected entry that matches).
    pub fn matches(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Vec<(&'r Record, Match)>, VersionError> {
        self.matches_in(ecosystem, None, name, version)
    }

    /// As [`Index::matches`], keeping only entries of one release's ecosystem when given
    /// (`Debian:12`: a distribution's advisories are per release).
    pub fn matches_in(
        &self,
        ecosystem: Ecosystem,
        release: Option<&str>,
        name: &str,
        version: &str,
    ) -> Result<Vec<(&'r Record, Match)>, VersionError> {
        let mut out: Vec<(&'r Record, Match)> = Vec::new();
        let Some(entries) = self
            .by_package
            .get(&(ecosystem, package_key(ecosystem, name)))
        else {
            return Ok(out);
        };
        // Parsed once for all entries; a version the ecosystem rejects still matches the
        // advisories that list it by name (legacy versions), through the slow path.
        let parsed = crate::version::parse(ecosystem, version).ok();
        for e in entries {
            if release.is_some_and(|r| !in_release(&e.affected.package.ecosystem, r))
                || out.iter().any(|(r, _)| std::ptr::eq(*r, e.record))
            {
                continue;
            }
            let listed = e.listed.contains(version);
            let m = match (&parsed, &e.parsed) {
                (Some(v), Some(ranges)) => {
                    if listed {
                        Some(Match {
                            fixed_by: parsed_lowest_fix_above(v, ranges),
                        })
                    } else {
                        ranges
                            .iter()
                            .find_map(|events| parsed_range_match(v, events))
                    }
                }
                _ => affected_match(ecosystem, e.affected, listed, version)?,
            };
            if let Some(m) = m {
                out.push((e.record, m));
            }
        }
        Ok(out)
    }
}

/// Walks one range's events in order (OSV sorts them by version).
fn range_match(
    ecosystem: Ecosystem,
    events: &[Event],
    version: &str,
) -> Result<Option<Match>, VersionError> {
    let cmp = |a: &str, b: &str| compare(ecosystem, a, b);
    let mut inside = false;
    for event in events {
        if let Some(start) = &event.introduced {
            if start == "0" || cmp(version, start)? != Ordering::Less {
                inside = true;
            }
        } else if let Some(end) = &event.fixed {
            if inside && cmp(version, end)? == Ordering::Less {
                return Ok(Some(Match {
                    fixed_by: Some(end.clone()),
                }));
            }
            inside = false;
        } else if let Some(end) = &event.last_affected {
            if inside && cmp(version, end)? != Ordering::Greater {
                return Ok(Some(Match { fixed_by: None }));
            }
            inside = false;
        } else if let Some(end) = &event.limit
            && inside
            && cmp(version, end)? != Ordering::Less
        {
            inside = false;
        }
    }
    Ok(inside.then_some(Match { fixed_by: None }))
}

/// The lowest `fixed` version above `version` in any range.
fn lowest_fix_above(
    ecosystem: Ecosystem,
    ranges: &[Range],
    version: &str,
) -> Result<Option<String>, VersionError> {
    let mut best: Option<&str> = None;
    for fixed in ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
        .flat_map(|r| &r.events)
        .filter_map(|e| e.fixed.as_deref())
    {
        if compare(ecosystem, fixed, version)? == Ordering::Greater
            && best.is_none_or(|b| compare(ecosystem, fixed, b).is_ok_and(|o| o.is_lt()))
        {
            best = Some(fixed);
        }
    }
    Ok(best.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        Record::from_json(json).expect("record")
    }

    #[test]
    fn ranges_fixes_and_listed_versions() {
        let r = record(
            r#"{"id":"X-1","affected":[{"package":{"name":"Django","ecosystem":"PyPI"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"3.2"},{"fixed":"3.2.19"},
            {"introduced":"4.0"},{"fixed":"4.1.9"}]}],"versions":["3.2rc1"]}]}"#,
        );
        let at = |v| r.affects(Ecosystem::PyPI, "django", v).expect("valid");
        let fixed = |v: &str| {
            Some(Match {
                fixed_by: Some(v.to_string()),
            })
        };
        assert_eq!(at("3.2.18"), fixed("3.2.19"));
        assert_eq!(at("3.2.19"), None);
        assert_eq!(at("4.1"), fixed("4.1.9"));
        assert_eq!(at("4.1.9"), None);
        assert_eq!(at("3.1"), None);
        // Listed, though before the range: affected, fixed by the first fix above it.
        assert_eq!(at("3.2rc1"), fixed("3.2.19"));
        // Another ecosystem's package of the same name is not this one.
        assert_eq!(
            r.affects(Ecosystem::Npm, "django", "3.2.18")
                .expect("valid"),
            None
        );
    }

    #[test]
    fn last_affected_open_ranges_and_withdrawn_records() {
        let r = record(
            r#"{"id":"X-2","affected":[{"package":{"name":"musl","ecosystem":"Alpine:v3.18"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"last_affected":"1.2.4-r0"}]}]},
            {"package":{"name":"zlib","ecosystem":"Alpine:v3.18"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.3-r0"}]}]}]}"#,
        );
        let at = |p, v| r.affects(Ecosystem::Alpine, p, v).expect("valid");
        assert_eq!(at("musl", "1.2.4-r0"), Some(Match { fixed_by: None }));
        assert_eq!(at("musl", "1.2.4-r1"), None);
        assert_eq!(at("zlib", "1.3.1-r0"), Some(Match { fixed_by: None }));
        assert_eq!(at("zlib", "1.2.13-r0"), None);
        let mut withdrawn = r.clone();
        withdrawn.withdrawn = Some("2024-01-01T00:00:00Z".into());
        assert_eq!(
            withdrawn
                .affects(Ecosystem::Alpine, "zlib", "1.3.1-r0")
                .expect("valid"),
            None
        );
    }

    #[test]
    fn scores_come_from_cvss_vectors() {
        let r = record(
            r#"{"id":"X-3","severity":[
              {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
              {"type":"CVSS_V3","score":"not a vector"}]}"#,
        );
        let s = r.score().expect("a score");
        assert_eq!((s.score, s.severity), (9.8, Severity::Critical));
        let low = record(
            r#"{"id":"X-4","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N"}]}"#,
        );
        assert_eq!(
            low.score().map(|s| (s.score, s.severity)),
            Some((2.8, Severity::Low))
        );
        let v4 = record(
            r#"{"id":"X-5","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]}"#,
        );
        assert_eq!(
            v4.score().map(|s| (s.score, s.severity)),
            Some((9.3, Severity::Critical))
        );
        assert_eq!(record(r#"{"id":"X-6"}"#).score(), None);
    }

    #[test]
    fn pypi_names_fold_as_pep_503_says() {
        assert!(same_package(
            Ecosystem::PyPI,
            "Zope.Interface",
            "zope-interface"
        ));
        assert!(same_package(
            Ecosystem::PyPI,
            "typing__extensions",
            "typing-extensions"
        ));
        assert!(!same_package(Ecosystem::PyPI, "requests", "requests2"));
        assert!(!same_package(Ecosystem::Npm, "Lodash", "lodash"));
    }
}
