//! Alerts that overflow the queue while the Sensor is away, kept on disk instead of dropped.
//!
//! The queue in memory is bounded (10,000 alerts by default) and the request path never
//! writes a file. So the Sensor link, which sees the Sensor away, moves the oldest alerts out
//! once the queue passes half its capacity: each move is a segment file (`overflow-<seq>.pb`,
//! the one message the Sensor would receive, written to a temporary file and renamed,
//! readable by the owner only), in a directory bounded by bytes. Beyond the bound alerts are
//! dropped and counted, as before. When the Sensor takes reports again and the queue has room,
//! the oldest segment is read back and sent first.
//!
//! ```text
//!  push ─▶ AlertQueue (memory) ──take──▶ report ──▶ Sensor
//!              │  over half full, Sensor away            ▲
//!              └──▶ overflow-<seq>.pb ... ──read back────┘ (oldest first, when there is room)
//! ```

use std::path::{Path, PathBuf};

use prost::Message;
use rampart_proto::v1::AdmissionAlerts;

use crate::alerts::Batch;

/// The segments of one controller's cache directory.
#[derive(Debug)]
pub struct Overflow {
    dir: PathBuf,
    max_bytes: u64,
    /// Segments on disk, oldest first: their sequence number and size.
    segments: std::collections::VecDeque<(u64, u64)>,
    bytes: u64,
    next: u64,
}

const PREFIX: &str = "overflow-";
const SUFFIX: &str = ".pb";

fn segment_seq(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

impl Overflow {
    /// The segments already in `dir` (a previous run's), read by name and size only.
    pub fn open(dir: &Path, max_bytes: u64) -> Overflow {
        let mut segments: Vec<(u64, u64)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let seq = segment_seq(e.file_name().to_str()?)?;
                Some((seq, e.metadata().ok()?.len()))
            })
            .collect();
        segments.sort_unstable();
        let bytes = segments.iter().map(|(_, size)| size).sum();
        let next = segments.last().map_or(0, |(seq, _)| seq + 1);
        Overflow {
            dir: dir.to_path_buf(),
            max_bytes,
            segments: segments.into(),
            bytes,
            next,
        }
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{seq:020}{SUFFIX}"))
    }

    /// Alerts waiting on disk, in segments.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes a batch as the newest segment. Refused (the caller drops and counts it) when
    /// it would take the directory past its bound, or cannot be written.
    pub fn spill(&mut self, batch: &Batch) -> Result<(), String> {
        let size = batch.bytes.len() as u64;
        if self.bytes.saturating_add(size) > self.max_bytes {
            return Err(format!(
                "{} alerts would pass the {} bytes kept on disk",
                batch.alerts, self.max_bytes
            ));
        }
        let path = self.path(self.next);
        write_private(&path, &batch.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        self.segments.push_back((self.next, size));
        self.bytes += size;
        self.next += 1;
        Ok(())
    }

    /// The oldest segment's alerts, its file removed; `Err` says why a segment was given up
    /// (unreadable, or not alerts: removed all the same, so that it cannot stop the rest).
    pub fn take_oldest(&mut self) -> Option<Result<Batch, String>> {
        let (seq, size) = self.segments.pop_front()?;
        self.bytes = self.bytes.saturating_sub(size);
        let path = self.path(seq);
        let read = std::fs::read(&path);
        let _ = std::fs::remove_file(&path);
        Some(
            read.map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|bytes| {
                    let alerts = AdmissionAlerts::decode(bytes.as_slice())
                        .map_err(|e| format!("{}: not alerts ({e})", path.display()))?
                        .alerts
                        .len();
                    Ok(Batch { bytes, alerts })
                }),
        )
    }
}

/// Writes `bytes` to `path` whole or not at all (a temporary file renamed), owner-only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_proto::v1::AdmissionAlert;

    fn batch(ids: &[&str]) -> Batch {
        Batch::of_messages(
            ids.iter()
                .map(|id| AdmissionAlert {
                    policy_id: id.to_string(),
                    ..Default::default()
                })
                .collect(),
        )
    }

    fn ids(b: &Batch) -> Vec<String> {
        b.messages()
            .expect("decodes")
            .into_iter()
            .map(|a| a.policy_id)
            .collect()
    }

    #[test]
    fn segments_come_back_oldest_first_across_a_restart_within_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = batch(&["a", "b"]);
        let bound = first.bytes.len() as u64 * 2 + 1;
        let mut o = Overflow::open(dir.path(), bound);
        o.spill(&first).expect("first");
        o.spill(&batch(&["c", "d"])).expect("second");
        // A third would pass the bound: refused, nothing written.
        let err = o.spill(&batch(&["e", "f"])).expect_err("over the bound");
        assert!(err.contains("would pass"), "{err}");
        assert_eq!(o.segments(), 2);

        // Another run finds them, in order, and numbers new ones after them.
        let mut again = Overflow::open(dir.path(), bound);
        assert_eq!((again.segments(), again.bytes()), (2, o.bytes()));
        let oldest = again.take_oldest().expect("segment").expect("alerts");
        assert_eq!(ids(&oldest), ["a", "b"]);
        again.spill(&batch(&["g"])).expect("room again");
        let next: Vec<Vec<String>> = std::iter::from_fn(|| again.take_oldest())
            .map(|b| ids(&b.expect("alerts")))
            .collect();
        assert_eq!(next, [vec!["c", "d"], vec!["g"]]);
        assert_eq!((again.segments(), again.bytes()), (0, 0));
        let left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(left, 0, "every segment read back is removed");
    }

    #[test]
    fn a_damaged_segment_is_given_up_and_the_next_ones_still_come_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = Overflow::open(dir.path(), 1 << 20);
        o.spill(&batch(&["a"])).expect("spill");
        o.spill(&batch(&["b"])).expect("spill");
        std::fs::write(o.path(0), b"\xff\xff not alerts").expect("damage");
        let err = o.take_oldest().expect("segment").expect_err("damaged");
        assert!(err.contains("not alerts"), "{err}");
        assert_eq!(
            ids(&o.take_oldest().expect("segment").expect("alerts")),
            ["b"]
        );
        assert!(o.take_oldest().is_none());
        use std::os::unix::fs::PermissionsExt as _;
        o.spill(&batch(&["c"])).expect("spill");
        let mode = std::fs::metadata(o.path(2))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
