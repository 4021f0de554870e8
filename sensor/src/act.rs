//! The enforcement task: watches the index for workload changes and Central's orders, carries
//! out decisions through the Kubernetes API, and queues a report for each (see [`crate::enforce`]
//! for what is enforced when).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use rampart_proto::v1::{EnforcementOrder, EnforcementReport};
use tokio::sync::mpsc;

use crate::Shared;
use crate::enforce::{Action, Decision, Images, Operation, Target, describe_outcome, plan};
use crate::index::Kind;
use crate::watch::api_resource;

/// Orders received and not yet executed.
pub const ORDER_QUEUE: usize = 256;
/// Runtime kill-pod requests waiting to be carried out.
pub const KILL_QUEUE: usize = 256;
/// Order ids remembered to execute each order once even when Central resends it.
const REMEMBERED_ORDERS: usize = 1024;
/// Longest an API call made for enforcement may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    time_ms(std::time::SystemTime::now())
}

fn time_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    kinds: Vec<Kind>,
    mut orders: mpsc::Receiver<EnforcementOrder>,
) {
    let mut changes = shared.changed.subscribe();
    let mut policy_changes = shared.policies_changed.subscribe();
    let mut enforcer = crate::enforce::Enforcer::exempting(shared.exempt_namespaces.clone());
    let mut done_orders: VecDeque<String> = VecDeque::new();
    loop {
        let mut rebaseline = false;
        tokio::select! {
            r = changes.changed() => { if r.is_err() { return } }
            r = policy_changes.changed() => {
                if r.is_err() { return }
                rebaseline = true;
            }
            _ = shared.kills_ready.notified() => {
                let kills: Vec<_> = crate::lock(&shared.kills).drain(..).collect();
                for k in kills {
                    let report = kill_pod(&client, &k).await;
                    shared.report(report);
                }
                continue;
            }
            order = orders.recv() => {
                let Some(order) = order else { return };
                if done_orders.contains(&order.order_id) {
                    continue;
                }
                done_orders.push_back(order.order_id.clone());
                if done_orders.len() > REMEMBERED_ORDERS {
                    done_orders.pop_front();
                }
                let report = execute_order(&client, &shared, &order).await;
                shared.report(report);
                continue;
            }
        }
        let decisions = {
            let mut index = crate::lock(&shared.index);
            if !index.is_synced(&kinds) {
                continue;
            }
            let policies = crate::lock(&shared.policies);
            let cluster = shared.cluster_name.as_str();
            let store = crate::lock(&shared.images);
            let images = Images::of(&store);
            if policies.enforced().policies().is_empty() {
                // Nothing is enforced (ACS's defaults enforce nothing at deploy time): nothing to
                // decide, so the changes are not even looked at.
                index.discard_workload_changes();
                enforcer.baseline(policies.enforced(), [], cluster, &images);
                crate::lock(&shared.status).enforcing = true;
                continue;
            }
            let changed = index.take_workload_changes();
            if !enforcer.is_armed() || rebaseline {
                // What exists now is the baseline; only later changes are enforced. Workloads
                // changed just now are still judged as changes.
                let changed_ids: std::collections::HashSet<&str> =
                    changed.iter().map(|(uid, _)| uid.as_str()).collect();
                let workloads = index.workloads();
                let first = !enforcer.is_armed();
                enforcer.baseline(
                    policies.enforced(),
                    workloads
                        .iter()
                        .filter(|o| first || !changed_ids.contains(o.id.as_str())),
                    cluster,
                    &images,
                );
                if first {
                    crate::lock(&shared.status).enforcing = true;
                    continue;
                }
            }
            let mut decisions = Vec::new();
            for (uid, workload) in &changed {
                decisions.extend(enforcer.observe(
                    policies.enforced(),
                    uid,
                    workload.as_ref(),
                    cluster,
                    &images,
                ));
            }
            {
                // Added to what the runtime path counts for the pods it did not kill.
                let mut status = crate::lock(&shared.status);
                status.break_glass_skips += std::mem::take(&mut enforcer.break_glass_skips);
                status.exempt_skips += std::mem::take(&mut enforcer.exempt_skips);
            }
            decisions
        };
        for decision in decisions {
            let report = enforce(&client, &shared, &decision).await;
            shared.report(report);
        }
    }
}

async fn enforce(client: &kube::Client, shared: &Shared, d: &Decision) -> EnforcementReport {
    let result = carry_out(client, shared, &d.target, d.action, &d.policy_id).await;
    let (succeeded, message) = match result {
        Ok(()) => (true, describe_outcome(&d.target, d.action, &d.policy_name)),
        Err(e) => (
            false,
            format!(
                "could not enforce policy '{}' on {}: {e}",
                d.policy_name,
                d.target.describe()
            ),
        ),
    };
    if succeeded {
        tracing::info!(workload = %d.target.describe(), policy = %d.policy_name, action = d.action.as_str(), "enforced");
    } else {
        tracing::warn!(%message, "enforcement failed");
    }
    EnforcementReport {
        order_id: String::new(),
        deployment_id: d.target.uid.clone(),
        succeeded,
        message,
        policy_id: d.policy_id.clone(),
        action: d.action.as_str().to_string(),
        time_unix_ms: now_ms(),
    }
}

