//! `rampart vulndb`: the local vulnerability store `image scan` matches against —
//! `import PATH` (offline: OSV JSON/YAML records, osv.dev's per-ecosystem zips, Alpine secdb,
//! the Debian tracker's JSON), `update` (downloads osv.dev's zips when the network allows) and
//! `status` (what it holds, how old it is, and whether that is stale).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rampart_scanner::store::{Status, Store};

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// The store directory (default: ~/.local/share/rampart/vulndb).
    #[arg(long = "store", value_name = "DIR", env = "RAMPART_VULNDB_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.store {
            Some(d) => Ok(d.clone()),
            None => default_store_dir().context("no --store given and HOME is not set"),
        }
    }
}

pub fn default_store_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("rampart/vulndb"))
}

#[derive(Debug, Subcommand)]
pub enum VulndbCommand {
    /// Import vulnerability data from files, zips or directories (works offline).
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Download osv.dev's per-ecosystem dumps and import them.
    Update {
        /// Ecosystems to download (osv.dev's names), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "PyPI,npm,Maven,Go,crates.io,Alpine,Debian"
        )]
        ecosystems: Vec<String>,
        /// Where the dumps are served: `{URL}/{ecosystem}/all.zip`.
        #[arg(
            long,
            default_value = "https://osv-vulnerabilities.storage.googleapis.com"
        )]
        source_url: String,
        /// Largest dump accepted, in MiB.
        #[arg(long, default_value_t = 2048)]
        max_mib: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// What the store holds and how old it is.
    Status {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(short = 'o', long, value_enum, default_value_t = crate::ListFormat::Table)]
        output: crate::ListFormat,
        /// Data last imported longer ago than this is stale.
        #[arg(long, default_value_t = 7)]
        max_age_days: u64,
    },
}

