//! `rampart image scan`: pull an image from its registry, list what it holds and the
//! vulnerabilities that affect it, as a table, JSON, CSV, SARIF or a CycloneDX SBOM with its
//! vulnerabilities; `--fail` makes the exit code gate a CI job.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rampart_scanner::image::{self, ImageScan};
use rampart_scanner::layers::Limits;
use rampart_scanner::registry::{Credential, Credentials, Platform, PullOptions, Reference};
use rampart_scanner::report::{Level, Vulnerability};
use rampart_scanner::vulndb::VulnDb;
use serde_json::json;

use crate::output::simple_table;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Scan an image in a registry for vulnerable packages.
    Scan(ScanArgs),
    /// Check an image against build-time policies; exit 1 when a policy with build
    /// enforcement (FAIL_BUILD) is violated.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Csv,
    Sarif,
    Cyclonedx,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[arg(short = 'o', long, value_enum, default_value_t = ScanFormat::Table)]
    pub output: ScanFormat,
    /// Only these severities (comma-separated: critical, high/important, medium/moderate,
    /// low, unknown); also what --fail counts.
    #[arg(long, value_delimiter = ',', value_parser = parse_level)]
    pub severity: Vec<Level>,
    /// Only vulnerabilities with a fixed-by version.
    #[arg(long)]
    pub fixable: bool,
    /// Exit 1 when any vulnerability (after --severity and --fixable) is found.
    #[arg(long)]
    pub fail: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub policies: crate::PolicySourceArgs,
    /// Only policies in these categories (comma-separated, case-insensitive).
    #[arg(short = 'c', long, value_delimiter = ',')]
    pub categories: Vec<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = crate::ListFormat::Table)]
    pub output: crate::ListFormat,
}

/// Which image, from where, matched against which data.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Image reference (`registry/repo:tag` or `…@sha256:…`; Docker Hub when no registry).
    #[arg(short = 'i', long = "image", value_name = "REF")]
    pub image: String,
    /// Vulnerability data files to match against instead of the store: OSV records (JSON/YAML,
    /// osv.dev zips), Alpine secdb files, the Debian tracker's JSON; files or directories,
    /// repeatable.
    #[arg(
        long = "db",
        value_name = "PATH",
        env = "RAMPART_VULNDB",
        value_delimiter = ','
    )]
    pub db: Vec<PathBuf>,
    #[command(flatten)]
    pub store: crate::vulndb_cmd::StoreArgs,
    /// Platform to scan when the reference names a multi-platform index.
    #[arg(long, default_value = "linux/amd64", value_parser = parse_platform)]
    pub platform: Platform,
    /// Registries reached over plain HTTP (`localhost:5000`); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST", value_delimiter = ',')]
    pub insecure: Vec<String>,
    /// A PEM CA to trust for the registry, besides the system's.
    #[arg(long = "registry-ca", value_name = "PEM")]
    pub registry_ca: Option<PathBuf>,
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json when present).
    #[arg(long = "docker-config", value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Registry user (with --password or RAMPART_REGISTRY_PASSWORD); overrides config.json.
    #[arg(long, env = "RAMPART_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password (may start with `-`).
    #[arg(
        long,
        env = "RAMPART_REGISTRY_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub password: Option<String>,
    /// Where layers are cached by digest (default: ~/.cache/rampart/blobs).
    #[arg(long = "cache-dir", value_name = "DIR", env = "RAMPART_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Download every layer afresh, keeping nothing.
    #[arg(long)]
    pub no_cache: bool,
    /// Seconds to wait on the registry per request.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Vulnerability data older than this many days is flagged as stale.
    #[arg(long, default_value_t = 7)]
    pub max_db_age_days: i64,
    /// With -e: have Central pull and analyze the image again instead of using its last scan.
    #[arg(long)]
    pub rescan: bool,
}

fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s)
        .ok_or_else(|| format!("'{s}' is not a severity (critical, high, medium, low, unknown)"))
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
}

pub fn run(
    command: ImageCommand,
    remote: &crate::remote::RemoteArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let central = remote.connect()?;
    match command {
        ImageCommand::Scan(args) => scan(args, central.as_ref(), out, err),
        ImageCommand::Check(args) => check(args, central.as_ref(), out, err),
    }
}

