//! Deployments ranked by risk (`rampart_policy::risk`): each stored deployment normalized, its
//! image data attached and its active alerts' severities counted, then scored. The ranking is
//! kept and updated incrementally from the store's touched deployments (see [`Ranking`]); a
//! single deployment's risk is always computed fresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::core::Core;
use crate::store::Backend;

/// One deployment's place in the ranking.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    pub cluster_id: String,
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    #[serde(flatten)]
    pub risk: rampart_policy::risk::Risk,
}

/// Every stored deployment, scored, in store order.
fn score_all<B: Backend>(core: &Core<B>, now: i64) -> Result<Vec<Ranked>, crate::store::Error> {
    let mut out = Vec::new();
    for c in core.store.clusters()? {
        let mut after: Option<String> = None;
        loop {
            let page = core.store.deployments(&c.id, after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for record in page {
                out.push(score_record(core, &record, now)?);
            }
        }
    }
    Ok(out)
}

/// Riskiest first; equal scores by name, then id, so pages are stable.
fn riskiest_first(a: &Ranked, b: &Ranked) -> std::cmp::Ordering {
    b.risk
        .score
        .partial_cmp(&a.risk.score)
        .unwrap_or(std::cmp::Ordering::Equal)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.id.cmp(&b.id))
}

/// One deployment's risk.
pub fn score_record<B: Backend>(
    core: &Core<B>,
    record: &crate::model::DeploymentRecord,
    now: i64,
) -> Result<Ranked, crate::store::Error> {
    let alerts = crate::alerts::persist::active_of_record(&core.store, record)?;
    let inputs = rampart_policy::risk::RiskInputs {
        alert_severities: alerts.iter().map(|a| a.severity).collect(),
        suspicious_processes: Some(core.baselines.suspicious(
            &record.cluster_id,
            &record.id,
            now.saturating_mul(1000),
        )),
        now,
    };
    let risk = match record.normalize() {
        Some(mut d) => {
            core.images.attach(&mut d);
            rampart_policy::risk::score(&d, &inputs)
        }
        None => rampart_policy::risk::Risk {
            score: 1.0,
            factors: Vec::new(),
        },
    };
    Ok(Ranked {
        cluster_id: record.cluster_id.clone(),
        id: record.id.clone(),
        namespace: record.namespace.clone(),
        name: record.name.clone(),
        kind: record.kind.clone(),
        risk,
    })
}

/// A full recount this often even when nothing was written, for what moves with time alone
/// (image age).
pub const RESCORE_ALL_EVERY: Duration = Duration::from_secs(600);

/// The ranking of every deployment, kept up to date incrementally: each request rescores only
/// the deployments the store reports as touched since (their record, one of their alerts, or the
/// image data they run), so its cost follows the change, not the fleet.
#[derive(Debug, Default)]
pub struct Ranking {
    latest: Mutex<Option<Arc<Kept>>>,
    /// Held while a ranking is updated, so two requests never score the same changes twice.
    updating: Mutex<()>,
    /// A background update is queued or running.
    computing: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Kept {
    scored_all_at: Instant,
    by_key: HashMap<(String, String), Arc<Ranked>>,
    sorted: Arc<Vec<Arc<Ranked>>>,
}

impl Ranking {
    /// The kept ranking, however old, without computing one.
    pub fn peek(&self) -> Option<Arc<Vec<Arc<Ranked>>>> {
        lock(&self.latest).as_ref().map(|k| Arc::clone(&k.sorted))
    }

    /// Starts updating the ranking on the blocking pool unless an update is running (for pages
    /// that show the kept ranking and must not wait).
    pub fn compute_in_background<B: Backend>(core: &Arc<Core<B>>) {
        use std::sync::atomic::Ordering;
        if core.ranking.computing.swap(true, Ordering::SeqCst) {
            return;
        }
        let c = Arc::clone(core);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = c.ranking.get(&c) {
                tracing::warn!(error = %e, "risk ranking failed");
            }
            c.ranking.computing.store(false, Ordering::SeqCst);
        });
    }

    /// The ranking as of now: the kept one with every touched deployment rescored, or every
    /// deployment scored when there is none yet, too much changed, or it is
    /// [`RESCORE_ALL_EVERY`] old.
    pub fn get<B: Backend>(
        &self,
        core: &Core<B>,
    ) -> Result<Arc<Vec<Arc<Ranked>>>, crate::store::Error> {
        let _updating = lock(&self.updating);
        // Taken before reading, so a write landing during the scoring is seen next time.
        let touched = core.store.take_touched();
        let kept = lock(&self.latest).clone();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let next = match kept {
            Some(kept)
                if !touched.everything && kept.scored_all_at.elapsed() < RESCORE_ALL_EVERY =>
            {
                if touched.keys.is_empty() {
                    return Ok(Arc::clone(&kept.sorted));
                }
                let mut by_key = kept.by_key.clone();
                for (cluster, id) in touched.deployments() {
                    let key = (cluster.to_string(), id.to_string());
                    match core.store.deployment(cluster, id)? {
                        Some(record) => {
                            by_key.insert(key, Arc::new(score_record(core, &record, now)?));
                        }
                        None => {
                            by_key.remove(&key);
                        }
                    }
                }
                Kept::sorted(kept.scored_all_at, by_key)
            }
            _ => {
                let by_key = score_all(core, now)?
                    .into_iter()
                    .map(|r| ((r.cluster_id.clone(), r.id.clone()), Arc::new(r)))
                    .collect();
                Kept::sorted(Instant::now(), by_key)
            }
        };
        let sorted = Arc::clone(&next.sorted);
        *lock(&self.latest) = Some(Arc::new(next));
        Ok(sorted)
    }
}

impl Kept {
    fn sorted(scored_all_at: Instant, by_key: HashMap<(String, String), Arc<Ranked>>) -> Kept {
        let mut sorted: Vec<Arc<Ranked>> = by_key.values().cloned().collect();
        sorted.sort_unstable_by(|a, b| riskiest_first(a, b));
        Kept {
            scored_all_at,
            by_key,
            sorted: Arc::new(sorted),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
