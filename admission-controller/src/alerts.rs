//! Alerts waiting for the Sensor: a bounded queue that drops the oldest (and counts them) when
//! the Sensor is away for long, so a denial storm cannot grow memory.
//!
//! A review identical to one whose alerts are still waiting (a controller or a GitOps tool
//! retrying the same denied object: the same object, operation, user and violations) joins
//! those alerts instead of queueing its own: they are sent once, with how many attempts
//! followed the first and when the last was (`repeats`, `last_time_unix_ms`). A retry storm
//! then costs the queue one entry, so it neither crowds out other workloads' alerts nor keeps
//! the link and the Sensor busy; alerts that are sent at once (no backlog) stand alone, one
//! per attempt, as in ACS.
//!
//! A review's alerts are queued as the protobuf bytes the Sensor receives, one buffer a review:
//! the decision's strings are freed at once, while they are still in the cache, instead of
//! thirty-odd allocations a denial freed long after, cold, when the record leaves a full queue
//! (under load, in one run, about 10 µs a denial: 15 % of the server's time per request). The
//! Sensor link sends the bytes as they are ([`Batch`]).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Mutex;

use prost::Message;
use prost::encoding::{self, WireType};
use rampart_proto::v1::{AdmissionAlert, AdmissionAlerts};

use crate::metrics::Metrics;

/// The alerts one review raised: what they share (deployment, request, user, time), once, and
/// per violated policy what is its own. A denial of seven policies is one record of a few
/// allocations instead of seven messages of a dozen strings each; the messages are built when
/// the alerts are handed to the Sensor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewAlerts {
    /// Every field but the policy's own (`policy_id`, `violations`, `enforcement_action`).
    pub common: AdmissionAlert,
    pub policies: Vec<PolicyAlert>,
}

/// One violated policy's part of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAlert {
    pub policy_id: String,
    pub violations: Vec<String>,
    /// Empty when the violation was only recorded (break-glass, not enforced).
    pub enforcement_action: Cow<'static, str>,
}

impl ReviewAlerts {
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The alert messages, as the Sensor receives them (what the queue's encoding is tested
    /// against).
    pub fn to_alerts(&self) -> Vec<AdmissionAlert> {
        self.policies
            .iter()
            .map(|p| message(&self.common, p.clone()))
            .collect()
    }
}

/// One alert message: a policy's part over the review's common one.
fn message(common: &AdmissionAlert, p: PolicyAlert) -> AdmissionAlert {
    AdmissionAlert {
        policy_id: p.policy_id,
        violations: p.violations,
        enforcement_action: p.enforcement_action.into_owned(),
        ..common.clone()
    }
}

/// Alerts as the encoding of an [`AdmissionAlerts`] message (its repeated field's entries, so
/// records put end to end are one message too); those before `start` are gone.
#[derive(Debug, Default)]
struct Record {
    bytes: Vec<u8>,
    start: usize,
    /// Alerts from `start` on.
    alerts: usize,
    /// A review's record: its entries hold every field but those that differ between identical
    /// attempts, which are added to each alert as it is taken. `None`: the entries are whole.
    attempts: Option<Attempts>,
    /// Order in the queue (increasing from front to back).
    seq: u64,
    /// The hash of `bytes` while an identical review may join the record.
    open: Option<u64>,
}

/// The fields of a review's alerts that differ between identical attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attempts {
    /// The first attempt's.
    request_uid: String,
    time_unix_ms: i64,
    /// Attempts coalesced after the first, and the last one's time.
    repeats: u64,
    last_time_unix_ms: i64,
}

impl Attempts {
    /// The fields, encoded (field order does not matter to a protobuf reader).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.request_uid.len());
        string_field(9, &self.request_uid, &mut out);
        if self.time_unix_ms != 0 {
            encoding::int64::encode(13, &self.time_unix_ms, &mut out);
        }
        if self.repeats > 0 {
            encoding::uint64::encode(15, &self.repeats, &mut out);
            encoding::int64::encode(16, &self.last_time_unix_ms, &mut out);
        }
        out
    }
}

