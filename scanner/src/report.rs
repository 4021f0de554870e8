//! Matching an image's packages against the vulnerability data, and the roll-up a user reads:
//! per component its vulnerabilities with the version that fixes each, and for the image the
//! counts by severity, how many are fixable and the top CVSS score.
//!
//! Distribution packages are matched by their source package against their distribution's own
//! data (Alpine's secdb for the image's branch, the Debian tracker for its codename); language
//! packages against OSV. Records naming each other as aliases (a PYSEC, its GHSA and its CVE)
//! are one vulnerability, shown under its CVE. What could not be matched — no data for the
//! image's release, a version the ecosystem rejects — is said in the notes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::analyze::{Found, Inventory};
use crate::osv::{self, Index, Record};
use crate::packages::EcosystemName;
use crate::version::{Ecosystem, compare};
use crate::vulndb::VulnDb;
use crate::{debian, secdb};

/// A vulnerability's severity; `Unknown` when the data gives no score or rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    fn of(severity: osv::Severity) -> Level {
        match severity {
            osv::Severity::None => Level::Unknown,
            osv::Severity::Low => Level::Low,
            osv::Severity::Medium => Level::Medium,
            osv::Severity::High => Level::High,
            osv::Severity::Critical => Level::Critical,
        }
    }

    /// `critical`, `HIGH`, `Important` (ACS's word for high), `moderate`...
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "unknown" => Level::Unknown,
            "low" => Level::Low,
            "medium" | "moderate" => Level::Medium,
            "high" | "important" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "UNKNOWN",
            Level::Low => "LOW",
            Level::Medium => "MEDIUM",
            Level::High => "HIGH",
            Level::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// The CVE when one is known, else the advisory's own identifier.
    pub id: String,
    /// Every other identifier of the same vulnerability.
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Level,
    pub cvss: Option<f64>,
    pub vector: Option<String>,
    /// The lowest version that fixes it; `None` when no fix exists yet.
    pub fixed_by: Option<String>,
    pub published: Option<String>,
    /// `osv`, `alpine-secdb` or `debian-tracker`.
    pub source: Cow<'static, str>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComponentReport {
    pub name: String,
    pub version: String,
    pub ecosystem: Cow<'static, str>,
    /// The source package distribution advisories name.
    pub source: String,
    /// Where in the image it was found.
    pub path: String,
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub components: usize,
    /// Distinct vulnerabilities (by id) across the image.
    pub vulnerabilities: usize,
    pub by_severity: BTreeMap<Cow<'static, str>, usize>,
    /// Distinct vulnerabilities with a fixed-by version.
    pub fixable: usize,
    pub top_cvss: Option<f64>,
}

/// The matched packages of one image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Matched {
    pub components: Vec<ComponentReport>,
    pub summary: Summary,
    pub notes: Vec<String>,
}

/// Scores of OSV records by every id they go by, to rate secdb and tracker CVEs.
fn scores_by_id(records: &[Record]) -> HashMap<&str, osv::Score> {
    let mut out = HashMap::new();
    for r in records {
        if let Some(score) = r.score() {
            for id in std::iter::once(&r.id).chain(&r.aliases).chain(&r.upstream) {
                out.entry(id.as_str()).or_insert_with(|| score.clone());
            }
        }
    }
    out
}

fn display_id(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .find(|i| i.starts_with("CVE-"))
        .or_else(|| ids.iter().find(|i| i.starts_with("GHSA-")))
        .or_else(|| ids.iter().next())
        .cloned()
        .unwrap_or_default()
}

/// The higher of two fix versions (both must be reached to be rid of one vulnerability).
fn higher_fix(ecosystem: Ecosystem, a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => match compare(ecosystem, &a, &b) {
            Ok(Ordering::Less) => Some(b),
            _ => Some(a),
        },
        (a, b) => a.or(b),
    }
}

