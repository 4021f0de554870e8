//! Installed-package databases, read from their text: dpkg's `status` (and distroless images'
//! `status.d/` files, one stanza each), apk's `lib/apk/db/installed`, and Python's
//! `*.dist-info/METADATA` / `*.egg-info/PKG-INFO`. Each gives components: what is installed,
//! at which version, and for distribution packages the source package advisories name.

use crate::version::Ecosystem;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Component {
    pub name: String,
    pub version: String,
    /// The source package (Debian's `Source:`, Alpine's origin), which distribution advisories
    /// are written against; the package's own name when it has none.
    pub source: String,
    pub source_version: String,
    pub ecosystem: EcosystemName,
}

/// The ecosystem a component's versions order in (a newtype so components sort).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum EcosystemName {
    Debian,
    Alpine,
    PyPI,
    Npm,
    Maven,
    Go,
    Rpm,
    CratesIo,
}

impl EcosystemName {
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            EcosystemName::Debian => Ecosystem::Debian,
            EcosystemName::Alpine => Ecosystem::Alpine,
            EcosystemName::PyPI => Ecosystem::PyPI,
            EcosystemName::Npm => Ecosystem::Npm,
            EcosystemName::Maven => Ecosystem::Maven,
            EcosystemName::Go => Ecosystem::Go,
            EcosystemName::Rpm => Ecosystem::Rpm,
            EcosystemName::CratesIo => Ecosystem::CratesIo,
        }
    }
}

/// RFC 822-style stanzas separated by blank lines, continuation lines folded away: each
/// stanza's fields in order.
fn stanzas(text: &str) -> Vec<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut current: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        // Continuation lines (descriptions, conffiles) belong to the field above.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key, value.trim()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn field<'a>(stanza: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    stanza.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// Packages dpkg has installed (`Status: install ok installed`; a `status.d/` file has no
/// status line and is installed by being there).
pub fn dpkg_status(text: &str) -> Vec<Component> {
    stanzas(text)
        .iter()
        .filter(|s| field(s, "Status").is_none_or(|st| st.ends_with(" installed")))
        .filter_map(|s| {
            let name = field(s, "Package")?;
            let version = field(s, "Version")?;
            // `Source: name (version)` when the source's version differs from the binary's.
            let (source, source_version) = match field(s, "Source") {
                Some(src) => match src.split_once(" (") {
                    Some((n, v)) => (n.trim(), v.trim_end_matches(')').trim()),
                    None => (src, version),
                },
                None => (name, version),
            };
            Some(Component {
                name: name.to_string(),
                version: version.to_string(),
                source: source.to_string(),
                source_version: source_version.to_string(),
                ecosystem: EcosystemName::Debian,
            })
        })
        .collect()
}

/// Packages in apk's installed database (`P:` name, `V:` version, `o:` origin).
pub fn apk_installed(text: &str) -> Vec<Component> {
    let mut out = Vec::new();
    let mut name = None;
    let mut version = None;
    let mut origin = None;
    let mut flush =
        |name: &mut Option<&str>, version: &mut Option<&str>, origin: &mut Option<&str>| {
            if let (Some(n), Some(v)) = (name.take(), version.take()) {
                out.push(Component {
                    name: n.to_string(),
                    version: v.to_string(),
                    source: origin.unwrap_or(n).to_string(),
                    source_version: v.to_string(),
                    ecosystem: EcosystemName::Alpine,
                });
            }
            *origin = None;
        };
    for line in text.lines() {
        match line.split_once(':') {
            Some(("P", v)) => name = Some(v),
            Some(("V", v)) => version = Some(v),
            Some(("o", v)) => origin = Some(v),
            _ if line.is_empty() => flush(&mut name, &mut version, &mut origin),
            _ => {}
        }
    }
    flush(&mut name, &mut version, &mut origin);
    out
}

/// A Python distribution from its core metadata (`METADATA` or `PKG-INFO`): the headers before
/// the first blank line.
pub fn python_metadata(text: &str) -> Option<Component> {
    let headers = text.split("\n\n").next().unwrap_or(text);
    let mut name = None;
    let mut version = None;
    for line in headers.lines() {
        match line.split_once(':') {
            Some(("Name", v)) => name = Some(v.trim()),
            Some(("Version", v)) => version = Some(v.trim()),
            _ => {}
        }
    }
    let (name, version) = (name?, version?);
    Some(Component {
        name: name.to_string(),
        version: version.to_string(),
        source: name.to_string(),
        source_version: version.to_string(),
        ecosystem: EcosystemName::PyPI,
    })
}

/// An npm package from its `package.json` (as installed under `node_modules`): its `name` and
/// `version`; `None` when either is missing or not a string.
pub fn npm_package_json(text: &str) -> Option<Component> {
    #[derive(serde::Deserialize)]
    struct Package<'a> {
        #[serde(borrow)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        version: Option<std::borrow::Cow<'a, str>>,
    }
    let package: Package<'_> = serde_json::from_str(text).ok()?;
    let (name, version) = (package.name?, package.version?);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    Some(Component {
        name: name.to_string(),
        version: version.to_string(),
        source: name.to_string(),
        source_version: version.to_string(),
        ecosystem: EcosystemName::Npm,
    })
}