impl Record {
    fn of_review(review: &ReviewAlerts) -> Record {
        // The review's fields are the same in every alert: encoded once, copied into each.
        let common = CommonFields::of(&review.common);
        let size: usize = review
            .policies
            .iter()
            .map(|p| {
                let len = policy_fields_len(p) + common.len();
                1 + encoding::encoded_len_varint(len as u64) + len
            })
            .sum();
        let mut bytes = Vec::with_capacity(size);
        for p in &review.policies {
            encoding::encode_key(1, WireType::LengthDelimited, &mut bytes);
            encoding::encode_varint((policy_fields_len(p) + common.len()) as u64, &mut bytes);
            encode_alert(&common, p, &mut bytes);
        }
        debug_assert_eq!(
            bytes.len(),
            size,
            "the record's size, reckoned before writing it"
        );
        Record {
            bytes,
            start: 0,
            alerts: review.policies.len(),
            attempts: Some(Attempts {
                request_uid: review.common.request_uid.clone(),
                time_unix_ms: review.common.time_unix_ms,
                repeats: 0,
                last_time_unix_ms: 0,
            }),
            seq: 0,
            open: None,
        }
    }

    /// Alerts already whole (a batch put back).
    fn whole(batch: Batch, seq: u64) -> Record {
        Record {
            bytes: batch.bytes,
            start: 0,
            alerts: batch.alerts,
            attempts: None,
            seq,
            open: None,
        }
    }

    /// The next alert's entry taken out of the record: where the entry (its key, length and
    /// message) and its message are in `bytes`. A record this queue wrote always reads back;
    /// were one ever not to, the rest of it is given up.
    fn pop_entry(&mut self) -> Option<(Range<usize>, Range<usize>)> {
        let entry_start = self.start;
        let mut rest = self.bytes.get(self.start..)?;
        let message = (|| {
            let (tag, wire) = encoding::decode_key(&mut rest).ok()?;
            if tag != 1 || wire != WireType::LengthDelimited {
                return None;
            }
            let len = usize::try_from(encoding::decode_varint(&mut rest).ok()?).ok()?;
            // Where the message begins, past the entry's key and length.
            let begin = self.bytes.len() - rest.len();
            Some(begin..begin.checked_add(len)?)
        })();
        match message.filter(|m| m.end <= self.bytes.len()) {
            Some(m) => {
                self.start = m.end;
                self.alerts = self.alerts.saturating_sub(1);
                Some((entry_start..m.end, m))
            }
            None => {
                self.start = self.bytes.len();
                self.alerts = 0;
                None
            }
        }
    }

    /// Drops the first `n` alerts, without decoding them.
    fn drop_first(&mut self, n: usize) {
        for _ in 0..n {
            if self.pop_entry().is_none() {
                return;
            }
        }
    }

    /// Moves the first `n` alerts' entries to the end of `out` (the entries are walked, not
    /// decoded): whole entries in one piece, a review's with its attempts' fields added.
    fn move_first(&mut self, n: usize, out: &mut Vec<u8>) {
        let Some(attempts) = self.attempts.as_ref().map(Attempts::encode) else {
            let first = self.start;
            let mut end = first;
            for _ in 0..n {
                match self.pop_entry() {
                    Some((entry, _)) => end = entry.end,
                    None => break,
                }
            }
            out.extend_from_slice(self.bytes.get(first..end).unwrap_or_default());
            return;
        };
        for _ in 0..n {
            let Some((_, message)) = self.pop_entry() else {
                break;
            };
            let message = self.bytes.get(message).unwrap_or_default();
            encoding::encode_key(1, WireType::LengthDelimited, out);
            encoding::encode_varint((message.len() + attempts.len()) as u64, out);
            out.extend_from_slice(message);
            out.extend_from_slice(&attempts);
        }
    }
}

/// Alerts taken for the Sensor: the encoding of one [`AdmissionAlerts`] message, sent as it is.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub alerts: usize,
}

