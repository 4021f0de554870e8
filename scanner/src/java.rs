//! Java archives (jar, war, ear, and Jenkins' hpi/jpi): the Maven artifacts they carry, from
//! `META-INF/maven/<group>/<artifact>/pom.properties` (one per shaded or bundled artifact),
//! else from `META-INF/MANIFEST.MF` and the file name. Archives nested inside (Spring Boot's
//! `BOOT-INF/lib/`, a war's `WEB-INF/lib/`) are read too, two levels deep, each bounded.
//!
//! Components are named `groupId:artifactId` as OSV's Maven ecosystem names them; one known
//! only by its manifest or file name gets the artifact name alone, which image-component
//! policies (Log4Shell's `log4j`) match but OSV matching cannot.

use std::io::{Cursor, Read};

use crate::packages::{Component, EcosystemName};

/// Nested archives larger than this are not opened.
pub const MAX_NESTED_BYTES: u64 = 64 << 20;
/// Entries read per archive, in all.
const MAX_ENTRIES: usize = 200_000;

pub fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".jar", ".war", ".ear", ".hpi", ".jpi"]
        .iter()
        .any(|e| lower.ends_with(e))
}

fn properties(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.starts_with('#') || l.starts_with('!') {
            return None;
        }
        let (k, v) = l.split_once(['=', ':'])?;
        Some((k.trim(), v.trim()))
    })
}

fn component(name: String, version: String) -> Component {
    Component {
        source: name.clone(),
        source_version: version.clone(),
        name,
        version,
        ecosystem: EcosystemName::Maven,
    }
}

/// Main manifest attributes (continuation lines folded).
fn manifest(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // Per-entry sections follow the main one.
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(last) = out.last_mut() {
                last.1.push_str(rest);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// `log4j-core-2.14.1.jar` → (`log4j-core`, `2.14.1`): the name up to the first `-` followed by
/// a digit.
fn from_file_name(path: &str) -> Option<(String, String)> {
    let file = path.rsplit('/').next()?;
    let stem = file.rsplit_once('.')?.0;
    let bytes = stem.as_bytes();
    let at = (1..bytes.len()).find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit())?;
    Some((stem[..at - 1].to_string(), stem[at..].to_string()))
}

/// The Maven artifacts in the archive `data` found at `path`, sorted and deduplicated.
pub fn artifacts(path: &str, data: &[u8]) -> Vec<Component> {
    let mut out = Vec::new();
    let mut budget = MAX_ENTRIES;
    read_archive(path, data, 0, &mut budget, &mut out);
    out.sort();
    out.dedup();
    out
}

fn read_archive(
    path: &str,
    data: &[u8],
    depth: usize,
    budget: &mut usize,
    out: &mut Vec<Component>,
) {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(data)) else {
        return;
    };
    let mut poms = Vec::new();
    let mut manifest_text = None;
    let mut nested = Vec::new();
    for i in 0..zip.len() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(mut entry) = zip.by_index(i) else {
            continue;
        };
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            continue;
        };
        let small = entry.size() <= 1 << 20;
        if name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties") && small {
            let mut text = String::new();
            if entry.read_to_string(&mut text).is_ok() {
                poms.push(text);
            }
        } else if name == "META-INF/MANIFEST.MF" && small {
            let mut text = String::new();
            if entry.read_to_string(&mut text).is_ok() {
                manifest_text = Some(text);
            }
        } else if depth < 2 && is_archive(&name) && entry.size() <= MAX_NESTED_BYTES {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            if (&mut entry)
                .take(MAX_NESTED_BYTES)
                .read_to_end(&mut bytes)
                .is_ok()
            {
                nested.push((name, bytes));
            }
        }
    }
    let mut found = false;
    for pom in &poms {
        let get = |k: &str| properties(pom).find(|(key, _)| *key == k).map(|(_, v)| v);
        if let (Some(g), Some(a), Some(v)) = (get("groupId"), get("artifactId"), get("version"))
            && !g.is_empty()
            && !a.is_empty()
            && !v.is_empty()
        {
            out.push(component(format!("{g}:{a}"), v.to_string()));
            found = true;
        }
    }
    if !found {
        let attrs = manifest_text.as_deref().map(manifest).unwrap_or_default();
        let attr = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let by_name = from_file_name(path);
        let version = attr("Implementation-Version")
            .or_else(|| attr("Bundle-Version"))
            .or_else(|| by_name.as_ref().map(|(_, v)| v.clone()));
        let name = by_name
            .map(|(n, _)| n)
            .or_else(|| attr("Implementation-Title"))
            .or_else(|| {
                attr("Bundle-SymbolicName")
                    .map(|s| s.split(';').next().unwrap_or_default().to_string())
            });
        if let (Some(name), Some(version)) = (name, version) {
            out.push(component(name, version));
        }
    }
    for (name, bytes) in nested {
        read_archive(&name, &bytes, depth + 1, budget, out);
    }
}