/// Deletes the pod a process violated a kill-pod runtime policy in (its controller starts a
/// fresh one, as ACS's kill-pod does).
async fn kill_pod(client: &kube::Client, k: &crate::runtime::KillRequest) -> EnforcementReport {
    let pods: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &k.namespace, &api_resource(Kind::Pod));
    let outcome = tokio::time::timeout(CALL_TIMEOUT, pods.delete(&k.pod, &DeleteParams::default()))
        .await
        .map_err(|_| format!("the API server did not answer within {CALL_TIMEOUT:?}"))
        .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
    let (succeeded, message) = match outcome {
        Ok(()) => {
            tracing::info!(pod = %k.pod, namespace = %k.namespace, policy = %k.policy_name, "pod killed for a runtime policy");
            (
                true,
                format!(
                    "pod {}/{} deleted: a process violated policy '{}'",
                    k.namespace, k.pod, k.policy_name
                ),
            )
        }
        Err(e) => {
            tracing::warn!(pod = %k.pod, namespace = %k.namespace, policy = %k.policy_name, error = %e, "kill pod failed");
            (
                false,
                format!("could not delete pod {}/{}: {e}", k.namespace, k.pod),
            )
        }
    };
    EnforcementReport {
        order_id: String::new(),
        deployment_id: k.deployment_id.clone(),
        succeeded,
        message,
        policy_id: k.policy_id.clone(),
        action: "KILL_POD_ENFORCEMENT".into(),
        time_unix_ms: now_ms(),
    }
}

async fn execute_order(
    client: &kube::Client,
    shared: &Shared,
    order: &EnforcementOrder,
) -> EnforcementReport {
    let mut report = EnforcementReport {
        order_id: order.order_id.clone(),
        deployment_id: order.deployment_id.clone(),
        policy_id: order.policy_id.clone(),
        action: order.action.clone(),
        ..EnforcementReport::default()
    };
    let target = {
        let index = crate::lock(&shared.index);
        index
            .outgoing(&order.deployment_id)
            .as_ref()
            .and_then(Target::of)
    };
    let outcome = match (Action::parse(&order.action), target) {
        (None, _) => Err(format!("unknown enforcement action '{}'", order.action)),
        (_, None) => Err(format!(
            "deployment {} is not in this cluster (any more)",
            order.deployment_id
        )),
        // Exempt namespaces hold what keeps the cluster running (kube-system, Rampart's own):
        // an order names one workload, but scaling DNS or the Sensor itself to zero is never
        // what it should do. A namespace is enforced in only by taking it off the list.
        (Some(_), Some(target)) if shared.exempt_namespaces.contains(&target.namespace) => {
            crate::lock(&shared.status).exempt_skips += 1;
            Err(format!(
                "{} is in namespace {}, which this Sensor exempts from enforcement (--exempt-namespaces); not enforced",
                target.describe(),
                target.namespace
            ))
        }
        (Some(action), Some(target)) => {
            match carry_out(client, shared, &target, action, &order.policy_id).await {
                Ok(()) => Ok(describe_outcome(
                    &target,
                    action,
                    &format!("order {}", order.order_id),
                )),
                Err(e) => Err(format!("{}: {e}", target.describe())),
            }
        }
    };
    match outcome {
        Ok(message) => {
            tracing::info!(order = %order.order_id, %message, "enforcement order executed");
            report.succeeded = true;
            report.message = message;
        }
        Err(message) => {
            tracing::warn!(order = %order.order_id, %message, "enforcement order failed");
            report.message = message;
        }
    }
    report.time_unix_ms = now_ms();
    report
}

async fn carry_out(
    client: &kube::Client,
    shared: &Shared,
    target: &Target,
    action: Action,
    policy_id: &str,
) -> Result<(), String> {
    let pods = if action == Action::KillPod {
        crate::lock(&shared.index).pods_of(&target.uid)
    } else {
        Vec::new()
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &target.namespace,
        &api_resource(target.kind),
    );
    let params = PatchParams::default();
    for op in plan(target, action, policy_id, &pods) {
        let call = async {
            match op {
                Operation::PatchScale(body) => api
                    .patch_scale(&target.name, &params, &Patch::Merge(&body))
                    .await
                    .map(drop),
                Operation::Patch(body) => api
                    .patch(&target.name, &params, &Patch::Merge(&body))
                    .await
                    .map(drop),
                Operation::Delete => api
                    .delete(&target.name, &DeleteParams::default())
                    .await
                    .map(drop),
                Operation::DeletePod { namespace, name } => {
                    let pods: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), &namespace, &api_resource(Kind::Pod));
                    pods.delete(&name, &DeleteParams::default()).await.map(drop)
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| format!("the API server did not answer within {CALL_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
