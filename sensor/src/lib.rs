//! The Sensor: one per cluster. It watches the Kubernetes API, keeps a pure in-memory
//! [`index::Index`] of what it saw, and streams the changes to Central over mTLS.
//!
//! ```text
//!   kube-rs watchers ──▶ Index (owner roll-up, exposure, RBAC, NetworkPolicy coverage)
//!                          │ dirty entries                 │ workload changes
//!                          ▼ (dedup by content hash)       ▼
//!   Central stream ◀── Outbox (reports, runtime events) ◀── enforcer ──▶ Kubernetes API
//!   (hello, sync, synced marker, changes, acks; PolicySync and orders in)
//! ```

pub mod act;
pub mod admission;
pub mod central;
pub mod collector;
pub mod enforce;
pub mod health;
pub mod images;
pub mod index;
pub mod nodes;
pub mod outbox;
pub mod rbac;
pub mod runtime;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use central::{CentralConfig, Status};
use enforce::LocalPolicies;
use index::Index;
use outbox::Outbox;
use rampart_proto::v1::EnforcementReport;
use rampart_proto::v1::msg_from_sensor::Msg as FromSensor;

/// What the Sensor's tasks share.
#[derive(Debug)]
pub struct Shared {
    pub cluster_name: String,
    pub index: Mutex<Index>,
    /// Bumped after each change applied to the index.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Central's policies as last received.
    pub policies: Mutex<LocalPolicies>,
    pub policies_changed: tokio::sync::watch::Sender<u64>,
    pub outbox: Mutex<Outbox>,
    /// Notified when something is queued in the outbox (one consumer: the Central stream).
    pub outbox_ready: tokio::sync::Notify,
    pub status: Mutex<Status>,
    /// Runtime detection on the Collectors' processes.
    pub runtime: Mutex<runtime::Detector>,
    /// Pods to kill for runtime policies (bounded: [`act::KILL_QUEUE`]); read by the enforcer.
    pub kills: Mutex<std::collections::VecDeque<runtime::KillRequest>>,
    pub kills_ready: tokio::sync::Notify,
    /// Central's findings for the images the cluster runs, for the admission controllers.
    pub images: Mutex<images::ImageFindingsStore>,
    pub images_changed: tokio::sync::watch::Sender<u64>,
    /// Namespaces never enforced in ([`Config::exempt_namespaces`]).
    pub exempt_namespaces: Vec<String>,
}

impl Shared {
    fn new(cluster_name: String, exempt_namespaces: Vec<String>) -> Shared {
        Shared {
            cluster_name,
            index: Mutex::new(Index::new()),
            changed: tokio::sync::watch::channel(0).0,
            policies: Mutex::default(),
            policies_changed: tokio::sync::watch::channel(0).0,
            outbox: Mutex::default(),
            outbox_ready: tokio::sync::Notify::new(),
            status: Mutex::default(),
            runtime: Mutex::new(runtime::Detector::exempting(exempt_namespaces.clone())),
            kills: Mutex::default(),
            kills_ready: tokio::sync::Notify::new(),
            images: Mutex::default(),
            images_changed: tokio::sync::watch::channel(0).0,
            exempt_namespaces,
        }
    }

    /// Queues a message for Central.
    pub fn send(&self, msg: FromSensor) {
        lock(&self.outbox).push(msg);
        self.outbox_ready.notify_one();
    }

    pub fn report(&self, report: EnforcementReport) {
        {
            let mut status = lock(&self.status);
            if report.succeeded {
                status.enforcements += 1;
            } else {
                status.failed_enforcements += 1;
            }
        }
        self.send(FromSensor::EnforcementReport(report));
    }

