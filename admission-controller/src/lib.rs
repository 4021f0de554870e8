//! Rampart's admission controller: a Kubernetes validating webhook that enforces deploy-time
//! policies and exec/attach/port-forward policies in the API server's path, deciding in-process
//! from a local policy set (pushed by the Sensor, cached on disk) — no call leaves the process
//! while a request waits.
//!
//! ```text
//!   kube-apiserver ──HTTPS AdmissionReview──▶ server (limits, timeouts) ──▶ review::decode
//!        ▲                                                                     │
//!        └──────────── AdmissionReview (allow / deny + message) ◀── decide (pure) ◀─ PolicySet,
//!                                                                      │           Resources
//!   Sensor ──mTLS: policies, workloads, pods──▶ sensor_link ──▶ State ◀┘ (+ disk cache)
//!          ◀──────────────── alerts (bounded queue) ─────────────────────┘
//! ```

pub mod alerts;
pub mod cohort;
pub mod decide;
pub mod findings_cache;
pub mod log_budget;
pub mod metrics;
pub mod overflow;
pub mod policies;
pub mod resources;
pub mod review;
pub mod scan_wants;
/// The JSON scanner reviews are walked with (it lives with the workload decoder it feeds).
pub use rampart_policy::scan;
pub mod sensor_link;
pub mod server;
pub mod tls;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use decide::{FailureMode, Settings};
pub use sensor_link::SensorLink;
pub use server::State;

/// What `rampart admission-controller` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Plain-HTTP probes and metrics (`None`: not served).
    pub health_listen: Option<SocketAddr>,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Require client certificates signed by this CA (the API server's).
    pub client_ca: Option<PathBuf>,
    /// How often the certificate files are checked for changes.
    pub cert_reload_interval: Duration,
    pub settings: Settings,
    /// Where the last policy set is kept.
    pub cache_dir: PathBuf,
    /// `None`: decide from the disk cache only (tests, air-gapped trials).
    pub sensor: Option<SensorLink>,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    /// Longest a review waits for its decision once its body is read; past it, it is
    /// answered by the failure mode (logged and counted).
    pub decision_budget: Duration,
    pub alert_queue: usize,
    /// Bytes of alerts kept on disk, beyond the queue, while the Sensor is away
    /// ([`overflow`]).
    pub alert_overflow_bytes: u64,
    /// Decision lines a second at most (denials, break-glass, failure-mode answers, refused
    /// reviews); `0` for no limit.
    pub log_lines_per_second: u32,
}

