//! The cluster's workloads and pods as the Sensor last described them. A request that carries
//! the whole object (CREATE, UPDATE of a workload) needs none of this; a `scale` request only
//! says the new replica count, and exec, attach and port-forward only name a pod, so those are
//! decided against the workload found here.

use std::collections::HashMap;
use std::sync::Arc;

use rampart_policy::WorkloadKind;
use rampart_policy::image_data::ImageData;
use rampart_proto::v1::{AdmissionResource, ImageFindings};

#[derive(Debug, Clone)]
pub struct CachedWorkload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The stripped object as JSON.
    pub json: Arc<str>,
}

#[derive(Debug, Clone)]
struct CachedPod {
    namespace: String,
    name: String,
    owner_uid: String,
}

#[derive(Debug, Default)]
pub struct Resources {
    workloads: HashMap<String, CachedWorkload>,
    workloads_by_name: HashMap<(WorkloadKind, String, String), String>,
    pods: HashMap<String, CachedPod>,
    pods_by_name: HashMap<(String, String), String>,
    /// Central's findings per image reference, with the size of their JSON.
    images: HashMap<String, (Arc<ImageData>, usize)>,
    image_bytes: usize,
    /// [`MAX_IMAGE_FINDINGS_BYTES`] unless set otherwise.
    image_bound: Option<usize>,
    /// The Sensor's snapshot has been received completely.
    pub synced: bool,
}

/// Most bytes of image findings (as JSON) the controller holds: some 2,000 images of an
/// ordinary size. Findings past it are refused (counted) until others are removed.
pub const MAX_IMAGE_FINDINGS_BYTES: usize = 256 << 20;

/// Why findings for an image were not kept.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FindingsRefused {
    #[error("the findings do not read: {0}")]
    Unreadable(String),
    #[error(
        "the controller holds {held} bytes of image findings; {more} more would pass its bound of {bound}"
    )]
    Full {
        held: usize,
        more: usize,
        bound: usize,
    },
}

/// `Deployment` → kind, as the Sensor names kinds.
pub fn parse_kind(kind: &str) -> Option<WorkloadKind> {
    use WorkloadKind::*;
    [
        Deployment,
        StatefulSet,
        DaemonSet,
        ReplicaSet,
        ReplicationController,
        Job,
        CronJob,
        Pod,
        DeploymentConfig,
    ]
    .into_iter()
    .find(|k| k.as_str() == kind)
}