impl Batch {
    pub fn of_messages(alerts: Vec<AdmissionAlert>) -> Batch {
        let count = alerts.len();
        Batch {
            bytes: AdmissionAlerts {
                alerts,
                ..Default::default()
            }
            .encode_to_vec(),
            alerts: count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.alerts == 0
    }

    /// The messages, decoded (what the Sensor reads).
    pub fn messages(&self) -> Result<Vec<AdmissionAlert>, prost::DecodeError> {
        AdmissionAlerts::decode(self.bytes.as_slice()).map(|m| m.alerts)
    }
}

/// A length-delimited field as prost writes it (proto3: an empty string is left out).
/// Appends the images to be scanned to a report's encoding (`AdmissionAlerts.scan_images`:
/// fields of a message may come in any order).
pub fn append_scan_images(images: &[String], buf: &mut Vec<u8>) {
    for image in images {
        string_field(2, image, buf);
    }
}

fn string_field(tag: u32, value: &str, buf: &mut Vec<u8>) {
    if !value.is_empty() {
        encoding::encode_key(tag, WireType::LengthDelimited, buf);
        encoding::encode_varint(value.len() as u64, buf);
        buf.extend_from_slice(value.as_bytes());
    }
}

fn string_field_len(value: &str) -> usize {
    // Every tag here is below 16: its key is one byte.
    match value.len() {
        0 => 0,
        n => 1 + encoding::encoded_len_varint(n as u64) + n,
    }
}

/// A review's fields of its alerts but those that differ between identical attempts (the
/// request's uid, 9, and time, 13), encoded: those before the policy's enforcement action in
/// field order (3 to 8) and those after it (11, 12, 14).
struct CommonFields {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl CommonFields {
    fn of(common: &AdmissionAlert) -> CommonFields {
        let mut before = Vec::with_capacity(
            [
                &common.namespace,
                &common.name,
                &common.kind,
                &common.deployment_id,
                &common.operation,
                &common.user,
            ]
            .iter()
            .map(|v| string_field_len(v))
            .sum(),
        );
        string_field(3, &common.namespace, &mut before);
        string_field(4, &common.name, &mut before);
        string_field(5, &common.kind, &mut before);
        string_field(6, &common.deployment_id, &mut before);
        string_field(7, &common.operation, &mut before);
        string_field(8, &common.user, &mut before);
        let mut after = Vec::with_capacity(16 + common.pod.len());
        if common.break_glass {
            encoding::bool::encode(11, &common.break_glass, &mut after);
        }
        if common.stage != 0 {
            encoding::int32::encode(12, &common.stage, &mut after);
        }
        string_field(14, &common.pod, &mut after);
        CommonFields { before, after }
    }

    fn len(&self) -> usize {
        self.before.len() + self.after.len()
    }
}

/// The length of a policy's own fields of its alert.
fn policy_fields_len(p: &PolicyAlert) -> usize {
    let violations: usize = p
        .violations
        .iter()
        // A repeated string keeps empty entries.
        .map(|v| 1 + encoding::encoded_len_varint(v.len() as u64) + v.len())
        .sum();
    string_field_len(&p.policy_id) + violations + string_field_len(&p.enforcement_action)
}

/// One alert's fields, in field order, as prost writes them: the policy's own between the
/// review's common ones, without building the message.
fn encode_alert(common: &CommonFields, p: &PolicyAlert, buf: &mut Vec<u8>) {
    string_field(1, &p.policy_id, buf);
    for v in &p.violations {
        encoding::encode_key(2, WireType::LengthDelimited, buf);
        encoding::encode_varint(v.len() as u64, buf);
        buf.extend_from_slice(v.as_bytes());
    }
    buf.extend_from_slice(&common.before);
    string_field(10, &p.enforcement_action, buf);
    buf.extend_from_slice(&common.after);
}

#[derive(Debug)]
struct Queued {
    records: VecDeque<Record>,
    /// Alerts in all records.
    count: usize,
    /// The review records an identical review may still join (none of their alerts taken or
    /// dropped yet): the hash of their bytes to their `seq`. One entry a record at most.
    open: HashMap<u64, u64>,
    /// The next record's `seq` at the back; records put back at the front count down from the
    /// front's.
    next_seq: u64,
}

impl Default for Queued {
    fn default() -> Queued {
        Queued {
            records: VecDeque::new(),
            count: 0,
            open: HashMap::new(),
            next_seq: 1 << 62,
        }
    }
}

impl Queued {
    /// The front record is about to lose alerts: no review joins it any more.
    fn close_front(&mut self) {
        if let Some(front) = self.records.front_mut()
            && let Some(key) = front.open.take()
            && self.open.get(&key) == Some(&front.seq)
        {
            self.open.remove(&key);
        }
    }

    /// The open record `key` names, if its alerts are `bytes` (a hash names no other).
    fn open_record(&mut self, key: u64, bytes: &[u8]) -> Option<&mut Record> {
        let seq = *self.open.get(&key)?;
        let at = self.records.binary_search_by_key(&seq, |r| r.seq).ok()?;
        self.records
            .get_mut(at)
            .filter(|r| r.open == Some(key) && r.bytes == bytes)
    }

