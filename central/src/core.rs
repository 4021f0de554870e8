//! What every part of Central shares: the store, the committer, the policies, the per-cluster
//! lanes, the refusal log and the metrics. Built once by `runtime::start` (or a test) and
//! handed out as an `Arc`.

use std::sync::Arc;

use rampart_policy::Policy;

use crate::commit::Committer;
use crate::lanes::Lanes;
use crate::metrics::Metrics;
use crate::policies::{Policies, PolicyError};
use crate::store::{Backend, Store};
use crate::tls::RefusalLog;

#[derive(Debug)]
pub struct Core<B: Backend> {
    pub store: Arc<Store<B>>,
    pub committer: Committer,
    pub policies: Policies<B>,
    pub lanes: Lanes,
    pub refusals: RefusalLog,
    pub metrics: Metrics,
    pub orders: crate::orders::OrderRouter,
    pub images: crate::images::Images,
    /// The latest risk ranking of every deployment.
    pub ranking: crate::risk::Ranking,
    /// Process baselines per deployment and container.
    pub baselines: crate::baselines::Baselines,
    /// Network baselines per deployment.
    pub netbaselines: crate::netbaselines::NetworkBaselines,
}

impl<B: Backend> Core<B> {
    /// Loads the policies (seeding `defaults` on the first start); images are scanned only
    /// on request, and matched against nothing.
    pub fn new(
        store: Arc<Store<B>>,
        committer: Committer,
        defaults: Vec<Policy>,
    ) -> Result<Arc<Core<B>>, PolicyError> {
        let images = crate::images::Images::new(crate::images::ImageSettings::default())
            .map_err(|e| PolicyError::Store(crate::store::Error::Backend(e.to_string())))?;
        Core::with_images(store, committer, defaults, images)
    }

    /// Loads the policies (seeding `defaults` on the first start), with `images` as the image
    /// catalog.
    pub fn with_images(
        store: Arc<Store<B>>,
        committer: Committer,
        defaults: Vec<Policy>,
        images: crate::images::Images,
    ) -> Result<Arc<Core<B>>, PolicyError> {
        Core::with_parts(store, committer, defaults, images, Default::default())
    }

    /// Everything configurable: the image catalog and the process baselines' settings.
    pub fn with_parts(
        store: Arc<Store<B>>,
        committer: Committer,
        defaults: Vec<Policy>,
        images: crate::images::Images,
        baselines: crate::baselines::BaselineSettings,
    ) -> Result<Arc<Core<B>>, PolicyError> {
        let netbaselines = crate::netbaselines::NetworkBaselines::load(
            &store,
            crate::netbaselines::NetworkBaselineSettings {
                observation: baselines.network_observation,
            },
        )?;
        let baselines = crate::baselines::Baselines::load(&store, baselines)?;
        let policies = Policies::open(Arc::clone(&store), committer.clone(), defaults)?;
        let refusals = RefusalLog::default();
        let metrics = Metrics::new(&refusals, &images);
        metrics
            .policy_revision
            .set(i64::try_from(policies.current().revision).unwrap_or(i64::MAX));
        Ok(Arc::new(Core {
            store,
            committer,
            policies,
            lanes: Lanes::default(),
            refusals,
            metrics,
            orders: crate::orders::OrderRouter::default(),
            images,
            ranking: crate::risk::Ranking::default(),
            baselines,
            netbaselines,
        }))
    }
}
