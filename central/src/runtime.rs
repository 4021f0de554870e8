//! `rampart central start` (and `rampart up`): open the store, load the CA and the policies,
//! serve Sensors (mTLS gRPC) and users (HTTPS API), reassess after policy changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::Api;
use crate::commit::Committer;
use crate::core::Core;
use crate::pki::persist;
use crate::server::SensorListener;
use crate::store::{SledBackend, Store};

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub sensor_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// Names Sensors and users use to reach Central (its serving certificate covers them).
    pub server_names: Vec<String>,
    /// Image scanning; the vulnerability store defaults to `DATA_DIR/vulndb` and the scans'
    /// scratch space to `DATA_DIR/scan-work`.
    pub images: crate::images::ImageSettings,
    /// Process baselines (the learning window).
    pub baselines: crate::baselines::BaselineSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] crate::store::Error),
    #[error("certificates: {0}")]
    Pki(#[from] persist::Error),
    #[error("policies: {0}")]
    Policies(#[from] crate::policies::PolicyError),
    #[error("authentication set-up: {0}")]
    Auth(#[from] crate::auth::Error),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::Error),
    #[error("sensor listener: {0}")]
    Listener(#[from] crate::server::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("images: {0}")]
    Images(#[from] crate::images::ImageError),
}

/// A started Central.
#[derive(Debug)]
pub struct Running {
    pub sensor_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub core: Arc<Core<SledBackend>>,
    /// Central's CA certificate (clients pass it as `--ca`).
    pub ca_file: PathBuf,
    /// Where the first start wrote the generated admin password, if that file still exists.
    pub admin_password_file: Option<PathBuf>,
    /// The generated admin password, on the first start only.
    pub new_admin_password: Option<String>,
    pub sensor_server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    pub api_server: tokio::task::JoinHandle<()>,
}

/// The file the first start writes the admin password to (mode 0600).
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// Central's CA certificate, for clients.
pub const CA_FILE: &str = "ca.pem";

fn write_private(path: &std::path::Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| Error::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
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
    let ca = Arc::new(persist::load_or_create_ca(&store, now)?);
    let revocations = persist::load_revocations(&store)?;
    let ca_file = config.data_dir.join(CA_FILE);
    std::fs::write(&ca_file, ca.cert_pem()).map_err(|source| Error::Write {
        path: ca_file.display().to_string(),
        source,
    })?;
    let password_file = config.data_dir.join(ADMIN_PASSWORD_FILE);
    let new_admin_password = crate::auth::bootstrap_admin(&store)?;
    if let Some(p) = &new_admin_password {
        write_private(&password_file, &format!("{p}\n"))?;
    }
    let (committer, _committer_task) = Committer::spawn(Arc::clone(&store), 4096, 1000);
    let mut images = config.images.clone();
    images
        .vulndb_dir
        .get_or_insert_with(|| config.data_dir.join("vulndb"));
    images
        .work_dir
        .get_or_insert_with(|| config.data_dir.join("scan-work"));
    let core = Core::with_parts(
        Arc::clone(&store),
        committer,
        rampart_policy::defaults::default_policies(),
        crate::images::Images::new(images)?,
        config.baselines,
    )?;
    crate::reassess::spawn(Arc::clone(&core));
    crate::images::spawn(Arc::clone(&core));
    // The first risk ranking reads every deployment: start it now rather than on the first
    // visit to the Risk page.
    crate::risk::Ranking::compute_in_background(&core);

    let sensor_listener = TcpListener::bind(config.sensor_listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.sensor_listen,
            source,
        })?;
    let (sensor_addr, sensor_server) = SensorListener {
        core: Arc::clone(&core),
        revocations: revocations.clone(),
        server_names: config.server_names.clone(),
    }
    .start(&ca, sensor_listener)?;

    let api_listener = TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.api_listen,
            source,
        })?;
    let api_tls = crate::tls::api_server_config(&ca, &config.server_names)?;
    let api = Arc::new(Api {
        core: Arc::clone(&core),
        auth: crate::auth::Authenticator::default(),
        ca,
        revocations,
        console: crate::ui::Console::default(),
    });
    let (api_addr, api_server) =
        crate::api::serve(api, api_listener, api_tls).map_err(|source| Error::Bind {
            addr: config.api_listen,
            source,
        })?;
    Ok(Running {
        sensor_addr,
        api_addr,
        core,
        ca_file,
        admin_password_file: password_file.exists().then_some(password_file),
        new_admin_password,
        sensor_server,
        api_server,
    })
}
