//! The policy set the controller decides with: the Sensor's policies, of which it keeps the
//! enforced deploy-time ones and the Kubernetes-event runtime ones, compiled once per change.
//! Each set received is written to disk (atomically), so a restarted controller decides from
//! the last known set at once instead of failing open or closed until the Sensor answers.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use rampart_policy::compile::{CompiledPolicy, compile};
use rampart_policy::policy::EnforcementAction;
use rampart_policy::{LifecycleStage, Policy, can_violate_without_image_data};
use serde::{Deserialize, Serialize};

use crate::review::JsonText;

/// A deploy-time policy the webhook enforces.
fn enforced_deploy_time(p: &Policy) -> bool {
    !p.disabled
        && p.has_stage(LifecycleStage::Deploy)
        && p.enforcement_actions.iter().any(|a| {
            matches!(
                a,
                EnforcementAction::ScaleToZero
                    | EnforcementAction::UnsatisfiableNodeConstraint
                    | EnforcementAction::FailDeploymentCreate
                    | EnforcementAction::FailDeploymentUpdate
            )
        })
}

/// An enabled deploy-time policy the admission controller does not enforce: it warns of it.
fn unenforced_deploy_time(p: &Policy) -> bool {
    !p.disabled && p.has_stage(LifecycleStage::Deploy) && !enforced_deploy_time(p)
}

/// An enabled runtime policy about exec, attach or port-forward requests.
fn kube_event_policy(p: &Policy) -> bool {
    !p.disabled && p.tests_kube_events()
}

/// Whether a section of `p` tests whether an image was scanned.
pub(crate) fn tests_unscanned(p: &CompiledPolicy) -> bool {
    p.sections.iter().any(|s| {
        s.groups
            .iter()
            .any(|g| g.criterion.field == rampart_policy::criteria::Field::UnscannedImage)
    })
}

/// A compiled Kubernetes-event policy and whether it denies the request.
#[derive(Debug)]
pub struct EventPolicy {
    pub compiled: CompiledPolicy,
    pub enforced: bool,
}

/// One policy set, immutable once built.
#[derive(Debug)]
pub struct PolicySet {
    pub revision: String,
    pub cluster: String,
    /// When the Sensor sent it (or, from the disk cache, when it was received).
    pub received: SystemTime,
    /// The enforced deploy-time policies: first those a manifest can violate, evaluated on
    /// every request; from [`PolicySet::image_from`] on, those of which every section needs
    /// image data (CVEs, image age, components), evaluated only for a workload with an image
    /// Central has findings for (without them they cannot be violated).
    pub deploy: Vec<CompiledPolicy>,
    /// Where the policies on image data alone start in `deploy`.
    pub image_from: usize,
    /// Whether any enforced deploy-time policy tests image data (alone or with other
    /// criteria): an image without Central's findings is then decided only in part.
    pub tests_image_data: bool,
    /// Whether any enforced deploy-time policy tests whether an image was scanned (ACS's
    /// "Images with no scans"): only then is an image without Central's findings marked as one
    /// with no scan, which makes every policy on image data evaluated.
    pub tests_unscanned: bool,
    pub events: Vec<EventPolicy>,
    /// The enabled deploy-time policies not enforced that a manifest can violate: an admitted
    /// request that violates them is answered with a warning (`kubectl` prints it).
    pub unenforced: Vec<CompiledPolicy>,
    /// Policies that did not compile here (named in logs, skipped).
    pub problems: Vec<String>,
    /// Each `deploy` policy's part of a denial before its violations, escaped for the answer's
    /// JSON once: most of a denial's text. By position in `deploy`.
    headers: Vec<JsonText>,
    /// Each `deploy` policy's series of the violations metric, by position in `deploy`, once
    /// the set is in use (counted without a look-up by name).
    pub(crate) violation_counters: Vec<Counter>,
}

/// What the disk cache holds: the set as received.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub revision: String,
    pub cluster: String,
    pub received_unix_ms: i64,
    pub policies: Vec<serde_json::Value>,
}