/// The compact form a jar is kept in between layers: one `name\tversion` line per artifact.
pub fn encode(components: &[Component]) -> Vec<u8> {
    let mut out = String::new();
    for c in components {
        out.push_str(&c.name);
        out.push('\t');
        out.push_str(&c.version);
        out.push('\n');
    }
    out.into_bytes()
}

pub fn decode(data: &[u8]) -> Vec<Component> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, v)| component(n.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            w.write_all(body).expect("write");
        }
        w.finish().expect("zip").into_inner()
    }

    #[test]
    fn pom_properties_name_group_and_artifact() {
        let jar = zip(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nImplementation-Version: 9\r\n"),
            (
                "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
                b"#Generated\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n",
            ),
        ]);
        let got = artifacts("app/lib/whatever.jar", &jar);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].name.as_str(), got[0].version.as_str()),
            ("org.apache.logging.log4j:log4j-core", "2.14.1")
        );
        assert_eq!(decode(&encode(&got)), got);
    }

    #[test]
    fn nested_jars_and_fallbacks() {
        let inner = zip(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nImplementation-Title: spring-core\nImplementation-Version: 5.3.17\n")]);
        let named = zip(&[("a.class", b"\xca\xfe")]);
        let boot = zip(&[
            ("BOOT-INF/lib/spring-core.jar", &inner),
            ("BOOT-INF/lib/commons-text-1.9.jar", &named),
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"groupId=com.example\nartifactId=app\nversion=1.0.0\n",
            ),
        ]);
        let got: Vec<(String, String)> = artifacts("app.jar", &boot)
            .into_iter()
            .map(|c| (c.name, c.version))
            .collect();
        assert_eq!(
            got,
            vec![
                ("com.example:app".to_string(), "1.0.0".to_string()),
                ("commons-text".to_string(), "1.9".to_string()),
                ("spring-core".to_string(), "5.3.17".to_string()),
            ]
        );
        assert!(artifacts("broken.jar", b"not a zip").is_empty());
        assert_eq!(
            from_file_name("x/jackson-databind-2.13.0.jar"),
            Some(("jackson-databind".into(), "2.13.0".into()))
        );
    }

    #[test]
    fn zip_bombs_and_deep_nesting_stay_bounded() {
        // A nested jar that inflates past the nested-archive bound (a few hundred KB holding
        // 80 MiB of zeros) is not opened; the outer archive's own artifact is still read.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file(
            "BOOT-INF/lib/bomb.jar",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .expect("entry");
        std::io::copy(&mut std::io::repeat(0).take(80 << 20), &mut w).expect("zeros");
        w.start_file(
            "META-INF/maven/g/app/pom.properties",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
        w.write_all(b"groupId=g\nartifactId=app\nversion=2\n")
            .expect("write");
        let outer = w.finish().expect("zip").into_inner();
        assert!(outer.len() < 1 << 20, "{}", outer.len());
        let got: Vec<String> = artifacts("app.jar", &outer)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(got, ["g:app"]);
        // Jars nested three deep: the third level is not opened (two levels are read).
        let level3 = zip(&[(
            "META-INF/maven/g/deep/pom.properties",
            b"groupId=g\nartifactId=deep\nversion=1\n",
        )]);
        let level2 = zip(&[
            ("lib/level3.jar", &level3),
            (
                "META-INF/maven/g/two/pom.properties",
                b"groupId=g\nartifactId=two\nversion=1\n",
            ),
        ]);
        let level1 = zip(&[("lib/level2.jar", &level2)]);
        let top = zip(&[("lib/level1.jar", &level1)]);
        let names: Vec<String> = artifacts("top.jar", &top)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(!names.contains(&"g:deep".to_string()), "{names:?}");
    }
}
