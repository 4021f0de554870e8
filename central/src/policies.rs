//! Central's policies: seeded from the defaults at first start, then created, edited, enabled,
//! disabled, deleted, imported and exported by users. Every change is durable before it is
//! visible, bumps the revision, and is published to every Sensor session and to reassessment
//! through one watch channel.
//!
//! ```text
//!  API ─▶ validate (compile) ─▶ commit (policy + revision) ─▶ PolicyState (new Arc) ─▶ watch
//!                                                                  ├─▶ Sensor sessions: PolicySync
//!                                                                  └─▶ reassessment
//! ```

use std::sync::Arc;

use rampart_policy::compile::{CompiledPolicy, ValidationError, compile};
use rampart_policy::policy::{EnforcementAction, Policy};
use serde::Serialize;
use tokio::sync::watch;

use crate::commit::{CommitError, Committer};
use crate::hub::PolicySet;
use crate::store::{Backend, Store, Table, WriteBatch};
use rampart_policy::detect::Detector;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no policy with id '{0}'")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid policy: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationError>),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// What [`Policies::patch`] changes; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub disabled: Option<bool>,
    pub enforcement_actions: Option<Vec<EnforcementAction>>,
}

/// One published set of policies and everything derived from it.
#[derive(Debug)]
pub struct PolicyState {
    /// Incremented by every change; survives restarts.
    pub revision: u64,
    /// Every policy, sorted by name (case-insensitive).
    pub policies: Vec<Policy>,
    /// Every policy that compiles, compiled once per change (requests select from these).
    pub compiled: Vec<CompiledPolicy>,
    /// The enabled deploy-time policies, compiled.
    pub detector: Detector,
    /// What Sensors receive.
    pub sync: PolicySet,
}

