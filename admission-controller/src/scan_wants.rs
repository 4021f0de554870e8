//! Images met without Central's findings, to be scanned: the controller decides a workload's
//! image criteria from the findings Central sends for the images it has scanned. An image it
//! has not (a new tag, a workload never run in the cluster) cannot violate them, and where
//! ACS's "Images with no scans" is enforced the workload is refused until it has been scanned.
//! Either way the image is asked for: the report link sends it to the Sensor with the next report, the Sensor
//! to Central, which scans it and sends its findings back to every cluster. Nothing on the
//! request path waits for that.
//!
//! ```text
//!  review ─▶ image without findings ─▶ want (once a minute an image) ─▶ pending (≤ 64)
//!                                                                         │ next report
//!  findings ◀─ Central scans ◀─ Sensor (ImageScanRequest) ◀───────────────┘
//! ```
//!
//! Bounded: at most [`MAX_PENDING`] images wait to be sent (more are dropped and asked for
//! again at a later review), and at most [`MAX_REMEMBERED`] are remembered as asked for.

use std::collections::HashMap;
use std::sync::Mutex;

use rampart_proto::MAX_IMAGE_REFERENCE;

/// Images waiting to be sent: one report's worth.
pub const MAX_PENDING: usize = rampart_proto::MAX_SCAN_REQUEST_IMAGES;
/// Images remembered as asked for (their last time), so that each is asked once a minute at
/// most however many reviews name it.
pub const MAX_REMEMBERED: usize = 4096;
/// How long an image asked for is not asked for again.
pub const ASK_AGAIN_AFTER_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct ScanWants {
    inner: Mutex<Inner>,
    /// Woken when an image starts waiting.
    pub ready: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Inner {
    /// When each image was last asked for (unix ms).
    asked: HashMap<String, i64, foldhash::fast::RandomState>,
    pending: Vec<String>,
}

impl Inner {
    fn want(&mut self, image: &str, now_unix_ms: i64) -> bool {
        if image.is_empty() || image.len() > MAX_IMAGE_REFERENCE {
            return false;
        }
        if let Some(&last) = self.asked.get(image)
            && now_unix_ms.saturating_sub(last) < ASK_AGAIN_AFTER_MS
        {
            return false;
        }
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        if self.asked.len() >= MAX_REMEMBERED && !self.asked.contains_key(image) {
            self.asked
                .retain(|_, last| now_unix_ms.saturating_sub(*last) < ASK_AGAIN_AFTER_MS);
            if self.asked.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        self.asked.insert(image.to_string(), now_unix_ms);
        self.pending.push(image.to_string());
        true
    }
}

impl ScanWants {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `image` to be scanned, unless it was asked for within the last minute;
    /// whether it now waits to be sent.
    pub fn want(&self, image: &str, now_unix_ms: i64) -> bool {
        self.want_all([image], now_unix_ms) > 0
    }

    /// [`ScanWants::want`] for each of a review's images, under one lock; how many now wait
    /// to be sent.
    pub fn want_all<'a>(
        &self,
        images: impl IntoIterator<Item = &'a str>,
        now_unix_ms: i64,
    ) -> usize {
        let mut inner = self.lock();
        let wanted = images
            .into_iter()
            .filter(|image| inner.want(image, now_unix_ms))
            .count();
        drop(inner);
        if wanted > 0 {
            self.ready.notify_one();
        }
        wanted
    }

    /// The images waiting to be sent, taken.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Puts back images whose report failed (as many as there is room for); they are not
    /// asked for again meanwhile.
    pub fn requeue(&self, images: Vec<String>) {
        let mut inner = self.lock();
        let room = MAX_PENDING.saturating_sub(inner.pending.len());
        inner.pending.extend(images.into_iter().take(room));
    }

    pub fn is_empty(&self) -> bool {
        self.lock().pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_asked_for_once_a_minute_however_many_reviews_name_it() {
        let wants = ScanWants::default();
        assert!(wants.want("registry.example.com/a:1", 1_000));
        assert!(
            !wants.want("registry.example.com/a:1", 2_000),
            "asked already"
        );
        assert!(wants.want("registry.example.com/b:1", 2_000));
        assert_eq!(
            wants.take(),
            ["registry.example.com/a:1", "registry.example.com/b:1"]
        );
        assert!(wants.take().is_empty());
        assert!(!wants.want("registry.example.com/a:1", 1_000 + ASK_AGAIN_AFTER_MS - 1));
        assert!(wants.want("registry.example.com/a:1", 1_000 + ASK_AGAIN_AFTER_MS));
        assert!(!wants.want("", 0), "no reference");
        assert!(
            !wants.want(&"x".repeat(MAX_IMAGE_REFERENCE + 1), 0),
            "too long"
        );
    }

    #[test]
    fn what_waits_and_what_is_remembered_is_bounded() {
        let wants = ScanWants::default();
        for i in 0..MAX_PENDING + 10 {
            wants.want(&format!("r/i:{i}"), 0);
        }
        assert_eq!(
            wants.take().len(),
            MAX_PENDING,
            "the rest is asked for later"
        );
        // Failed reports come back, up to the bound.
        wants.requeue((0..MAX_PENDING + 5).map(|i| format!("r/j:{i}")).collect());
        assert_eq!(wants.take().len(), MAX_PENDING);

        let wants = ScanWants::default();
        for i in 0..MAX_REMEMBERED {
            assert!(wants.want(&format!("r/k:{i}"), 0), "{i}");
            wants.take();
        }
        assert!(
            !wants.want("r/new:1", 1),
            "every image remembered was asked for within the minute"
        );
        assert!(
            wants.want("r/new:1", ASK_AGAIN_AFTER_MS),
            "those asked for a minute ago make room"
        );
    }
}
