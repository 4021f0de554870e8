//! What the long-running commands (`central start`, `up`, `sensor`, `collector`) share.

use anyhow::Context as _;

/// Reads one file of an init bundle directory.
pub fn read_bundle_file(dir: &std::path::Path, file: &str) -> anyhow::Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// Completes on Ctrl-C or SIGTERM (a pod being stopped); logs which.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminate.recv() => tracing::info!("SIGTERM; stopping"),
    }
    Ok(())
}
