//! `rampart central start`: open the store, load the CA, serve Sensors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::commit::Committer;
use crate::hub::PolicySet;
use crate::pki::persist;
use crate::server::SensorListener;
use crate::store::{SledBackend, Store};
use crate::tls::RefusalLog;

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub sensor_listen: SocketAddr,
    /// Names Sensors use to reach Central (its serving certificate covers them).
    pub server_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("certificates: {0}")]
    Pki(#[from] persist::Error),
    #[error("sensor listener: {0}")]
    Listener(#[from] crate::server::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
}

/// A started Central.
#[derive(Debug)]
pub struct Running {
    pub sensor_addr: SocketAddr,
    pub store: Arc<Store<SledBackend>>,
    pub refusals: RefusalLog,
    pub server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// The policies Sensors get: Central's defaults, as ACS JSON, with a content-derived revision.
pub fn default_policy_set() -> PolicySet {
    let policies_json: Vec<Vec<u8>> = rampart_policy::defaults::FILES
        .iter()
        .map(|(_, text)| text.as_bytes().to_vec())
        .collect();
    // FNV-1a over the texts: stable across runs and builds with the same policies.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in policies_json.iter().flatten() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    PolicySet {
        revision: format!("{hash:016x}"),
        policies_json,
    }
}

pub async fn start(config: Config) -> Result<Running, Error> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    let store = Arc::new(Store::open(SledBackend::open(
        &config.data_dir.join("store"),
    )?)?);
    let now = time::OffsetDateTime::now_utc();
    let ca = persist::load_or_create_ca(&store, now)?;
    let revocations = persist::load_revocations(&store)?;
    let (committer, _committer_task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
    let refusals = RefusalLog::default();
    let listener = TcpListener::bind(config.sensor_listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.sensor_listen,
            source,
        })?;
    let (sensor_addr, server) = SensorListener {
        store: Arc::clone(&store),
        committer,
        policies: Arc::new(default_policy_set()),
        detector: Arc::new(crate::detect::Detector::new(
            &rampart_policy::defaults::default_policies(),
        )),
        revocations,
        refusals: refusals.clone(),
        server_names: config.server_names.clone(),
    }
    .start(&ca, listener)?;
    Ok(Running {
        sensor_addr,
        store,
        refusals,
        server,
    })
}