impl PolicySet {
    /// Builds a set from ACS policy JSON documents.
    pub fn build(
        revision: &str,
        cluster: &str,
        received: SystemTime,
        policies_json: &[Vec<u8>],
    ) -> PolicySet {
        let mut set = PolicySet {
            revision: revision.to_string(),
            cluster: cluster.to_string(),
            received,
            deploy: Vec::new(),
            image_from: 0,
            tests_image_data: false,
            tests_unscanned: false,
            events: Vec::new(),
            unenforced: Vec::new(),
            problems: Vec::new(),
            headers: Vec::new(),
            violation_counters: Vec::new(),
        };
        let mut on_image_data = Vec::new();
        for raw in policies_json {
            let policy: Policy = match serde_json::from_slice(raw) {
                Ok(p) => p,
                Err(e) => {
                    set.problems.push(format!("unreadable policy: {e}"));
                    continue;
                }
            };
            let deploy = enforced_deploy_time(&policy);
            let event = kube_event_policy(&policy);
            let unenforced = unenforced_deploy_time(&policy);
            if !deploy && !event && !unenforced {
                continue;
            }
            let compiled = match compile(&policy) {
                Ok(c) => c,
                Err(e) => {
                    let problems: Vec<String> = e
                        .iter()
                        .map(|v| format!("{}: {}", v.path, v.message))
                        .collect();
                    set.problems
                        .push(format!("policy {:?}: {}", policy.name, problems.join("; ")));
                    continue;
                }
            };
            if event {
                let enforced = policy
                    .enforcement_actions
                    .contains(&EnforcementAction::FailKubeRequest);
                set.events.push(EventPolicy {
                    compiled: compiled.clone(),
                    enforced,
                });
            }
            if unenforced && can_violate_without_image_data(&compiled) {
                set.unenforced.push(compiled.clone());
            }
            if deploy && can_violate_without_image_data(&compiled) {
                set.headers.push(header_of(&compiled));
                set.deploy.push(compiled);
            } else if deploy {
                on_image_data.push(compiled);
            }
        }
        set.image_from = set.deploy.len();
        set.tests_image_data = !on_image_data.is_empty()
            || set.deploy.iter().any(|p| {
                p.needs
                    .contains(&rampart_policy::criteria::Needs::ImageData)
            });
        set.tests_unscanned = set.deploy.iter().chain(&on_image_data).any(tests_unscanned);
        for compiled in on_image_data {
            set.headers.push(header_of(&compiled));
            set.deploy.push(compiled);
        }
        set
    }

    /// The enforced policies on image data alone.
    pub fn on_image_data(&self) -> &[CompiledPolicy] {
        self.deploy.get(self.image_from..).unwrap_or_default()
    }

    /// The part of a denial before its violations, escaped, of `p`, the policy at `index` in
    /// `deploy`.
    pub fn header(&self, index: usize, p: &CompiledPolicy) -> Cow<'_, JsonText> {
        match (self.headers.get(index), self.deploy.get(index)) {
            (Some(h), Some(q)) if std::ptr::eq(p, q) => Cow::Borrowed(h),
            // Not the set's own policy (`deploy` is public and may have changed since).
            _ => Cow::Owned(header_of(p)),
        }
    }

    /// How long ago the set was received.
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.received)
            .unwrap_or_default()
    }

    /// The policy ids the set enforces, for logs and tests.
    pub fn enforced_ids(&self) -> Vec<&str> {
        self.deploy
            .iter()
            .map(|p| p.policy.id.as_str())
            .chain(
                self.events
                    .iter()
                    .filter(|e| e.enforced)
                    .map(|e| e.compiled.policy.id.as_str()),
            )
            .collect()
    }
}