/// The packages an npm lockfile (`package-lock.json`, `npm-shrinkwrap.json`) pins, each with
/// its path below the lockfile's directory (`node_modules/a/node_modules/b`): lockfile
/// versions 2 and 3 (`packages`) and 1 (nested `dependencies`). Development dependencies, links
/// and the root project are left out: a production install has none of them.
pub fn npm_lockfile(text: &str) -> Vec<(String, Component)> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Lock {
        packages: std::collections::BTreeMap<String, Entry>,
        dependencies: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Entry {
        name: Option<String>,
        version: Option<String>,
        dev: bool,
        link: bool,
        dependencies: serde_json::Value,
    }
    let npm = |name: &str, version: &str| Component {
        name: name.to_string(),
        version: version.to_string(),
        source: name.to_string(),
        source_version: version.to_string(),
        ecosystem: EcosystemName::Npm,
    };
    let Ok(lock) = serde_json::from_str::<Lock>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !lock.packages.is_empty() {
        for (path, e) in &lock.packages {
            if path.is_empty() || e.dev || e.link {
                continue;
            }
            let Some(at) = path.rfind("node_modules/") else {
                continue;
            };
            let name = e
                .name
                .clone()
                .unwrap_or_else(|| path[at + 13..].to_string());
            if let Some(v) = e.version.as_deref().filter(|v| !v.is_empty()) {
                out.push((path.clone(), npm(&name, v)));
            }
        }
        return out;
    }
    // Version 1: dependencies nested under the packages that installed them.
    fn walk(
        deps: &std::collections::BTreeMap<String, Entry>,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, Component)>,
        npm: &dyn Fn(&str, &str) -> Component,
    ) {
        if depth > 64 {
            return;
        }
        for (name, e) in deps {
            let path = format!("{prefix}node_modules/{name}");
            if !e.dev
                && let Some(v) = e
                    .version
                    .as_deref()
                    .filter(|v| !v.is_empty() && !v.starts_with("file:"))
            {
                out.push((path.clone(), npm(name, v)));
            }
            if let Ok(nested) = serde_json::from_value::<std::collections::BTreeMap<String, Entry>>(
                e.dependencies.clone(),
            ) {
                walk(&nested, &format!("{path}/"), depth + 1, out, npm);
            }
        }
    }
    walk(&lock.dependencies, "", 0, &mut out, &npm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_stanzas_give_installed_packages_with_their_source() {
        let status = "Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library\n continued line\n\n\
Package: old\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: libssl3\nStatus: install ok installed\nSource: openssl (3.0.15-1~deb12u1)\nVersion: 3.0.15-1~deb12u1+b1\n";
        let got = dpkg_status(status);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].name.as_str(),
                got[0].source.as_str(),
                got[0].source_version.as_str()
            ),
            ("libc6", "glibc", "2.36-9+deb12u7")
        );
        assert_eq!(
            (
                got[1].version.as_str(),
                got[1].source.as_str(),
                got[1].source_version.as_str()
            ),
            ("3.0.15-1~deb12u1+b1", "openssl", "3.0.15-1~deb12u1")
        );
        // A distroless status.d file: one stanza, no status line.
        let file = dpkg_status("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n");
        assert_eq!(file.len(), 1);
    }

    #[test]
    fn apk_database_entries() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\no:openssl\n";
        let got = apk_installed(db);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[1].name.as_str(), got[1].source.as_str()),
            ("libcrypto3", "openssl")
        );
        assert_eq!(got[1].version, "3.1.4-r5");
    }

    #[test]
    fn python_core_metadata() {
        let meta = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: HTTP\n\nVersion: 9.9 in the description\n";
        let c = python_metadata(meta).expect("component");
        assert_eq!(
            (c.name.as_str(), c.version.as_str()),
            ("requests", "2.31.0")
        );
        assert_eq!(python_metadata("Metadata-Version: 2.1\n"), None);
    }

    #[test]
    fn npm_package_json_gives_name_and_version() {
        let c =
            npm_package_json(r#"{"name":"lodash","version":"4.17.20","dependencies":{"x":"1"}}"#)
                .expect("component");
        assert_eq!((c.name.as_str(), c.version.as_str()), ("lodash", "4.17.20"));
        assert_eq!(c.ecosystem, EcosystemName::Npm);
        assert!(npm_package_json(r#"{"name":"no-version"}"#).is_none());
        assert!(npm_package_json(r#"{"name":1,"version":"1"}"#).is_none());
        assert!(npm_package_json("not json").is_none());
    }

    #[test]
    fn corrupt_package_databases_give_what_they_can_and_never_panic() {
        // Binary garbage, a truncated stanza, stanzas without a version: nothing invented.
        let garbage = String::from_utf8_lossy(
            &(0..4096u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .into_owned();
        assert!(dpkg_status(&garbage).is_empty());
        assert!(apk_installed(&garbage).is_empty());
        let cut = "Package: a\nStatus: install ok installed\nVersion: 1.0\n\nPackage: b\nStatus: install ok installed\nVers";
        let got = dpkg_status(cut);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].name, "a");
        assert!(apk_installed("P:musl\nA:x86_64\n\nV:1.0\n").is_empty());
        assert!(python_metadata("Name: x\n").is_none());
        assert!(npm_lockfile("{\"packages\": 7}").is_empty());
        assert!(npm_lockfile("not json").is_empty());
    }
}