impl PolicyState {
    fn new(revision: u64, mut policies: Vec<Policy>) -> PolicyState {
        policies.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        let policies_json: Vec<Vec<u8>> = policies
            .iter()
            .filter_map(|p| serde_json::to_vec(p).ok())
            .collect();
        let compiled: Vec<CompiledPolicy> =
            policies.iter().filter_map(|p| compile(p).ok()).collect();
        PolicyState {
            revision,
            detector: Detector::from_compiled(&compiled),
            compiled,
            sync: PolicySet {
                revision: content_revision(&policies_json),
                policies_json,
            },
            policies,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }
}

/// FNV-1a over the policies' JSON: equal sets have equal revisions, across restarts and
/// Centrals, so a Sensor holding the same set is not sent it again.
fn content_revision(policies_json: &[Vec<u8>]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in policies_json.iter().flat_map(|p| p.iter().chain(b"\n")) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The result of importing one policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub id: String,
    pub name: String,
    pub succeeded: bool,
    /// Why it was not imported (duplicate id or name, invalid criteria).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

const REVISION_KEY: &str = "policy_revision";
const SEEDED_KEY: &str = "policies_seeded";

/// The policy registry.
pub struct Policies<B: Backend> {
    _store: std::marker::PhantomData<B>,
    committer: Committer,
    /// Serializes changes: each reads the current state and publishes the next.
    write: tokio::sync::Mutex<()>,
    current: watch::Sender<Arc<PolicyState>>,
}

impl<B: Backend> std::fmt::Debug for Policies<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("revision", &self.current.borrow().revision)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Policies<B> {
    /// Loads the stored policies; on the first start, seeds `defaults` (Central's default
    /// policies) first. A stored policy that no longer compiles is kept and reported, not
    /// dropped: the user can fix or delete it.
    pub fn open(
        store: Arc<Store<B>>,
        committer: Committer,
        defaults: Vec<Policy>,
    ) -> Result<Policies<B>, PolicyError> {
        let seeded: bool = store.get_record(Table::Meta, SEEDED_KEY)?.unwrap_or(false);
        if !seeded {
            let mut batch = WriteBatch::default();
            for p in &defaults {
                batch.put(Table::Policies, &p.id, p)?;
            }
            batch.put(Table::Meta, SEEDED_KEY, &true)?;
            batch.put(Table::Meta, REVISION_KEY, &1u64)?;
            store.apply(&batch)?;
            store.flush()?;
            tracing::info!(count = defaults.len(), "seeded the default policies");
        }
        let revision: u64 = store.get_record(Table::Meta, REVISION_KEY)?.unwrap_or(1);
        let policies: Vec<Policy> = store.scan_records(Table::Policies, "")?;
        let state = PolicyState::new(revision, policies);
        tracing::info!(
            revision,
            policies = state.policies.len(),
            deploy_time = state.detector.policies().len(),
            "policies loaded"
        );
        Ok(Policies {
            _store: std::marker::PhantomData,
            committer,
            write: tokio::sync::Mutex::new(()),
            current: watch::channel(Arc::new(state)).0,
        })
    }

    pub fn current(&self) -> Arc<PolicyState> {
        Arc::clone(&self.current.borrow())
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<PolicyState>> {
        self.current.subscribe()
    }

    /// Writes `changes` (puts and deletes by id) and publishes the new state.
    async fn apply(
        &self,
        state: &PolicyState,
        put: Vec<Policy>,
        delete: Vec<String>,
    ) -> Result<Arc<PolicyState>, PolicyError> {
        let revision = state.revision + 1;
        let mut batch = WriteBatch::default();
        for p in &put {
            batch.put(Table::Policies, &p.id, p)?;
        }
        for id in &delete {
            batch.delete(Table::Policies, id)?;
        }
        batch.put(Table::Meta, REVISION_KEY, &revision)?;
        self.committer.commit(batch).await?;
        let mut policies: Vec<Policy> = state
            .policies
            .iter()
            .filter(|p| !delete.contains(&p.id) && !put.iter().any(|n| n.id == p.id))
            .cloned()
            .collect();
        policies.extend(put);
        let next = Arc::new(PolicyState::new(revision, policies));
        self.current.send_replace(Arc::clone(&next));
        tracing::info!(revision, "policies changed");
        Ok(next)
    }

    /// Creates a policy; an empty id gets a new UUID. Ids and names are unique.
    pub async fn create(&self, mut policy: Policy) -> Result<Policy, PolicyError> {
        let _write = self.write.lock().await;
        let state = self.current();
        if policy.id.is_empty() {
            policy.id = uuid::Uuid::new_v4().to_string();
        }
        check_unique(&state, &policy, None)?;
        prepare_user_policy(&mut policy)?;
        self.apply(&state, vec![policy.clone()], Vec::new()).await?;
        Ok(policy)
    }

    /// Replaces a policy. A default policy's criteria are locked (as in ACS): clone it to
    /// change what it detects; its scope, exclusions, enforcement and severity may change.
    pub async fn update(&self, id: &str, mut policy: Policy) -> Result<Policy, PolicyError> {
        let _write = self.write.lock().await;
        let state = self.current();
        let existing = state
            .get(id)
            .ok_or_else(|| PolicyError::NotFound(id.to_string()))?;
        if !policy.id.is_empty() && policy.id != id {
            return Err(PolicyError::Conflict(format!(
                "the body's id '{}' differs from the id in the path '{id}'",
                policy.id
            )));
        }
        policy.id = id.to_string();
        if existing.criteria_locked && policy.policy_sections != existing.policy_sections {
            return Err(PolicyError::Conflict(format!(
                "the criteria of default policy '{}' are locked; clone it to change what it detects",
                existing.name
            )));
        }
        policy.is_default = existing.is_default;
        policy.criteria_locked = existing.criteria_locked;
        policy.mitre_vectors_locked = existing.mitre_vectors_locked;
        check_unique(&state, &policy, Some(id))?;
        prepare_user_policy(&mut policy)?;
        self.apply(&state, vec![policy.clone()], Vec::new()).await?;
        Ok(policy)
    }

    /// Enables or disables a policy.
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<Policy, PolicyError> {
        self.patch(
            id,
            PolicyChange {
                disabled: Some(disabled),
                ..PolicyChange::default()
            },
        )
        .await
    }

    /// Changes a policy's switches — enabled, and its enforcement actions — without sending
    /// the whole policy (default policies too: their criteria stay locked, their enforcement is
    /// the user's). Actions must belong to the policy's stages.
    pub async fn patch(&self, id: &str, change: PolicyChange) -> Result<Policy, PolicyError> {
        let _write = self.write.lock().await;
        let state = self.current();
        let mut policy = state
            .get(id)
            .cloned()
            .ok_or_else(|| PolicyError::NotFound(id.to_string()))?;
        let before = policy.clone();
        if let Some(disabled) = change.disabled {
            policy.disabled = disabled;
        }
        if let Some(actions) = change.enforcement_actions {
            policy.check_enforcement(&actions).map_err(|message| {
                PolicyError::Invalid(vec![ValidationError {
                    policy: policy.name.clone(),
                    path: "enforcementActions".into(),
                    message,
                }])
            })?;
            let mut unique = Vec::with_capacity(actions.len());
            for a in actions {
                if !unique.contains(&a) {
                    unique.push(a);
                }
            }
            policy.enforcement_actions = unique;
        }
        if policy == before {
            return Ok(policy);
        }
        policy.last_updated = Some(now_rfc3339());
        self.apply(&state, vec![policy.clone()], Vec::new()).await?;
        Ok(policy)
    }

    /// Deletes a user policy; default policies can only be disabled (as in ACS).
    pub async fn delete(&self, id: &str) -> Result<(), PolicyError> {
        let _write = self.write.lock().await;
        let state = self.current();
        let existing = state
            .get(id)
            .ok_or_else(|| PolicyError::NotFound(id.to_string()))?;
        if existing.is_default {
            return Err(PolicyError::Conflict(format!(
                "'{}' is a default policy; disable it instead of deleting it",
                existing.name
            )));
        }
        self.apply(&state, Vec::new(), vec![id.to_string()]).await?;
        Ok(())
    }

    /// Imports ACS policies. Without `overwrite`, a policy whose id or name exists is refused
    /// (ACS's behaviour); with it, the existing policy is replaced. Every policy gets its own
    /// result; the valid ones are written in one change.
    pub async fn import(
        &self,
        policies: Vec<Policy>,
        overwrite: bool,
    ) -> Result<Vec<ImportResult>, PolicyError> {
        let _write = self.write.lock().await;
        let state = self.current();
        let mut results = Vec::with_capacity(policies.len());
        let mut put: Vec<Policy> = Vec::new();
        let mut delete: Vec<String> = Vec::new();
        for mut policy in policies {
            if policy.id.is_empty() {
                policy.id = uuid::Uuid::new_v4().to_string();
            }
            let mut errors = Vec::new();
            let same_id = state.get(&policy.id);
            let same_name = state
                .policies
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&policy.name));
            let in_batch = put
                .iter()
                .any(|p| p.id == policy.id || p.name.eq_ignore_ascii_case(&policy.name));
            if in_batch {
                errors.push("the import contains this id or name twice".to_string());
            } else if !overwrite {
                if same_id.is_some() {
                    errors.push(format!("a policy with id '{}' exists", policy.id));
                }
                if same_name.is_some() {
                    errors.push(format!("a policy named '{}' exists", policy.name));
                }
            } else {
                if let Some(old) = same_id.filter(|p| p.criteria_locked)
                    && old.policy_sections != policy.policy_sections
                {
                    errors.push(format!(
                        "the criteria of default policy '{}' are locked",
                        old.name
                    ));
                }
                // Overwriting by name replaces the policy of that name, whatever its id.
                if let Some(old) = same_name.filter(|p| p.id != policy.id) {
                    if old.is_default {
                        errors.push(format!(
                            "'{}' is a default policy with another id; it cannot be replaced",
                            old.name
                        ));
                    } else {
                        delete.push(old.id.clone());
                    }
                }
            }
            if errors.is_empty() {
                let locked = same_id.map(|p| (p.is_default, p.criteria_locked));
                if let Some((is_default, criteria_locked)) = locked {
                    policy.is_default = is_default;
                    policy.criteria_locked = criteria_locked;
                } else {
                    policy.is_default = false;
                    policy.criteria_locked = false;
                }
                if let Err(PolicyError::Invalid(v)) = prepare_user_policy(&mut policy) {
                    errors.extend(v.iter().map(ToString::to_string));
                }
            }
            results.push(ImportResult {
                id: policy.id.clone(),
                name: policy.name.clone(),
                succeeded: errors.is_empty(),
                errors,
            });
            if results.last().is_some_and(|r| r.succeeded) {
                put.push(policy);
            }
        }
        if !put.is_empty() {
            self.apply(&state, put, delete).await?;
        }
        Ok(results)
    }
}

fn check_unique(
    state: &PolicyState,
    policy: &Policy,
    updating: Option<&str>,
) -> Result<(), PolicyError> {
    if updating.is_none() && state.get(&policy.id).is_some() {
        return Err(PolicyError::Conflict(format!(
            "a policy with id '{}' exists",
            policy.id
        )));
    }
    if let Some(other) = state
        .policies
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(&policy.name) && Some(p.id.as_str()) != updating)
    {
        return Err(PolicyError::Conflict(format!(
            "a policy named '{}' exists (id {})",
            other.name, other.id
        )));
    }
    Ok(())
}

