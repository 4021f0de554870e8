//! Go binaries: the build information the Go toolchain embeds (Go 1.18 and later) — the Go
//! version the binary was built with, which is its standard library's (`stdlib`, as OSV's Go
//! ecosystem names it), and the modules it was linked from (`dep` lines, with `=>`
//! replacements). Binaries built before Go 1.18 keep that data behind pointers and are reported
//! as Go binaries without their modules.

use crate::packages::{Component, EcosystemName};

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// What a Go binary's build information says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.19.8`.
    pub go_version: String,
    /// The main package's path (`github.com/docker/distribution/cmd/registry`).
    pub path: String,
    /// The main module and every dependency, after replacements: (module, version).
    pub modules: Vec<(String, String)>,
}

fn uvarint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*at)?;
        *at += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(x);
        }
    }
    None
}

fn string<'a>(data: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let n = usize::try_from(uvarint(data, at)?).ok()?;
    let s = data.get(*at..at.checked_add(n)?)?;
    *at += n;
    Some(s)
}

/// The build information of an ELF, Mach-O or PE file's bytes; `None` when it is not a Go
/// binary. A pre-1.18 binary gives its version as `unknown (before go1.18)` and no modules.
pub fn build_info(data: &[u8]) -> Option<BuildInfo> {
    let is_binary = data.starts_with(b"\x7fELF")
        || data.starts_with(b"MZ")
        || data.starts_with(&[0xcf, 0xfa, 0xed, 0xfe]);
    if !is_binary {
        return None;
    }
    // The header is 16-byte aligned.
    let mut at = memfind(data, MAGIC)?;
    while at % 16 != 0 {
        at = at + 1 + memfind(&data[at + 1..], MAGIC)?;
    }
    let flags = *data.get(at + 15)?;
    if flags & 2 == 0 {
        return Some(BuildInfo {
            go_version: "unknown (before go1.18)".into(),
            path: String::new(),
            modules: Vec::new(),
        });
    }
    let mut p = at + 32;
    let version = String::from_utf8_lossy(string(data, &mut p)?).into_owned();
    let modinfo = string(data, &mut p)?;
    // Module info sits between two 16-byte sentinels.
    let text = if modinfo.len() >= 33 {
        String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16]).into_owned()
    } else {
        String::new()
    };
    let mut info = BuildInfo {
        go_version: version,
        path: String::new(),
        modules: Vec::new(),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["path", p, ..] => info.path = p.to_string(),
            ["mod" | "dep", module, version, ..] => {
                info.modules.push((module.to_string(), version.to_string()))
            }
            ["=>", module, version, ..] => {
                if let Some(last) = info.modules.last_mut() {
                    *last = (module.to_string(), version.to_string());
                }
            }
            _ => {}
        }
    }
    Some(info)
}

fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The components of a Go binary: `stdlib` at its Go version (`go1.19.8` → `1.19.8`) and its
/// modules with a released version (`(devel)` and local replacements carry none).
pub fn components(info: &BuildInfo) -> Vec<Component> {
    let go = |name: &str, version: &str| Component {
        name: name.to_string(),
        version: version.to_string(),
        source: name.to_string(),
        source_version: version.to_string(),
        ecosystem: EcosystemName::Go,
    };
    let mut out = Vec::new();
    if let Some(v) = info.go_version.strip_prefix("go") {
        // `go1.21.0 X:boringcrypto` and the like: the version is the first word.
        let v = v.split_whitespace().next().unwrap_or(v);
        out.push(go("stdlib", v));
    }
    for (module, version) in &info.modules {
        if version.starts_with('v') {
            out.push(go(module, version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF-looking blob with inline (Go 1.18+) build information.
    fn binary(version: &str, modinfo: &str) -> Vec<u8> {
        let mut data = b"\x7fELF".to_vec();
        data.resize(64, 0);
        data.extend_from_slice(MAGIC);
        data.push(8);
        data.push(2);
        data.resize(96, 0);
        let push_str = |s: &[u8], data: &mut Vec<u8>| {
            let mut n = s.len();
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    data.push(b);
                    break;
                }
                data.push(b | 0x80);
            }
            data.extend_from_slice(s);
        };
        push_str(version.as_bytes(), &mut data);
        let mut wrapped = vec![0x30u8; 16];
        wrapped.extend_from_slice(modinfo.as_bytes());
        wrapped.extend_from_slice(&[0xf9u8; 16]);
        push_str(&wrapped, &mut data);
        data
    }

    #[test]
    fn modules_and_replacements() {
        let data = binary(
            "go1.21.5",
            "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.7.0\th1:abc=\ndep\tgithub.com/old/lib\tv1.0.0\th1:x=\n=>\tgithub.com/new/lib\tv1.2.0\th1:y=\nbuild\tGOOS=linux\n",
        );
        let info = build_info(&data).expect("go binary");
        assert_eq!(info.go_version, "go1.21.5");
        assert_eq!(info.path, "example.com/app");
        let got: Vec<(String, String)> = components(&info)
            .into_iter()
            .map(|c| (c.name, c.version))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stdlib".to_string(), "1.21.5".to_string()),
                ("golang.org/x/net".to_string(), "v0.7.0".to_string()),
                ("github.com/new/lib".to_string(), "v1.2.0".to_string()),
            ]
        );
        assert!(build_info(b"#!/bin/sh\necho hi\n").is_none());
        assert!(build_info(b"\x7fELF not go").is_none());
    }

    #[test]
    fn this_machines_registry_binary() {
        // Debian's docker-registry is a Go program (the tests install it).
        let Ok(data) = std::fs::read("/usr/bin/docker-registry") else {
            panic!("/usr/bin/docker-registry is missing: install Debian's docker-registry");
        };
        let info = build_info(&data).expect("a Go binary");
        assert!(info.go_version.starts_with("go1."), "{info:?}");
        assert_eq!(info.path, "github.com/docker/distribution/cmd/registry");
        assert_eq!(components(&info)[0].name, "stdlib");
    }
}
