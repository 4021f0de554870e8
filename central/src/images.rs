//! The images Central's deployments run: each scanned once per digest, kept with what the scan
//! read (`ImageFacts`: config facts and package inventory) in `Table::Images`, matched against
//! the vulnerability data in memory, and attached to every deployment that runs it so the
//! engine's image criteria (CVE, CVSS, Fixable, Image Component, Image Age...) decide.
//!
//! ```text
//!  hub / reassess ── observe(deployment) ──▶ catalog: which deployments run which references
//!        ▲                │ unknown reference                 │ scanned: Arc<ImageData>
//!        │                ▼                                   ▼
//!  reassess users ◀── worker (bounded queue, N at a time): pull ─▶ facts ─▶ store ─▶ match
//!        ▲
//!  vulnerability data changed (import) ──▶ rematch every image from its stored facts
//! ```
//!
//! Nothing is pulled again when the data changes: the stored facts are matched anew. A failed
//! pull is recorded with its reason (visible in `/v1/images`) and retried after
//! `retry_after`, when a deployment using it is seen again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rampart_policy::image_data::ImageData;
use rampart_scanner::image::{self, ImageFacts, ImageScan};
use rampart_scanner::layers::Limits;
use rampart_scanner::registry::{Credentials, PullOptions};
use rampart_scanner::report::{Level, Matcher};
use rampart_scanner::vulndb::VulnDb;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use crate::core::Core;
use crate::model::now_unix_ms;
use crate::store::{Backend, Table, WriteBatch};

/// How Central scans images.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// Scan the images deployments run (off: only on request through the API).
    pub scan_deployments: bool,
    pub credentials: Credentials,
    pub pull: PullOptions,
    pub limits: Limits,
    /// Images pulled and analyzed at once.
    pub concurrency: usize,
    /// References waiting to be scanned; more are dropped (counted) and asked for again the
    /// next time a deployment using them is seen.
    pub queue: usize,
    /// A failed reference is tried again after this long.
    pub retry_after: Duration,
    /// A scanned reference still in use is pulled again after this long: a tag may have moved
    /// to a new image, and Image Scan Age policies expect fresh scans (ACS: every 4 hours).
    pub rescan_after: Duration,
    /// How often failed and stale scans are looked for.
    pub sweep_every: Duration,
    /// Where pulls put their layers while a scan runs (emptied after each).
    pub work_dir: Option<PathBuf>,
    /// The vulnerability store (`rampart vulndb`'s format); `None` matches nothing.
    pub vulndb_dir: Option<PathBuf>,
}

impl Default for ImageSettings {
    fn default() -> ImageSettings {
        ImageSettings {
            scan_deployments: false,
            credentials: Credentials::default(),
            pull: PullOptions::default(),
            limits: Limits::default(),
            concurrency: 2,
            queue: 1024,
            retry_after: Duration::from_secs(600),
            rescan_after: Duration::from_secs(4 * 3600),
            sweep_every: Duration::from_secs(60),
            work_dir: None,
            vulndb_dir: None,
        }
    }
}

/// A deployment running an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRef {
    pub cluster_id: String,
    pub id: String,
    pub namespace: String,
    pub name: String,
}

/// What is stored per image digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub facts: ImageFacts,
    /// Every reference seen resolving to this digest.
    pub references: Vec<String>,
    pub scanned_unix_ms: i64,
}

/// One scanned image, matched against the current data.
#[derive(Debug)]
pub struct Scanned {
    pub record: ImageRecord,
    pub scan: ImageScan,
    pub data: Arc<ImageData>,
}

impl Scanned {
    fn new(record: ImageRecord, matcher: &Matcher<'_>) -> Scanned {
        let scan = image::assemble(&record.facts, matcher);
        let data = Arc::new(scan.image_data(record.scanned_unix_ms / 1000));
        Scanned { record, scan, data }
    }

