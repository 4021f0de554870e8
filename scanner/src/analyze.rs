//! What an image holds, read from its rebuilt [`Filesystem`]: the distribution (`os-release`)
//! and every installed package the scanner knows how to read — dpkg (`status` and distroless
//! `status.d/`), apk, Python distributions (`*.dist-info/METADATA`, `*.egg-info`) and npm
//! packages (`node_modules/**/package.json`), and Java archives' Maven artifacts (jars, wars,
//! nested jars; [`java`]), and the Go toolchain and modules of Go binaries ([`gobinary`]). A
//! package database the scanner finds but cannot
//! read (rpm today) is named in the notes, never silently passed over.

use crate::layers::{Filesystem, Node, Select};
use crate::os_release::OsRelease;
use crate::packages::{self, Component};
use crate::{gobinary, java};

/// An installed package and the file it was read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Found {
    pub component: Component,
    /// Path inside the image, without the leading `/`.
    pub path: String,
}

/// Everything analysis read from one image.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub os: Option<OsRelease>,
    pub packages: Vec<Found>,
    /// What could not be analyzed, in words a user can act on.
    pub notes: Vec<String>,
}

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const DPKG_STATUS: &str = "var/lib/dpkg/status";
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";
const APK_INSTALLED: &str = "lib/apk/db/installed";
/// rpm's SQLite database (RHEL 8+, Fedora, UBI, Rocky, Alma), read.
const RPM_SQLITE: [&str; 2] = [
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];
/// rpm's BerkeleyDB (RHEL 7, CentOS 7, Amazon Linux 2) and SUSE's NDB databases: no
/// maintained Rust crate reads them, so they are named in the notes, never passed over.
const RPM_UNSUPPORTED: [(&str, &str); 3] = [
    ("var/lib/rpm/Packages", "BerkeleyDB"),
    ("var/lib/rpm/Packages.db", "NDB"),
    ("usr/lib/sysimage/rpm/Packages.db", "NDB"),
];

/// What analysis reads of each layer: the files [`wants`] names, with Java archives reduced
/// to their artifacts as they are read (a layer's jars are never all held in memory).
#[derive(Debug, Clone, Copy, Default)]
pub struct Analyzers;

/// Executables at most this large are read for Go build information.
const MAX_BINARY_BYTES: u64 = 256 << 20;
/// What a Go binary is reduced to: this line, then its components as `name\tversion` lines.
const GO_TAG: &[u8] = b"#go-buildinfo\n";
/// What a Rust binary built with `cargo auditable` is reduced to, the same way.
const RUST_TAG: &[u8] = b"#cargo-auditable\n";

impl Select for Analyzers {
    fn wants(&self, path: &str, size: u64, mode: u32) -> bool {
        wants(path, size) || (mode & 0o111 != 0 && (64..=MAX_BINARY_BYTES).contains(&size))
    }

    fn keep(&self, path: &str, data: Vec<u8>) -> Vec<u8> {
        if java::is_archive(path) {
            java::encode(&java::artifacts(path, &data))
        } else if wants(path, data.len() as u64) {
            data
        } else {
            // An executable: only a Go binary's or an audited Rust binary's components are kept.
            if let Some(info) = gobinary::build_info(&data) {
                let mut out = GO_TAG.to_vec();
                out.extend(java::encode(&gobinary::components(&info)));
                out
            } else if let Some(crates) = crate::rustbinary::audit_data(&data) {
                let mut out = RUST_TAG.to_vec();
                out.extend(java::encode(&crates));
                out
            } else {
                Vec::new()
            }
        }
    }
}

/// Whether analysis needs the contents of the file at `path` (normalized, no leading `/`).
pub fn wants(path: &str, _size: u64) -> bool {
    java::is_archive(path)
        || OS_RELEASE.contains(&path)
        || path == DPKG_STATUS
        || path == APK_INSTALLED
        || RPM_SQLITE.contains(&path)
        || is_status_d_file(path)
        || is_python_metadata(path)
        || is_npm_manifest(path)
        || is_npm_lockfile(path)
}