/// OSV matches for one component, with records that alias each other merged.
fn merge_osv(ecosystem: Ecosystem, matches: Vec<(&Record, osv::Match)>) -> Vec<Vulnerability> {
    struct Group<'r> {
        ids: BTreeSet<String>,
        records: Vec<&'r Record>,
        fixed_by: Option<String>,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (record, m) in matches {
        let ids: BTreeSet<String> = std::iter::once(record.id.clone())
            .chain(record.aliases.iter().cloned())
            .chain(record.upstream.iter().cloned())
            .collect();
        let mut merged = Group {
            ids,
            records: vec![record],
            fixed_by: m.fixed_by,
        };
        // Absorb every group sharing an id (an alias may link two groups).
        let mut i = 0;
        while i < groups.len() {
            if groups[i].ids.intersection(&merged.ids).next().is_some() {
                let g = groups.swap_remove(i);
                merged.ids.extend(g.ids);
                merged.records.extend(g.records);
                merged.fixed_by = higher_fix(ecosystem, merged.fixed_by, g.fixed_by);
            } else {
                i += 1;
            }
        }
        groups.push(merged);
    }
    groups
        .into_iter()
        .map(|g| {
            let id = display_id(&g.ids);
            let score = g
                .records
                .iter()
                .filter_map(|r| r.score())
                .max_by(|a, b| a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal));
            let summary = g
                .records
                .iter()
                .map(|r| r.summary.trim())
                .find(|s| !s.is_empty())
                .unwrap_or_default()
                .to_string();
            let published = g.records.iter().filter_map(|r| r.published.clone()).min();
            Vulnerability {
                aliases: g.ids.iter().filter(|i| **i != id).cloned().collect(),
                id,
                summary,
                severity: score
                    .as_ref()
                    .map_or(Level::Unknown, |s| Level::of(s.severity)),
                cvss: score.as_ref().map(|s| s.score),
                vector: score.map(|s| s.vector),
                fixed_by: g.fixed_by,
                published,
                source: Cow::Borrowed("osv"),
            }
        })
        .collect()
}

fn rated(
    id: String,
    fixed_by: Option<String>,
    fallback: Level,
    source: &'static str,
    scores: &HashMap<&str, osv::Score>,
) -> Vulnerability {
    let score = scores.get(id.as_str());
    Vulnerability {
        severity: score.map_or(fallback, |s| Level::of(s.severity)),
        cvss: score.map(|s| s.score),
        vector: score.map(|s| s.vector.clone()),
        aliases: Vec::new(),
        summary: String::new(),
        published: None,
        id,
        fixed_by,
        source: Cow::Borrowed(source),
    }
}

fn debian_level(urgency: Option<&str>) -> Level {
    match urgency.map(|u| u.trim_end_matches('*').trim()) {
        Some("high") => Level::High,
        Some("medium") => Level::Medium,
        Some("low" | "unimportant") => Level::Low,
        _ => Level::Unknown,
    }
}

/// Matches every package of `inventory` against `db`.
pub fn match_inventory(db: &VulnDb, inventory: &Inventory) -> Matched {
    Matcher::new(db).match_inventory(inventory)
}

/// The vulnerability data prepared for matching: the OSV index (every advisory's versions
/// parsed once) and the scores by id, built once and used for every image (Central rematches
/// all its images when the data changes).
pub struct Matcher<'db> {
    db: &'db VulnDb,
    index: Index<'db>,
    scores: HashMap<&'db str, osv::Score>,
    /// Ecosystems with at least one OSV record.
    osv_ecosystems: BTreeSet<Ecosystem>,
    /// Distribution releases with OSV records (`Debian:12`, `Rocky Linux:9`).
    osv_releases: BTreeSet<&'db str>,
}

impl std::fmt::Debug for Matcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher").finish_non_exhaustive()
    }
}

impl<'db> Matcher<'db> {
    pub fn new(db: &'db VulnDb) -> Matcher<'db> {
        Matcher {
            db,
            index: Index::new(&db.osv),
            scores: scores_by_id(&db.osv),
            osv_ecosystems: db
                .osv
                .iter()
                .flat_map(|r| &r.affected)
                .filter_map(|a| Ecosystem::from_osv(&a.package.ecosystem))
                .collect(),
            osv_releases: db
                .osv
                .iter()
                .flat_map(|r| &r.affected)
                .map(|a| a.package.ecosystem.as_str())
                .filter(|e| e.contains(':'))
                .collect(),
        }
    }

    /// The data it matches with.
    pub fn db(&self) -> &'db VulnDb {
        self.db
    }