impl Resources {
    pub fn len(&self) -> usize {
        self.workloads.len() + self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one change from the Sensor.
    pub fn apply(&mut self, r: AdmissionResource) {
        if r.removed {
            self.remove(&r.uid);
            return;
        }
        if r.uid.is_empty() {
            return;
        }
        self.remove(&r.uid);
        if r.kind == "Pod" && r.object_json.is_empty() {
            self.pods_by_name
                .insert((r.namespace.clone(), r.name.clone()), r.uid.clone());
            self.pods.insert(
                r.uid,
                CachedPod {
                    namespace: r.namespace,
                    name: r.name,
                    owner_uid: r.owner_uid,
                },
            );
            return;
        }
        let Some(kind) = parse_kind(&r.kind) else {
            return;
        };
        let Ok(json) = String::from_utf8(r.object_json) else {
            return;
        };
        self.workloads_by_name
            .insert((kind, r.namespace.clone(), r.name.clone()), r.uid.clone());
        self.workloads.insert(
            r.uid.clone(),
            CachedWorkload {
                kind,
                namespace: r.namespace,
                name: r.name,
                uid: r.uid,
                json: json.into(),
            },
        );
    }

    fn remove(&mut self, uid: &str) {
        if let Some(w) = self.workloads.remove(uid) {
            self.workloads_by_name
                .remove(&(w.kind, w.namespace, w.name));
        }
        if let Some(p) = self.pods.remove(uid) {
            self.pods_by_name.remove(&(p.namespace, p.name));
        }
    }

    /// Keeps Central's findings for one image, or forgets them (empty JSON).
    pub fn apply_image(&mut self, f: ImageFindings) -> Result<(), FindingsRefused> {
        let size = f.image_data_json.len();
        if size == 0 {
            if let Some((_, old)) = self.images.remove(&f.reference) {
                self.image_bytes -= old;
            }
            return Ok(());
        }
        let data: ImageData = serde_json::from_slice(&f.image_data_json)
            .map_err(|e| FindingsRefused::Unreadable(e.to_string()))?;
        let replaced = self.images.get(&f.reference).map_or(0, |(_, n)| *n);
        let held = self.image_bytes - replaced;
        let bound = self.image_bound.unwrap_or(MAX_IMAGE_FINDINGS_BYTES);
        if held + size > bound {
            return Err(FindingsRefused::Full {
                held,
                more: size,
                bound,
            });
        }
        self.image_bytes = held + size;
        self.images.insert(f.reference, (Arc::new(data), size));
        Ok(())
    }

    /// Central's findings for the image `reference` (as normalized: `full_name`).
    pub fn image(&self, reference: &str) -> Option<&Arc<ImageData>> {
        self.images.get(reference).map(|(data, _)| data)
    }

    /// Bounds the bytes of image findings held (a new snapshot keeps the bound it is given).
    pub fn bound_images(&mut self, bytes: usize) {
        self.image_bound = Some(bytes);
    }

    /// The images findings are held for.
    pub fn image_references(&self) -> impl Iterator<Item = &str> {
        self.images.keys().map(String::as_str)
    }

    /// How many images findings are held for.
    pub fn images(&self) -> usize {
        self.images.len()
    }

    /// Forgets everything (a new snapshot follows).
    pub fn clear(&mut self) {
        *self = Resources::default();
    }

    pub fn workload(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Option<&CachedWorkload> {
        let uid = self
            .workloads_by_name
            .get(&(kind, namespace.to_string(), name.to_string()))?;
        self.workloads.get(uid)
    }

    /// The top-level workload that runs a pod (the pod itself when it is bare and the Sensor
    /// sent it as a workload).
    pub fn owner_of_pod(&self, namespace: &str, name: &str) -> Option<&CachedWorkload> {
        let key = (namespace.to_string(), name.to_string());
        match self.pods_by_name.get(&key) {
            Some(uid) => self.workloads.get(&self.pods.get(uid)?.owner_uid),
            None => self.workload(WorkloadKind::Pod, namespace, name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(kind: &str, ns: &str, name: &str, uid: &str) -> AdmissionResource {
        AdmissionResource {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            object_json: format!(r#"{{"kind":"{kind}","metadata":{{"name":"{name}"}}}}"#)
                .into_bytes(),
            ..Default::default()
        }
    }

    #[test]
    fn pods_lead_to_their_workload_and_removals_forget() {
        let mut r = Resources::default();
        r.apply(workload("Deployment", "shop", "web", "d1"));
        r.apply(AdmissionResource {
            kind: "Pod".into(),
            namespace: "shop".into(),
            name: "web-7d9f-abcde".into(),
            uid: "p1".into(),
            owner_uid: "d1".into(),
            ..Default::default()
        });
        r.apply(workload("Pod", "shop", "bare", "p2"));
        assert_eq!(
            r.owner_of_pod("shop", "web-7d9f-abcde")
                .map(|w| w.uid.as_str()),
            Some("d1")
        );
        assert_eq!(
            r.owner_of_pod("shop", "bare").map(|w| w.uid.as_str()),
            Some("p2")
        );
        assert!(r.owner_of_pod("other", "web-7d9f-abcde").is_none());
        // A rename replaces the old name.
        r.apply(workload("Deployment", "shop", "web2", "d1"));
        assert!(
            r.workload(WorkloadKind::Deployment, "shop", "web")
                .is_none()
        );
        assert!(
            r.workload(WorkloadKind::Deployment, "shop", "web2")
                .is_some()
        );
        r.apply(AdmissionResource {
            removed: true,
            uid: "d1".into(),
            ..Default::default()
        });
        assert!(r.owner_of_pod("shop", "web-7d9f-abcde").is_none());
        assert_eq!(r.len(), 2);
    }
}
