//! The webhook's serving certificate, read from files and reloaded when they change (cert-manager
//! and Kubernetes secret volumes replace them in place), so a rotation needs no restart. A
//! broken pair on disk is logged and the previous certificate kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses a certificate chain and key (PEM) into what rustls serves.
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    path: &Path,
) -> Result<CertifiedKey, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid(format!("key: {e}")))?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| invalid(format!("certificate and key do not match: {e}")))
}

/// Serves the current certificate; [`ReloadingCert::reload_if_changed`] swaps it.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadingCert {
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ReloadingCert, TlsError> {
        let stamp = (modified(cert_path), modified(key_path));
        let key = certified_key(&read(cert_path)?, &read(key_path)?, cert_path)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
            stamp: RwLock::new(stamp),
        })
    }

    /// Reloads when either file's modification time changed. `Ok(true)` when swapped.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamp = (modified(&self.cert_path), modified(&self.key_path));
        if *self.stamp.read().unwrap_or_else(|e| e.into_inner()) == stamp {
            return Ok(false);
        }
        // Recorded first: a broken pair is reported once, not on every poll.
        *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = stamp;
        let key = certified_key(
            &read(&self.cert_path)?,
            &read(&self.key_path)?,
            &self.cert_path,
        )?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// Polls the files until the task is dropped.
    pub async fn watch(self: Arc<Self>, every: Duration, metrics: Arc<crate::metrics::Metrics>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed() {
                Ok(true) => {
                    metrics.certificate_reloads.inc();
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                }
                Ok(false) => {}
                Err(error) => {
                    metrics.certificate_reload_failures.inc();
                    tracing::error!(%error, "serving certificate not reloaded; the previous one stays in use");
                }
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The server configuration: TLS 1.2+, HTTP/2 and HTTP/1.1 offered. With `client_ca`, only
/// clients holding a certificate it signed (the API server, configured with an
/// AdmissionConfiguration kubeconfig) may connect.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    client_ca: Option<(&[u8], &Path)>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder();
    let mut config = match client_ca {
        None => builder.with_no_client_auth().with_cert_resolver(cert),
        Some((pem, path)) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let invalid = |message: String| TlsError::Invalid {
                path: path.to_path_buf(),
                message,
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| invalid(format!("client CA: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| invalid(format!("client CA: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| invalid(format!("client CA: {e}")))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(cert)
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
