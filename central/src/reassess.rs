//! Reassessment and dry-run: deploy-time policies against every stored deployment.
//!
//! Reassessment runs after every policy change (coalesced), cluster by cluster and page by
//! page. Each page is decided holding the cluster's lane after a commit barrier, so it decides
//! from the store's truth and its writes land in order with the Sensor stream's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_policy::compile::compile;
use rampart_policy::{EvalContext, Outcome, Policy, evaluate};
use serde::Serialize;

use crate::alerts::{self, Subject};
use crate::core::Core;
use crate::policies::{PolicyError, PolicyState};
use crate::store::{Backend, WriteBatch};

/// Deployments decided per lane hold.
const PAGE: usize = 200;
/// Changes arriving this close together are reassessed once.
const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReassessSummary {
    pub deployments: usize,
    pub opened: usize,
    pub updated: usize,
    pub resolved: usize,
}

impl ReassessSummary {
    /// Adds the alerts it opened and resolved to Central's counters.
    fn count_in(&self, metrics: &crate::metrics::Metrics) {
        metrics
            .alerts_opened
            .inc_by(u64::try_from(self.opened).unwrap_or(0));
        metrics
            .alerts_resolved
            .inc_by(u64::try_from(self.resolved).unwrap_or(0));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Commit(#[from] crate::commit::CommitError),
    #[error("superseded by a newer policy change")]
    Superseded,
}

use crate::model::now_unix_ms as now_ms;

/// Re-evaluates every stored deployment with `state`'s policies; stops early (Superseded) when
/// `still_current` says a newer state exists.
pub async fn reassess_all<B: Backend>(
    core: &Core<B>,
    state: &PolicyState,
    still_current: impl Fn() -> bool,
) -> Result<ReassessSummary, Error> {
    let mut summary = ReassessSummary::default();
    for cluster in core.store.clusters()? {
        let lane = core.lanes.lane(&cluster.id);
        let mut after: Option<String> = None;
        loop {
            if !still_current() {
                return Err(Error::Superseded);
            }
            let mut overlay = lane.lock().await;
            // Everything submitted before is durable after this: the store is the truth.
            core.committer.commit(WriteBatch::default()).await?;
            overlay.clear();
            let page = core
                .store
                .deployments(&cluster.id, after.as_deref(), PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let mut batch = WriteBatch::default();
            let now = now_ms();
            for record in &page {
                decide_record(core, state, record, now, &mut batch, &mut summary)?;
            }
            if !batch.is_empty() {
                core.committer.commit(batch).await?;
            }
            drop(overlay);
        }
    }
    summary.count_in(&core.metrics);
    Ok(summary)
}

/// Decides one stored deployment's deploy-time alerts with `state`'s policies and the image
/// data Central has, writing what changed into `batch`.
fn decide_record<B: Backend>(
    core: &Core<B>,
    state: &PolicyState,
    record: &crate::model::DeploymentRecord,
    now: i64,
    batch: &mut WriteBatch,
    summary: &mut ReassessSummary,
) -> Result<(), Error> {
    summary.deployments += 1;
    // Reassessed because policies or image data changed: either can move its risk.
    batch.touch_deployment(&record.cluster_id, &record.id);
    let Some(mut deployment) = record.normalize() else {
        return Ok(());
    };
    core.images.attach(&mut deployment);
    let cluster = &record.cluster_id;
    let outcomes = state.detector.evaluate(&deployment, cluster);
    let active = alerts::persist::load_active(&core.store, &record.active_alerts)?;
    let subject = Subject {
        cluster_id: cluster,
        deployment_id: &record.id,
        deployment: &deployment,
    };
    let decisions = alerts::decide_deploy_time(&subject, &outcomes, &active, now, || {
        uuid::Uuid::now_v7().to_string()
    });
    for a in &decisions.resolve {
        alerts::persist::put(batch, a)?;
        summary.resolved += 1;
    }
    for a in &decisions.upsert {
        alerts::persist::put(batch, a)?;
        if active.iter().any(|x| x.id == a.id) {
            summary.updated += 1;
        } else {
            summary.opened += 1;
        }
    }
    decide_runtime_alerts(core, state, record, &deployment, now, batch, summary)?;
    // The record lists its active alerts: rewrite it when that list changed (or named an
    // alert a user has resolved since).
    let mut ids: Vec<String> = active
        .iter()
        .filter(|a| !decisions.resolve.iter().any(|r| r.id == a.id))
        .map(|a| a.id.clone())
        .collect();
    for a in &decisions.upsert {
        if !ids.contains(&a.id) {
            ids.push(a.id.clone());
        }
    }
    if ids != record.active_alerts {
        let mut record = record.clone();
        record.active_alerts = ids;
        batch.put_deployment(&record)?;
    }
    Ok(())
}

/// Re-evaluates the named deployments (those running an image whose scan or findings just
/// changed), cluster by cluster under each cluster's lane.
pub async fn reassess_deployments<B: Backend>(
    core: &Core<B>,
    targets: &std::collections::BTreeSet<crate::images::DeploymentRef>,
) -> Result<ReassessSummary, Error> {
    let state = core.policies.current();
    let mut summary = ReassessSummary::default();
    let mut by_cluster: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for t in targets {
        by_cluster.entry(&t.cluster_id).or_default().push(&t.id);
    }
    for (cluster, ids) in by_cluster {
        let lane = core.lanes.lane(cluster);
        for chunk in ids.chunks(PAGE) {
            let mut overlay = lane.lock().await;
            core.committer.commit(WriteBatch::default()).await?;
            overlay.clear();
            let mut batch = WriteBatch::default();
            let now = now_ms();
            for id in chunk {
                if let Some(record) = core.store.deployment(cluster, id)? {
                    decide_record(core, &state, &record, now, &mut batch, &mut summary)?;
                }
            }
            if !batch.is_empty() {
                core.committer.commit(batch).await?;
            }
            drop(overlay);
        }
    }
    summary.count_in(&core.metrics);
    tracing::info!(?summary, "reassessed deployments after an image change");
    Ok(summary)
}

/// Reassesses after every policy change until Central stops.
pub fn spawn<B: Backend>(core: Arc<Core<B>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut updates = core.policies.subscribe();
        updates.borrow_and_update();
        loop {
            if updates.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(DEBOUNCE).await;
            let state = Arc::clone(&updates.borrow_and_update());
            core.metrics
                .policy_revision
                .set(i64::try_from(state.revision).unwrap_or(i64::MAX));
            let started = Instant::now();
            let check = updates.clone();
            match reassess_all(&core, &state, || !check.has_changed().unwrap_or(true)).await {
                Ok(summary) => {
                    core.metrics.reassessments.inc();
                    core.metrics
                        .reassessment_seconds
                        .observe(started.elapsed().as_secs_f64());
                    tracing::info!(
                        revision = state.revision,
                        ?summary,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "reassessed deployments after a policy change"
                    );
                }
                Err(Error::Superseded) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reassessment failed; the next policy change retries")
                }
            }
        }
    })
}