/// An application's `package-lock.json` / `npm-shrinkwrap.json` (not one inside
/// `node_modules`, which npm ignores).
fn is_npm_lockfile(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name == "package-lock.json" || name == "npm-shrinkwrap.json")
        && !path.contains("node_modules/")
}

fn is_status_d_file(path: &str) -> bool {
    path.strip_prefix(DPKG_STATUS_D)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
}

fn is_python_metadata(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        // A single-file egg-info (distutils installs) is the metadata itself.
        || (path.ends_with(".egg-info") && !path.ends_with("/.egg-info"))
}

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`.
fn is_npm_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some(at) = dir.rfind("node_modules/") else {
        return false;
    };
    let rest = &dir[at + "node_modules/".len()..];
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [name] => !name.is_empty() && !name.starts_with(['.', '@']),
        [scope, name] => scope.starts_with('@') && !name.is_empty(),
        _ => false,
    }
}

fn text(fs: &Filesystem, path: &str) -> Option<String> {
    fs.read(path)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

/// Reads the distribution and the installed packages of `fs`; packages sorted by name,
/// version, then path.
pub fn inventory(fs: &Filesystem) -> Inventory {
    let mut inv = Inventory {
        os: OS_RELEASE
            .iter()
            .find_map(|p| text(fs, p))
            .map(|t| OsRelease::parse(&t)),
        ..Inventory::default()
    };
    let add = |components: Vec<Component>, path: &str, inv: &mut Inventory| {
        inv.packages
            .extend(components.into_iter().map(|component| Found {
                component,
                path: path.to_string(),
            }));
    };
    if let Some(status) = text(fs, DPKG_STATUS) {
        add(packages::dpkg_status(&status), DPKG_STATUS, &mut inv);
    }
    if let Some(db) = text(fs, APK_INSTALLED) {
        add(packages::apk_installed(&db), APK_INSTALLED, &mut inv);
    }
    for path in RPM_SQLITE {
        let Some(bytes) = fs.read(path) else { continue };
        match crate::rpm::rpmdb_sqlite(bytes) {
            Ok((components, problems)) => {
                add(components, path, &mut inv);
                inv.notes
                    .extend(problems.into_iter().map(|p| format!("/{path}: {p}")));
            }
            Err(e) => inv.notes.push(format!(
                "/{path}: the rpm database could not be read ({e}), so this image's rpm packages are not scanned"
            )),
        }
    }
    for (path, format) in RPM_UNSUPPORTED {
        if fs.lookup(path).is_some() {
            inv.notes.push(format!(
                "/{path}: unsupported rpmdb format ({format}; Rampart reads rpm's SQLite database, RHEL 8 and later), so this image's rpm packages are not scanned"
            ));
        }
    }
    for (path, node) in fs.iter() {
        let Node::File {
            data: Some(data), ..
        } = node
        else {
            continue;
        };
        let body = || String::from_utf8_lossy(data);
        if is_status_d_file(path) {
            add(packages::dpkg_status(&body()), path, &mut inv);
        } else if is_python_metadata(path) {
            match packages::python_metadata(&body()) {
                Some(c) => add(vec![c], path, &mut inv),
                None => inv.notes.push(format!(
                    "/{path}: no Name and Version in the Python metadata"
                )),
            }
        } else if is_npm_manifest(path)
            && let Some(c) = packages::npm_package_json(&body())
        {
            add(vec![c], path, &mut inv);
        } else if is_npm_lockfile(path) {
            // What the lockfile pins and is not installed under node_modules beside it (an
            // installed package is read from its own package.json, the truth of the image).
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let pinned: Vec<Component> = packages::npm_lockfile(&body())
                .into_iter()
                .filter(|(sub, _)| {
                    let manifest = if dir.is_empty() {
                        format!("{sub}/package.json")
                    } else {
                        format!("{dir}/{sub}/package.json")
                    };
                    fs.lookup(&manifest).is_none()
                })
                .map(|(_, c)| c)
                .collect();
            add(pinned, path, &mut inv);
        } else if java::is_archive(path) {
            add(java::decode(data), path, &mut inv);
        } else if let Some(rest) = data.strip_prefix(GO_TAG) {
            let mut components = java::decode(rest);
            for c in &mut components {
                c.ecosystem = crate::packages::EcosystemName::Go;
            }
            add(components, path, &mut inv);
        } else if let Some(rest) = data.strip_prefix(RUST_TAG) {
            let mut components = java::decode(rest);
            for c in &mut components {
                c.ecosystem = crate::packages::EcosystemName::CratesIo;
            }
            add(components, path, &mut inv);
        }
    }
    inv.packages.sort();
    inv.packages.dedup();
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_paths() {
        for p in [
            "etc/os-release",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/tzdata",
            "lib/apk/db/installed",
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3.11/site-packages/six-1.16.0.egg-info",
            "usr/lib/python3.11/site-packages/foo.egg-info/PKG-INFO",
            "app/node_modules/lodash/package.json",
            "app/node_modules/@babel/core/package.json",
            "app/node_modules/a/node_modules/b/package.json",
            "app/package-lock.json",
            "srv/npm-shrinkwrap.json",
        ] {
            assert!(wants(p, 10), "{p}");
        }
        for p in [
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/status.d/tzdata.md5sums",
            "app/package.json",
            "app/node_modules/lodash/lib/package.json",
            "app/node_modules/@babel/package.json",
            "app/node_modules/x/package-lock.json",
            "usr/bin/python3",
        ] {
            assert!(!wants(p, 10), "{p}");
        }
    }

    #[test]
    fn npm_lockfiles_add_what_is_pinned_and_not_installed() {
        use crate::layers::{Compression, Limits};
        let lock = serde_json::json!({
            "name": "shop", "lockfileVersion": 3,
            "packages": {
                "": {"name": "shop", "version": "1.0.0"},
                "node_modules/lodash": {"version": "4.17.20"},
                "node_modules/express": {"version": "4.17.1"},
                "node_modules/express/node_modules/qs": {"version": "6.7.0"},
                "node_modules/jest": {"version": "29.0.0", "dev": true},
                "node_modules/local": {"resolved": "../local", "link": true}
            }
        })
        .to_string();
        let v1 = serde_json::json!({
            "lockfileVersion": 1,
            "dependencies": {"minimist": {"version": "1.2.5", "dependencies": {"x": {"version": "0.1.0"}}},
                             "mocha": {"version": "9.0.0", "dev": true}}
        })
        .to_string();
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in [
            ("app/package-lock.json", lock.as_str()),
            // lodash is installed: read from its package.json, at the installed version.
            (
                "app/node_modules/lodash/package.json",
                r#"{"name":"lodash","version":"4.17.21"}"#,
            ),
            ("legacy/npm-shrinkwrap.json", v1.as_str()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, body.as_bytes())
                .expect("append");
        }
        let tar = b.into_inner().expect("tar");
        let mut fs = Filesystem::new();
        fs.apply(
            &tar[..],
            Compression::None,
            None,
            &Analyzers,
            &Limits::default(),
        )
        .expect("layer");
        let inv = inventory(&fs);
        let got: Vec<(String, String, String)> = inv
            .packages
            .iter()
            .map(|f| {
                (
                    f.component.name.clone(),
                    f.component.version.clone(),
                    f.path.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "express".into(),
                    "4.17.1".into(),
                    "app/package-lock.json".into()
                ),
                (
                    "lodash".into(),
                    "4.17.21".into(),
                    "app/node_modules/lodash/package.json".into()
                ),
                (
                    "minimist".into(),
                    "1.2.5".into(),
                    "legacy/npm-shrinkwrap.json".into()
                ),
                ("qs".into(), "6.7.0".into(), "app/package-lock.json".into()),
                (
                    "x".into(),
                    "0.1.0".into(),
                    "legacy/npm-shrinkwrap.json".into()
                ),
            ]
        );
    }
}