pub fn run(
    command: VulndbCommand,
    remote: &crate::remote::RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if let Some(central) = remote.connect()? {
        return run_remote(command, &central, out, err);
    }
    match command {
        VulndbCommand::Import { paths, store } => {
            let store = open(&store)?;
            for path in paths {
                import(&store, &path, &path.display().to_string(), out, err)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        VulndbCommand::Update {
            ecosystems,
            source_url,
            max_mib,
            store,
        } => {
            let store = open(&store)?;
            let scratch = tempfile::tempdir().context("creating a scratch directory")?;
            let agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(600)))
                .http_status_as_error(false)
                .build()
                .new_agent();
            let mut failed = 0;
            for eco in &ecosystems {
                let url = format!("{}/{}/all.zip", source_url.trim_end_matches('/'), eco);
                let file = scratch
                    .path()
                    .join(format!("{}.zip", eco.replace(['/', ' '], "_")));
                match download(&agent, &url, &file, max_mib << 20) {
                    Ok(bytes) => {
                        writeln!(err, "downloaded {url} ({bytes} bytes)")?;
                        import(&store, &file, &url, out, err)?;
                    }
                    Err(e) => {
                        failed += 1;
                        writeln!(err, "error: {url}: {e:#}")?;
                    }
                }
            }
            if failed == ecosystems.len() {
                bail!(
                    "no dump could be downloaded; import files with `rampart vulndb import PATH` to work offline"
                );
            }
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        VulndbCommand::Status {
            store,
            output,
            max_age_days,
        } => {
            let dir = store.dir()?;
            if !dir.exists() {
                bail!(
                    "no vulnerability store at {}; create it with `rampart vulndb import PATH` or `rampart vulndb update`",
                    dir.display()
                );
            }
            let status = open(&store)?.status()?;
            print_status(
                &status,
                &dir.display().to_string(),
                max_age_days,
                output,
                out,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a store holds, how old it is, and whether that is stale.
fn print_status(
    status: &Status,
    location: &str,
    max_age_days: u64,
    output: crate::ListFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let age = last_import_age_days(status);
    let stale = age.is_none_or(|a| a > max_age_days);
    match output {
        crate::ListFormat::Json => {
            let mut v = serde_json::to_value(status)?;
            v["last_import_age_days"] = serde_json::json!(age);
            v["stale"] = serde_json::json!(stale);
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        crate::ListFormat::Table => {
            writeln!(out, "Store:            {location}")?;
            writeln!(out, "OSV records:      {}", status.osv_records)?;
            writeln!(out, "Alpine secdb:     {} files", status.secdb_files)?;
            writeln!(
                out,
                "Debian tracker:   {} source packages",
                status.debian_packages
            )?;
            writeln!(
                out,
                "Newest record:    {}",
                status.newest_modified.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "Last import:      {}{}",
                age.map_or("never".to_string(), |a| format!("{a} days ago")),
                if stale {
                    " (STALE: run `rampart vulndb update` or import newer data)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(())
}

/// Files a directory upload carries (what the importer reads).
fn is_data_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
}

/// A directory as one zip (stored, not compressed: the upload is local or short-lived), so
/// Central imports it in one request.
fn zip_directory(dir: &Path) -> anyhow::Result<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if is_data_file(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files).with_context(|| format!("reading {}", dir.display()))?;
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .json, .yaml or .yml files", dir.display());
    }
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for f in &files {
        let name = f
            .strip_prefix(dir)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        writer
            .start_file(name, options)
            .context("building the upload")?;
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        writer.write_all(&bytes).context("building the upload")?;
    }
    Ok(writer.finish().context("building the upload")?.into_inner())
}

/// Sends one file (a directory as a zip) to Central's `/v1/vulndb/import`.
fn upload(central: &crate::remote::Remote, path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let (name, body) = if path.is_dir() {
        let name = path
            .file_name()
            .map_or("data".into(), |n| n.to_string_lossy().into_owned());
        (format!("{name}.zip"), zip_directory(path)?)
    } else {
        let name = path
            .file_name()
            .map_or("data".into(), |n| n.to_string_lossy().into_owned());
        let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        (name, body)
    };
    let answer = central.request(
        "POST",
        &format!("/v1/vulndb/import?name={}", crate::remote::encode(&name)),
        Some(("application/octet-stream", body)),
    )?;
    let n = |k: &str| answer[k].as_u64().unwrap_or(0);
    writeln!(
        out,
        "{}: {} OSV records, {} Alpine secdb files, {} Debian source packages imported into Central; {} deployments reassessed",
        path.display(),
        n("osvRecords"),
        n("secdbFiles"),
        n("debianPackages"),
        n("deploymentsAffected"),
    )?;
    for r in answer["rejected"].as_array().into_iter().flatten().take(5) {
        writeln!(out, "  skipped: {}", r.as_str().unwrap_or_default())?;
    }
    Ok(())
}

/// The commands against Central's store (`-e`).
fn run_remote(
    command: VulndbCommand,
    central: &crate::remote::Remote,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        VulndbCommand::Import { paths, store } => {
            if store.store.is_some() {
                bail!("with -e the data goes to Central's store: drop --store");
            }
            for path in paths {
                upload(central, &path, out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        VulndbCommand::Update { .. } => {
            writeln!(
                err,
                "note: Central does not download; run `rampart vulndb update` where the network allows and `rampart vulndb import -e FILE` the dumps"
            )?;
            bail!("vulndb update has no -e form")
        }
        VulndbCommand::Status {
            output,
            max_age_days,
            ..
        } => {
            let value = central.get("/v1/vulndb")?;
            let status: Status =
                serde_json::from_value(value).context("reading Central's answer")?;
            print_status(&status, "Central", max_age_days, output, out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn open(args: &StoreArgs) -> anyhow::Result<Store> {
    let dir = args.dir()?;
    Store::open(&dir).with_context(|| format!("opening the vulnerability store {}", dir.display()))
}

pub fn last_import_age_days(status: &Status) -> Option<u64> {
    let last = status.imports.iter().map(|i| i.at).max()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(now.saturating_sub(last) / 86_400)
}

fn import(
    store: &Store,
    path: &Path,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let stats = store
        .import(path)
        .with_context(|| format!("importing {name}"))?;
    writeln!(
        out,
        "{name}: {} OSV records, {} secdb files, {} Debian source packages ({} files read, {} skipped)",
        stats.osv_records,
        stats.secdb_files,
        stats.debian_packages,
        stats.files,
        stats.rejected.len()
    )?;
    for (file, reason) in stats.rejected.iter().take(5) {
        writeln!(err, "warning: {}: skipped: {reason}", file.display())?;
    }
    Ok(())
}

/// Downloads `url` to `file`, refusing more than `limit` bytes.
fn download(agent: &ureq::Agent, url: &str, file: &Path, limit: u64) -> anyhow::Result<u64> {
    let response = agent.get(url).call()?;
    let status = response.status();
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    let mut body = response.into_body();
    let mut reader = body.as_reader().take(limit + 1);
    let mut out = std::fs::File::create(file)?;
    let n = std::io::copy(&mut reader, &mut out)?;
    if n > limit {
        bail!("the dump is larger than {limit} bytes (--max-mib)");
    }
    Ok(n)
}
