use std::process::ExitCode;

use clap::Parser;

/// mimalloc: sled's copy-on-write nodes allocate and free on every insert, and glibc's malloc
/// was the largest single cost of Central's ingest (25 % more events/s with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The one TLS crypto provider, installed before anything can build a TLS config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,h2=warn,tower=warn,hyper=warn,sled=warn")
            }),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a pod's log (a pipe) would carry the escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = rampart_cli::Cli::parse();
    // Unlocked handles: a lock held here for the whole run would block every other thread that
    // logs (tracing writes to stderr from the runtime's workers).
    rampart_cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr())
}
