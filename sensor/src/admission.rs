//! The Sensor's endpoint for its admission controllers (same mTLS server as the Collectors'):
//! each controller receives the policy set, the cluster's workloads and pods and Central's
//! findings for the images they run, pushed on change, and hands back the alerts it raised,
//! which join the outbox towards Central.
//!
//! Only admission-control certificates of this cluster's init bundle are accepted.
//!
//! Changes are found by comparing, per controller, a hash of what it was sent with the index
//! (at most every [`RESOURCE_INTERVAL`]): no second change log to keep consistent, and a
//! controller that reconnects simply gets a new snapshot.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rampart_proto::v1::admission_control_service_server::AdmissionControlService;
use rampart_proto::v1::admission_update::Msg;
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;
use rampart_proto::v1::{
    AdmissionAlerts, AdmissionPolicies, AdmissionReportAck, AdmissionResource,
    AdmissionResourcesSynced, AdmissionUpdate, AdmissionWatch, ImageFindings, ImageScanRequest,
};
use rampart_proto::{MAX_ADMISSION_REPORT, MAX_IMAGE_REFERENCE, MAX_SCAN_REQUEST_IMAGES};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::images::ImageFindingsStore;
use crate::index::Index;

/// Updates queued per controller stream.
const UPDATE_QUEUE: usize = 1024;
/// How often the index is compared with what a controller holds.
pub const RESOURCE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct AdmissionServer {
    shared: Arc<Shared>,
}

impl AdmissionServer {
    pub fn new(shared: Arc<Shared>) -> AdmissionServer {
        AdmissionServer { shared }
    }

    fn check_identity<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let cluster = request.peer_certs().and_then(|certs| {
            certs
                .first()
                .and_then(|c| crate::nodes::cluster_of(c.as_ref(), "admission-control"))
        });
        match cluster {
            Some(c) if c == self.shared.cluster_name => Ok(()),
            Some(c) => Err(Status::permission_denied(format!(
                "an admission-control certificate of cluster '{c}' cannot connect to the Sensor of '{}'",
                self.shared.cluster_name
            ))),
            None => Err(Status::permission_denied(
                "only an admission-control certificate of this cluster's init bundle may connect",
            )),
        }
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<AdmissionUpdate, Status>> + Send>>;

/// The Sensor's policy set, once it has one from Central (an empty set before that would
/// read as "nothing is enforced").
fn policies_update(shared: &Shared) -> Option<AdmissionUpdate> {
    let p = crate::lock(&shared.policies);
    if p.revision.is_empty() {
        return None;
    }
    Some(AdmissionUpdate {
        msg: Some(Msg::Policies(AdmissionPolicies {
            revision: p.revision.clone(),
            policies_json: p.raw_policies(),
            cluster_name: shared.cluster_name.clone(),
            time_unix_ms: crate::collector::unix_ms(),
        })),
    })
}

/// What a controller was sent: per uid, the content hash and the pass that last saw it; per
/// image, the hash of its findings.
#[derive(Debug, Default)]
struct Sent {
    entries: HashMap<String, (u64, u64)>,
    pass: u64,
    images: HashMap<String, u64>,
}

/// The image findings a controller lacks or holds stale, and those it holds of images gone
/// (as empty findings); `sent` is brought up to date.
fn image_changes(store: &ImageFindingsStore, sent: &mut Sent) -> Vec<ImageFindings> {
    let mut changes = Vec::new();
    let mut current = HashMap::with_capacity(store.len());
    store.for_each(|reference, hash, json| {
        if sent.images.get(reference) != Some(&hash) {
            changes.push(ImageFindings {
                reference: reference.to_string(),
                image_data_json: json.to_vec(),
            });
        }
        current.insert(reference.to_string(), hash);
    });
    for reference in sent.images.keys() {
        if !current.contains_key(reference) {
            changes.push(ImageFindings {
                reference: reference.clone(),
                image_data_json: Vec::new(),
            });
        }
    }
    sent.images = current;
    changes
}

/// What changed in the index since the last pass; `sent` is brought up to date. Only new uids
/// allocate: a pass over an unchanged cluster only hashes and compares.
fn resource_changes(index: &Index, sent: &mut Sent) -> Vec<AdmissionResource> {
    sent.pass += 1;
    let pass = sent.pass;
    let mut changes = Vec::new();
    index.for_each_admission_entry(|e| {
        match sent.entries.get_mut(e.uid) {
            Some((hash, seen)) => {
                *seen = pass;
                if *hash == e.hash {
                    return;
                }
                *hash = e.hash;
            }
            None => {
                sent.entries.insert(e.uid.to_string(), (e.hash, pass));
            }
        }
        changes.push(AdmissionResource {
            removed: false,
            kind: e.kind.name().to_string(),
            namespace: e.namespace.to_string(),
            name: e.name.to_string(),
            uid: e.uid.to_string(),
            object_json: e.object.map(|o| o.as_bytes().to_vec()).unwrap_or_default(),
            owner_uid: e.owner_uid.to_string(),
        });
    });
    sent.entries.retain(|uid, (_, seen)| {
        let keep = *seen == pass;
        if !keep {
            changes.push(AdmissionResource {
                removed: true,
                uid: uid.clone(),
                ..Default::default()
            });
        }
        keep
    });
    changes
}

async fn feed(shared: Arc<Shared>, tx: tokio::sync::mpsc::Sender<Result<AdmissionUpdate, Status>>) {
    let mut policies = shared.policies_changed.subscribe();
    let mut changed = shared.changed.subscribe();
    let mut images = shared.images_changed.subscribe();
    if let Some(update) = policies_update(&shared)
        && tx.send(Ok(update)).await.is_err()
    {
        return;
    }
    let mut sent = Sent::default();
    let mut synced = false;
    loop {
        let changes = resource_changes(&crate::lock(&shared.index), &mut sent);
        for r in changes {
            let update = AdmissionUpdate {
                msg: Some(Msg::Resource(r)),
            };
            if tx.send(Ok(update)).await.is_err() {
                return;
            }
        }
        // Before the snapshot's end on the first round: the controller swaps in a view with
        // its images' findings.
        images.borrow_and_update();
        let findings = image_changes(&crate::lock(&shared.images), &mut sent);
        for f in findings {
            let update = AdmissionUpdate {
                msg: Some(Msg::ImageFindings(f)),
            };
            if tx.send(Ok(update)).await.is_err() {
                return;
            }
        }
        if !synced {
            synced = true;
            let done = AdmissionUpdate {
                msg: Some(Msg::ResourcesSynced(AdmissionResourcesSynced {})),
            };
            if tx.send(Ok(done)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            r = policies.changed() => {
                if r.is_err() {
                    return;
                }
                if let Some(update) = policies_update(&shared)
                    && tx.send(Ok(update)).await.is_err()
                {
                    return;
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
                // Coalesces bursts of index changes into one comparison.
                tokio::time::sleep(RESOURCE_INTERVAL).await;
            }
            r = images.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(RESOURCE_INTERVAL).await;
            }
            () = tx.closed() => return,
        }
    }
}

/// The images a report asks to be scanned, if within bounds: the whole report is refused
/// otherwise (the controller never sends more).
fn images_to_scan(images: Vec<String>) -> Result<Vec<String>, Status> {
    if images.len() > MAX_SCAN_REQUEST_IMAGES
        || images
            .iter()
            .any(|i| i.is_empty() || i.len() > MAX_IMAGE_REFERENCE)
    {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_SCAN_REQUEST_IMAGES} images to scan per report, each a reference of 1 to {MAX_IMAGE_REFERENCE} bytes"
        )));
    }
    Ok(images)
}