/// Validates as the engine does and stamps the update time.
fn prepare_user_policy(policy: &mut Policy) -> Result<(), PolicyError> {
    compile(policy).map_err(PolicyError::Invalid)?;
    policy.last_updated = Some(now_rfc3339());
    Ok(())
}

/// Now, as RFC 3339 to the second.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledBackend;
    use rampart_policy::policy::parse_policies;

    fn policy(json: &str) -> Policy {
        parse_policies(json).expect("policy").remove(0)
    }

    const PRIVILEGED: &str = r#"{"name":"No privileged","severity":"HIGH_SEVERITY","lifecycleStages":["DEPLOY"],
        "categories":["Security Best Practices"],
        "policySections":[{"policyGroups":[{"fieldName":"Privileged Container","values":[{"value":"true"}]}]}]}"#;

    async fn open(dir: &std::path::Path) -> (Policies<SledBackend>, tokio::task::JoinHandle<()>) {
        let store = Arc::new(Store::open(SledBackend::open(dir).expect("backend")).expect("store"));
        let (committer, task) = Committer::spawn(Arc::clone(&store), 64, 64);
        let policies = Policies::open(
            store,
            committer,
            rampart_policy::defaults::default_policies(),
        )
        .expect("policies");
        (policies, task)
    }

    #[tokio::test]
    async fn changes_are_durable_validated_and_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let defaults = rampart_policy::defaults::default_policies().len();
        let (policies, committer) = open(dir.path()).await;
        {
            let start = policies.current();
            assert_eq!(start.policies.len(), defaults);
            let mut watch = policies.subscribe();
            let created = policies.create(policy(PRIVILEGED)).await.expect("create");
            assert!(!created.id.is_empty(), "an id is assigned");
            assert!(watch.has_changed().expect("open"), "sessions are told");
            let now = watch.borrow_and_update().clone();
            assert_eq!(now.revision, start.revision + 1);
            assert_ne!(now.sync.revision, start.sync.revision);
            assert!(
                now.detector
                    .policies()
                    .iter()
                    .any(|c| c.policy.id == created.id)
            );

            // Duplicates and invalid criteria are refused with reasons.
            let dup = policies.create(policy(PRIVILEGED)).await.expect_err("dup");
            assert!(dup.to_string().contains("exists"), "{dup}");
            let bad = policies
                .create(policy(
                    r#"{"name":"Bad","severity":"LOW_SEVERITY","lifecycleStages":["DEPLOY"],
                    "policySections":[{"policyGroups":[{"fieldName":"Privileged Containr","values":[{"value":"true"}]}]}]}"#,
                ))
                .await
                .expect_err("invalid");
            assert!(matches!(bad, PolicyError::Invalid(_)), "{bad}");

            // Disable removes it from detection; defaults cannot be deleted or re-criteria'd.
            policies
                .set_disabled(&created.id, true)
                .await
                .expect("disable");
            assert!(
                !policies
                    .current()
                    .detector
                    .policies()
                    .iter()
                    .any(|c| c.policy.id == created.id)
            );
            let default = start
                .policies
                .iter()
                .find(|p| p.is_default)
                .expect("a default");
            let err = policies.delete(&default.id).await.expect_err("default");
            assert!(err.to_string().contains("disable it instead"), "{err}");
            let mut edited = default.clone();
            edited.policy_sections.clear();
            let err = policies
                .update(&default.id, edited)
                .await
                .expect_err("locked");
            assert!(err.to_string().contains("locked"), "{err}");
        }
        // Reopen: the created (and disabled) policy is still there; defaults are not re-seeded.
        drop(policies);
        committer
            .await
            .expect("the committer stops with its last handle");
        let (policies, _committer) = open(dir.path()).await;
        let state = policies.current();
        assert_eq!(state.policies.len(), defaults + 1);
        let p = state
            .policies
            .iter()
            .find(|p| p.name == "No privileged")
            .expect("kept");
        assert!(p.disabled);
        policies.delete(&p.id.clone()).await.expect("delete");
        assert_eq!(policies.current().policies.len(), defaults);
    }

    #[tokio::test]
    async fn import_reports_each_policy_and_overwrite_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (policies, _committer) = open(dir.path()).await;
        let first = policies
            .import(vec![policy(PRIVILEGED)], false)
            .await
            .expect("import");
        assert!(first[0].succeeded);
        let mut changed = policy(PRIVILEGED);
        changed.severity = rampart_policy::Severity::Critical;
        let again = policies
            .import(vec![changed.clone()], false)
            .await
            .expect("import");
        assert!(!again[0].succeeded);
        assert!(again[0].errors[0].contains("named 'No privileged' exists"));
        let over = policies.import(vec![changed], true).await.expect("import");
        assert!(over[0].succeeded, "{:?}", over[0].errors);
        let state = policies.current();
        let matching: Vec<_> = state
            .policies
            .iter()
            .filter(|p| p.name == "No privileged")
            .collect();
        assert_eq!(matching.len(), 1, "replaced, not duplicated");
        assert_eq!(matching[0].severity, rampart_policy::Severity::Critical);
    }
}
