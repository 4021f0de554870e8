//! The Sensor: one per cluster. It watches the Kubernetes API, keeps a pure in-memory
//! [`index::Index`] of what it saw, and streams the changes to Central over mTLS.
//!
//! ```text
//!   kube-rs watchers ──▶ Index (owner roll-up, exposure, RBAC, NetworkPolicy coverage)
//!                          │ dirty entries, deduplicated by content hash
//!                          ▼
//!                    Central stream (hello, sync, synced marker, changes, acks)
//! ```

pub mod central;
pub mod index;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use central::{CentralConfig, Status};
use index::Index;

/// What `rampart sensor` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub central: CentralConfig,
    /// A kubeconfig file; `None`: the in-cluster service account or `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
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
}

/// A running Sensor; dropping it stops every task.
#[derive(Debug)]
pub struct Sensor {
    pub index: Arc<Mutex<Index>>,
    pub status: Arc<Mutex<Status>>,
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
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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

/// Starts the watchers and the stream to Central.
pub async fn start(config: Config) -> Result<Sensor, Error> {
    let client = kube_client(config.kubeconfig.as_deref()).await?;
    let kinds = watch::kinds_to_watch(&client).await;
    let index = Arc::new(Mutex::new(Index::new()));
    let changed = Arc::new(tokio::sync::Notify::new());
    let status = Arc::new(Mutex::new(Status::default()));
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = kinds
        .iter()
        .map(|kind| {
            tokio::spawn(watch::watch_kind(
                client.clone(),
                *kind,
                Arc::clone(&index),
                Arc::clone(&changed),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(central::run(
        config.central,
        Arc::clone(&index),
        changed,
        kinds,
        Arc::clone(&status),
    )));
    Ok(Sensor {
        index,
        status,
        tasks,
    })
}
