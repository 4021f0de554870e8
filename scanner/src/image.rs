//! One image scanned end to end: pulled from its registry ([`registry`]), its layers applied in
//! order ([`layers`]), its packages read ([`analyze`]) and matched ([`report`]), with the facts
//! of its config (user, labels, ports, age, Dockerfile lines) that image policies read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::analyze::{self, Inventory};
use crate::image_config::DockerfileLine;
use crate::layers::{Compression, Filesystem, LayerError, Limits};
use crate::registry::{self, Credentials, PullError, PullOptions, Pulled};
use crate::report::{ComponentReport, Matcher, Summary};
use crate::vulndb::VulnDb;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("{reference}: {source}")]
    Layer {
        reference: String,
        #[source]
        source: LayerError,
    },
    #[error("{reference}: {message}")]
    Image { reference: String, message: String },
}

/// What the scanner knows of the data it matched with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DbInfo {
    pub osv_records: usize,
    /// Alpine branches with a secdb loaded.
    pub alpine_branches: Vec<String>,
    pub debian_packages: usize,
    /// Newest `modified` among the OSV records: how fresh the data is.
    pub newest_modified: Option<String>,
}

impl DbInfo {
    pub fn of(db: &VulnDb) -> DbInfo {
        DbInfo {
            osv_records: db.osv.len(),
            alpine_branches: db.secdb.keys().cloned().collect(),
            debian_packages: db.debian.len(),
            newest_modified: db.newest_modified.clone(),
        }
    }
}

/// An image's scan: what it is, what it holds, what affects it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageScan {
    pub reference: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: String,
    pub index_digest: Option<String>,
    pub platform: String,
    /// `PRETTY_NAME` of its os-release (`Debian GNU/Linux 12 (bookworm)`), when it has one.
    pub os: Option<String>,
    pub os_id: Option<String>,
    pub os_version: Option<String>,
    pub created: Option<String>,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub dockerfile: Vec<DockerfileLine>,
    pub layers: usize,
    /// Compressed bytes of the layers, and how many came from the cache.
    pub layer_bytes: u64,
    pub cached_layers: usize,
    pub components: Vec<ComponentReport>,
    pub summary: Summary,
    pub notes: Vec<String>,
    pub db: DbInfo,
}