    /// Drops the `n` oldest alerts.
    fn drop_oldest(&mut self, mut n: usize) {
        while n > 0 {
            self.close_front();
            let Some(front) = self.records.front_mut() else {
                return;
            };
            if front.alerts <= n {
                n -= front.alerts;
                self.count -= front.alerts;
                self.records.pop_front();
            } else {
                front.drop_first(n);
                self.count -= n;
                n = 0;
            }
        }
    }
}

/// Alerts waiting for the Sensor, bounded by their number.
#[derive(Debug)]
pub struct AlertQueue {
    queue: Mutex<Queued>,
    /// The report being sent (its alerts' bytes and count), kept until the Sensor answers, so
    /// that a controller stopping meanwhile keeps it too ([`AlertQueue::save`]).
    in_flight: Mutex<Option<(bytes::Bytes, usize)>>,
    capacity: usize,
    /// Seeded per process, so which reviews' records share a hash is not up to a cluster's
    /// users; a shared hash only costs a comparison, as records are compared in full.
    hasher: foldhash::quality::RandomState,
    pub ready: tokio::sync::Notify,
    /// Notified when the queue passes half its capacity (for the link to move the oldest
    /// alerts to disk while the Sensor is away).
    pub high_water: tokio::sync::Notify,
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        AlertQueue {
            queue: Mutex::new(Queued::default()),
            in_flight: Mutex::new(None),
            capacity: capacity.max(1),
            hasher: foldhash::quality::RandomState::default(),
            ready: tokio::sync::Notify::new(),
            high_water: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queued> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most alerts kept in memory.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Alerts waiting.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Alerts not yet delivered: those waiting and those in the report being sent.
    pub fn undelivered(&self) -> usize {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        self.len() + in_flight.as_ref().map_or(0, |(_, n)| *n)
    }

    /// Up to `max` of the oldest alerts for a report, held as in flight (kept by
    /// [`AlertQueue::save`]) until [`AlertQueue::delivered`] or [`AlertQueue::not_delivered`].
    pub fn take_for_report(&self, max: usize) -> Batch {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let batch = self.take(max);
        *in_flight = (!batch.is_empty())
            .then(|| (bytes::Bytes::copy_from_slice(&batch.bytes), batch.alerts));
        batch
    }

    /// The report in flight reached the Sensor.
    pub fn delivered(&self) {
        *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The report in flight did not reach the Sensor: its alerts go back first in line.
    pub fn not_delivered(&self, batch: Batch, metrics: &Metrics) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        self.requeue(batch, metrics);
        *in_flight = None;
    }

    /// Queues one review's alerts, dropping (and counting) the oldest beyond capacity; or
    /// counts the review on an identical one's alerts still waiting whole.
    pub fn push(&self, alerts: ReviewAlerts, metrics: &Metrics) {
        if alerts.is_empty() {
            return;
        }
        let mut record = Record::of_review(&alerts);
        let time = alerts.common.time_unix_ms;
        // The decision's strings go now, while they are warm.
        drop(alerts);
        let key = self.hasher.hash_one(&record.bytes);
        let mut q = self.lock();
        if let Some(attempts) = q
            .open_record(key, &record.bytes)
            .and_then(|r| r.attempts.as_mut())
        {
            attempts.repeats += 1;
            attempts.last_time_unix_ms = attempts.last_time_unix_ms.max(time);
            drop(q);
            metrics.alerts_coalesced.inc();
            return;
        }
        record.seq = q.next_seq;
        record.open = Some(key);
        q.next_seq += 1;
        q.open.insert(key, record.seq);
        q.count += record.alerts;
        q.records.push_back(record);
        let over = q.count.saturating_sub(self.capacity);
        q.drop_oldest(over);
        let high = q.count > self.capacity / 2;
        drop(q);
        if over > 0 {
            metrics.alerts_dropped.inc_by(over as u64);
        }
        self.ready.notify_one();
        if high {
            self.high_water.notify_one();
        }
    }

    /// Up to `max` of the oldest alerts, encoded as the Sensor receives them.
    pub fn take(&self, max: usize) -> Batch {
        let mut q = self.lock();
        let mut batch = Batch::default();
        while batch.alerts < max {
            q.close_front();
            let Some(front) = q.records.front_mut() else {
                break;
            };
            let before = front.alerts;
            front.move_first(max - batch.alerts, &mut batch.bytes);
            let left = front.alerts;
            batch.alerts += before - left;
            q.count -= before - left;
            if left == 0 {
                q.records.pop_front();
            }
        }
        batch
    }

    /// Writes every waiting alert to `path` (as the one message the Sensor would receive;
    /// a temporary file renamed over it, readable by the owner only: alerts name users) and
    /// empties the queue; with none waiting, removes the file. For a controller stopping while
    /// the Sensor is away: [`AlertQueue::restore`] queues them again at the next start.
    pub fn save(&self, path: &std::path::Path, metrics: &Metrics) -> std::io::Result<usize> {
        // A report cut off mid-send may have reached the Sensor: sent again rather than lost.
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((bytes, alerts)) = in_flight {
            let bytes = bytes.to_vec();
            self.requeue(Batch { bytes, alerts }, metrics);
        }
        let batch = self.take(usize::MAX);
        if batch.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(0),
            };
        }
        crate::overflow::write_private(path, &batch.bytes)?;
        Ok(batch.alerts)
    }