/// A policy's part of a denial before its violations, escaped for JSON.
pub(crate) fn header_of(p: &CompiledPolicy) -> JsonText {
    let mut text = String::new();
    crate::decide::policy_header(&mut text, p);
    JsonText::from(text)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The on-disk copy of the last set received.
#[derive(Debug, Clone)]
pub struct DiskCache {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("read policy cache {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy cache {path} is not valid: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write policy cache {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DiskCache {
    pub fn new(dir: &Path) -> DiskCache {
        DiskCache {
            path: dir.join("policies.json"),
        }
    }

    /// The cached set; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<PolicySet>, CacheError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CacheError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let stored: Stored =
            serde_json::from_slice(&text).map_err(|source| CacheError::Invalid {
                path: self.path.clone(),
                source,
            })?;
        let policies: Vec<Vec<u8>> = stored
            .policies
            .iter()
            .filter_map(|p| serde_json::to_vec(p).ok())
            .collect();
        let received =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(stored.received_unix_ms).unwrap_or(0));
        Ok(Some(PolicySet::build(
            &stored.revision,
            &stored.cluster,
            received,
            &policies,
        )))
    }

    /// Writes a set as received (a temporary file renamed over the old one: a crash leaves
    /// either the old set or the new one, never half of one).
    pub fn store(
        &self,
        revision: &str,
        cluster: &str,
        received: SystemTime,
        policies_json: &[Vec<u8>],
    ) -> Result<(), CacheError> {
        let policies = policies_json
            .iter()
            .filter_map(|p| serde_json::from_slice(p).ok())
            .collect();
        let stored = Stored {
            revision: revision.to_string(),
            cluster: cluster.to_string(),
            received_unix_ms: unix_ms(received),
            policies,
        };
        let write = |source| CacheError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(&stored).map_err(|e| write(std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(write)?;
        std::fs::rename(&tmp, &self.path).map_err(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(p: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&p).expect("json")
    }

    #[test]
    fn keeps_enforced_deploy_time_and_kube_event_policies() {
        let privileged = |id: &str, enforce: bool, disabled: bool| {
            json(serde_json::json!({
                "id": id, "name": format!("privileged {id}"), "severity": "HIGH_SEVERITY",
                "lifecycleStages": ["DEPLOY"], "disabled": disabled,
                "enforcementActions": if enforce { vec!["SCALE_TO_ZERO_ENFORCEMENT"] } else { vec![] },
                "policySections": [{"policyGroups": [{"fieldName": "Privileged Container", "values": [{"value": "true"}]}]}]
            }))
        };
        let exec = |id: &str, enforce: bool| {
            json(serde_json::json!({
                "id": id, "name": format!("exec {id}"), "severity": "HIGH_SEVERITY",
                "lifecycleStages": ["RUNTIME"], "eventSource": "DEPLOYMENT_EVENT",
                "enforcementActions": if enforce { vec!["FAIL_KUBE_REQUEST_ENFORCEMENT"] } else { vec![] },
                "policySections": [{"policyGroups": [{"fieldName": "Kubernetes Resource", "values": [{"value": "PODS_EXEC"}]}]}]
            }))
        };
        let set = PolicySet::build(
            "r1",
            "c",
            SystemTime::now(),
            &[
                privileged("a", true, false),
                privileged("b", false, false),
                privileged("c", true, true),
                exec("d", true),
                exec("e", false),
                b"{not json".to_vec(),
            ],
        );
        let deploy: Vec<_> = set.deploy.iter().map(|p| p.policy.id.as_str()).collect();
        assert_eq!(deploy, vec!["a"]);
        let events: Vec<_> = set
            .events
            .iter()
            .map(|e| (e.compiled.policy.id.as_str(), e.enforced))
            .collect();
        assert_eq!(events, vec![("d", true), ("e", false)]);
        assert_eq!(set.enforced_ids(), vec!["a", "d"]);
        assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
    }

    #[test]
    fn the_disk_cache_round_trips_and_reports_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DiskCache::new(dir.path());
        assert!(cache.load().expect("no file is no set").is_none());
        let policy = json(serde_json::json!({
            "id": "a", "name": "privileged", "severity": "HIGH_SEVERITY", "lifecycleStages": ["DEPLOY"],
            "enforcementActions": ["SCALE_TO_ZERO_ENFORCEMENT"],
            "policySections": [{"policyGroups": [{"fieldName": "Privileged Container", "values": [{"value": "true"}]}]}]
        }));
        let received = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        cache
            .store("r7", "prod", received, &[policy])
            .expect("stored");
        let set = cache.load().expect("loads").expect("a set");
        assert_eq!(
            (set.revision.as_str(), set.cluster.as_str()),
            ("r7", "prod")
        );
        assert_eq!(set.received, received);
        assert_eq!(set.enforced_ids(), vec!["a"]);
        std::fs::write(dir.path().join("policies.json"), "{half").expect("write");
        let err = cache.load().expect_err("damaged");
        assert!(err.to_string().contains("is not valid"), "{err}");
    }
}