    /// Matches every package of `inventory`.
    pub fn match_inventory(&self, inventory: &Inventory) -> Matched {
        let db = self.db;
        let index = &self.index;
        let scores = &self.scores;
        let mut notes = Vec::new();
        let os = inventory.os.clone().unwrap_or_default();
        let alpine_branch = os.alpine_branch();
        let secdbs: &[secdb::SecDb] = alpine_branch
            .as_ref()
            .and_then(|b| db.secdb.get(b))
            .map_or(&[], Vec::as_slice);
        let mut unmatched: BTreeMap<String, usize> = BTreeMap::new();
        let mut components = Vec::with_capacity(inventory.packages.len());
        for Found { component: c, path } in &inventory.packages {
            let ecosystem = c.ecosystem.ecosystem();
            let mut vulns = Vec::new();
            let result: Result<(), crate::VersionError> = (|| {
                match c.ecosystem {
                    EcosystemName::Alpine => {
                        if secdbs.is_empty() {
                            let reason = match &alpine_branch {
                            Some(b) => format!("no Alpine secdb for {b} is loaded"),
                            None => "the image is not Alpine by its os-release, so no Alpine secdb applies".into(),
                        };
                            *unmatched.entry(reason).or_default() += 1;
                            return Ok(());
                        }
                        let mut seen = BTreeSet::new();
                        for db in secdbs {
                            for f in db.findings(&c.source, &c.version)? {
                                if seen.insert(f.cve.clone()) {
                                    vulns.push(rated(
                                        f.cve,
                                        Some(f.fixed_by),
                                        Level::Unknown,
                                        "alpine-secdb",
                                        scores,
                                    ));
                                }
                            }
                        }
                    }
                    EcosystemName::Debian => {
                        if os.id != "debian" {
                            *unmatched
            .entry(format!(
                "dpkg packages of {} are not matched yet (only Debian's data is read)",
                if os.id.is_empty() { "an unknown distribution" } else { &os.id }
            ))
            .or_default() += 1;
                            return Ok(());
                        }
                        // OSV's Debian records are per release (`Debian:12`), named by source package and
                        // its version, as the tracker's are.
                        let major = os.version_id.split('.').next().unwrap_or_default();
                        let release = format!("Debian:{major}");
                        let has_osv =
                            !major.is_empty() && self.osv_releases.contains(release.as_str());
                        if db.debian.is_empty() && !has_osv {
                            *unmatched
            .entry(format!(
                "no Debian data for {} is loaded (the security tracker's JSON, or OSV's Debian records)",
                if major.is_empty() { "this release" } else { &release }
            ))
            .or_default() += 1;
                            return Ok(());
                        }
                        if !db.debian.is_empty() {
                            for f in debian::findings(
                                &db.debian,
                                &os.version_codename,
                                &c.source,
                                &c.source_version,
                            )? {
                                let level = debian_level(f.urgency.as_deref());
                                vulns.push(rated(
                                    f.cve,
                                    f.fixed_by,
                                    level,
                                    "debian-tracker",
                                    scores,
                                ));
                            }
                        }
                        if has_osv {
                            let found = index.matches_in(
                                Ecosystem::Debian,
                                Some(&release),
                                &c.source,
                                &c.source_version,
                            )?;
                            for v in merge_osv(Ecosystem::Debian, found) {
                                // The tracker and OSV name the same CVE: one finding, with OSV's summary and
                                // score where the tracker gave none.
                                match vulns
                                    .iter_mut()
                                    .find(|t| t.id == v.id || v.aliases.contains(&t.id))
                                {
                                    Some(t) => {
                                        if t.cvss.is_none() {
                                            t.cvss = v.cvss;
                                            t.vector = v.vector.clone();
                                            t.severity = t.severity.max(v.severity);
                                        }
                                        if t.summary.is_empty() {
                                            t.summary = v.summary.clone();
                                        }
                                    }
                                    None => vulns.push(v),
                                }
                            }
                        }
                    }
                    EcosystemName::Rpm => {
                        let major = os.version_id.split('.').next().unwrap_or_default();
                        let release = match os.id.as_str() {
                            "rocky" => format!("Rocky Linux:{major}"),
                            "almalinux" => format!("AlmaLinux:{major}"),
                            "rhel" => format!("Red Hat:enterprise_linux:{major}"),
                            other => {
                                *unmatched
                                    .entry(format!(
                                        "rpm packages of {} are not matched yet (OSV data is read for RHEL, Rocky Linux and AlmaLinux)",
                                        if other.is_empty() { "an unknown distribution" } else { other }
                                    ))
                                    .or_default() += 1;
                                return Ok(());
                            }
                        };
                        let loaded = !major.is_empty()
                            && self
                                .osv_releases
                                .iter()
                                .any(|r| *r == release || r.starts_with(&format!("{release}:")));
                        if !loaded {
                            *unmatched
                                .entry(format!("no OSV records for {release} are loaded"))
                                .or_default() += 1;
                            return Ok(());
                        }
                        // Advisories name binary packages in some distributions and source
                        // packages in others: both are looked up, each record once.
                        let mut found = index.matches_in(
                            Ecosystem::Rpm,
                            Some(&release),
                            &c.name,
                            &c.version,
                        )?;
                        if c.source != c.name {
                            for (r, m) in index.matches_in(
                                Ecosystem::Rpm,
                                Some(&release),
                                &c.source,
                                &c.source_version,
                            )? {
                                if !found.iter().any(|(x, _)| std::ptr::eq(*x, r)) {
                                    found.push((r, m));
                                }
                            }
                        }
                        vulns = merge_osv(Ecosystem::Rpm, found);
                    }
                    EcosystemName::PyPI
                    | EcosystemName::Npm
                    | EcosystemName::Maven
                    | EcosystemName::Go
                    | EcosystemName::CratesIo => {
                        if !self.osv_ecosystems.contains(&ecosystem) {
                            *unmatched
                                .entry(format!(
                                    "no OSV records for {} are loaded",
                                    ecosystem.as_str()
                                ))
                                .or_default() += 1;
                            return Ok(());
                        }
                        vulns =
                            merge_osv(ecosystem, index.matches(ecosystem, &c.name, &c.version)?);
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                notes.push(format!(
                    "{} {} (/{path}): not matched: {e}",
                    c.name, c.version
                ));
            }
            vulns.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
            components.push(ComponentReport {
                name: c.name.clone(),
                version: c.version.clone(),
                ecosystem: Cow::Borrowed(ecosystem.as_str()),
                source: c.source.clone(),
                path: path.clone(),
                vulnerabilities: vulns,
            });
        }
        for (reason, count) in unmatched {
            notes.push(format!("{count} packages were not matched: {reason}"));
        }
        let summary = summarize(&components);
        Matched {
            components,
            summary,
            notes,
        }
    }
}

/// Counts over distinct vulnerability ids (one CVE in three packages counts once, at its
/// highest severity, fixable if any package has a fix for it).
pub fn summarize(components: &[ComponentReport]) -> Summary {
    let mut by_id: BTreeMap<&str, (Level, bool, Option<f64>)> = BTreeMap::new();
    for v in components.iter().flat_map(|c| &c.vulnerabilities) {
        let e = by_id.entry(&v.id).or_insert((Level::Unknown, false, None));
        e.0 = e.0.max(v.severity);
        e.1 |= v.fixed_by.is_some();
        e.2 = match (e.2, v.cvss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let mut summary = Summary {
        components: components.len(),
        vulnerabilities: by_id.len(),
        ..Summary::default()
    };
    for (level, fixable, cvss) in by_id.values() {
        *summary
            .by_severity
            .entry(Cow::Borrowed(level.as_str()))
            .or_default() += 1;
        summary.fixable += usize::from(*fixable);
        summary.top_cvss = match (summary.top_cvss, *cvss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    summary
}