/// With `-e`, Central pulls, scans and matches with its own data; local data flags would be
/// silently ignored, so they are refused.
fn refuse_local_flags(args: &SourceArgs) -> anyhow::Result<()> {
    if !args.db.is_empty() {
        bail!(
            "with -e, Central matches with its own vulnerability data: drop --db (import with `rampart vulndb import -e ...`)"
        );
    }
    if args.username.is_some() || args.docker_config.is_some() {
        bail!(
            "with -e, Central pulls with its own registry credentials (`rampart central start --registry-config`): drop --username/--docker-config"
        );
    }
    Ok(())
}

/// Central's scan of the image (`-e`).
fn remote_scan(central: &crate::remote::Remote, args: &SourceArgs) -> anyhow::Result<ImageScan> {
    refuse_local_flags(args)?;
    let value = central.send_json(
        "POST",
        "/v1/images/scan",
        &json!({"image": args.image, "force": args.rescan}),
    )?;
    serde_json::from_value(value).context("reading Central's scan")
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn credentials(args: &SourceArgs) -> anyhow::Result<Credentials> {
    let path = args.docker_config.clone().or_else(|| {
        let p = std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| home().map(|h| h.join(".docker/config.json")))?;
        p.exists().then_some(p)
    });
    let mut creds = match &path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Credentials::from_docker_config(&text).with_context(|| p.display().to_string())?
        }
        None => Credentials::default(),
    };
    match (&args.username, &args.password) {
        (Some(username), Some(password)) => {
            let reference: Reference = args
                .image
                .parse()
                .map_err(|e| anyhow::anyhow!("{:?} is not an image reference: {e}", args.image))?;
            creds.insert(
                reference.resolve_registry(),
                Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
            );
        }
        (Some(_), None) => bail!("--username needs --password (or RAMPART_REGISTRY_PASSWORD)"),
        _ => {}
    }
    Ok(creds)
}

/// Pulls and scans the image the arguments name.
fn scan_image(args: &SourceArgs, err: &mut dyn Write) -> anyhow::Result<ImageScan> {
    let creds = credentials(args)?;
    let db = vulnerability_data(args, err)?;
    let mut extra_roots = Vec::new();
    if let Some(ca) = &args.registry_ca {
        extra_roots.push(std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?);
    }
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir
            .clone()
            .or_else(|| home().map(|h| h.join(".cache/rampart/blobs")))
    };
    let options = PullOptions {
        insecure: args.insecure.clone(),
        extra_roots_pem: extra_roots,
        platform: args.platform.clone(),
        cache_dir,
        timeout: Duration::from_secs(args.timeout.max(1)),
        ..PullOptions::default()
    };
    let work = tempfile::tempdir().context("creating a scratch directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    Ok(runtime.block_on(image::scan(
        &args.image,
        &creds,
        &options,
        &db,
        work.path(),
        &Limits::default(),
    ))?)
}

