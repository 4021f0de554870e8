//! The vulnerability store: imported data kept in sled, so a scan reads it back without parsing
//! YAML again, and a later import of newer data replaces what it supersedes (an OSV record by
//! its id when its `modified` is not older; a secdb file by branch and repository; the tracker
//! by source package). The store keeps when each import ran and from where, which is how a
//! user sees the data's age.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::vulndb::{self, Doc, LoadStats, VulnDb};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the vulnerability store: {0}")]
    Sled(#[from] sled::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the vulnerability store holds a corrupt entry under {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// One import, as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub source: String,
    /// Unix seconds.
    pub at: u64,
    pub osv_records: usize,
    pub secdb_files: usize,
    pub debian_packages: usize,
    pub rejected: usize,
}

/// What the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub osv_records: usize,
    pub secdb_files: usize,
    pub debian_packages: usize,
    /// Newest `modified` among the OSV records.
    pub newest_modified: Option<String>,
    pub imports: Vec<Import>,
}

pub struct Store {
    db: sled::Db,
    osv: sled::Tree,
    secdb: sled::Tree,
    debian: sled::Tree,
    meta: sled::Tree,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const IMPORTS: &[u8] = b"imports";
/// At most this many imports are remembered.
const MAX_IMPORTS: usize = 100;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn modified(v: &Value) -> Option<&str> {
    v.get("modified").and_then(Value::as_str)
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        // sled releases its file lock from a background thread after the last handle is
        // dropped; a reopen right after a close (a restart) waits for it, briefly.
        let mut tries = 0;
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    tries += 1;
                    if tries >= 20 {
                        return Err(StoreError::Io {
                            path: dir.display().to_string(),
                            source: std::io::Error::new(
                                e.kind(),
                                "the vulnerability store is in use by another process (Central keeps its own: import into it with `rampart vulndb import -e`)",
                            ),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Store {
            osv: db.open_tree("osv")?,
            secdb: db.open_tree("secdb")?,
            debian: db.open_tree("debian")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// Imports a file, a zip of records or a directory (see [`vulndb::for_each_file`]).
    pub fn import(&self, path: &Path) -> Result<LoadStats, StoreError> {
        let mut stats = LoadStats::default();
        let mut failure: Option<sled::Error> = None;
        vulndb::for_each_file(path, &mut stats, &mut |_, text, yaml, stats| {
            for doc in vulndb::parse(text, yaml)? {
                if let Err(e) = self.put(doc, stats) {
                    let message = e.to_string();
                    failure.get_or_insert(e);
                    return Err(message);
                }
            }
            Ok(())
        })
        .map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        let mut imports = self.imports()?;
        imports.push(Import {
            source: path.display().to_string(),
            at: now(),
            osv_records: stats.osv_records,
            secdb_files: stats.secdb_files,
            debian_packages: stats.debian_packages,
            rejected: stats.rejected.len(),
        });
        if imports.len() > MAX_IMPORTS {
            imports.drain(..imports.len() - MAX_IMPORTS);
        }
        let encoded = serde_json::to_vec(&imports).map_err(|e| StoreError::Corrupt {
            key: "imports".into(),
            reason: e.to_string(),
        })?;
        self.meta.insert(IMPORTS, encoded)?;
        self.db.flush()?;
        Ok(stats)
    }

    fn put(&self, doc: Doc, stats: &mut LoadStats) -> Result<(), sled::Error> {
        match doc {
            Doc::Osv(v) => {
                let Some(id) = v.get("id").and_then(Value::as_str) else {
                    return Ok(());
                };
                // Keep the stored record when it is newer than the one imported.
                if let Some(old) = self.osv.get(id)?
                    && let Ok(old) = serde_json::from_slice::<Value>(&old)
                    && modified(&old) > modified(&v)
                {
                    stats.osv_records += 1;
                    return Ok(());
                }
                self.osv.insert(id, v.to_string().into_bytes())?;
                stats.osv_records += 1;
            }
            Doc::Secdb(v) => {
                let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let key = format!("{}/{}", field("distroversion"), field("reponame"));
                self.secdb.insert(key, v.to_string().into_bytes())?;
                stats.secdb_files += 1;
            }
            Doc::Debian(Value::Object(map)) => {
                for (package, cves) in map {
                    self.debian.insert(package, cves.to_string().into_bytes())?;
                    stats.debian_packages += 1;
                }
            }
            Doc::Debian(_) => {}
        }
        Ok(())
    }

    fn imports(&self) -> Result<Vec<Import>, StoreError> {
        match self.meta.get(IMPORTS)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                key: "imports".into(),
                reason: e.to_string(),
            }),
            None => Ok(Vec::new()),
        }
    }

    /// Everything the store holds, ready to match against.
    pub fn load(&self) -> Result<VulnDb, StoreError> {
        let mut db = VulnDb::new();
        let mut stats = LoadStats::default();
        let corrupt = |key: &[u8], reason: String| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        };
        for entry in self.osv.iter() {
            let (k, v) = entry?;
            let value: Value =
                serde_json::from_slice(&v).map_err(|e| corrupt(&k, e.to_string()))?;
            db.add(Doc::Osv(value), &mut stats)
                .map_err(|e| corrupt(&k, e))?;
        }
        for entry in self.secdb.iter() {
            let (k, v) = entry?;
            let value: Value =
                serde_json::from_slice(&v).map_err(|e| corrupt(&k, e.to_string()))?;
            db.add(Doc::Secdb(value), &mut stats)
                .map_err(|e| corrupt(&k, e))?;
        }
        let mut tracker = serde_json::Map::new();
        for entry in self.debian.iter() {
            let (k, v) = entry?;
            let value: Value =
                serde_json::from_slice(&v).map_err(|e| corrupt(&k, e.to_string()))?;
            tracker.insert(String::from_utf8_lossy(&k).into_owned(), value);
        }
        if !tracker.is_empty() {
            db.add(Doc::Debian(Value::Object(tracker)), &mut stats)
                .map_err(|e| corrupt(b"debian", e))?;
        }
        Ok(db)
    }

    pub fn status(&self) -> Result<Status, StoreError> {
        let mut newest: Option<String> = None;
        for entry in self.osv.iter() {
            let (_, v) = entry?;
            if let Ok(value) = serde_json::from_slice::<Value>(&v)
                && let Some(m) = modified(&value)
                && newest.as_deref().is_none_or(|n| m > n)
            {
                newest = Some(m.to_string());
            }
        }
        Ok(Status {
            osv_records: self.osv.len(),
            secdb_files: self.secdb.len(),
            debian_packages: self.debian.len(),
            newest_modified: newest,
            imports: self.imports()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, modified: &str, fixed: &str) -> String {
        format!(
            r#"{{"id":"{id}","modified":"{modified}","affected":[{{"package":{{"ecosystem":"PyPI","name":"demo"}},
               "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        )
    }

    #[test]
    fn imports_persist_and_newer_records_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("data");
        std::fs::write(
            data.path().join("a.json"),
            record("PYSEC-1", "2024-02-01T00:00:00Z", "2.0"),
        )
        .expect("write");
        std::fs::write(data.path().join("junk.json"), "{").expect("write");
        {
            let store = Store::open(dir.path()).expect("open");
            let stats = store.import(data.path()).expect("import");
            assert_eq!((stats.osv_records, stats.rejected.len()), (1, 1));
        }
        // An older copy of the record does not replace the newer one; a newer one does.
        let store = Store::open(dir.path()).expect("reopen");
        let old = data.path().join("old.json");
        std::fs::write(&old, record("PYSEC-1", "2023-01-01T00:00:00Z", "1.0")).expect("write");
        store.import(&old).expect("import old");
        let fixed = |store: &Store| {
            let db = store.load().expect("load");
            db.osv[0].affected[0].ranges[0].events[1].fixed.clone()
        };
        assert_eq!(fixed(&store).as_deref(), Some("2.0"));
        let new = data.path().join("new.json");
        std::fs::write(&new, record("PYSEC-1", "2024-06-01T00:00:00Z", "3.0")).expect("write");
        store.import(&new).expect("import new");
        assert_eq!(fixed(&store).as_deref(), Some("3.0"));
        let status = store.status().expect("status");
        assert_eq!(status.osv_records, 1);
        assert_eq!(
            status.newest_modified.as_deref(),
            Some("2024-06-01T00:00:00Z")
        );
        assert_eq!(status.imports.len(), 3);
        assert_eq!(status.imports[0].rejected, 1);
    }
}
