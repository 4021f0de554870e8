//! The vulnerability data a scan matches against, read from files as their publishers ship them:
//! OSV records (JSON or YAML, one record per file, or an array), Alpine secdb files (JSON or
//! YAML) and the Debian security tracker's JSON. A file's kind is told from its content, not its
//! name, and a directory is read recursively. A file that is none of these, or does not parse,
//! is named with the reason and loading goes on: one bad record never hides the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::debian::Tracker;
use crate::osv::Record;
use crate::secdb::SecDb;

/// What one load read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub files: usize,
    pub osv_records: usize,
    pub secdb_files: usize,
    pub debian_packages: usize,
    /// Files skipped, each with why.
    pub rejected: Vec<(PathBuf, String)>,
}

/// Vulnerability data in memory.
#[derive(Debug, Default)]
pub struct VulnDb {
    pub osv: Vec<Record>,
    /// Alpine secdb files, by branch (`v3.18`): every repository's.
    pub secdb: BTreeMap<String, Vec<SecDb>>,
    pub debian: Tracker,
    /// The newest `modified` time among the OSV records (RFC 3339), for the data's age.
    pub newest_modified: Option<String>,
}

/// Files larger than this are refused (the Debian tracker's JSON is about 70 MB).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// One piece of vulnerability data, told from its content.
#[derive(Debug, Clone)]
pub enum Doc {
    Osv(Value),
    /// One Alpine secdb file (a branch's repository).
    Secdb(Value),
    /// The Debian tracker's JSON (source package → CVE → releases).
    Debian(Value),
}

/// Parses one file's text (`yaml` when YAML) into the documents it holds: a record, an array
/// of records, a secdb file or the tracker.
pub fn parse(text: &str, yaml: bool) -> Result<Vec<Doc>, String> {
    let value = if yaml {
        let doc = rampart_policy::yaml::split_documents(text)
            .into_iter()
            .next()
            .ok_or("the file holds no YAML document")?;
        rampart_policy::yaml::parse_document(doc).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON: {e}"))?
    };
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_osv) => {
            Ok(items.into_iter().map(Doc::Osv).collect())
        }
        v if is_osv(&v) => Ok(vec![Doc::Osv(v)]),
        Value::Object(map) if map.contains_key("distroversion") && map.contains_key("packages") => {
            Ok(vec![Doc::Secdb(Value::Object(map))])
        }
        Value::Object(map) if is_debian_tracker(&map) => Ok(vec![Doc::Debian(Value::Object(map))]),
        _ => {
            Err("neither an OSV record, an Alpine secdb file nor the Debian tracker's JSON".into())
        }
    }
}

/// What [`for_each_file`] calls per file: (name, text, is YAML, stats).
pub type FileVisitor<'a> = dyn FnMut(&str, &str, bool, &mut LoadStats) -> Result<(), String> + 'a;

/// Calls `f` with every data file under `path` — a file, a directory (recursively: `.json`,
/// `.yaml`, `.yml`, `.zip`) or a zip of JSON records as osv.dev publishes per ecosystem — as
/// (name, text, is YAML). Unreadable files are recorded in `stats`, not fatal.
pub fn for_each_file(
    path: &Path,
    stats: &mut LoadStats,
    f: &mut FileVisitor<'_>,
) -> std::io::Result<()> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    files.sort();
    for file in files {
        if file.extension().is_some_and(|e| e == "zip") {
            if let Err(reason) = for_each_zip_entry(&file, stats, f) {
                stats.rejected.push((file, reason));
            }
            continue;
        }
        stats.files += 1;
        let text = match read_bounded(&file) {
            Ok(t) => t,
            Err(reason) => {
                stats.rejected.push((file, reason));
                continue;
            }
        };
        let yaml = file.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if let Err(reason) = f(&file.to_string_lossy(), &text, yaml, stats) {
            stats.rejected.push((file, reason));
        }
    }
    Ok(())
}

fn for_each_zip_entry(
    file: &Path,
    stats: &mut LoadStats,
    f: &mut FileVisitor<'_>,
) -> Result<(), String> {
    let reader = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(reader))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_default();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !(yaml || name.ends_with(".json")) {
            continue;
        }
        stats.files += 1;
        let where_ = PathBuf::from(format!("{}!{name}", file.display()));
        if entry.size() > MAX_FILE_BYTES {
            stats.rejected.push((
                where_,
                format!("{} bytes, over the limit of {MAX_FILE_BYTES}", entry.size()),
            ));
            continue;
        }
        let mut text = String::new();
        use std::io::Read as _;
        if let Err(e) = (&mut entry).take(MAX_FILE_BYTES).read_to_string(&mut text) {
            stats.rejected.push((where_, e.to_string()));
            continue;
        }
        if let Err(reason) = f(&where_.to_string_lossy(), &text, yaml, stats) {
            stats.rejected.push((where_, reason));
        }
    }
    Ok(())
}