impl Config {
    /// Defaults for everything but the addresses, files and the Sensor.
    pub fn new(
        listen: SocketAddr,
        tls_cert: PathBuf,
        tls_key: PathBuf,
        cache_dir: PathBuf,
    ) -> Config {
        Config {
            listen,
            health_listen: None,
            tls_cert,
            tls_key,
            client_ca: None,
            cert_reload_interval: Duration::from_secs(10),
            settings: Settings::default(),
            cache_dir,
            sensor: None,
            max_body_bytes: 4 * 1024 * 1024,
            body_timeout: Duration::from_secs(5),
            decision_budget: server::DEFAULT_DECISION_BUDGET,
            alert_queue: 10_000,
            alert_overflow_bytes: DEFAULT_ALERT_OVERFLOW_BYTES,
            log_lines_per_second: log_budget::DEFAULT_PER_SECOND,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Cache(#[from] policies::CacheError),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Sensor(String),
}

/// Where the alerts waiting for the Sensor are kept across a restart, in the cache directory.
pub const PENDING_ALERTS_FILE: &str = "alerts-pending.pb";

/// Where alerts overflowing the queue while the Sensor is away go, in the cache directory.
pub const ALERT_OVERFLOW_DIR: &str = "alerts-overflow";

/// The default bound on alerts kept on disk beyond the queue: some 200,000 denials' alerts.
pub const DEFAULT_ALERT_OVERFLOW_BYTES: u64 = 64 << 20;

/// The largest file of waiting alerts read back at a start (the queue's bound, 10,000 alerts
/// by default, takes a few megabytes).
const MAX_PENDING_ALERTS_BYTES: u64 = 256 << 20;

/// A running admission controller; dropping it stops every task.
#[derive(Debug)]
pub struct AdmissionController {
    pub addr: SocketAddr,
    pub health_addr: Option<SocketAddr>,
    pub state: Arc<State>,
    /// Where [`AdmissionController::stop`] keeps the alerts still waiting.
    pending_alerts: std::path::PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AdmissionController {
    /// Stops serving and reporting, and keeps the alerts not yet reported (the Sensor away)
    /// in the cache directory, where the next start queues them again; returns how many. A
    /// report in flight when the link stops is the one thing not kept.
    pub async fn stop(mut self) -> std::io::Result<usize> {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let state = Arc::clone(&self.state);
        let path = self.pending_alerts.clone();
        tokio::task::spawn_blocking(move || state.alerts.save(&path, &state.metrics))
            .await
            .map_err(std::io::Error::other)?
    }
}

impl Drop for AdmissionController {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Loads the cached policy set and the certificate, binds, and starts serving.
pub async fn start(config: Config) -> Result<AdmissionController, Error> {
    let metrics = Arc::new(metrics::Metrics::new());
    let mut state = State::new(
        config.settings.clone(),
        Arc::clone(&metrics),
        config.max_body_bytes,
        config.body_timeout,
        config.alert_queue,
    );
    state.log_budget = log_budget::LogBudget::new(config.log_lines_per_second);
    state.decision_budget = config.decision_budget;
    // Central's last findings, so that image criteria are decided before the Sensor is back.
    let findings = findings_cache::FindingsCache::new(&config.cache_dir);
    {
        let resources = state.resources.get_mut().unwrap_or_else(|e| e.into_inner());
        let loaded = findings.load_into(resources);
        for problem in &loaded.skipped {
            tracing::warn!(%problem, "cached image findings not used");
        }
        if loaded.images > 0 {
            tracing::info!(
                images = loaded.images,
                "deciding image criteria from the cached findings until the Sensor sends its view"
            );
        }
        metrics
            .image_findings
            .set(i64::try_from(resources.images()).unwrap_or(i64::MAX));
    }
    // Alerts a previous run could not report before it stopped.
    let pending_alerts = config.cache_dir.join(PENDING_ALERTS_FILE);
    match state
        .alerts
        .restore(&pending_alerts, MAX_PENDING_ALERTS_BYTES, &metrics)
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            alerts = n,
            "alerts kept by the previous run queued for the Sensor"
        ),
        Err(error) => tracing::error!(%error, "alerts kept by the previous run lost"),
    }
    let state = Arc::new(state);
    let cache = policies::DiskCache::new(&config.cache_dir);
    match cache.load() {
        Ok(Some(set)) => {
            tracing::info!(revision = %set.revision, age_s = set.age().as_secs(), "deciding from the cached policy set until the Sensor sends a newer one");
            state.set_policies(set);
        }
        Ok(None) => tracing::warn!(
            failure_mode = config.settings.failure_mode.as_str(),
            "no cached policy set: requests are answered by the failure mode until the Sensor sends one"
        ),
        // A damaged cache is not fatal: the Sensor resends the set.
        Err(error) => tracing::error!(%error, "cached policy set ignored"),
    }
    let cert = Arc::new(tls::ReloadingCert::load(&config.tls_cert, &config.tls_key)?);
    let client_ca = match &config.client_ca {
        Some(path) => Some((
            std::fs::read(path).map_err(|source| tls::TlsError::Read {
                path: path.clone(),
                source,
            })?,
            path.clone(),
        )),
        None => None,
    };
    let tls = tls::server_config(
        Arc::clone(&cert),
        client_ca
            .as_ref()
            .map(|(pem, path)| (pem.as_slice(), path.as_path())),
    )?;
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    let mut tasks = vec![
        tokio::spawn(server::serve(listener, Arc::new(tls), Arc::clone(&state))),
        tokio::spawn(Arc::clone(&cert).watch(config.cert_reload_interval, Arc::clone(&metrics))),
    ];
    let health_addr = match config.health_listen {
        Some(a) => {
            let l = bind(a).await?;
            let bound = l
                .local_addr()
                .map_err(|source| Error::Listen { addr: a, source })?;
            tasks.push(tokio::spawn(server::serve_health(l, Arc::clone(&state))));
            Some(bound)
        }
        None => None,
    };
    if let Some(link) = config.sensor {
        let channel = sensor_link::channel(&link).map_err(Error::Sensor)?;
        tasks.push(tokio::spawn(sensor_link::watch(
            link,
            channel.clone(),
            Arc::clone(&state),
            cache,
            findings,
        )));
        let overflow = overflow::Overflow::open(
            &config.cache_dir.join(ALERT_OVERFLOW_DIR),
            config.alert_overflow_bytes,
        );
        if overflow.segments() > 0 {
            tracing::info!(
                bytes = overflow.bytes(),
                "alerts kept on disk while the Sensor was away will be sent"
            );
        }
        tasks.push(tokio::spawn(sensor_link::report(
            channel,
            Arc::clone(&state),
            overflow,
        )));
    }
    tracing::info!(%addr, failure_mode = config.settings.failure_mode.as_str(), "admission controller serving");
    Ok(AdmissionController {
        addr,
        health_addr,
        state,
        pending_alerts,
        tasks,
    })
}
