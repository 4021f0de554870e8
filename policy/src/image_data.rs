//! What the scanner knows of a container's image, as the image criteria read it: its OS, user,
//! labels, age, Dockerfile lines, and its components with their vulnerabilities. A container
//! without it (`Container::image_data` is `None`) makes those criteria unknown — "not
//! evaluable", never passing. An image known to be unscanned has `scanned: false` (the
//! default, [`ImageData::unscanned`]): only the Unscanned Image criterion reads it, the others
//! stay unknown, as nothing else of the image is known.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// ACS's vulnerability severity ratings, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum VulnSeverity {
    #[default]
    Unknown,
    Low,
    Moderate,
    Important,
    Critical,
}

impl VulnSeverity {
    /// ACS's names (`IMPORTANT`), and the CVSS band names (`HIGH`, `MEDIUM`) as their equals.
    pub fn parse(s: &str) -> Option<VulnSeverity> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => VulnSeverity::Unknown,
            "LOW" => VulnSeverity::Low,
            "MODERATE" | "MEDIUM" => VulnSeverity::Moderate,
            "IMPORTANT" | "HIGH" => VulnSeverity::Important,
            "CRITICAL" => VulnSeverity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VulnSeverity::Unknown => "UNKNOWN",
            VulnSeverity::Low => "LOW",
            VulnSeverity::Moderate => "MODERATE",
            VulnSeverity::Important => "IMPORTANT",
            VulnSeverity::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageVuln {
    pub cve: String,
    pub cvss: Option<f64>,
    pub severity: VulnSeverity,
    pub fixed_by: Option<String>,
    /// Unix seconds.
    pub published: Option<i64>,
    /// When a fix became available (unix seconds), when known.
    pub fix_available: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageComponent {
    pub name: String,
    pub version: String,
    pub vulns: Vec<ImageVuln>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerfileInstruction {
    pub instruction: String,
    pub value: String,
}

/// Also what Central sends its Sensors' admission controllers, as JSON (`ImageFindings`):
/// fields it leaves out, one of another version's say, read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageData {
    /// Whether the image was scanned (components and vulnerabilities are known).
    pub scanned: bool,
    /// Unix seconds of the scan.
    pub scan_time: Option<i64>,
    /// Unix seconds of the image's creation (its config's `created`).
    pub created: Option<i64>,
    /// `debian:12`, `alpine:v3.18`.
    pub os: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub dockerfile: Vec<DockerfileInstruction>,
    pub components: Vec<ImageComponent>,
}

impl ImageData {
    /// An image known to have no scan: for the Unscanned Image criterion alone.
    pub fn unscanned() -> ImageData {
        ImageData::default()
    }

    /// [`ImageData::unscanned`], one shared value for every container that has one.
    pub fn unscanned_shared() -> std::sync::Arc<ImageData> {
        static UNSCANNED: std::sync::LazyLock<std::sync::Arc<ImageData>> =
            std::sync::LazyLock::new(|| std::sync::Arc::new(ImageData::unscanned()));
        std::sync::Arc::clone(&UNSCANNED)
    }
}
