//! Central's findings for the images the cluster runs (`ImageFindings`), held for the
//! admission controllers, which decide the image criteria of enforced policies from them, and
//! for the Sensor's own backstop enforcement ([`crate::enforce::Images`]).
//!
//! Central sends every image's findings after its hello, then `ImageFindingsSynced`, then each
//! change; an image not named again in a new session's first round went while the Sensor was
//! away and is forgotten at the marker. Each entry keeps a hash of its JSON, by which the
//! admission feed tells what a controller lacks.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::Arc;

use rampart_policy::image_data::ImageData;
use rampart_proto::v1::ImageFindings;

/// Most bytes of findings (as JSON) held, as in the admission controller.
pub const MAX_IMAGE_FINDINGS_BYTES: usize = 256 << 20;

#[derive(Debug)]
struct Entry {
    json: Arc<[u8]>,
    hash: u64,
    /// The session of Central's that last named it.
    session: u64,
}

#[derive(Debug, Default)]
pub struct ImageFindingsStore {
    entries: HashMap<String, Entry>,
    bytes: usize,
    session: u64,
}

impl ImageFindingsStore {
    /// A new session with Central: what it names from now on is current.
    pub fn begin_session(&mut self) {
        self.session += 1;
    }

    /// Keeps (or forgets, for empty JSON) one image's findings; refuses past the bound.
    pub fn apply(&mut self, f: ImageFindings) -> Result<(), String> {
        let size = f.image_data_json.len();
        let replaced = self.entries.get(&f.reference).map_or(0, |e| e.json.len());
        if size == 0 {
            if self.entries.remove(&f.reference).is_some() {
                self.bytes -= replaced;
            }
            return Ok(());
        }
        let held = self.bytes - replaced;
        if held + size > MAX_IMAGE_FINDINGS_BYTES {
            return Err(format!(
                "{held} bytes of image findings held; {size} more would pass the bound of {MAX_IMAGE_FINDINGS_BYTES}"
            ));
        }
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(&f.image_data_json);
        self.bytes = held + size;
        self.entries.insert(
            f.reference,
            Entry {
                json: f.image_data_json.into(),
                hash,
                session: self.session,
            },
        );
        Ok(())
    }

    /// Central has named every current image: the others are gone.
    pub fn synced(&mut self) {
        let session = self.session;
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = e.session == session;
            if !keep {
                freed += e.json.len();
            }
            keep
        });
        self.bytes -= freed;
    }

    /// Each image with the hash of its findings and the findings.
    pub fn for_each(&self, mut f: impl FnMut(&str, u64, &Arc<[u8]>)) {
        for (reference, e) in &self.entries {
            f(reference, e.hash, &e.json);
        }
    }

    /// One image's findings, decoded; `None` without findings (or unreadable ones).
    pub fn image_data(&self, reference: &str) -> Option<Arc<ImageData>> {
        let e = self.entries.get(reference)?;
        serde_json::from_slice::<ImageData>(&e.json)
            .ok()
            .map(Arc::new)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One image's findings as Central sends them (tests).
#[cfg(test)]
pub(crate) fn findings(reference: &str, json: &str) -> ImageFindings {
    ImageFindings {
        reference: reference.into(),
        image_data_json: json.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(store: &ImageFindingsStore) -> Vec<(String, String)> {
        let mut out = Vec::new();
        store.for_each(|r, _, json| {
            out.push((r.to_string(), String::from_utf8_lossy(json).into_owned()));
        });
        out.sort();
        out
    }

    #[test]
    fn a_new_sessions_first_round_replaces_what_went_while_away() {
        let mut s = ImageFindingsStore::default();
        s.begin_session();
        s.apply(findings("a:1", r#"{"os":"debian:12"}"#))
            .expect("a");
        s.apply(findings("b:1", r#"{"os":"alpine:v3.20"}"#))
            .expect("b");
        s.synced();
        assert_eq!(s.len(), 2);
        // Away; then b is named again with new findings, a no longer.
        s.begin_session();
        s.apply(findings("b:1", r#"{"os":"alpine:v3.21"}"#))
            .expect("b");
        assert_eq!(s.len(), 2, "nothing forgotten before the marker");
        s.synced();
        assert_eq!(
            held(&s),
            [("b:1".to_string(), r#"{"os":"alpine:v3.21"}"#.to_string())]
        );
        // A change, then a removal.
        s.apply(findings("c:1", "{}")).expect("c");
        s.apply(findings("b:1", "")).expect("forgotten");
        assert_eq!(held(&s), [("c:1".to_string(), "{}".to_string())]);
        assert_eq!(s.bytes, 2);
    }

    #[test]
    fn findings_past_the_bound_are_refused() {
        let mut s = ImageFindingsStore::default();
        let big = "x".repeat(MAX_IMAGE_FINDINGS_BYTES / 2 + 1);
        s.apply(findings("a:1", &big)).expect("first");
        assert!(s.apply(findings("b:1", &big)).is_err());
        // Replacing the same image's findings does not count them twice.
        s.apply(findings("a:1", &big)).expect("replaced");
        assert_eq!(s.len(), 1);
    }
}