fn scan(
    args: ScanArgs,
    central: Option<&crate::remote::Remote>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut result = match central {
        Some(c) => remote_scan(c, &args.source)?,
        None => scan_image(&args.source, err)?,
    };
    filter(&mut result, &args.severity, args.fixable);
    let text = match args.output {
        ScanFormat::Table => table(&result),
        ScanFormat::Json => serde_json::to_string_pretty(&result)? + "\n",
        ScanFormat::Csv => csv_rows(&result)?,
        ScanFormat::Sarif => serde_json::to_string_pretty(&sarif(&result))? + "\n",
        ScanFormat::Cyclonedx => serde_json::to_string_pretty(&cyclonedx(&result))? + "\n",
    };
    out.write_all(text.as_bytes())?;
    if args.output != ScanFormat::Table {
        for note in &result.notes {
            writeln!(err, "note: {note}")?;
        }
    }
    let found = result
        .components
        .iter()
        .any(|c| !c.vulnerabilities.is_empty());
    Ok(if args.fail && found {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The data to match with: the `--db` files when given, else the store, else none (said so).
fn vulnerability_data(args: &SourceArgs, err: &mut dyn Write) -> anyhow::Result<VulnDb> {
    let stale = |age: i64, what: &str, err: &mut dyn Write| -> std::io::Result<()> {
        if age > args.max_db_age_days {
            writeln!(
                err,
                "warning: the vulnerability data is stale: {what} {age} days ago"
            )?;
        }
        Ok(())
    };
    if !args.db.is_empty() {
        let mut db = VulnDb::new();
        for path in &args.db {
            let stats = db
                .load_path(path)
                .with_context(|| format!("reading vulnerability data {}", path.display()))?;
            for (file, reason) in stats.rejected.iter().take(5) {
                writeln!(err, "warning: {}: skipped: {reason}", file.display())?;
            }
            if stats.rejected.len() > 5 {
                writeln!(
                    err,
                    "warning: {} more files skipped",
                    stats.rejected.len() - 5
                )?;
            }
        }
        if let Some(age) = db_age_days(db.newest_modified.as_deref()) {
            stale(age, "its newest record was modified", err)?;
        }
        return Ok(db);
    }
    let dir = args.store.dir()?;
    if dir.exists() {
        let store = crate::vulndb_cmd::open(&args.store)?;
        let status = store.status()?;
        if let Some(age) = crate::vulndb_cmd::last_import_age_days(&status) {
            stale(age as i64, "it was last imported", err)?;
        }
        return Ok(store.load()?);
    }
    writeln!(
        err,
        "warning: no vulnerability data (no --db, and no store at {}; run `rampart vulndb import PATH` or `rampart vulndb update`): packages are listed, nothing is matched",
        dir.display()
    )?;
    Ok(VulnDb::new())
}

fn db_age_days(newest: Option<&str>) -> Option<i64> {
    let newest =
        time::OffsetDateTime::parse(newest?, &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some((time::OffsetDateTime::now_utc() - newest).whole_days())
}

/// Keeps the vulnerabilities the user asked for and recounts.
fn filter(scan: &mut ImageScan, severities: &[Level], fixable: bool) {
    let keep = |v: &Vulnerability| {
        (severities.is_empty() || severities.contains(&v.severity))
            && (!fixable || v.fixed_by.is_some())
    };
    for c in &mut scan.components {
        c.vulnerabilities.retain(keep);
    }
    scan.summary = rampart_scanner::report::summarize(&scan.components);
}

fn table(scan: &ImageScan) -> String {
    let mut s = String::new();
    let digest = &scan.digest;
    s.push_str(&format!(
        "Image:      {} ({digest}, {})\n",
        scan.reference, scan.platform
    ));
    s.push_str(&format!(
        "OS:         {}\n",
        scan.os.as_deref().unwrap_or("unknown (no os-release)")
    ));
    s.push_str(&format!(
        "User:       {}\n",
        if scan.user.is_empty() {
            "root (not set)"
        } else {
            &scan.user
        }
    ));
    if let Some(created) = &scan.created {
        s.push_str(&format!("Created:    {created}\n"));
    }
    let sum = &scan.summary;
    let by: Vec<String> = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
        .iter()
        .map(|l| format!("{l} {}", sum.by_severity.get(*l).copied().unwrap_or(0)))
        .collect();
    s.push_str(&format!(
        "Components: {}; vulnerabilities: {} ({}); fixable: {}; top CVSS: {}\n\n",
        sum.components,
        sum.vulnerabilities,
        by.join(", "),
        sum.fixable,
        sum.top_cvss.map_or("-".to_string(), |c| format!("{c:.1}"))
    ));
    let mut rows: Vec<(Level, Vec<String>)> = Vec::new();
    for c in &scan.components {
        for v in &c.vulnerabilities {
            rows.push((
                v.severity,
                vec![
                    v.severity.as_str().to_string(),
                    v.id.clone(),
                    c.name.clone(),
                    c.version.clone(),
                    v.fixed_by.clone().unwrap_or_else(|| "-".into()),
                    v.cvss.map_or("-".into(), |c| format!("{c:.1}")),
                    c.ecosystem.to_string(),
                ],
            ));
        }
    }
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    if rows.is_empty() {
        s.push_str("No vulnerabilities found.\n");
    } else {
        let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
        s.push_str(&simple_table(
            &[
                "SEVERITY",
                "VULNERABILITY",
                "PACKAGE",
                "VERSION",
                "FIXED BY",
                "CVSS",
                "ECOSYSTEM",
            ],
            &rows,
        ));
    }
    if !scan.notes.is_empty() {
        s.push_str("\nNotes:\n");
        for n in &scan.notes {
            s.push_str(&format!("  - {n}\n"));
        }
    }
    s
}

fn csv_rows(scan: &ImageScan) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "image",
        "digest",
        "package",
        "version",
        "ecosystem",
        "path",
        "vulnerability",
        "severity",
        "cvss",
        "fixed_by",
        "aliases",
    ])?;
    for c in &scan.components {
        for v in &c.vulnerabilities {
            w.write_record([
                scan.reference.as_str(),
                &scan.digest,
                &c.name,
                &c.version,
                &c.ecosystem,
                &c.path,
                &v.id,
                v.severity.as_str(),
                &v.cvss.map(|c| format!("{c:.1}")).unwrap_or_default(),
                v.fixed_by.as_deref().unwrap_or_default(),
                &v.aliases.join(" "),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Critical | Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Unknown => "note",
    }
}

/// SARIF 2.1.0: one rule per vulnerability, one result per affected package.
fn sarif(scan: &ImageScan) -> serde_json::Value {
    let mut rules = std::collections::BTreeMap::new();
    let mut results = Vec::new();
    for c in &scan.components {
        for v in &c.vulnerabilities {
            rules.entry(v.id.clone()).or_insert_with(|| {
                json!({
                    "id": v.id,
                    "shortDescription": {"text": if v.summary.is_empty() { v.id.clone() } else { v.summary.clone() }},
                    "properties": {"security-severity": v.cvss.map(|c| format!("{c:.1}")), "aliases": v.aliases},
                })
            });
            let fix = v
                .fixed_by
                .as_ref()
                .map_or("no fixed version yet".to_string(), |f| {
                    format!("fixed in {f}")
                });
            results.push(json!({
                "ruleId": v.id,
                "level": sarif_level(v.severity),
                "message": {"text": format!("{} {} in {} is affected by {} ({}); {fix}", c.name, c.version, scan.reference, v.id, v.severity.as_str())},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": c.path}}}],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "rampart", "version": env!("CARGO_PKG_VERSION"),
                                "rules": rules.into_values().collect::<Vec<_>>()}},
            "results": results,
        }]
    })
}

/// Package URL of a component (`pkg:pypi/urllib3@1.26.4`, `pkg:deb/debian/libc6@2.36`).
fn purl(scan: &ImageScan, c: &rampart_scanner::report::ComponentReport) -> String {
    let distro = scan.os_id.clone().unwrap_or_default();
    match c.ecosystem.as_ref() {
        "Debian" => format!("pkg:deb/{distro}/{}@{}", c.name, c.version),
        "Alpine" => format!("pkg:apk/{distro}/{}@{}", c.name, c.version),
        "PyPI" => format!("pkg:pypi/{}@{}", c.name.to_ascii_lowercase(), c.version),
        "npm" => format!("pkg:npm/{}@{}", c.name.replace('@', "%40"), c.version),
        "RPM" => format!("pkg:rpm/{distro}/{}@{}", c.name, c.version),
        "Maven" => match c.name.split_once(':') {
            Some((group, artifact)) => format!("pkg:maven/{group}/{artifact}@{}", c.version),
            None => format!("pkg:maven/{}@{}", c.name, c.version),
        },
        "Go" => format!("pkg:golang/{}@{}", c.name, c.version),
        "crates.io" => format!("pkg:cargo/{}@{}", c.name, c.version),
        other => format!("pkg:generic/{}@{}?ecosystem={other}", c.name, c.version),
    }
}

/// A CycloneDX 1.5 SBOM of the image's components, with the vulnerabilities that affect them.
fn cyclonedx(scan: &ImageScan) -> serde_json::Value {
    let mut components = Vec::new();
    let mut vulns: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for c in &scan.components {
        let reference = purl(scan, c);
        components.push(json!({
            "type": "library", "bom-ref": reference, "name": c.name, "version": c.version,
            "purl": reference,
            "properties": [{"name": "rampart:path", "value": c.path}],
        }));
        for v in &c.vulnerabilities {
            let entry = vulns.entry(v.id.clone()).or_insert_with(|| {
                json!({
                    "id": v.id,
                    "source": {"name": v.source},
                    "ratings": [{"score": v.cvss, "severity": v.severity.as_str().to_ascii_lowercase(),
                                 "vector": v.vector}],
                    "description": v.summary,
                    "references": v.aliases.iter().map(|a| json!({"id": a})).collect::<Vec<_>>(),
                    "affects": [],
                })
            });
            if let Some(affects) = entry["affects"].as_array_mut() {
                affects.push(json!({"ref": reference}));
            }
        }
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": [{"vendor": "Rampart", "name": "rampart", "version": env!("CARGO_PKG_VERSION")}],
            "component": {"type": "container", "name": scan.reference, "version": scan.digest},
        },
        "components": components,
        "vulnerabilities": vulns.into_values().collect::<Vec<_>>(),
    })
}

fn check(
    args: CheckArgs,
    central: Option<&crate::remote::Remote>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    use rampart_policy::LifecycleStage;
    if let Some(central) = central {
        refuse_local_flags(&args.source)?;
        if !args.policies.policies.is_empty() || args.policies.replace_defaults {
            bail!("with -e, Central's policies are used: drop --policies/--replace-defaults");
        }
        let value = central.send_json(
            "POST",
            "/v1/detect/build",
            &json!({"image": args.source.image, "force": args.source.rescan,
                    "policyCategories": args.categories}),
        )?;
        let report: image::BuildCheck =
            serde_json::from_value(value).context("reading Central's check")?;
        for note in &report.not_evaluable {
            writeln!(err, "note: {note}")?;
        }
        return render_check(&report, args.output, out);
    }
    let policies = crate::policies::load(&args.policies)?;
    let selected: Vec<_> = policies
        .iter()
        .filter(|p| !p.policy.disabled && p.policy.has_stage(LifecycleStage::Build))
        .filter(|p| {
            args.categories.is_empty()
                || p.policy
                    .categories
                    .iter()
                    .any(|c| args.categories.iter().any(|w| w.eq_ignore_ascii_case(c)))
        })
        .collect();
    if selected.is_empty() {
        bail!("no enabled build-time policy is selected (see `rampart policy list`)");
    }
    let scan = scan_image(&args.source, err)?;
    let policies: Vec<&rampart_policy::compile::CompiledPolicy> = selected;
    let report = image::build_check(&scan, &policies, time::OffsetDateTime::now_utc());
    for note in &report.not_evaluable {
        writeln!(err, "note: {note}")?;
    }
    render_check(&report, args.output, out)
}

/// Prints a build-time check (local or Central's) and gives its exit code.
fn render_check(
    report: &image::BuildCheck,
    output: crate::ListFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let breaking = report.breaking;
    match output {
        crate::ListFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
        }
        crate::ListFormat::Table => {
            writeln!(out, "Image: {} ({})", report.image, report.digest)?;
            let results = &report.violated;
            if results.is_empty() {
                writeln!(out, "No build-time policy is violated.")?;
            } else {
                let rows: Vec<Vec<String>> = results
                    .iter()
                    .flat_map(|r| {
                        let breaks = if r.breaks_build { "yes" } else { "-" };
                        r.violations.iter().map(move |v| {
                            vec![
                                r.policy.clone(),
                                r.severity.clone(),
                                breaks.to_string(),
                                v.clone(),
                            ]
                        })
                    })
                    .collect();
                out.write_all(
                    simple_table(&["POLICY", "SEVERITY", "BREAKS BUILD", "VIOLATION"], &rows)
                        .as_bytes(),
                )?;
                writeln!(
                    out,
                    "{} policies violated, {breaking} of them break the build",
                    results.len()
                )?;
            }
        }
    }
    Ok(if breaking > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
