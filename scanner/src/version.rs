//! Version ordering per package ecosystem, as each package manager orders them.

mod apk;
mod dpkg;
mod maven;
mod pep440;
mod rpm;

use std::cmp::Ordering;

/// A package ecosystem, named as OSV names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Debian and Ubuntu packages (dpkg).
    Debian,
    /// Alpine packages (apk).
    Alpine,
    /// RPM-based distributions: RHEL, Fedora, Rocky, Alma, Amazon Linux, SUSE.
    Rpm,
    /// Python packages (PEP 440).
    PyPI,
    /// npm packages (SemVer).
    Npm,
    /// Rust crates (SemVer).
    CratesIo,
    /// Go modules (SemVer with a leading `v`).
    Go,
    /// Maven artifacts (`groupId:artifactId`, Maven's ComparableVersion order).
    Maven,
}

impl Ecosystem {
    /// The ecosystem OSV names `name` (`Debian:12` and `Alpine:v3.18` name a release of one).
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        let base = name.split(':').next().unwrap_or(name);
        Some(match base {
            "Debian" | "Ubuntu" => Ecosystem::Debian,
            "Alpine" => Ecosystem::Alpine,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" => {
                Ecosystem::Rpm
            }
            "PyPI" => Ecosystem::PyPI,
            "npm" => Ecosystem::Npm,
            "crates.io" => Ecosystem::CratesIo,
            "Go" => Ecosystem::Go,
            "Maven" => Ecosystem::Maven,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Debian => "Debian",
            Ecosystem::Alpine => "Alpine",
            Ecosystem::Rpm => "RPM",
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::Maven => "Maven",
        }
    }
}

/// A version its ecosystem does not accept, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ecosystem} version {version:?}: {reason}")]
pub struct VersionError {
    pub ecosystem: &'static str,
    pub version: String,
    pub reason: String,
}

impl VersionError {
    fn new(ecosystem: Ecosystem, version: &str, reason: impl Into<String>) -> VersionError {
        VersionError {
            ecosystem: ecosystem.as_str(),
            version: version.to_string(),
            reason: reason.into(),
        }
    }
}

/// A version parsed once for its ecosystem, to be compared many times (matching compares one
/// installed version with every range event of every advisory naming the package).
#[derive(Debug, Clone)]
pub enum Parsed<'a> {
    Debian(dpkg::Version<'a>),
    Alpine(apk::Version<'a>),
    PyPI(pep440::Version),
    Semver(semver::Version),
    /// rpm and Maven compare their text directly.
    Rpm(&'a str),
    Maven(&'a str),
}

impl Parsed<'_> {
    /// The order of two versions of the same ecosystem (versions of different ecosystems do
    /// not order; they compare equal).
    pub fn cmp_to(&self, other: &Parsed<'_>) -> Ordering {
        match (self, other) {
            (Parsed::Debian(a), Parsed::Debian(b)) => a.cmp(b),
            (Parsed::Alpine(a), Parsed::Alpine(b)) => a.cmp(b),
            (Parsed::PyPI(a), Parsed::PyPI(b)) => a.cmp(b),
            // Build metadata (`+incompatible`, `+build.5`) does not order versions.
            (Parsed::Semver(a), Parsed::Semver(b)) => a.cmp_precedence(b),
            (Parsed::Rpm(a), Parsed::Rpm(b)) => rpm::compare_evr(a, b),
            (Parsed::Maven(a), Parsed::Maven(b)) => maven::compare(a, b),
            _ => Ordering::Equal,
        }
    }
}

/// Parses `v` as `ecosystem` orders it; an invalid version is refused with the reason.
pub fn parse(ecosystem: Ecosystem, v: &str) -> Result<Parsed<'_>, VersionError> {
    let invalid = |reason: String| VersionError::new(ecosystem, v, reason);
    Ok(match ecosystem {
        Ecosystem::Debian => Parsed::Debian(dpkg::Version::parse(v).map_err(invalid)?),
        Ecosystem::Alpine => Parsed::Alpine(apk::Version::parse(v).map_err(invalid)?),
        Ecosystem::PyPI => Parsed::PyPI(pep440::Version::parse(v).map_err(invalid)?),
        Ecosystem::Npm | Ecosystem::CratesIo | Ecosystem::Go => {
            // Go module versions carry a `v`; npm tolerates one (and `=`).
            let bare = v.trim().trim_start_matches(['v', '=']);
            Parsed::Semver(semver::Version::parse(bare).map_err(|e| invalid(e.to_string()))?)
        }
        Ecosystem::Rpm => Parsed::Rpm(v),
        Ecosystem::Maven => Parsed::Maven(v),
    })
}

/// How `a` orders against `b` in `ecosystem`.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(ecosystem, a)?.cmp_to(&parse(ecosystem, b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_ecosystem_names_map_to_their_ordering() {
        assert_eq!(Ecosystem::from_osv("Debian:12"), Some(Ecosystem::Debian));
        assert_eq!(Ecosystem::from_osv("Alpine:v3.18"), Some(Ecosystem::Alpine));
        assert_eq!(Ecosystem::from_osv("Rocky Linux:9"), Some(Ecosystem::Rpm));
        assert_eq!(Ecosystem::from_osv("crates.io"), Some(Ecosystem::CratesIo));
        assert_eq!(Ecosystem::from_osv("Maven"), Some(Ecosystem::Maven));
        assert_eq!(Ecosystem::from_osv("Hackage"), None);
    }

    #[test]
    fn semver_ecosystems_ignore_build_metadata_and_a_leading_v() {
        use Ordering::*;
        let go = |a, b| compare(Ecosystem::Go, a, b).expect("valid");
        assert_eq!(go("v1.2.3", "v1.10.0"), Less);
        assert_eq!(go("v2.0.0+incompatible", "v2.0.0"), Equal);
        // A pseudo-version is a pre-release of the next patch.
        assert_eq!(go("v0.0.0-20230101000000-abcdef123456", "v0.0.1"), Less);
        let npm = |a, b| compare(Ecosystem::Npm, a, b).expect("valid");
        assert_eq!(npm("1.0.0-rc.1", "1.0.0"), Less);
        assert_eq!(npm("1.0.0-alpha.10", "1.0.0-alpha.9"), Greater);
        let err = compare(Ecosystem::CratesIo, "1.0", "1.0.0").expect_err("not semver");
        assert!(
            err.to_string()
                .starts_with("invalid crates.io version \"1.0\""),
            "{err}"
        );
    }
}