    /// Queues a pod to kill; when the queue is full the request is refused and reported as a
    /// failed enforcement.
    pub fn kill(&self, k: runtime::KillRequest) {
        let refused = {
            let mut kills = lock(&self.kills);
            if kills.len() >= act::KILL_QUEUE {
                Some(k)
            } else {
                kills.push_back(k);
                None
            }
        };
        match refused {
            None => self.kills_ready.notify_one(),
            Some(k) => self.report(EnforcementReport {
                deployment_id: k.deployment_id,
                policy_id: k.policy_id,
                action: "KILL_POD_ENFORCEMENT".into(),
                succeeded: false,
                message: format!("pod {} was not killed: too many kills pending", k.pod),
                ..EnforcementReport::default()
            }),
        }
    }

    pub fn notify_changed(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What `rampart sensor` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub central: CentralConfig,
    /// A kubeconfig file; `None`: the in-cluster service account or `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// Where the node Collectors connect (`None`: no Collector endpoint).
    pub collector_listen: Option<std::net::SocketAddr>,
    /// Plain-HTTP probes and metrics (`None`: not served).
    pub health_listen: Option<std::net::SocketAddr>,
    /// Namespaces the Sensor never enforces in, automatically or for a runtime policy: their
    /// violations are still reported ([`rampart_policy::SYSTEM_NAMESPACES`] by default, as
    /// the admission controller excludes them).
    pub exempt_namespaces: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("configure the Kubernetes client: {0}")]
    KubeConfig(String),
    #[error("create the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("collector endpoint: {0}")]
    CollectorEndpoint(std::io::Error),
    #[error("health endpoint: {0}")]
    HealthEndpoint(std::io::Error),
}

/// A running Sensor; dropping it stops every task.
#[derive(Debug)]
pub struct Sensor {
    pub shared: Arc<Shared>,
    /// Where Collectors connect, when enabled.
    pub collector_addr: Option<std::net::SocketAddr>,
    /// Where the probes and metrics are served, when enabled.
    pub health_addr: Option<std::net::SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sensor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Sensor {
    pub fn status(&self) -> Status {
        let mut status = lock(&self.shared.status).clone();
        let outbox = lock(&self.shared.outbox);
        status.buffered_events = outbox.len() as u64;
        status.dropped_events = outbox.dropped();
        status
    }
}

pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                    path: path.to_path_buf(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| Error::KubeConfig(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::KubeConfig(e.to_string()))?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Starts the watchers, the enforcer and the stream to Central.
pub async fn start(config: Config) -> Result<Sensor, Error> {
    let client = kube_client(config.kubeconfig.as_deref()).await?;
    let kinds = watch::kinds_to_watch(&client).await;
    let shared = Arc::new(Shared::new(
        config.central.cluster_name.clone(),
        config.exempt_namespaces.clone(),
    ));
    let (orders, orders_rx) = tokio::sync::mpsc::channel(act::ORDER_QUEUE);
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = kinds
        .iter()
        .map(|kind| {
            tokio::spawn(watch::watch_kind(
                client.clone(),
                *kind,
                Arc::clone(&shared),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(act::run(
        client,
        Arc::clone(&shared),
        kinds.clone(),
        orders_rx,
    )));
    let collector_addr = match config.collector_listen {
        Some(addr) => {
            let (addr, task) = nodes::serve(
                Arc::clone(&shared),
                nodes::Listen {
                    addr,
                    ca_pem: config.central.ca_pem.clone(),
                    cert_pem: config.central.cert_pem.clone(),
                    key_pem: config.central.key_pem.clone(),
                },
            )
            .await
            .map_err(Error::CollectorEndpoint)?;
            tasks.push(task);
            Some(addr)
        }
        None => None,
    };
    let health_addr = match config.health_listen {
        Some(addr) => {
            let (addr, task) = health::serve(Arc::clone(&shared), kinds.clone(), addr)
                .await
                .map_err(Error::HealthEndpoint)?;
            tasks.push(task);
            Some(addr)
        }
        None => None,
    };
    tasks.push(tokio::spawn(central::run(
        config.central,
        Arc::clone(&shared),
        kinds,
        orders,
    )));
    Ok(Sensor {
        shared,
        collector_addr,
        health_addr,
        tasks,
    })
}