/// One deployment a dry-run flags.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunHit {
    pub cluster_id: String,
    pub namespace: String,
    pub deployment_id: String,
    pub deployment_name: String,
    pub kind: String,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResult {
    pub deployments_evaluated: usize,
    pub violating: usize,
    /// Deployments the policy could not decide (it needs data Central does not have).
    pub not_evaluable: usize,
    /// What it needs, when not evaluable.
    pub needs: Vec<String>,
    /// The first `limit` violating deployments.
    pub hits: Vec<DryRunHit>,
    pub truncated: bool,
}

/// "Which current deployments would this policy flag?" — without saving anything.
pub fn dry_run<B: Backend>(
    core: &Core<B>,
    policy: &Policy,
    limit: usize,
) -> Result<DryRunResult, PolicyError> {
    let compiled = compile(policy).map_err(PolicyError::Invalid)?;
    let mut result = DryRunResult::default();
    for cluster in core.store.clusters()? {
        let ctx = EvalContext {
            cluster: Some(&cluster.id),
            ..EvalContext::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = core.store.deployments(&cluster.id, after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for record in &page {
                let Some(mut deployment) = record.normalize() else {
                    continue;
                };
                core.images.attach(&mut deployment);
                result.deployments_evaluated += 1;
                match evaluate(&compiled, &deployment, &ctx) {
                    Outcome::Violated(violations) => {
                        result.violating += 1;
                        if result.hits.len() < limit {
                            result.hits.push(DryRunHit {
                                cluster_id: cluster.id.clone(),
                                namespace: record.namespace.clone(),
                                deployment_id: record.id.clone(),
                                deployment_name: record.name.clone(),
                                kind: record.kind.clone(),
                                violations,
                            });
                        } else {
                            result.truncated = true;
                        }
                    }
                    Outcome::NotEvaluable(needs) => {
                        result.not_evaluable += 1;
                        for n in needs {
                            if !result.needs.iter().any(|x| x == n) {
                                result.needs.push(n.to_string());
                            }
                        }
                    }
                    Outcome::Pass | Outcome::OutOfScope | Outcome::Excluded(_) => {}
                }
            }
        }
    }
    Ok(result)
}

/// Runtime alerts are not resolved because a process stopped (ACS's semantics), only when their
/// policy is gone or disabled, is no longer a runtime policy, or no longer covers the
/// deployment (its scope or an exclusion).
fn decide_runtime_alerts<B: Backend>(
    core: &Core<B>,
    state: &PolicyState,
    record: &crate::model::DeploymentRecord,
    deployment: &rampart_policy::Deployment,
    now: i64,
    batch: &mut WriteBatch,
    summary: &mut ReassessSummary,
) -> Result<(), Error> {
    let ids = alerts::persist::runtime_ids(&core.store, &record.cluster_id, &record.id)?;
    if ids.is_empty() {
        return Ok(());
    }
    let ctx = rampart_policy::EvalContext {
        cluster: Some(&record.cluster_id),
        ..rampart_policy::EvalContext::default()
    };
    for alert in alerts::persist::load_active(&core.store, &ids)? {
        let covered = state
            .get(&alert.policy_id)
            .filter(|p| !p.disabled && p.has_stage(rampart_policy::LifecycleStage::Runtime))
            .and_then(|p| state.compiled.iter().find(|c| c.policy.id == p.id))
            .is_some_and(|c| {
                !matches!(
                    rampart_policy::evaluate(c, deployment, &ctx),
                    rampart_policy::Outcome::OutOfScope | rampart_policy::Outcome::Excluded(_)
                )
            });
        if !covered {
            let mut resolved = alert;
            resolved.state = alerts::AlertState::Resolved;
            resolved.resolved_unix_ms = Some(now);
            resolved.time_unix_ms = now;
            alerts::persist::put(batch, &resolved)?;
            summary.resolved += 1;
        }
    }
    Ok(())
}
