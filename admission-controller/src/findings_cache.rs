//! Central's image findings kept on the controller's disk, beside the policy set, so that a
//! controller restarted while the Sensor is away decides image criteria (CVEs, components,
//! image age) at once from the last findings it had, as it decides the rest from the cached
//! policy set.
//!
//! ```text
//!  <cache dir>/image-findings/<SHA-256 of the reference>.pb   an ImageFindings message each
//!    written as each image's findings arrive (temporary file, renamed), removed when they go;
//!    after a complete snapshot from the Sensor, files of images it did not name are removed;
//!    read at start into the cluster view (within its bound), which stays "not synced".
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use rampart_proto::v1::ImageFindings;

use crate::resources::Resources;

/// Largest file read back: one image's findings as Central sends them (at most 4 MiB of
/// JSON) with their reference.
const MAX_FILE_BYTES: u64 = 5 << 20;

/// Most bytes of findings kept on disk: what the cluster view holds in memory at most
/// ([`crate::resources::MAX_IMAGE_FINDINGS_BYTES`]) and a little. The manifest's cache volume
/// is sized for it.
pub const MAX_DISK_BYTES: u64 = (crate::resources::MAX_IMAGE_FINDINGS_BYTES as u64) + (8 << 20);

#[derive(Debug)]
pub struct FindingsCache {
    dir: PathBuf,
    /// Bytes of the files kept, as far as this process knows (counted at start).
    bytes: AtomicU64,
    bound: u64,
    /// A hash of each file's content as written or read back by this process: the Sensor
    /// sends every image's findings again at each reconnection, and unchanged ones are not
    /// written again.
    written: Mutex<HashMap<String, u64>>,
}

/// What a start read back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub images: usize,
    /// Files not used: unreadable, too large, or past the view's bound.
    pub skipped: Vec<String>,
}

impl FindingsCache {
    pub fn new(cache_dir: &Path) -> FindingsCache {
        FindingsCache::bounded(cache_dir, MAX_DISK_BYTES)
    }

    /// A cache that keeps at most `bound` bytes of files.
    pub fn bounded(cache_dir: &Path, bound: u64) -> FindingsCache {
        let dir = cache_dir.join("image-findings");
        let bytes = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        FindingsCache {
            dir,
            bytes: AtomicU64::new(bytes),
            bound,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes of findings kept on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps one image's findings, or forgets them (empty findings).
    /// Past the bound, an image's findings are not kept (the old ones go too: they are out
    /// of date) and the answer says so.
    pub fn store(&self, f: &ImageFindings) -> io::Result<()> {
        let name = file_name(&f.reference);
        let path = self.dir.join(&name);
        let bytes = (!f.image_data_json.is_empty()).then(|| f.encode_to_vec());
        let hash = bytes.as_deref().map(content_hash);
        if hash.is_some() && self.written().get(&name).copied() == hash {
            return Ok(());
        }
        let old = std::fs::metadata(&path).map_or(0, |m| m.len());
        let forget = || {
            self.written().remove(&name);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.bytes
                        .fetch_sub(old.min(self.bytes()), Ordering::Relaxed);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        };
        let (Some(bytes), Some(hash)) = (bytes, hash) else {
            return forget();
        };
        let new = bytes.len() as u64;
        if self.bytes().saturating_sub(old) + new > self.bound {
            forget()?;
            return Err(io::Error::other(format!(
                "{} bytes of image findings on disk; {new} more would pass the bound of {}",
                self.bytes(),
                self.bound
            )));
        }
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension("pb.tmp");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        let held = self.bytes().saturating_sub(old) + new;
        self.bytes.store(held, Ordering::Relaxed);
        self.written().insert(name, hash);
        Ok(())
    }

    /// Reads every kept image's findings into `resources`, within its bound.
    pub fn load_into(&self, resources: &mut Resources) -> Loaded {
        let mut loaded = Loaded::default();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return loaded;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "pb") {
                continue;
            }
            let name = path.display().to_string();
            let read = entry
                .metadata()
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    if m.len() > MAX_FILE_BYTES {
                        Err(format!("{} bytes", m.len()))
                    } else {
                        std::fs::read(&path).map_err(|e| e.to_string())
                    }
                })
                .and_then(|bytes| {
                    let hash = content_hash(&bytes);
                    let f = ImageFindings::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
                    self.written()
                        .insert(entry.file_name().to_string_lossy().into_owned(), hash);
                    Ok(f)
                })
                .and_then(|f| {
                    if file_name(&f.reference) == entry.file_name().to_string_lossy() {
                        Ok(f)
                    } else {
                        Err("named for another image".to_string())
                    }
                })
                .and_then(|f| resources.apply_image(f).map_err(|e| e.to_string()));
            match read {
                Ok(()) => loaded.images += 1,
                Err(why) => loaded.skipped.push(format!("{name}: {why}")),
            }
        }
        loaded
    }

    /// Removes the files of images `held` has no findings for (after a complete snapshot from
    /// the Sensor, which named every image it has findings for); how many were removed.
    pub fn retain(&self, held: &Resources) -> io::Result<usize> {
        let keep: HashSet<String> = held.image_references().map(file_name).collect();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                self.written().remove(&name);
                let size = entry.metadata().map_or(0, |m| m.len());
                std::fs::remove_file(entry.path())?;
                self.bytes
                    .fetch_sub(size.min(self.bytes()), Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A hash of a file's content, to tell whether it changed.
fn content_hash(bytes: &[u8]) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5eed).hash_one(bytes)
}