/// Applies a pulled image's layers in order and reads what it holds (blocking: file reads and
/// decompression).
pub fn analyze_pulled(pulled: &Pulled, limits: &Limits) -> Result<(Inventory, usize), ScanError> {
    let diff_ids = &pulled.config.rootfs.diff_ids;
    if !diff_ids.is_empty() && diff_ids.len() != pulled.layers.len() {
        return Err(ScanError::Image {
            reference: pulled.reference.clone(),
            message: format!(
                "the manifest has {} layers but the config lists {} diff_ids",
                pulled.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut fs = Filesystem::new();
    for (i, layer) in pulled.layers.iter().enumerate() {
        let layer_err = |source| ScanError::Layer {
            reference: pulled.reference.clone(),
            source,
        };
        let read_err = |e| {
            layer_err(LayerError::Read {
                layer: i,
                source: e,
            })
        };
        let mut file = File::open(&layer.path).map_err(read_err)?;
        let compression = match Compression::from_media_type(&layer.media_type) {
            Some(c) => c,
            None => {
                let mut head = Vec::with_capacity(4);
                (&mut file)
                    .take(4)
                    .read_to_end(&mut head)
                    .map_err(read_err)?;
                file.seek(SeekFrom::Start(0)).map_err(read_err)?;
                Compression::sniff(&head)
            }
        };
        let reader = BufReader::with_capacity(256 << 10, file);
        fs.apply(
            reader,
            compression,
            diff_ids.get(i).map(String::as_str),
            &analyze::Analyzers,
            limits,
        )
        .map_err(layer_err)?;
    }
    let refused = fs.refused_paths;
    Ok((analyze::inventory(&fs), refused))
}

/// What an image is, apart from what affects it: everything a scan reads from the registry and
/// the layers. Central keeps this per digest and matches it again whenever the vulnerability
/// data changes, without pulling the image again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageFacts {
    pub reference: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: String,
    pub index_digest: Option<String>,
    pub platform: String,
    pub created: Option<String>,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub dockerfile: Vec<DockerfileLine>,
    pub layers: usize,
    pub layer_bytes: u64,
    pub cached_layers: usize,
    /// Layer entries skipped because their paths leave the image root.
    pub refused_paths: usize,
    pub inventory: Inventory,
}

/// Reads a pulled image's facts and packages (blocking).
pub fn facts_of_pulled(pulled: &Pulled, limits: &Limits) -> Result<ImageFacts, ScanError> {
    let (inventory, refused) = analyze_pulled(pulled, limits)?;
    let config = &pulled.config;
    Ok(ImageFacts {
        reference: pulled.reference.clone(),
        registry: pulled.registry.clone(),
        repository: pulled.repository.clone(),
        tag: pulled.tag.clone(),
        digest: pulled.digest.clone(),
        index_digest: pulled.index_digest.clone(),
        platform: pulled.platform.to_string(),
        created: config.created.clone(),
        user: config.config.user.clone(),
        labels: config.labels(),
        exposed_ports: config
            .exposed_ports()
            .into_iter()
            .map(|(p, proto)| format!("{p}/{proto}"))
            .collect(),
        dockerfile: config.dockerfile(),
        layers: pulled.layers.len(),
        layer_bytes: pulled.layers.iter().map(|l| l.size).sum(),
        cached_layers: pulled.layers.iter().filter(|l| l.cached).count(),
        refused_paths: refused,
        inventory,
    })
}

/// The scan of an image's facts, matched with `matcher`.
pub fn assemble(facts: &ImageFacts, matcher: &Matcher<'_>) -> ImageScan {
    let inventory = &facts.inventory;
    let matched = matcher.match_inventory(inventory);
    let mut notes = inventory.notes.clone();
    if facts.refused_paths > 0 {
        notes.push(format!(
            "{} layer entries were skipped because their paths leave the image root or are not UTF-8",
            facts.refused_paths
        ));
    }
    if inventory.os.is_none() {
        notes.push("no /etc/os-release: the distribution is unknown".into());
    }
    notes.extend(matched.notes);
    let os = inventory.os.as_ref();
    ImageScan {
        reference: facts.reference.clone(),
        registry: facts.registry.clone(),
        repository: facts.repository.clone(),
        tag: facts.tag.clone(),
        digest: facts.digest.clone(),
        index_digest: facts.index_digest.clone(),
        platform: facts.platform.clone(),
        os: os.map(|o| o.pretty_name.clone()).filter(|p| !p.is_empty()),
        os_id: os.map(|o| o.id.clone()),
        os_version: os.map(|o| o.version_id.clone()),
        created: facts.created.clone(),
        user: facts.user.clone(),
        labels: facts.labels.clone(),
        exposed_ports: facts.exposed_ports.clone(),
        dockerfile: facts.dockerfile.clone(),
        layers: facts.layers,
        layer_bytes: facts.layer_bytes,
        cached_layers: facts.cached_layers,
        components: matched.components,
        summary: matched.summary,
        notes,
        db: DbInfo::of(matcher.db()),
    }
}

/// The scan of a pulled image, matched against `db`.
pub fn scan_pulled(pulled: &Pulled, db: &VulnDb, limits: &Limits) -> Result<ImageScan, ScanError> {
    Ok(assemble(
        &facts_of_pulled(pulled, limits)?,
        &Matcher::new(db),
    ))
}

/// Pulls and scans `reference`; `work` holds the layers when no cache is configured.
pub async fn scan(
    reference: &str,
    credentials: &Credentials,
    options: &PullOptions,
    db: &VulnDb,
    work: &Path,
    limits: &Limits,
) -> Result<ImageScan, ScanError> {
    let pulled = registry::pull(reference, credentials, options, work).await?;
    scan_pulled(&pulled, db, limits)
}

fn unix(rfc3339: Option<&str>) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339?, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

impl ImageScan {
    /// The scan as the policy engine's image criteria read it, scanned at `scan_time` (unix
    /// seconds). Severities map to ACS's ratings (HIGH is IMPORTANT, MEDIUM is MODERATE).
    pub fn image_data(&self, scan_time: i64) -> rampart_policy::image_data::ImageData {
        use crate::report::Level;
        use rampart_policy::image_data::*;
        let os = match (self.os_id.as_deref(), self.os_version.as_deref()) {
            (Some("alpine"), Some(v)) => {
                let mut parts = v.split('.');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) => format!("alpine:v{a}.{b}"),
                    _ => format!("alpine:{v}"),
                }
            }
            (Some(id), Some(v)) if !v.is_empty() => format!("{id}:{v}"),
            (Some(id), _) => id.to_string(),
            _ => "unknown".to_string(),
        };
        ImageData {
            scanned: true,
            scan_time: Some(scan_time),
            created: unix(self.created.as_deref()),
            os,
            user: self.user.clone(),
            labels: self.labels.clone(),
            dockerfile: self
                .dockerfile
                .iter()
                .map(|l| DockerfileInstruction {
                    instruction: l.instruction.clone(),
                    value: l.value.clone(),
                })
                .collect(),
            components: self
                .components
                .iter()
                .map(|c| ImageComponent {
                    name: c.name.clone(),
                    version: c.version.clone(),
                    vulns: c
                        .vulnerabilities
                        .iter()
                        .map(|v| ImageVuln {
                            cve: v.id.clone(),
                            cvss: v.cvss,
                            severity: match v.severity {
                                Level::Critical => VulnSeverity::Critical,
                                Level::High => VulnSeverity::Important,
                                Level::Medium => VulnSeverity::Moderate,
                                Level::Low => VulnSeverity::Low,
                                Level::Unknown => VulnSeverity::Unknown,
                            },
                            fixed_by: v.fixed_by.clone(),
                            published: unix(v.published.as_deref()),
                            fix_available: None,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A policy an image violates at build time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildViolation {
    pub policy: String,
    pub severity: String,
    /// The policy enforces at build time (`FAIL_BUILD_ENFORCEMENT`).
    pub breaks_build: bool,
    pub violations: Vec<String>,
    pub remediation: String,
}

/// An image checked against build-time policies (`rampart image check`, Central's
/// `/v1/detect/build`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildCheck {
    pub image: String,
    pub digest: String,
    /// Breaking violations first, then by policy name.
    pub violated: Vec<BuildViolation>,
    /// How many violated policies break the build.
    pub breaking: usize,
    /// Policies that could not decide, with what they lack.
    #[serde(default)]
    pub not_evaluable: Vec<String>,
}

/// The image as a one-container workload the engine evaluates (a Pod in `default`, the
/// container named after the repository), carrying the scan as its image data.
pub fn as_deployment(scan: &ImageScan, now: i64) -> Option<rampart_policy::Deployment> {
    let name = scan
        .repository
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("image")
        .to_string();
    let object = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "image-check"},
        "spec": {"containers": [{"name": name, "image": scan.reference}]}
    });
    let mut deployment = rampart_policy::detect::Detector::normalize(object, "default")?;
    let data = std::sync::Arc::new(scan.image_data(now));
    for c in &mut deployment.containers {
        c.image_data = Some(data.clone());
    }
    Some(deployment)
}

/// Evaluates `policies` (the caller picks the enabled build-time ones) against the scan.
pub fn build_check(
    scan: &ImageScan,
    policies: &[&rampart_policy::compile::CompiledPolicy],
    now: time::OffsetDateTime,
) -> BuildCheck {
    use rampart_policy::{EvalContext, Outcome, evaluate};
    let mut violated = Vec::new();
    let mut not_evaluable = Vec::new();
    let ctx = EvalContext {
        now,
        ..EvalContext::default()
    };
    match as_deployment(scan, now.unix_timestamp()) {
        Some(deployment) => {
            for p in policies {
                match evaluate(p, &deployment, &ctx) {
                    Outcome::Violated(messages) => violated.push(BuildViolation {
                        policy: p.policy.name.clone(),
                        severity: p.policy.severity.short().to_string(),
                        breaks_build: p.policy.enforces_at_build(),
                        violations: messages,
                        remediation: p.policy.remediation.clone(),
                    }),
                    Outcome::NotEvaluable(needs) => not_evaluable.push(format!(
                        "{}: not evaluable without {}",
                        p.policy.name,
                        needs.join(", ")
                    )),
                    _ => {}
                }
            }
        }
        // Never for a reference that pulled; said rather than passed silently.
        None => not_evaluable.push(format!(
            "{}: the image cannot be evaluated as a container",
            scan.reference
        )),
    }
    violated.sort_by(|a, b| {
        b.breaks_build
            .cmp(&a.breaks_build)
            .then_with(|| a.policy.cmp(&b.policy))
    });
    BuildCheck {
        image: scan.reference.clone(),
        digest: scan.digest.clone(),
        breaking: violated.iter().filter(|v| v.breaks_build).count(),
        violated,
        not_evaluable,
    }
}
