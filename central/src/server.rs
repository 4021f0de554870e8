//! Wiring: the Sensor listener (mTLS + gRPC hub) as one call, for `rampart central start`, the
//! tests and the benchmarks.

use std::net::SocketAddr;
use std::sync::Arc;

use rampart_proto::v1::sensor_service_server::SensorServiceServer;
use tokio::net::TcpListener;

use crate::core::Core;
use crate::hub::Hub;
use crate::pki::{CertificateAuthority, Revocations};
use crate::store::Backend;
use crate::tls;

/// Largest message a Sensor may send (a Kubernetes object with its context fits many times).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tls(#[from] tls::Error),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// Everything the Sensor listener needs.
#[derive(Debug)]
pub struct SensorListener<B: Backend> {
    pub core: Arc<Core<B>>,
    pub revocations: Revocations,
    /// DNS names or IPs Sensors dial; Central's serving certificate covers them.
    pub server_names: Vec<String>,
}

impl<B: Backend> SensorListener<B> {
    /// Starts serving on `listener`; returns the bound address and the server task.
    pub fn start(
        self,
        ca: &CertificateAuthority,
        listener: TcpListener,
    ) -> Result<
        (
            SocketAddr,
            tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
        ),
        Error,
    > {
        let addr = listener.local_addr()?;
        let config = tls::server_config(ca, &self.server_names, self.revocations.clone())?;
        let refusals = self.core.refusals.clone();
        let hub = Hub::new(self.core);
        let service = SensorServiceServer::new(hub)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let incoming = tls::incoming(listener, config, refusals);
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        Ok((addr, task))
    }
}