/// The file an image's findings are kept in: the SHA-256 of its reference (references hold
/// `/` and `:`, and may be long), in hex.
fn file_name(reference: &str) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, reference.as_bytes());
    let mut name = String::with_capacity(67);
    for b in digest.as_ref() {
        let _ = write!(name, "{b:02x}");
    }
    name.push_str(".pb");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(reference: &str, os: &str) -> ImageFindings {
        ImageFindings {
            reference: reference.into(),
            image_data_json: format!(r#"{{"os":"{os}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn findings_kept_come_back_at_start_and_those_gone_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FindingsCache::new(dir.path());
        assert_eq!(
            cache.load_into(&mut Resources::default()),
            Loaded::default(),
            "nothing kept yet"
        );
        cache.store(&findings("r/a:1", "alpine:3.10")).expect("a");
        cache.store(&findings("r/b:1", "debian:12")).expect("b");
        cache
            .store(&findings("r/a:1", "alpine:3.11"))
            .expect("a again");
        let mut view = Resources::default();
        let loaded = cache.load_into(&mut view);
        assert_eq!(loaded.images, 2, "{loaded:?}");
        assert_eq!(view.image("r/a:1").expect("a").os, "alpine:3.11");
        assert!(!view.synced, "the disk is not the Sensor's view");

        // The same findings again (the Sensor resends them at each reconnection): not written
        // (a write renames a new file over the old one: another inode).
        use std::os::unix::fs::MetadataExt;
        let file = cache.dir.join(file_name("r/a:1"));
        let inode = || std::fs::metadata(&file).expect("a").ino();
        let before = inode();
        cache
            .store(&findings("r/a:1", "alpine:3.11"))
            .expect("a unchanged");
        assert_eq!(inode(), before, "not written again");
        cache
            .store(&findings("r/a:1", "alpine:3.12"))
            .expect("a changed");
        assert_ne!(inode(), before, "written when changed");
        cache
            .store(&findings("r/a:1", "alpine:3.11"))
            .expect("a back");

        // Forgotten by Central.
        cache
            .store(&ImageFindings {
                reference: "r/b:1".into(),
                image_data_json: Vec::new(),
            })
            .expect("b forgotten");
        let mut view = Resources::default();
        assert_eq!(cache.load_into(&mut view).images, 1);
        assert!(view.image("r/b:1").is_none());

        // A snapshot that does not name an image: its file goes.
        cache.store(&findings("r/c:1", "x")).expect("c");
        let mut snapshot = Resources::default();
        snapshot
            .apply_image(findings("r/c:1", "x"))
            .expect("c held");
        assert_eq!(cache.retain(&snapshot).expect("retained"), 1);
        let mut view = Resources::default();
        assert_eq!(cache.load_into(&mut view).images, 1);
        assert!(view.image("r/c:1").is_some() && view.image("r/a:1").is_none());
    }

    #[test]
    fn the_disk_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = findings("r/a:1", "alpine").encode_to_vec().len() as u64;
        let cache = FindingsCache::bounded(dir.path(), 2 * one + one / 2);
        cache.store(&findings("r/a:1", "alpine")).expect("a");
        cache.store(&findings("r/b:1", "alpine")).expect("b");
        assert_eq!(cache.bytes(), 2 * one);
        // Replacing one does not count it twice.
        cache.store(&findings("r/a:1", "alpine")).expect("a again");
        assert!(
            cache.store(&findings("r/c:1", "alpine")).is_err(),
            "past the bound"
        );
        assert_eq!(cache.bytes(), 2 * one);
        // Counted again at start.
        assert_eq!(
            FindingsCache::bounded(dir.path(), 2 * one + one / 2).bytes(),
            2 * one
        );
        // Forgetting makes room.
        cache
            .store(&ImageFindings {
                reference: "r/b:1".into(),
                image_data_json: Vec::new(),
            })
            .expect("b forgotten");
        cache.store(&findings("r/c:1", "alpine")).expect("c");
        assert_eq!(cache.bytes(), 2 * one);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FindingsCache::new(dir.path());
        cache.store(&findings("r/a:1", "ok")).expect("a");
        std::fs::write(
            cache.dir.join(file_name("r/bad:1")),
            b"\xff\xff not protobuf",
        )
        .expect("damaged");
        // Findings filed under another image's name.
        std::fs::write(
            cache.dir.join(file_name("r/other:1")),
            findings("r/a:2", "x").encode_to_vec(),
        )
        .expect("misnamed");
        let mut view = Resources::default();
        let loaded = cache.load_into(&mut view);
        assert_eq!(loaded.images, 1);
        assert_eq!(loaded.skipped.len(), 2, "{loaded:?}");
        assert!(view.image("r/a:2").is_none());
    }
}