    /// Queues the alerts [`AlertQueue::save`] left in `path`, first in line (the oldest beyond
    /// capacity dropped and counted, as for any), and removes the file. A file that is not
    /// alerts, or larger than `max_bytes`, is removed and said so; nothing is queued from it.
    pub fn restore(
        &self,
        path: &std::path::Path,
        max_bytes: u64,
        metrics: &Metrics,
    ) -> Result<usize, String> {
        let shown = path.display();
        let size = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        let read = if size > max_bytes {
            Err(format!(
                "{shown}: {size} bytes, over the {max_bytes} allowed"
            ))
        } else {
            std::fs::read(path).map_err(|e| format!("{shown}: {e}"))
        };
        let removed = std::fs::remove_file(path).map_err(|e| format!("{shown}: {e}"));
        let bytes = read?;
        let alerts = AdmissionAlerts::decode(bytes.as_slice())
            .map_err(|e| format!("{shown}: not saved alerts ({e})"))?
            .alerts
            .len();
        removed?;
        self.requeue(Batch { bytes, alerts }, metrics);
        Ok(alerts)
    }

    /// Puts back alerts the Sensor did not take, first in line; the oldest beyond capacity
    /// are dropped (and counted).
    pub fn requeue(&self, batch: Batch, metrics: &Metrics) {
        if batch.is_empty() {
            return;
        }
        let mut q = self.lock();
        let seq = q.records.front().map_or(q.next_seq, |r| r.seq) - 1;
        let record = Record::whole(batch, seq);
        q.count += record.alerts;
        q.records.push_front(record);
        let over = q.count.saturating_sub(self.capacity);
        q.drop_oldest(over);
        drop(q);
        if over > 0 {
            metrics.alerts_dropped.inc_by(over as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> AdmissionAlert {
        AdmissionAlert {
            policy_id: id.into(),
            ..Default::default()
        }
    }

    fn review(ids: &[&str]) -> ReviewAlerts {
        ReviewAlerts {
            common: AdmissionAlert {
                name: format!("dep-{}", ids.join("")),
                ..Default::default()
            },
            policies: ids
                .iter()
                .map(|id| PolicyAlert {
                    policy_id: id.to_string(),
                    violations: vec![format!("{id} violated")],
                    enforcement_action: Cow::Borrowed("FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_queued_record_reads_back_as_the_messages() {
        let full = ReviewAlerts {
            common: AdmissionAlert {
                namespace: "shop".into(),
                name: "checkout ✓".into(),
                kind: "Deployment".into(),
                deployment_id: "6f2c9a8e".into(),
                operation: "UPDATE".into(),
                user: "system:serviceaccount:ci:deployer".into(),
                request_uid: "705ab4f5".into(),
                break_glass: true,
                stage: rampart_proto::v1::LifecycleStage::Runtime as i32,
                time_unix_ms: 1_765_000_000_123,
                pod: "checkout-7d9f-x".into(),
                ..Default::default()
            },
            policies: vec![
                PolicyAlert {
                    policy_id: "a".repeat(200),
                    violations: vec!["first".into(), String::new(), "é".repeat(100)],
                    enforcement_action: Cow::Borrowed("FAIL_DEPLOYMENT_UPDATE_ENFORCEMENT"),
                },
                PolicyAlert {
                    policy_id: "b".into(),
                    violations: Vec::new(),
                    enforcement_action: Cow::Borrowed(""),
                },
            ],
        };
        let negative = ReviewAlerts {
            common: AdmissionAlert {
                time_unix_ms: -5,
                stage: -1,
                ..Default::default()
            },
            ..full.clone()
        };
        for review in [full, negative, review(&["x"])] {
            let mut record = Record::of_review(&review);
            assert_eq!(record.alerts, review.len());
            let mut moved = Vec::new();
            record.move_first(usize::MAX, &mut moved);
            let batch = Batch {
                bytes: moved,
                alerts: review.len(),
            };
            assert_eq!(batch.messages().expect("decodes"), review.to_alerts());
            assert_eq!(record.alerts, 0);
            // The fields that differ between attempts are added as the alerts leave, after
            // the others; the rest is what prost writes, field for field.
            let mut without = review.to_alerts();
            for a in &mut without {
                a.request_uid.clear();
                a.time_unix_ms = 0;
            }
            assert_eq!(
                Record::of_review(&review).bytes,
                AdmissionAlerts {
                    alerts: without,
                    ..Default::default()
                }
                .encode_to_vec()
            );
        }
    }

    /// The same review again, as a controller retrying it sends it: a new request, later.
    fn again(mut review: ReviewAlerts, uid: &str, time: i64) -> ReviewAlerts {
        review.common.request_uid = uid.into();
        review.common.time_unix_ms = time;
        review
    }

    #[test]
    fn images_to_scan_ride_along_with_a_reports_alerts() {
        let metrics = Metrics::new();
        let q = AlertQueue::new(100);
        q.push(review(&["a", "b"]), &metrics);
        let mut report = q.take(100).bytes;
        let images = ["r/x:1".to_string(), "r/y@sha256:00".to_string()];
        append_scan_images(&images, &mut report);
        let decoded = AdmissionAlerts::decode(report.as_slice()).expect("decodes");
        let ids: Vec<&str> = decoded
            .alerts
            .iter()
            .map(|a| a.policy_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(decoded.scan_images, images);
    }

    #[test]
    fn identical_attempts_join_the_alerts_still_waiting() {
        let metrics = Metrics::new();
        let q = AlertQueue::new(100);
        let first = again(review(&["a", "b"]), "u1", 1_000);
        q.push(first.clone(), &metrics);
        q.push(review(&["c"]), &metrics);
        q.push(again(first.clone(), "u2", 3_000), &metrics);
        q.push(again(first.clone(), "u3", 2_000), &metrics);
        // Another user's, or another operation's, attempt stands alone.
        let mut other_user = again(first.clone(), "u4", 4_000);
        other_user.common.user = "mallory".into();
        q.push(other_user, &metrics);
        let mut other_violation = again(first.clone(), "u5", 5_000);
        other_violation.policies[1].violations = vec!["b violated again".into()];
        q.push(other_violation, &metrics);
        assert_eq!(metrics.alerts_coalesced.get(), 2);
        assert_eq!(q.len(), 2 + 1 + 2 + 2, "each record's alerts once");

        let sent = q.take(3).messages().expect("decodes");
        let first_two: Vec<_> = sent[..2]
            .iter()
            .map(|a| {
                (
                    a.policy_id.as_str(),
                    a.request_uid.as_str(),
                    a.time_unix_ms,
                    a.repeats,
                    a.last_time_unix_ms,
                )
            })
            .collect();
        assert_eq!(
            first_two,
            [("a", "u1", 1_000, 2, 3_000), ("b", "u1", 1_000, 2, 3_000)],
            "the first attempt's request, and the last attempt's time"
        );
        assert_eq!(
            (sent[2].policy_id.as_str(), sent[2].repeats),
            ("c", 0),
            "a review alone says nothing of repeats"
        );
        // Alerts on their way no longer gather attempts: the next one stands alone.
        q.push(again(first.clone(), "u6", 6_000), &metrics);
        assert_eq!(metrics.alerts_coalesced.get(), 2);
        let rest = q.take(100).messages().expect("decodes");
        let uids: Vec<&str> = rest.iter().map(|a| a.request_uid.as_str()).collect();
        assert_eq!(uids, ["u4", "u4", "u5", "u5", "u6", "u6"]);
        assert!(rest.iter().all(|a| a.repeats == 0));
        assert!(q.is_empty());
    }

    #[test]
    fn a_record_partly_taken_dropped_or_put_back_gathers_no_attempts() {
        let sent = |q: &AlertQueue| -> Vec<(String, String, u64)> {
            q.take(100)
                .messages()
                .expect("decodes")
                .into_iter()
                .map(|a| (a.policy_id, a.request_uid, a.repeats))
                .collect()
        };
        let want = |v: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
            v.iter()
                .map(|(p, u, n)| (p.to_string(), u.to_string(), *n))
                .collect()
        };
        let metrics = Metrics::new();
        let q = AlertQueue::new(10);
        let r = again(review(&["a", "b"]), "u1", 1);
        q.push(r.clone(), &metrics);
        let taken = q.take(1);
        q.push(again(r.clone(), "u2", 2), &metrics);
        assert_eq!(
            metrics.alerts_coalesced.get(),
            0,
            "u1's first alert had left"
        );
        // Put back whole, first in line: sent as it was; u3 joins u2's record, not it.
        q.requeue(taken, &metrics);
        q.push(again(r.clone(), "u3", 3), &metrics);
        assert_eq!(metrics.alerts_coalesced.get(), 1);
        assert_eq!(
            sent(&q),
            want(&[
                ("a", "u1", 0),
                ("b", "u1", 0),
                ("a", "u2", 1),
                ("b", "u2", 1)
            ])
        );

        // Over capacity the oldest alerts go, and a record they were part of closes.
        let metrics = Metrics::new();
        let q = AlertQueue::new(3);
        q.push(r.clone(), &metrics);
        q.push(review(&["c", "d"]), &metrics);
        assert_eq!(metrics.alerts_dropped.get(), 1, "u1's first alert");
        q.push(again(r.clone(), "u2", 2), &metrics);
        assert_eq!(metrics.alerts_coalesced.get(), 0);
        assert_eq!(metrics.alerts_dropped.get(), 3);
        assert_eq!(
            sent(&q),
            want(&[("d", "", 0), ("a", "u2", 0), ("b", "u2", 0)])
        );
    }

    #[test]
    fn a_record_that_does_not_read_back_is_given_up_whole() {
        let good = Record::of_review(&review(&["a", "b"]));
        // The second entry's length runs past the end.
        let mut bytes = good.bytes.clone();
        bytes.truncate(bytes.len() - 3);
        let mut damaged = Record {
            bytes,
            alerts: 2,
            ..Record::default()
        };
        let mut moved = Vec::new();
        damaged.move_first(1, &mut moved);
        damaged.move_first(1, &mut moved);
        let taken = Batch {
            bytes: moved,
            alerts: 1,
        };
        let taken = taken.messages().expect("the first entry is whole");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].policy_id, "a");
        assert_eq!(damaged.alerts, 0);
        let mut wrong_field = Record {
            bytes: vec![0x10, 0x01],
            alerts: 1,
            ..Record::default()
        };
        wrong_field.drop_first(1);
        assert_eq!(wrong_field.alerts, 0);
        assert!(wrong_field.pop_entry().is_none());
    }

    #[test]
    fn a_review_record_becomes_one_message_per_policy_with_the_common_fields() {
        let q = AlertQueue::new(10);
        q.push(review(&["a", "b", "c"]), &Metrics::new());
        assert_eq!(q.len(), 3);
        let first = q.take(2);
        let rest = q.take(5);
        assert_eq!((first.alerts, rest.alerts), (2, 1));
        assert_eq!(q.len(), 0);
        assert!(q.take(5).is_empty());
        let got: Vec<(String, String, Vec<String>, String)> = [first, rest]
            .iter()
            .flat_map(|b| b.messages().expect("decodes"))
            .map(|a| (a.policy_id, a.name, a.violations, a.enforcement_action))
            .collect();
        let want: Vec<(String, String, Vec<String>, String)> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    "dep-abc".to_string(),
                    vec![format!("{id} violated")],
                    "FAIL_DEPLOYMENT_CREATE_ENFORCEMENT".to_string(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bounded_oldest_dropped_and_counted_requeue_keeps_order() {
        let metrics = Metrics::new();
        let q = AlertQueue::new(3);
        q.push(review(&["a", "b"]), &metrics);
        q.push(review(&["c", "d"]), &metrics);
        assert_eq!(metrics.alerts_dropped.get(), 1);
        let ids = |b: &Batch| -> Vec<String> {
            b.messages()
                .expect("decodes")
                .into_iter()
                .map(|a| a.policy_id)
                .collect()
        };
        let taken = q.take(2);
        assert_eq!(ids(&taken), vec!["b", "c"]);
        q.push(review(&["e", "f"]), &metrics);
        q.requeue(taken, &metrics);
        // The requeued alerts are the oldest, so they are the ones dropped beyond capacity.
        assert_eq!(ids(&q.take(10)), vec!["d", "e", "f"]);
        assert_eq!(metrics.alerts_dropped.get(), 3);
        q.requeue(Batch::of_messages(vec![alert("g")]), &metrics);
        q.push(review(&["h"]), &metrics);
        assert_eq!(ids(&q.take(1)), vec!["g"], "a requeued alert goes first");
    }
}

#[cfg(test)]
mod saved {
    use super::*;

    /// The policy ids of what `q` hands over next.
    fn taken_ids(q: &AlertQueue) -> Vec<String> {
        q.take(100)
            .messages()
            .expect("decodes")
            .into_iter()
            .map(|a| a.policy_id)
            .collect()
    }

    fn review(id: &str, uid: &str) -> ReviewAlerts {
        ReviewAlerts {
            common: AdmissionAlert {
                name: format!("dep-{id}"),
                user: "system:serviceaccount:ci:deployer".into(),
                request_uid: uid.into(),
                time_unix_ms: 1_765_000_000_000,
                ..Default::default()
            },
            policies: vec![PolicyAlert {
                policy_id: id.into(),
                violations: vec![format!("{id} violated")],
                enforcement_action: Cow::Borrowed("FAIL_DEPLOYMENT_CREATE_ENFORCEMENT"),
            }],
        }
    }

    #[test]
    fn waiting_alerts_survive_a_restart_in_order_with_their_attempts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cache/alerts-pending.pb");
        let metrics = Metrics::new();
        let before = AlertQueue::new(100);
        before.push(review("a", "u1"), &metrics);
        // A retry of the first joins its alerts; then a second workload's.
        let mut retry = review("a", "u2");
        retry.common.time_unix_ms += 5_000;
        before.push(retry, &metrics);
        before.push(review("b", "u3"), &metrics);
        assert_eq!(before.save(&path, &metrics).expect("save"), 2);
        assert!(before.is_empty());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "alerts name users: the owner's only");

        let after = AlertQueue::new(100);
        assert_eq!(after.restore(&path, 1 << 20, &metrics), Ok(2));
        assert!(!path.exists(), "restored once");
        let sent = after.take(100).messages().expect("decodes");
        let got: Vec<(&str, &str, u64)> = sent
            .iter()
            .map(|a| (a.policy_id.as_str(), a.request_uid.as_str(), a.repeats))
            .collect();
        assert_eq!(got, [("a", "u1", 1), ("b", "u3", 0)]);
        assert_eq!(sent[0].last_time_unix_ms, 1_765_000_005_000);
        // Nothing waiting: no file; none to restore.
        assert_eq!(after.save(&path, &metrics).expect("save"), 0);
        assert!(!path.exists());
        assert_eq!(after.restore(&path, 1 << 20, &metrics), Ok(0));
    }

    #[test]
    fn a_report_cut_off_mid_send_is_kept_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts-pending.pb");
        let metrics = Metrics::new();
        let q = AlertQueue::new(100);
        q.push(review("a", "u1"), &metrics);
        q.push(review("b", "u2"), &metrics);
        // The link took the first for a report, and the controller stops before the answer.
        let report = q.take_for_report(1);
        assert_eq!((report.alerts, q.len(), q.undelivered()), (1, 1, 2));
        assert_eq!(q.save(&path, &metrics).expect("save"), 2);
        let after = AlertQueue::new(100);
        assert_eq!(after.restore(&path, 1 << 20, &metrics), Ok(2));
        let ids = taken_ids(&after);
        assert_eq!(ids, ["a", "b"]);
        // Once the Sensor has answered, nothing is in flight any more; a report it did not
        // take is back first in line.
        q.push(review("c", "u3"), &metrics);
        q.take_for_report(1);
        q.delivered();
        assert_eq!(q.undelivered(), 0);
        assert_eq!(q.save(&path, &metrics).expect("save"), 0);
        q.push(review("d", "u4"), &metrics);
        q.push(review("e", "u5"), &metrics);
        let report = q.take_for_report(1);
        q.not_delivered(report, &metrics);
        assert_eq!(q.undelivered(), 2);
        let ids = taken_ids(&q);
        assert_eq!(ids, ["d", "e"]);
    }

    #[test]
    fn a_damaged_or_oversized_file_is_said_and_removed_and_capacity_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts-pending.pb");
        let metrics = Metrics::new();
        let q = AlertQueue::new(2);
        std::fs::write(&path, b"\xff\xff\xff not protobuf").expect("write");
        let err = q.restore(&path, 1 << 20, &metrics).expect_err("damaged");
        assert!(err.contains("not saved alerts"), "{err}");
        assert!(!path.exists());
        assert!(q.is_empty());

        let full = AlertQueue::new(10);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            full.push(review(id, &format!("u{i}")), &metrics);
        }
        full.save(&path, &metrics).expect("save");
        let size = std::fs::metadata(&path).expect("file").len();
        let err = q.restore(&path, size - 1, &metrics).expect_err("too large");
        assert!(err.contains("over the"), "{err}");
        assert!(!path.exists());

        // Restored into a smaller queue: the oldest beyond capacity dropped, and counted.
        full.push(review("d", "u4"), &metrics);
        full.push(review("e", "u5"), &metrics);
        full.push(review("f", "u6"), &metrics);
        full.save(&path, &metrics).expect("save");
        let dropped = metrics.alerts_dropped.get();
        assert_eq!(q.restore(&path, 1 << 20, &metrics), Ok(3));
        assert_eq!(q.len(), 2);
        assert_eq!(metrics.alerts_dropped.get(), dropped + 1);
        let ids = taken_ids(&q);
        assert_eq!(ids, ["e", "f"]);
    }
}