    /// The vulnerability ids it has, to tell whether a rematch changed anything.
    fn vuln_ids(&self) -> BTreeSet<(&str, Option<&str>)> {
        self.scan
            .components
            .iter()
            .flat_map(|c| &c.vulnerabilities)
            .map(|v| (v.id.as_str(), v.fixed_by.as_deref()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "status")]
pub enum RefState {
    Pending,
    Scanned {
        digest: String,
    },
    Failed {
        error: String,
        #[serde(rename = "failedUnixMs")]
        at_unix_ms: i64,
        #[serde(skip)]
        at: Instant,
    },
}

#[derive(Debug, Default)]
struct Catalog {
    refs: HashMap<String, RefState>,
    images: HashMap<String, Arc<Scanned>>,
    users: HashMap<String, BTreeSet<DeploymentRef>>,
    uses: HashMap<(String, String), Vec<String>>,
    /// When each reference was last pulled (or tried), so a rescan is not asked for again
    /// while one runs or right after one failed.
    attempts: HashMap<String, Instant>,
    /// The images last scanned on request (`rampart image scan|check -e`, a CI pipeline's
    /// gate), most recent first, at most [`MAX_REQUESTED`]: every cluster's admission
    /// controllers get their findings, so an image checked in CI is decided at its first
    /// deployment. Each as requested, and as containers name it.
    requested: std::collections::VecDeque<(String, String)>,
    /// References whose last pull failed, until one succeeds: still images with no scan while
    /// a retry is pending, so their alerts do not come and go with each retry.
    last_failed: std::collections::HashSet<String>,
}

/// How many images scanned on request every cluster is sent the findings of.
pub const MAX_REQUESTED: usize = 256;

/// Scans asked for by admission controllers running or waiting at once; more are refused
/// (the controller asks again a minute later).
pub const MAX_ADMISSION_SCANS: usize = 16;
/// How often one image is scanned at most on admission controllers' requests.
pub const ADMISSION_ASK_INTERVAL: Duration = Duration::from_secs(600);
/// Images remembered as asked for.
const MAX_ADMISSION_ASKS: usize = 4096;

impl Catalog {
    fn scanned(&self, reference: &str) -> Option<&Arc<Scanned>> {
        match self.refs.get(reference)? {
            RefState::Scanned { digest } => self.images.get(digest),
            _ => None,
        }
    }

    /// What the image criteria know of `reference`: its scan; or that it has none, when its
    /// last pull failed (even while a retry is pending) or the images clusters run are not
    /// scanned (the Unscanned Image criterion, "Images with no scans", holds then); or nothing
    /// while its first pull is pending.
    fn image_data(&self, reference: &str, settings: &ImageSettings) -> Option<Arc<ImageData>> {
        match self.refs.get(reference) {
            Some(RefState::Scanned { digest }) => {
                self.images.get(digest).map(|s| Arc::clone(&s.data))
            }
            Some(RefState::Failed { .. }) => Some(ImageData::unscanned_shared()),
            _ if self.last_failed.contains(reference) => Some(ImageData::unscanned_shared()),
            Some(RefState::Pending) => None,
            None if settings.scan_deployments => None,
            None => Some(ImageData::unscanned_shared()),
        }
    }

    fn users_of_digest(&self, digest: &str) -> BTreeSet<DeploymentRef> {
        let Some(img) = self.images.get(digest) else {
            return BTreeSet::new();
        };
        img.record
            .references
            .iter()
            .filter_map(|r| self.users.get(r))
            .flatten()
            .cloned()
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Reference(String),
    #[error("{0}")]
    Scan(String),
    #[error("image scanning is busy; try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("the vulnerability store: {0}")]
    VulnStore(#[from] rampart_scanner::store::StoreError),
    #[error("{0}")]
    Internal(String),
}

self_cell::self_cell!(
    /// The vulnerability data with its matcher built once (index, versions parsed, scores):
    /// ~0.3 s for 100,000 OSV records, which no scan should pay again.
    struct Prepared {
        owner: Arc<VulnDb>,
        #[covariant]
        dependent: Matcher,
    }
);

impl Prepared {
    fn of(db: VulnDb) -> Prepared {
        Prepared::new(Arc::new(db), |db| Matcher::new(db))
    }

    fn matcher(&self) -> &Matcher<'_> {
        self.borrow_dependent()
    }
}

/// Central's image catalog and scanner front.
pub struct Images {
    settings: ImageSettings,
    catalog: Mutex<Catalog>,
    queue: mpsc::Sender<String>,
    queue_rx: Mutex<Option<mpsc::Receiver<String>>>,
    /// Scans (queued and on request) running at once.
    permits: Arc<Semaphore>,
    prepared: RwLock<Arc<Prepared>>,
    vulndb: Option<rampart_scanner::store::Store>,
    /// Image pull secrets the Sensors reported, by (cluster, secret id): their namespace and
    /// credentials. Used for the images of deployments in that namespace only.
    pull_secrets: Mutex<HashMap<(String, String), (String, Credentials)>>,
    /// Bumped whenever a pull secret changes: a pull that failed while they changed is tried
    /// again at once rather than after `retry_after`.
    secrets_generation: std::sync::atomic::AtomicU64,
    /// Deployments whose image data changed, for the reassessment task.
    changed: mpsc::Sender<BTreeSet<DeploymentRef>>,
    changed_rx: Mutex<Option<mpsc::Receiver<BTreeSet<DeploymentRef>>>>,
    /// Bumped whenever what some cluster's images' findings are may have changed (a scan, a
    /// rematch, a deployment running other images): the Sensor sessions send the difference.
    findings_changed: tokio::sync::watch::Sender<u64>,
    /// Images the clusters' admission controllers met without findings and asked to be
    /// scanned, with when each was last taken up: each is scanned on such a request once per
    /// [`ADMISSION_ASK_INTERVAL`] at most, however many controllers and clusters ask.
    admission_asks: Mutex<HashMap<String, Instant>>,
    /// Scans on those requests running or waiting for a scan slot.
    admission_permits: Arc<Semaphore>,
    pub queue_dropped: prometheus_client::metrics::counter::Counter,
    pub scans: prometheus_client::metrics::family::Family<
        OutcomeLabel,
        prometheus_client::metrics::counter::Counter,
    >,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the catalog leaves plain data; keep serving it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Images {
    /// The catalog; stored images are loaded by [`Images::load`].
    pub fn new(settings: ImageSettings) -> Result<Images, ImageError> {
        let (queue, rx) = mpsc::channel(settings.queue.max(1));
        let (changed, changed_rx) = mpsc::channel(64);
        let vulndb = match &settings.vulndb_dir {
            Some(dir) => Some(rampart_scanner::store::Store::open(dir)?),
            None => None,
        };
        Ok(Images {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            catalog: Mutex::new(Catalog::default()),
            queue,
            queue_rx: Mutex::new(Some(rx)),
            prepared: RwLock::new(Arc::new(Prepared::of(VulnDb::new()))),
            vulndb,
            pull_secrets: Mutex::new(HashMap::new()),
            secrets_generation: std::sync::atomic::AtomicU64::new(0),
            changed,
            changed_rx: Mutex::new(Some(changed_rx)),
            findings_changed: tokio::sync::watch::channel(0).0,
            admission_asks: Mutex::new(HashMap::new()),
            admission_permits: Arc::new(Semaphore::new(MAX_ADMISSION_SCANS)),
            queue_dropped: Default::default(),
            scans: Default::default(),
        })
    }

    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }

    /// Told when [`Images::findings_of_cluster`] may answer differently.
    pub fn subscribe_findings(&self) -> tokio::sync::watch::Receiver<u64> {
        self.findings_changed.subscribe()
    }

    fn findings_changed(&self) {
        self.findings_changed
            .send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The findings of every scanned image the deployments of `cluster` run, and of the
    /// images last scanned on request, by reference as containers name them.
    pub fn findings_of_cluster(&self, cluster: &str) -> HashMap<String, Arc<ImageData>> {
        let catalog = lock(&self.catalog);
        let mut findings: HashMap<String, Arc<ImageData>> = catalog
            .requested
            .iter()
            .filter_map(|(r, named)| Some((named.clone(), Arc::clone(&catalog.scanned(r)?.data))))
            .collect();
        findings.extend(
            catalog
                .users
                .iter()
                .filter(|(_, users)| users.iter().any(|d| d.cluster_id == cluster))
                .filter_map(|(r, _)| Some((r.clone(), Arc::clone(&catalog.scanned(r)?.data)))),
        );
        findings
    }

    fn prepared(&self) -> Arc<Prepared> {
        Arc::clone(
            &self
                .prepared
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn set_prepared(&self, prepared: Arc<Prepared>) {
        *self
            .prepared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = prepared;
    }

    /// Loads the vulnerability data and every stored image, matched (blocking).
    pub fn load<B: Backend>(&self, store: &crate::store::Store<B>) -> Result<usize, ImageError> {
        if let Some(v) = &self.vulndb {
            self.set_prepared(Arc::new(Prepared::of(v.load()?)));
        }
        let prepared = self.prepared();
        let matcher = prepared.matcher();
        let mut loaded = Vec::new();
        store.for_each_record::<ImageRecord>(Table::Images, "", |_, r| {
            loaded.push(r);
            Ok(())
        })?;
        let n = loaded.len();
        let mut catalog = lock(&self.catalog);
        for record in loaded {
            let digest = record.facts.digest.clone();
            for r in &record.references {
                catalog.refs.insert(
                    r.clone(),
                    RefState::Scanned {
                        digest: digest.clone(),
                    },
                );
            }
            catalog
                .images
                .insert(digest, Arc::new(Scanned::new(record, matcher)));
        }
        drop(catalog);
        self.findings_changed();
        Ok(n)
    }

    /// Records which images a deployment runs, asks for the scans it lacks, and attaches the
    /// image data Central has to its containers.
    pub fn observe(&self, cluster: &str, id: &str, deployment: &mut rampart_policy::Deployment) {
        let who = DeploymentRef {
            cluster_id: cluster.to_string(),
            id: id.to_string(),
            namespace: deployment.namespace.clone(),
            name: deployment.name.clone(),
        };
        let mut refs: Vec<String> = deployment
            .containers
            .iter()
            .map(|c| c.image.full_name.clone())
            .filter(|r| !r.is_empty())
            .collect();
        refs.sort();
        refs.dedup();
        let mut wanted = Vec::new();
        let refs_changed;
        {
            let mut catalog = lock(&self.catalog);
            let key = (cluster.to_string(), id.to_string());
            refs_changed = catalog.uses.get(&key) != Some(&refs);
            if let Some(old) = catalog.uses.remove(&key) {
                for r in old {
                    if let Some(set) = catalog.users.get_mut(&r) {
                        set.retain(|d| d.id != id || d.cluster_id != cluster);
                        if set.is_empty() {
                            catalog.users.remove(&r);
                        }
                    }
                }
            }
            for r in &refs {
                catalog
                    .users
                    .entry(r.clone())
                    .or_default()
                    .insert(who.clone());
                let want = match catalog.refs.get(r) {
                    None => true,
                    Some(RefState::Failed { at, .. }) => at.elapsed() >= self.settings.retry_after,
                    Some(_) => false,
                };
                if want && self.settings.scan_deployments {
                    catalog.refs.insert(r.clone(), RefState::Pending);
                    wanted.push(r.clone());
                }
            }
            catalog.uses.insert(key, refs);
            for c in &mut deployment.containers {
                c.image_data = catalog.image_data(&c.image.full_name, &self.settings);
            }
        }
        if refs_changed {
            self.findings_changed();
        }
        for r in wanted {
            if self.queue.try_send(r.clone()).is_err() {
                self.queue_dropped.inc();
                lock(&self.catalog).refs.remove(&r);
            }
        }
    }

    /// Attaches image data without recording anything (dry-runs).
    pub fn attach(&self, deployment: &mut rampart_policy::Deployment) {
        let catalog = lock(&self.catalog);
        for c in &mut deployment.containers {
            c.image_data = catalog.image_data(&c.image.full_name, &self.settings);
        }
    }

    /// A deployment is gone.
    pub fn forget(&self, cluster: &str, id: &str) {
        let mut catalog = lock(&self.catalog);
        if let Some(old) = catalog.uses.remove(&(cluster.to_string(), id.to_string())) {
            for r in old {
                if let Some(set) = catalog.users.get_mut(&r) {
                    set.retain(|d| d.id != id || d.cluster_id != cluster);
                    if set.is_empty() {
                        catalog.users.remove(&r);
                    }
                }
            }
            drop(catalog);
            self.findings_changed();
        }
    }

    /// Pulls and scans `reference` now (or returns the stored scan unless `force`).
    pub async fn scan_now<B: Backend>(
        &self,
        core: &Core<B>,
        reference: &str,
        force: bool,
    ) -> Result<Arc<Scanned>, ImageError> {
        let reference = reference.trim();
        if reference.is_empty()
            || reference.len() > 512
            || reference.chars().any(char::is_whitespace)
        {
            return Err(ImageError::Reference(format!(
                "{reference:?} is not an image reference"
            )));
        }
        // The catalog's lock is let go before `requested` takes it again.
        let stored = (!force)
            .then(|| lock(&self.catalog).scanned(reference).map(Arc::clone))
            .flatten();
        if let Some(s) = stored {
            self.requested(reference);
            return Ok(s);
        }
        let permit = tokio::time::timeout(
            Duration::from_secs(30),
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| ImageError::Busy)?
        .map_err(|_| ImageError::Busy)?;
        let result = self.pull_and_store(core, reference).await;
        drop(permit);
        if result.is_ok() {
            self.requested(reference);
        }
        result
    }

    /// Whether an admission controller's request to scan `reference` is taken up now: not
    /// one taken up within [`ADMISSION_ASK_INTERVAL`], and a slot free among
    /// [`MAX_ADMISSION_SCANS`]. The permit is held until the scan ends.
    fn take_admission_ask(&self, reference: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // A Central that does not scan what clusters run (`--no-image-scanning`) does not
        // pull what they would run either.
        if !self.settings.scan_deployments {
            return None;
        }
        let mut asks = lock(&self.admission_asks);
        if asks
            .get(reference)
            .is_some_and(|t| t.elapsed() < ADMISSION_ASK_INTERVAL)
        {
            return None;
        }
        if asks.len() >= MAX_ADMISSION_ASKS && !asks.contains_key(reference) {
            asks.retain(|_, t| t.elapsed() < ADMISSION_ASK_INTERVAL);
            if asks.len() >= MAX_ADMISSION_ASKS {
                return None;
            }
        }
        let permit = Arc::clone(&self.admission_permits)
            .try_acquire_owned()
            .ok()?;
        asks.insert(reference.to_string(), Instant::now());
        Some(permit)
    }

    /// Puts `reference` first among the images scanned on request.
    fn requested(&self, reference: &str) {
        let mut catalog = lock(&self.catalog);
        let was_first = catalog
            .requested
            .front()
            .is_some_and(|(r, _)| r == reference);
        catalog.requested.retain(|(r, _)| r != reference);
        let named = rampart_policy::image::ImageName::parse(reference).full_name;
        catalog.requested.push_front((reference.to_string(), named));
        catalog.requested.truncate(MAX_REQUESTED);
        drop(catalog);
        if !was_first {
            self.findings_changed();
        }
    }

    async fn pull_and_store<B: Backend>(
        &self,
        core: &Core<B>,
        reference: &str,
    ) -> Result<Arc<Scanned>, ImageError> {
        let started = Instant::now();
        lock(&self.catalog)
            .attempts
            .insert(reference.to_string(), started);
        let generation = self
            .secrets_generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let outcome = self.pull_facts(reference).await;
        let facts = match outcome {
            Ok(f) => f,
            Err(e)
                if self.settings.scan_deployments
                    && generation
                        != self
                            .secrets_generation
                            .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                // The pull secrets changed while it ran: try again with the new ones.
                tracing::info!(image = %reference, error = %e, "image pull failed while pull secrets changed; retrying");
                lock(&self.catalog)
                    .refs
                    .insert(reference.to_string(), RefState::Pending);
                if self.queue.try_send(reference.to_string()).is_err() {
                    self.queue_dropped.inc();
                    lock(&self.catalog).refs.remove(reference);
                }
                return Err(e);
            }
            Err(e) => {
                let message = e.to_string();
                tracing::warn!(image = %reference, error = %message, "image scan failed");
                self.scans
                    .get_or_create(&OutcomeLabel {
                        outcome: "failed".into(),
                    })
                    .inc();
                let users = {
                    let mut catalog = lock(&self.catalog);
                    // A rescan that failed keeps the last scan: a registry away for a while
                    // must not make the images' findings (and their alerts) disappear.
                    if matches!(catalog.refs.get(reference), Some(RefState::Scanned { .. })) {
                        return Err(e);
                    }
                    let first = catalog.last_failed.insert(reference.to_string());
                    catalog.refs.insert(
                        reference.to_string(),
                        RefState::Failed {
                            error: message,
                            at_unix_ms: now_unix_ms(),
                            at: Instant::now(),
                        },
                    );
                    // Its deployments now run an image known to have no scan.
                    if first {
                        catalog.users.get(reference).cloned().unwrap_or_default()
                    } else {
                        BTreeSet::new()
                    }
                };
                if !users.is_empty() {
                    let _ = self.changed.send(users).await;
                }
                return Err(e);
            }
        };
        let digest = facts.digest.clone();
        let mut references = lock(&self.catalog)
            .images
            .get(&digest)
            .map(|s| s.record.references.clone())
            .unwrap_or_default();
        if !references.iter().any(|r| r == reference) {
            references.push(reference.to_string());
            references.sort();
        }
        let record = ImageRecord {
            facts,
            references,
            scanned_unix_ms: now_unix_ms(),
        };
        let mut batch = WriteBatch::default();
        batch.put(Table::Images, &digest, &record)?;
        // The reference named another image before (a moved tag): that image loses it, and is
        // forgotten when no reference names it any more.
        let moved_from = {
            let catalog = lock(&self.catalog);
            match catalog.refs.get(reference) {
                Some(RefState::Scanned { digest: old }) if *old != digest => {
                    catalog.images.get(old).map(|s| {
                        let mut record = s.record.clone();
                        record.references.retain(|r| r != reference);
                        record
                    })
                }
                _ => None,
            }
        };
        if let Some(old) = &moved_from {
            if old.references.is_empty() {
                batch.delete(Table::Images, &old.facts.digest)?;
            } else {
                batch.put(Table::Images, &old.facts.digest, old)?;
            }
        }
        core.committer
            .commit(batch)
            .await
            .map_err(|e| ImageError::Internal(e.to_string()))?;
        let prepared = self.prepared();
        let scanned = Arc::new(
            tokio::task::spawn_blocking(move || Scanned::new(record, prepared.matcher()))
                .await
                .map_err(|e| ImageError::Internal(e.to_string()))?,
        );
        let users = {
            let mut catalog = lock(&self.catalog);
            if let Some(old) = moved_from {
                let old_digest = old.facts.digest.clone();
                if old.references.is_empty() {
                    catalog.images.remove(&old_digest);
                } else if let Some(prev) = catalog.images.get(&old_digest) {
                    let updated = Scanned {
                        record: old,
                        scan: prev.scan.clone(),
                        data: Arc::clone(&prev.data),
                    };
                    catalog.images.insert(old_digest, Arc::new(updated));
                }
            }
            for r in &scanned.record.references {
                catalog.last_failed.remove(r);
                catalog.refs.insert(
                    r.clone(),
                    RefState::Scanned {
                        digest: digest.clone(),
                    },
                );
            }
            catalog.images.insert(digest.clone(), Arc::clone(&scanned));
            catalog.users_of_digest(&digest)
        };
        self.findings_changed();
        self.scans
            .get_or_create(&OutcomeLabel {
                outcome: "scanned".into(),
            })
            .inc();
        tracing::info!(
            image = %reference,
            %digest,
            components = scanned.scan.summary.components,
            vulnerabilities = scanned.scan.summary.vulnerabilities,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "image scanned"
        );
        if !users.is_empty() {
            let _ = self.changed.send(users).await;
        }
        Ok(scanned)
    }

    async fn pull_facts(&self, reference: &str) -> Result<ImageFacts, ImageError> {
        let base = match &self.settings.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .map_err(|e| ImageError::Internal(format!("{}: {e}", d.display())))?;
                d.clone()
            }
            None => std::env::temp_dir(),
        };
        let work = tempfile::Builder::new()
            .prefix("rampart-scan-")
            .tempdir_in(&base)
            .map_err(|e| ImageError::Internal(format!("{}: {e}", base.display())))?;
        let credentials = self.credentials_for(reference);
        let pulled = rampart_scanner::registry::pull(
            reference,
            &credentials,
            &self.settings.pull,
            work.path(),
        )
        .await
        .map_err(|e| match e {
            rampart_scanner::registry::PullError::Reference(..) => {
                ImageError::Reference(e.to_string())
            }
            other => ImageError::Scan(other.to_string()),
        })?;
        let limits = self.settings.limits;
        tokio::task::spawn_blocking(move || {
            let facts = image::facts_of_pulled(&pulled, &limits);
            drop(work);
            facts
        })
        .await
        .map_err(|e| ImageError::Internal(e.to_string()))?
        .map_err(|e| ImageError::Scan(e.to_string()))
    }

    /// The references in use that are due: failed longer ago than `retry_after`, or scanned
    /// longer ago than `rescan_after`. Failed ones are marked pending; scanned ones keep
    /// serving their last scan until the new one lands.
    fn due(&self) -> Vec<String> {
        if !self.settings.scan_deployments {
            return Vec::new();
        }
        let now = now_unix_ms();
        let rescan_ms = i64::try_from(self.settings.rescan_after.as_millis()).unwrap_or(i64::MAX);
        let mut catalog = lock(&self.catalog);
        let due: Vec<String> = catalog
            .refs
            .iter()
            .filter(|(r, _)| catalog.users.contains_key(*r))
            .filter(|(r, _)| {
                catalog
                    .attempts
                    .get(*r)
                    .is_none_or(|at| at.elapsed() >= self.settings.retry_after)
            })
            .filter(|(_, state)| match state {
                RefState::Failed { at, .. } => at.elapsed() >= self.settings.retry_after,
                RefState::Scanned { digest } => catalog
                    .images
                    .get(digest)
                    .is_some_and(|s| now.saturating_sub(s.record.scanned_unix_ms) >= rescan_ms),
                RefState::Pending => false,
            })
            .map(|(r, _)| r.clone())
            .collect();
        for r in &due {
            if matches!(catalog.refs.get(r), Some(RefState::Failed { .. })) {
                catalog.refs.insert(r.clone(), RefState::Pending);
            }
        }
        due
    }

    /// Central's own registry credentials, overridden by the pull secrets of the namespaces
    /// whose deployments run `reference` (what their kubelets pull it with).
    fn credentials_for(&self, reference: &str) -> Credentials {
        let mut credentials = self.settings.credentials.clone();
        let namespaces: BTreeSet<(String, String)> = lock(&self.catalog)
            .users
            .get(reference)
            .into_iter()
            .flatten()
            .map(|d| (d.cluster_id.clone(), d.namespace.clone()))
            .collect();
        if namespaces.is_empty() {
            return credentials;
        }
        let secrets = lock(&self.pull_secrets);
        let mut usable: Vec<(&(String, String), &Credentials)> = secrets
            .iter()
            .filter(|((cluster, _), (namespace, _))| {
                namespaces.contains(&(cluster.clone(), namespace.clone()))
            })
            .map(|(k, (_, c))| (k, c))
            .collect();
        usable.sort_by(|a, b| a.0.cmp(b.0));
        for (_, c) in usable {
            credentials.merge(c.clone());
        }
        credentials
    }

    /// A Secret the Sensor reported: an image pull secret's credentials are kept (others
    /// are dropped); failed scans of images used in its namespace are tried again at once.
    pub fn secret_changed(&self, cluster: &str, id: &str, namespace: &str, object: &str) {
        let Some(credentials) = pull_secret_credentials(object) else {
            self.secret_removed(cluster, id);
            return;
        };
        lock(&self.pull_secrets).insert(
            (cluster.to_string(), id.to_string()),
            (namespace.to_string(), credentials),
        );
        self.secrets_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let retry: Vec<String> = {
            let mut catalog = lock(&self.catalog);
            let failed: Vec<String> = catalog
                .refs
                .iter()
                .filter(|(_, state)| matches!(state, RefState::Failed { .. }))
                .map(|(r, _)| r.clone())
                .filter(|r| {
                    catalog.users.get(r).is_some_and(|users| {
                        users
                            .iter()
                            .any(|d| d.cluster_id == cluster && d.namespace == namespace)
                    })
                })
                .collect();
            if self.settings.scan_deployments {
                for r in &failed {
                    catalog.refs.insert(r.clone(), RefState::Pending);
                }
                failed
            } else {
                Vec::new()
            }
        };
        for r in retry {
            if self.queue.try_send(r.clone()).is_err() {
                self.queue_dropped.inc();
                lock(&self.catalog).refs.remove(&r);
            }
        }
    }

    pub fn secret_removed(&self, cluster: &str, id: &str) {
        if lock(&self.pull_secrets)
            .remove(&(cluster.to_string(), id.to_string()))
            .is_some()
        {
            self.secrets_generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Loads the pull secrets stored for every cluster (blocking).
    fn load_pull_secrets<B: Backend>(
        &self,
        store: &crate::store::Store<B>,
    ) -> Result<usize, ImageError> {
        let mut n = 0;
        for cluster in store.clusters()? {
            store.for_each_record::<crate::model::ResourceRecord>(
                Table::Resources,
                &format!("{}\0Secret\0", cluster.id),
                |_, r| {
                    if pull_secret_credentials(r.object.get()).is_some() {
                        n += 1;
                        self.secret_changed(&r.cluster_id, &r.id, &r.namespace, r.object.get());
                    }
                    Ok(())
                },
            )?;
        }
        Ok(n)
    }

    /// Imports vulnerability data from a file or directory, then rematches every image.
    /// Returns what the import read and the deployments whose findings changed.
    pub fn import_blocking(
        &self,
        path: &std::path::Path,
    ) -> Result<(rampart_scanner::vulndb::LoadStats, BTreeSet<DeploymentRef>), ImageError> {
        let Some(store) = &self.vulndb else {
            return Err(ImageError::Internal(
                "Central has no vulnerability store".into(),
            ));
        };
        let stats = store.import(path)?;
        let prepared = Arc::new(Prepared::of(store.load()?));
        self.set_prepared(Arc::clone(&prepared));
        let changed = self.rematch(prepared.matcher());
        Ok((stats, changed))
    }

    /// Matches every stored image again; the users of images whose findings changed.
    fn rematch(&self, matcher: &Matcher<'_>) -> BTreeSet<DeploymentRef> {
        let images: Vec<Arc<Scanned>> = lock(&self.catalog).images.values().cloned().collect();
        let mut changed_digests = Vec::new();
        let mut fresh = Vec::with_capacity(images.len());
        for old in images {
            let new = Scanned::new(old.record.clone(), matcher);
            if new.vuln_ids() != old.vuln_ids() {
                changed_digests.push(old.record.facts.digest.clone());
            }
            fresh.push(Arc::new(new));
        }
        let mut catalog = lock(&self.catalog);
        for s in fresh {
            catalog.images.insert(s.record.facts.digest.clone(), s);
        }
        let users = changed_digests
            .iter()
            .flat_map(|d| catalog.users_of_digest(d))
            .collect();
        drop(catalog);
        // Every image's findings were made again: scores and severities may have moved with
        // the same vulnerabilities (the Sensors pass on only what differs).
        self.findings_changed();
        users
    }

    /// Queues a reassessment of `users` (after an import).
    pub async fn notify_changed(&self, users: BTreeSet<DeploymentRef>) {
        if !users.is_empty() {
            let _ = self.changed.send(users).await;
        }
    }

    /// What the vulnerability store holds.
    pub fn vulndb_status(&self) -> Result<Option<rampart_scanner::store::Status>, ImageError> {
        Ok(match &self.vulndb {
            Some(s) => Some(s.status()?),
            None => None,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Reading the catalog (API).

    /// Every image: scanned ones by digest, and references not scanned (pending, failed).
    pub fn list(&self) -> Vec<ImageSummary> {
        let catalog = lock(&self.catalog);
        let mut out: Vec<ImageSummary> = catalog
            .images
            .values()
            .map(|s| {
                let users = catalog.users_of_digest(&s.record.facts.digest);
                ImageSummary::scanned(s, &users)
            })
            .collect();
        for (r, state) in &catalog.refs {
            if !matches!(state, RefState::Scanned { .. }) {
                out.push(ImageSummary::unscanned(r, Some(state), &catalog));
            }
        }
        out
    }

    /// One scanned image by digest or reference, with the deployments running it.
    pub fn get(&self, id: &str) -> Option<(Arc<Scanned>, Vec<DeploymentRef>)> {
        let catalog = lock(&self.catalog);
        let s = catalog
            .images
            .get(id)
            .or_else(|| catalog.scanned(id))?
            .clone();
        let users = catalog.users_of_digest(&s.record.facts.digest);
        Some((s, users.into_iter().collect()))
    }

    /// What Central knows of the images a deployment runs (the deployment → images roll-up).
    pub fn of_deployment(&self, cluster: &str, id: &str) -> Vec<ImageSummary> {
        let catalog = lock(&self.catalog);
        let Some(refs) = catalog.uses.get(&(cluster.to_string(), id.to_string())) else {
            return Vec::new();
        };
        refs.iter()
            .map(|r| match (catalog.refs.get(r), catalog.scanned(r)) {
                (_, Some(s)) => {
                    let mut summary =
                        ImageSummary::scanned(s, &catalog.users_of_digest(&s.record.facts.digest));
                    summary.name = r.clone();
                    summary
                }
                (state, None) => ImageSummary::unscanned(r, state, &catalog),
            })
            .collect()
    }

    /// Every vulnerability across the scanned images, with what it affects.
    pub fn cves(&self) -> Vec<CveSummary> {
        let catalog = lock(&self.catalog);
        let mut by_id: BTreeMap<String, CveSummary> = BTreeMap::new();
        for s in catalog.images.values() {
            let users = catalog.users_of_digest(&s.record.facts.digest);
            for c in &s.scan.components {
                for v in &c.vulnerabilities {
                    let e = by_id.entry(v.id.clone()).or_insert_with(|| CveSummary {
                        id: v.id.clone(),
                        aliases: v.aliases.clone(),
                        summary: v.summary.clone(),
                        severity: v.severity,
                        cvss: v.cvss,
                        vector: v.vector.clone(),
                        published: v.published.clone(),
                        fixable: false,
                        images: 0,
                        deployments: 0,
                        components: BTreeSet::new(),
                        affected_images: BTreeMap::new(),
                        affected_deployments: BTreeSet::new(),
                    });
                    e.severity = e.severity.max(v.severity);
                    e.cvss = match (e.cvss, v.cvss) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    e.fixable |= v.fixed_by.is_some();
                    e.components.insert(format!("{} {}", c.name, c.version));
                    e.affected_images
                        .entry(s.record.facts.digest.clone())
                        .or_insert_with(|| AffectedImage {
                            id: s.record.facts.digest.clone(),
                            name: s.record.references.first().cloned().unwrap_or_default(),
                            components: Vec::new(),
                        })
                        .components
                        .push(AffectedComponent {
                            name: c.name.clone(),
                            version: c.version.clone(),
                            fixed_by: v.fixed_by.clone(),
                        });
                    e.affected_deployments.extend(users.iter().cloned());
                }
            }
        }
        by_id
            .into_values()
            .map(|mut c| {
                c.images = c.affected_images.len();
                c.deployments = c.affected_deployments.len();
                c
            })
            .collect()
    }
}

/// The registry credentials of an image pull secret (`kubernetes.io/dockerconfigjson`, or the
/// legacy `kubernetes.io/dockercfg`); `None` for any other Secret or one that does not read.
fn pull_secret_credentials(object: &str) -> Option<Credentials> {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_str(object).ok()?;
    let (key, legacy) = match v.get("type")?.as_str()? {
        "kubernetes.io/dockerconfigjson" => (".dockerconfigjson", false),
        "kubernetes.io/dockercfg" => (".dockercfg", true),
        _ => return None,
    };
    let encoded = v.get("data")?.get(key)?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let text = if legacy {
        // `.dockercfg` is the `auths` map alone.
        format!("{{\"auths\": {text}}}")
    } else {
        text
    };
    Credentials::from_docker_config(&text).ok()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The manifest digest; `None` until scanned.
    pub id: Option<String>,
    pub name: String,
    pub references: Vec<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub os: Option<String>,
    pub created: Option<String>,
    pub scanned_unix_ms: Option<i64>,
    pub components: usize,
    pub vulnerabilities: usize,
    pub by_severity: BTreeMap<String, usize>,
    pub fixable: usize,
    pub top_cvss: Option<f64>,
    #[serde(skip)]
    pub cves: BTreeSet<String>,
    pub deployments: usize,
    #[serde(skip)]
    pub users: BTreeSet<DeploymentRef>,
}

impl ImageSummary {
    /// A reference without a scan: pending, failed (with why), or never asked for.
    fn unscanned(reference: &str, state: Option<&RefState>, catalog: &Catalog) -> ImageSummary {
        let (status, error) = match state {
            Some(RefState::Failed { error, .. }) => ("FAILED", Some(error.clone())),
            Some(RefState::Pending) => ("PENDING", None),
            _ => ("NOT_SCANNED", None),
        };
        let users = catalog.users.get(reference).cloned().unwrap_or_default();
        ImageSummary {
            id: None,
            name: reference.to_string(),
            references: vec![reference.to_string()],
            status,
            error,
            os: None,
            created: None,
            scanned_unix_ms: None,
            components: 0,
            vulnerabilities: 0,
            by_severity: BTreeMap::new(),
            fixable: 0,
            top_cvss: None,
            cves: BTreeSet::new(),
            deployments: users.len(),
            users,
        }
    }

    fn scanned(s: &Scanned, users: &BTreeSet<DeploymentRef>) -> ImageSummary {
        let sum = &s.scan.summary;
        ImageSummary {
            id: Some(s.record.facts.digest.clone()),
            name: s.record.references.first().cloned().unwrap_or_default(),
            references: s.record.references.clone(),
            status: "SCANNED",
            error: None,
            os: s.scan.os.clone(),
            created: s.scan.created.clone(),
            scanned_unix_ms: Some(s.record.scanned_unix_ms),
            components: sum.components,
            vulnerabilities: sum.vulnerabilities,
            by_severity: sum
                .by_severity
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            fixable: sum.fixable,
            top_cvss: sum.top_cvss,
            cves: s
                .scan
                .components
                .iter()
                .flat_map(|c| &c.vulnerabilities)
                .flat_map(|v| std::iter::once(&v.id).chain(&v.aliases))
                .cloned()
                .collect(),
            deployments: users.len(),
            users: users.clone(),
        }
    }

    /// The highest severity among its vulnerabilities.
    pub fn max_level(&self) -> Option<Level> {
        [
            Level::Critical,
            Level::High,
            Level::Medium,
            Level::Low,
            Level::Unknown,
        ]
        .into_iter()
        .find(|l| self.by_severity.get(l.as_str()).is_some_and(|n| *n > 0))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedComponent {
    pub name: String,
    pub version: String,
    pub fixed_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedImage {
    pub id: String,
    pub name: String,
    pub components: Vec<AffectedComponent>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CveSummary {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Level,
    pub cvss: Option<f64>,
    pub vector: Option<String>,
    pub published: Option<String>,
    pub fixable: bool,
    pub images: usize,
    pub deployments: usize,
    pub components: BTreeSet<String>,
    #[serde(skip)]
    pub affected_images: BTreeMap<String, AffectedImage>,
    #[serde(skip)]
    pub affected_deployments: BTreeSet<DeploymentRef>,
}

/// Runs the scan queue and reassesses the deployments whose image data changed, until Central
/// stops. Stored images are loaded first, then every stored deployment is observed so the
/// catalog knows who runs what (and asks for what was never scanned).
/// Scans the images a cluster's admission controllers met without findings (relayed by its
/// Sensor), in the background, as `rampart image scan` would: their findings then reach every
/// cluster's controllers. Only where Central scans the images clusters run. An image is taken up once per [`ADMISSION_ASK_INTERVAL`] at most,
/// [`MAX_ADMISSION_SCANS`] at once; the rest is dropped (the controllers ask again). Returns
/// how many were taken up.
pub fn scan_for_admission<B: Backend>(
    core: &Arc<Core<B>>,
    cluster: &str,
    references: Vec<String>,
) -> usize {
    let mut taken = 0;
    for reference in references
        .into_iter()
        .take(rampart_proto::MAX_SCAN_REQUEST_IMAGES)
    {
        if reference.is_empty() || reference.len() > rampart_proto::MAX_IMAGE_REFERENCE {
            continue;
        }
        let Some(permit) = core.images.take_admission_ask(&reference) else {
            continue;
        };
        taken += 1;
        let core = Arc::clone(core);
        let cluster = cluster.to_string();
        tokio::spawn(async move {
            match core.images.scan_now(&core, &reference, false).await {
                Ok(_) => {
                    tracing::info!(%cluster, image = %reference, "scanned an image an admission controller met unscanned")
                }
                Err(error) => {
                    tracing::warn!(%cluster, image = %reference, %error, "could not scan an image an admission controller met unscanned")
                }
            }
            drop(permit);
        });
    }
    taken
}

pub fn spawn<B: Backend>(core: Arc<Core<B>>) -> tokio::task::JoinHandle<()> {
    let queue = lock(&core.images.queue_rx).take();
    let changed = lock(&core.images.changed_rx).take();
    tokio::spawn(async move {
        let (Some(mut queue), Some(mut changed)) = (queue, changed) else {
            return;
        };
        {
            let c = Arc::clone(&core);
            match tokio::task::spawn_blocking(move || c.images.load(&c.store)).await {
                Ok(Ok(n)) => tracing::info!(images = n, "stored images loaded"),
                Ok(Err(e)) => tracing::error!(error = %e, "stored images could not be loaded"),
                Err(e) => tracing::error!(error = %e, "loading stored images failed"),
            }
            let c = Arc::clone(&core);
            match tokio::task::spawn_blocking(move || c.images.load_pull_secrets(&c.store)).await {
                Ok(Ok(n)) => tracing::info!(secrets = n, "image pull secrets loaded"),
                Ok(Err(e)) => tracing::error!(error = %e, "image pull secrets could not be loaded"),
                Err(e) => tracing::error!(error = %e, "loading image pull secrets failed"),
            }
            let c = Arc::clone(&core);
            let observed = tokio::task::spawn_blocking(move || {
                let mut n = 0usize;
                for cluster in c.store.clusters()? {
                    let mut after: Option<String> = None;
                    loop {
                        let page = c.store.deployments(&cluster.id, after.as_deref(), 500)?;
                        let Some(last) = page.last() else { break };
                        after = Some(last.id.clone());
                        for record in &page {
                            if let Some(mut d) = record.normalize() {
                                c.images.observe(&cluster.id, &record.id, &mut d);
                                n += 1;
                            }
                        }
                    }
                }
                Ok::<usize, crate::store::Error>(n)
            })
            .await;
            if let Ok(Err(e)) = observed {
                tracing::error!(error = %e, "stored deployments could not be read for their images");
            }
        }
        let reassess = {
            let core = Arc::clone(&core);
            tokio::spawn(async move {
                while let Some(mut users) = changed.recv().await {
                    // Coalesce what arrived meanwhile.
                    while let Ok(more) = changed.try_recv() {
                        users.extend(more);
                    }
                    if let Err(e) = crate::reassess::reassess_deployments(&core, &users).await {
                        tracing::error!(error = %e, "reassessing deployments after an image change failed");
                    }
                }
            })
        };
        let sweep = {
            let core = Arc::clone(&core);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(
                    core.images
                        .settings
                        .sweep_every
                        .max(Duration::from_millis(10)),
                );
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    for r in core.images.due() {
                        if core.images.queue.try_send(r).is_err() {
                            core.images.queue_dropped.inc();
                            // Asked for again at the next sweep.
                            break;
                        }
                    }
                }
            })
        };
        while let Some(reference) = queue.recv().await {
            let Ok(permit) = Arc::clone(&core.images.permits).acquire_owned().await else {
                break;
            };
            let core = Arc::clone(&core);
            tokio::spawn(async move {
                let _ = core.images.pull_and_store(&core, &reference).await;
                drop(permit);
            });
        }
        reassess.abort();
        sweep.abort();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_has_no_scan_once_its_pull_failed_until_one_succeeds() {
        let scanning = ImageSettings {
            scan_deployments: true,
            ..ImageSettings::default()
        };
        let unscanned = |d: Option<Arc<ImageData>>| d.is_some_and(|d| !d.scanned);
        let mut c = Catalog::default();
        assert!(c.image_data("r/a:1", &scanning).is_none(), "never seen");
        assert!(
            unscanned(c.image_data("r/a:1", &ImageSettings::default())),
            "never to be scanned: Central scans no cluster's images"
        );
        c.refs.insert("r/a:1".into(), RefState::Pending);
        assert!(
            c.image_data("r/a:1", &scanning).is_none(),
            "first pull pending"
        );
        c.refs.insert(
            "r/a:1".into(),
            RefState::Failed {
                error: "unauthorized".into(),
                at_unix_ms: 0,
                at: Instant::now(),
            },
        );
        c.last_failed.insert("r/a:1".into());
        assert!(unscanned(c.image_data("r/a:1", &scanning)));
        // Retried: still without a scan while the retry is pending.
        c.refs.insert("r/a:1".into(), RefState::Pending);
        assert!(unscanned(c.image_data("r/a:1", &scanning)));
    }

    #[test]
    fn an_image_asked_for_by_admission_is_taken_up_once_an_interval_and_a_few_at_a_time() {
        let off = Images::new(ImageSettings::default()).expect("images");
        assert!(
            off.take_admission_ask("r/a:1").is_none(),
            "a Central that scans no cluster's images scans none on request either"
        );
        let images = Images::new(ImageSettings {
            scan_deployments: true,
            ..ImageSettings::default()
        })
        .expect("images");
        let first = images.take_admission_ask("r/a:1").expect("taken up");
        assert!(
            images.take_admission_ask("r/a:1").is_none(),
            "asked again within the interval (other controllers, other clusters)"
        );
        drop(first);
        assert!(
            images.take_admission_ask("r/a:1").is_none(),
            "its scan over, still not again within the interval"
        );
        let running: Vec<_> = (0..MAX_ADMISSION_SCANS)
            .map(|i| {
                images
                    .take_admission_ask(&format!("r/b:{i}"))
                    .expect("a slot")
            })
            .collect();
        assert!(
            images.take_admission_ask("r/c:1").is_none(),
            "every slot taken"
        );
        drop(running);
        assert!(
            images.take_admission_ask("r/c:1").is_some(),
            "refused while busy, taken up once a slot is free"
        );
    }
}
