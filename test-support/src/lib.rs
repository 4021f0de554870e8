//! What Rampart's tests share. No real Kubernetes API server can run on the machines that build
//! Rampart, so [`apiserver`] is one: it speaks the real list/watch protocol over HTTPS, and
//! kube-rs (the Sensor's client) runs against it unchanged, from a kubeconfig. [`registry`]
//! starts a real OCI registry (Debian's `docker-registry`) and pushes test images to it.

pub mod apiserver;
mod patch;
pub mod registry;
pub mod webdriver;

pub use apiserver::{ApiServer, Error};

/// Polls `check` until it returns `Some`, or panics after `deadline` (tests wait for outcomes
/// this way instead of sleeping a fixed time).
pub async fn eventually<T>(
    what: &str,
    deadline: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(t) = check() {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// An HTTPS client that trusts only `ca_pem` (Central's CA), with statuses as values (tests
/// check 4xx answers) and a 30 s limit per request.
pub fn https_agent(ca_pem: &str) -> Result<ureq::Agent, ureq::Error> {
    let cert = ureq::tls::Certificate::from_pem(ca_pem.as_bytes())?.to_owned();
    Ok(ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    cert,
                ])))
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into())
}

/// The `Authorization` header value for a user and password.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Writes a serving certificate for `localhost` (`tls.crt`, `tls.key` in `dir`) signed by a
/// fresh CA, and returns that CA's PEM for clients to trust.
pub fn serving_cert(dir: &std::path::Path) -> std::io::Result<String> {
    let failed = |e: rcgen::Error| std::io::Error::other(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(failed)?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(failed)?;
    std::fs::write(dir.join("tls.crt"), cert.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(ca.pem())
}

/// A TLS connector (tokio-rustls) that trusts only `ca_pem`, without a client certificate.
pub fn tls_connector(ca_pem: &str) -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    tls_connector_offering(ca_pem, &[])
}

/// [`tls_connector`] offering `protocols` by ALPN (`h2` for HTTP/2, as the API server's client
/// offers it).
pub fn tls_connector_offering(
    ca_pem: &str,
    protocols: &[&[u8]],
) -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    use rustls::pki_types::pem::PemObject;
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| rustls::Error::General(format!("CA certificate: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// What Rampart's default policies, every one enabled, find in one of its own manifests
/// (`deploy/...`): the number of workloads checked, and each finding's policy and violations.
/// Panics when the manifest does not read.
pub fn default_policy_findings(name: &str, text: &str) -> (usize, Vec<(String, Vec<String>)>) {
    use rampart_policy::check::{Source, run_check};
    let policies: Vec<_> = rampart_policy::defaults::default_policies()
        .into_iter()
        .map(|mut p| {
            p.disabled = false;
            rampart_policy::compile::compile(&p).expect("default policy compiles")
        })
        .collect();
    let source = Source {
        name: name.into(),
        text: text.into(),
    };
    let report = run_check(
        &[source],
        &policies,
        &rampart_policy::EvalContext::default(),
    );
    assert!(report.problems.is_empty(), "{name}: {:?}", report.problems);
    let findings = report
        .active_findings()
        .map(|(_, f)| (f.policy.clone(), f.violations.clone()))
        .collect();
    (report.objects.len(), findings)
}
