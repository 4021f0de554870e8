//! The mTLS listener for Sensors: rustls with Central's [`ClientVerifier`], handshakes bounded in
//! time, refusals logged and kept (bounded) for the API and metrics.
//!
//! Tonic gets already-verified TLS streams through `serve_with_incoming`; the peer certificate
//! then travels with each request (`Request::peer_certs`), which is where identity is read.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::pki::{CertificateAuthority, ClientVerifier, Revocations};

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; more connections wait in the kernel's accept queue.
const MAX_PENDING_HANDSHAKES: usize = 256;
/// Refusals kept for inspection.
const REFUSALS_KEPT: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A refused connection, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub peer: String,
    pub reason: String,
    pub unix_ms: i64,
}

/// Counts and the latest refusals; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct RefusalLog {
    inner: Arc<RefusalInner>,
}

#[derive(Debug, Default)]
struct RefusalInner {
    total: prometheus_client::metrics::counter::Counter,
    latest: Mutex<VecDeque<Refusal>>,
}

impl RefusalLog {
    pub fn record(&self, peer: String, reason: String) {
        tracing::warn!(%peer, %reason, "refused a connection");
        self.inner.total.inc();
        if let Ok(mut latest) = self.inner.latest.lock() {
            if latest.len() == REFUSALS_KEPT {
                latest.pop_front();
            }
            latest.push_back(Refusal {
                peer,
                reason,
                unix_ms: crate::model::now_unix_ms(),
            });
        }
    }

    pub fn total(&self) -> u64 {
        self.inner.total.get()
    }

    /// The refusal counter, for the metrics registry.
    pub fn counter(&self) -> prometheus_client::metrics::counter::Counter {
        self.inner.total.clone()
    }

    pub fn latest(&self) -> Vec<Refusal> {
        self.inner
            .latest
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

type ServerCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A fresh serving certificate (with the CA in the chain) for `server_names`.
fn server_cert(ca: &CertificateAuthority, server_names: &[String]) -> Result<ServerCert, Error> {
    let now = time::OffsetDateTime::now_utc();
    let (cert_pem, key_pem) = ca
        .issue_server_cert(server_names, now)
        .map_err(|e| Error::Config(e.to_string()))?;
    let cert = crate::pki::pem_to_der(&cert_pem).map_err(|e| Error::Config(e.to_string()))?;
    let key: PrivateKeyDer<'static> =
        rustls::pki_types::pem::PemObject::from_pem_slice(key_pem.as_bytes())
            .map_err(|e: rustls::pki_types::pem::Error| Error::Config(e.to_string()))?;
    let ca_der = ca.cert_der().map_err(|e| Error::Config(e.to_string()))?;
    Ok((vec![cert, CertificateDer::from(ca_der.to_vec())], key))
}

/// The HTTPS API's TLS: Central's serving certificate, no client certificates (users
/// authenticate with tokens or the admin password), HTTP/2 and HTTP/1.1.
pub fn api_server_config(
    ca: &CertificateAuthority,
    server_names: &[String],
) -> Result<Arc<ServerConfig>, Error> {
    let (chain, key) = server_cert(ca, server_names)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Central's server certificate, issued by its own CA for the names Sensors dial, and
/// mandatory client certificates from the same CA.
pub fn server_config(
    ca: &CertificateAuthority,
    server_names: &[String],
    revocations: Revocations,
) -> Result<Arc<ServerConfig>, Error> {
    let (chain, key) = server_cert(ca, server_names)?;
    let ca_der = ca.cert_der().map_err(|e| Error::Config(e.to_string()))?;
    let verifier = ClientVerifier::new(ca_der.clone(), revocations)
        .map_err(|e| Error::Config(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| Error::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections, completes mTLS handshakes (bounded in time and number), records
/// refusals, and yields the verified streams for tonic.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    refusals: RefusalLog,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let (tcp, peer): (TcpStream, SocketAddr) = match listener.accept().await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let refusals = refusals.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        refusals.record(peer.to_string(), format!("TLS handshake failed: {error}"))
                    }
                    Err(_) => {
                        refusals.record(peer.to_string(), "TLS handshake timed out".to_string())
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