#[tonic::async_trait]
impl AdmissionControlService for AdmissionServer {
    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<AdmissionWatch>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.check_identity(&request)?;
        let hello = request.into_inner();
        tracing::info!(instance = %hello.instance, version = %hello.controller_version, revision = %hello.policy_revision, "admission controller connected");
        let (tx, rx) = tokio::sync::mpsc::channel(UPDATE_QUEUE);
        tokio::spawn(feed(Arc::clone(&self.shared), tx));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn report(
        &self,
        request: Request<AdmissionAlerts>,
    ) -> Result<Response<AdmissionReportAck>, Status> {
        self.check_identity(&request)?;
        let mut alerts = request.into_inner();
        if alerts.alerts.len() > MAX_ADMISSION_REPORT {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_ADMISSION_REPORT} alerts per report"
            )));
        }
        let images = images_to_scan(std::mem::take(&mut alerts.scan_images))?;
        let accepted = u32::try_from(alerts.alerts.len()).unwrap_or(u32::MAX);
        if accepted > 0 {
            tracing::info!(alerts = accepted, "admission alerts queued for Central");
            self.shared.send(FromSensor::AdmissionAlerts(alerts));
        }
        if !images.is_empty() {
            // Central scans them and sends their findings back; nothing waits here.
            tracing::info!(
                images = images.len(),
                "images met unscanned at admission; asking Central to scan them"
            );
            self.shared
                .send(FromSensor::ImageScanRequest(ImageScanRequest {
                    references: images,
                }));
        }
        Ok(Response::new(AdmissionReportAck { accepted }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::findings;

    fn names(changes: &[ImageFindings]) -> Vec<(&str, &[u8])> {
        let mut out: Vec<_> = changes
            .iter()
            .map(|f| (f.reference.as_str(), f.image_data_json.as_slice()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_report_asks_for_a_bounded_number_of_well_formed_references() {
        let images = |n: usize, len: usize| vec!["i".repeat(len); n];
        assert_eq!(images_to_scan(images(2, 20)).expect("fine").len(), 2);
        assert_eq!(
            images_to_scan(images(MAX_SCAN_REQUEST_IMAGES, MAX_IMAGE_REFERENCE))
                .expect("at the bounds")
                .len(),
            MAX_SCAN_REQUEST_IMAGES
        );
        for (n, len) in [
            (MAX_SCAN_REQUEST_IMAGES + 1, 20),
            (1, MAX_IMAGE_REFERENCE + 1),
            (1, 0),
        ] {
            let refused = images_to_scan(images(n, len)).expect_err("past a bound");
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{n} × {len}");
        }
    }

    #[test]
    fn a_controller_is_sent_the_findings_it_lacks_and_told_of_those_gone() {
        let mut store = ImageFindingsStore::default();
        store.apply(findings("a:1", "{}")).expect("a");
        store.apply(findings("b:1", r#"{"os":"x"}"#)).expect("b");
        let mut sent = Sent::default();
        assert_eq!(
            names(&image_changes(&store, &mut sent)),
            [("a:1", &b"{}"[..]), ("b:1", &br#"{"os":"x"}"#[..])]
        );
        assert!(image_changes(&store, &mut sent).is_empty(), "nothing new");
        store.apply(findings("b:1", r#"{"os":"y"}"#)).expect("b");
        store.apply(findings("a:1", "")).expect("a gone");
        assert_eq!(
            names(&image_changes(&store, &mut sent)),
            [("a:1", &b""[..]), ("b:1", &br#"{"os":"y"}"#[..])]
        );
        assert!(image_changes(&store, &mut sent).is_empty());
    }
}