impl VulnDb {
    pub fn new() -> VulnDb {
        VulnDb::default()
    }

    /// Reads a file, a zip of records, or recursively a directory of them.
    pub fn load_path(&mut self, path: &Path) -> std::io::Result<LoadStats> {
        let mut stats = LoadStats::default();
        for_each_file(path, &mut stats, &mut |_, text, yaml, stats| {
            self.load_text(text, yaml, stats)
        })?;
        Ok(stats)
    }

    /// Reads one file's text; `yaml` when it is YAML rather than JSON.
    pub fn load_text(
        &mut self,
        text: &str,
        yaml: bool,
        stats: &mut LoadStats,
    ) -> Result<(), String> {
        for doc in parse(text, yaml)? {
            self.add(doc, stats)?;
        }
        Ok(())
    }

    /// Adds one document.
    pub fn add(&mut self, doc: Doc, stats: &mut LoadStats) -> Result<(), String> {
        match doc {
            Doc::Osv(value) => self.add_osv(value, stats),
            Doc::Secdb(value) => {
                let db: SecDb = serde_json::from_value(value)
                    .map_err(|e| format!("not an Alpine secdb file: {e}"))?;
                stats.secdb_files += 1;
                self.secdb
                    .entry(db.distroversion.clone())
                    .or_default()
                    .push(db);
                Ok(())
            }
            Doc::Debian(value) => {
                let tracker: Tracker = serde_json::from_value(value)
                    .map_err(|e| format!("not the Debian tracker's JSON: {e}"))?;
                stats.debian_packages += tracker.len();
                for (package, cves) in tracker {
                    self.debian.entry(package).or_default().extend(cves);
                }
                Ok(())
            }
        }
    }

    fn add_osv(&mut self, value: Value, stats: &mut LoadStats) -> Result<(), String> {
        let record: Record =
            serde_json::from_value(value).map_err(|e| format!("not an OSV record: {e}"))?;
        if let Some(m) = &record.modified
            && self.newest_modified.as_ref().is_none_or(|n| m > n)
        {
            self.newest_modified = Some(m.clone());
        }
        stats.osv_records += 1;
        self.osv.push(record);
        Ok(())
    }
}

fn is_osv(v: &Value) -> bool {
    v.get("id").is_some_and(Value::is_string)
        && (v.get("affected").is_some() || v.get("modified").is_some())
}

/// The tracker maps source packages to CVEs to `{releases: …}`; the first entry tells.
fn is_debian_tracker(map: &serde_json::Map<String, Value>) -> bool {
    map.values()
        .next()
        .and_then(Value::as_object)
        .is_some_and(|cves| {
            cves.values()
                .next()
                .is_some_and(|cve| cve.get("releases").is_some())
        })
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let p = entry?.path();
            if p.is_dir() {
                collect(&p, out)?;
            } else if p
                .extension()
                .is_some_and(|e| e == "json" || e == "yaml" || e == "yml" || e == "zip")
            {
                out.push(p);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes, over the limit of {MAX_FILE_BYTES}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_from_content() {
        let mut db = VulnDb::new();
        let mut stats = LoadStats::default();
        db.load_text(
            r#"{"id":"GHSA-1","modified":"2024-01-01T00:00:00Z","affected":[]}"#,
            false,
            &mut stats,
        )
        .expect("osv");
        db.load_text(
            "distroversion: v3.18\nreponame: main\npackages:\n  - pkg:\n      name: musl\n      secfixes:\n        1.2.4-r1:\n          - CVE-2024-1\n",
            true,
            &mut stats,
        )
        .expect("secdb");
        db.load_text(
            r#"{"glibc":{"CVE-2024-2":{"releases":{"bookworm":{"status":"open"}}}}}"#,
            false,
            &mut stats,
        )
        .expect("tracker");
        assert_eq!(
            (stats.osv_records, stats.secdb_files, stats.debian_packages),
            (1, 1, 1)
        );
        assert_eq!(db.secdb["v3.18"][0].packages[0].pkg.name, "musl");
        assert_eq!(db.newest_modified.as_deref(), Some("2024-01-01T00:00:00Z"));
        let err = db
            .load_text(r#"{"hello":"world"}"#, false, &mut stats)
            .expect_err("unknown");
        assert!(err.contains("neither"), "{err}");
        assert!(db.load_text("{", false, &mut stats).is_err());
        assert!(db.load_text("a: [", true, &mut stats).is_err());
    }
}
