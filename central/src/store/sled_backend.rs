//! The embedded backend: one sled database, one tree per table.

use std::path::Path;

use super::{Backend, Error, Op, Result, Table, WriteBatch};
use sled::Transactional;

#[derive(Debug, Clone)]
pub struct SledBackend {
    db: sled::Db,
    trees: [sled::Tree; 7],
}

fn backend_error(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

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
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
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
        let open = |t: Table| db.open_tree(t.name()).map_err(backend_error);
        let [t0, t1, t2, t3, t4, t5, t6] = Table::ALL;
        let trees = [
            open(t0)?,
            open(t1)?,
            open(t2)?,
            open(t3)?,
            open(t4)?,
            open(t5)?,
            open(t6)?,
        ];
        Ok(SledBackend { db, trees })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

impl Backend for SledBackend {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(table)
            .get(key.as_bytes())
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
        let tree = self.tree(table);
        let iter = match after {
            // Start strictly after `after`: append a NUL byte, the smallest possible successor.
            Some(a) => tree.range(format!("{a}\0").into_bytes()..),
            None => tree.range(prefix.as_bytes().to_vec()..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(backend_error)?;
            if !k.starts_with(prefix.as_bytes()) || out.len() >= limit {
                break;
            }
            let key = String::from_utf8(k.to_vec())
                .map_err(|_| Error::Backend(format!("non-UTF-8 key in {}", table.name())))?;
            out.push((key, v.to_vec()));
        }
        Ok(out)
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        // Single-table batches (the ingest common case) use sled's atomic batch, far cheaper
        // than a transaction across every tree.
        if let Some(first) = batch.ops.first().map(Op::table)
            && batch.ops.iter().all(|op| op.table() == first)
        {
            let mut b = sled::Batch::default();
            for op in &batch.ops {
                match op {
                    Op::Put { key, value, .. } => b.insert(key.as_bytes(), value.as_slice()),
                    Op::Delete { key, .. } => b.remove(key.as_bytes()),
                }
            }
            return self.tree(first).apply_batch(b).map_err(backend_error);
        }
        // Otherwise one transaction across all trees: the batch lands whole or not at all.
        let [t0, t1, t2, t3, t4, t5, t6] = &self.trees;
        (t0, t1, t2, t3, t4, t5, t6)
            .transaction(|trees| {
                let trees = [
                    &trees.0, &trees.1, &trees.2, &trees.3, &trees.4, &trees.5, &trees.6,
                ];
                for op in &batch.ops {
                    let tree = trees[op.table().index()];
                    match op {
                        Op::Put { key, value, .. } => {
                            tree.insert(key.as_bytes(), value.as_slice())?;
                        }
                        Op::Delete { key, .. } => {
                            tree.remove(key.as_bytes())?;
                        }
                    }
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| Error::Backend(format!("write batch: {e:?}")))
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(backend_error)?;
        Ok(())
    }
}
