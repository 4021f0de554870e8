//! Version ordering per package ecosystem, as each package manager orders them.

mod apk;
mod dpkg;
mod maven;
mod pep440;
mod rpm;

use std::cmp::Ordering;

/// A package ecosystem, named as OSV names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// How `a` orders against `b` in `ecosystem`.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    let invalid = |v: &str, reason: String| VersionError::new(ecosystem, v, reason);
    match ecosystem {
        Ecosystem::Debian => {
            let a = dpkg::Version::parse(a).map_err(|r| invalid(a, r))?;
            let b = dpkg::Version::parse(b).map_err(|r| invalid(b, r))?;
            Ok(a.cmp(&b))
        }
        Ecosystem::Rpm => Ok(rpm::compare_evr(a, b)),
        Ecosystem::Maven => Ok(maven::compare(a, b)),
        Ecosystem::Alpine => {
            let a = apk::Version::parse(a).map_err(|r| invalid(a, r))?;
            let b = apk::Version::parse(b).map_err(|r| invalid(b, r))?;
            Ok(a.cmp(&b))
        }
        Ecosystem::PyPI => {
            let a = pep440::Version::parse(a).map_err(|r| invalid(a, r))?;
            let b = pep440::Version::parse(b).map_err(|r| invalid(b, r))?;
            Ok(a.cmp(&b))
        }
        Ecosystem::Npm | Ecosystem::CratesIo | Ecosystem::Go => {
            let parse = |v: &str| {
                // Go module versions carry a `v`; npm tolerates one (and `=`).
                let bare = v.trim().trim_start_matches(['v', '=']);
                semver::Version::parse(bare).map_err(|e| invalid(v, e.to_string()))
            };
            // Build metadata (`+incompatible`, `+build.5`) does not order versions.
            Ok(parse(a)?.cmp_precedence(&parse(b)?))
        }
    }
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
