//! The embedded backend: one sled database, every table in one tree under a table prefix.

use std::path::Path;

use super::{Backend, Error, Op, Result, Table, WriteBatch};

#[derive(Debug, Clone)]
pub struct SledBackend {
    db: sled::Db,
    tree: sled::Tree,
}

fn backend_error(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// sled's page cache. Its default (1 GiB) alone would use Central's whole memory budget; a
/// quarter of it keeps 50,000 deployments well inside 1 GiB (docs/benchmarks.md).
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How long `open` waits for a previous owner of the directory (a Central that is still shutting
/// down, or sled's background threads releasing it) before giving up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// sled reports a held lock as an IO error wrapping `WouldBlock` (the wrapper's own kind is
/// `Other`, so the message is what identifies it).
fn is_lock_contention(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

fn open_waiting_for_lock(dir: &Path, wait: std::time::Duration) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if is_lock_contention(&e) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Error::Backend(format!(
                    "cannot open store in {}: {e}",
                    dir.display()
                )));
            }
        }
    }
}

impl SledBackend {
    /// Opens (or creates) the database in `dir`. sled's own periodic flush is turned off: Central
    /// decides when data is durable.
    pub fn open(dir: &Path) -> Result<SledBackend> {
        let db = open_waiting_for_lock(dir, LOCK_WAIT)?;
        let tree = db.open_tree("rampart").map_err(backend_error)?;
        Ok(SledBackend { db, tree })
    }
}

/// Every table lives in one sled tree under a one-byte table prefix: any batch, whatever tables
/// it touches, is then one atomic `apply_batch` — sled's multi-tree transactions cost about ten
/// times more (measured: 10,700 vs 98,000 records/s through the committer).
fn physical_key(table: Table, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(table.index() as u8);
    k.extend_from_slice(key.as_bytes());
    k
}

impl Backend for SledBackend {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(physical_key(table, key))
            .map_err(backend_error)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = physical_key(table, prefix);
        let iter = match after {
            // Start strictly after `after`: append a NUL byte, the smallest possible successor.
            Some(a) => self.tree.range(physical_key(table, &format!("{a}\0"))..),
            None => self.tree.range(prefix.clone()..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(backend_error)?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            let key = String::from_utf8(k[1..].to_vec())
                .map_err(|_| Error::Backend(format!("non-UTF-8 key in {}", table.name())))?;
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        let mut b = sled::Batch::default();
        for op in &batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    b.insert(physical_key(*table, key), value.as_slice())
                }
                Op::Delete { table, key } => b.remove(physical_key(*table, key)),
            }
        }
        self.tree.apply_batch(b).map_err(backend_error)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(backend_error)?;
        Ok(())
    }
}
