//! Deployments ranked by risk (`rampart_policy::risk`): each stored deployment normalized, its
//! image data attached and its active alerts' severities counted, then scored. The whole
//! ranking is recomputed in the background (every `RERANK_EVERY`, as ACS debounces risk) and
//! pages read the latest one; a single deployment's risk is always computed fresh.

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

/// Every stored deployment (in `cluster` / `namespace` when given), riskiest first.
pub fn rank<B: Backend>(
    core: &Core<B>,
    cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<Vec<Ranked>, crate::store::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out = Vec::new();
    for c in core.store.clusters()? {
        if cluster.is_some_and(|want| want != c.id) {
            continue;
        }
        let mut after: Option<String> = None;
        loop {
            let page = core.store.deployments(&c.id, after.as_deref(), 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for record in page {
                if namespace.is_some_and(|n| n != record.namespace) {
                    continue;
                }
                out.push(score_record(core, &record, now)?);
            }
        }
    }
    out.sort_by(|a, b| {
        b.risk
            .score
            .partial_cmp(&a.risk.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// One deployment's risk.
pub fn score_record<B: Backend>(
    core: &Core<B>,
    record: &crate::model::DeploymentRecord,
    now: i64,
) -> Result<Ranked, crate::store::Error> {
    let alerts = crate::alerts::persist::load_active(&core.store, &record.active_alerts)?;
    let inputs = rampart_policy::risk::RiskInputs {
        alert_severities: alerts.iter().map(|a| a.severity).collect(),
        suspicious_processes: None,
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

/// A ranking is kept this long while alerts do not change.
pub const RERANK_EVERY: Duration = Duration::from_secs(30);
/// When alerts changed, a ranking this fresh is still served (recomputing costs ~0.7 s at
/// 50,000 deployments), as ACS debounces risk.
pub const RERANK_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// The latest ranking of every deployment, with the alert counters it was computed at.
#[derive(Debug, Default)]
pub struct Ranking {
    latest: Mutex<Option<Cached>>,
    /// A background ranking is running.
    computing: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    stamp: (u64, u64),
    ranked: Arc<Vec<Ranked>>,
}

impl Ranking {
    /// The kept ranking, however old, without computing one.
    pub fn peek(&self) -> Option<Arc<Vec<Ranked>>> {
        self.latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|c| Arc::clone(&c.ranked))
    }

    /// Starts computing a ranking on the blocking pool unless one is running (for pages that
    /// show the kept ranking and must not wait).
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

    /// The ranking: the kept one while it is fresh, else computed again.
    pub fn get<B: Backend>(&self, core: &Core<B>) -> Result<Arc<Vec<Ranked>>, crate::store::Error> {
        let stamp = (
            core.metrics.alerts_opened.get(),
            core.metrics.alerts_resolved.get(),
        );
        if let Some(c) = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            let age = c.at.elapsed();
            if (c.stamp == stamp && age < RERANK_EVERY) || age < RERANK_AT_MOST_EVERY {
                return Ok(Arc::clone(&c.ranked));
            }
        }
        let ranked = Arc::new(rank(core, None, None)?);
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Cached {
            at: Instant::now(),
            stamp,
            ranked: Arc::clone(&ranked),
        });
        Ok(ranked)
    }
}
