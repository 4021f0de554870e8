//! Pulling an image from an OCI distribution registry (through the `oci-client` crate):
//! anonymous, basic or bearer-token access (the token exchange included), credentials from a
//! Docker `config.json` or a Kubernetes `dockerconfigjson` pull secret, manifest lists and OCI
//! indexes resolved to one platform, every blob's digest verified, sizes bounded before and
//! while downloading, and layers cached by digest so a second scan of an image — or of another
//! image sharing its base — downloads nothing again.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciManifest};
use oci_client::secrets::RegistryAuth;
use tokio::io::AsyncWrite;

use crate::image_config::ImageConfig;

/// The platform an image is resolved to when its reference names an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    /// `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(format!(
                "platform {s:?} is not OS/ARCH or OS/ARCH/VARIANT (e.g. linux/arm64/v8)"
            )),
        }
    }
}

/// How to reach a registry as one user.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token used as it is.
    Bearer(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Credentials per registry host, as a Docker `config.json` holds them.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_registry: BTreeMap<String, Credential>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the credentials file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("credentials for {registry}: {reason}")]
    Entry { registry: String, reason: String },
}

/// The host part of a `config.json` key: `https://index.docker.io/v1/` → `index.docker.io`.
fn registry_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

impl Credentials {
    /// Reads a Docker `config.json` (or a `.dockerconfigjson` pull secret's content). Entries
    /// give `auth` (base64 of `user:password`), or `username` and `password`, or a
    /// `registrytoken`; credential helpers are refused with a clear reason rather than ignored.
    pub fn from_docker_config(text: &str) -> Result<Credentials, CredentialsError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct File {
            auths: BTreeMap<String, Entry>,
            #[serde(rename = "credsStore")]
            creds_store: Option<String>,
            #[serde(rename = "credHelpers")]
            cred_helpers: BTreeMap<String, String>,
        }
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
            registrytoken: Option<String>,
            identitytoken: Option<String>,
        }
        let file: File = serde_json::from_str(text)?;
        let mut out = Credentials::default();
        for (key, e) in file.auths {
            let registry = registry_key(&key);
            let fail = |reason: &str| CredentialsError::Entry {
                registry: registry.clone(),
                reason: reason.to_string(),
            };
            let credential = if let Some(token) = e.registrytoken {
                Credential::Bearer(token)
            } else if let (Some(username), Some(password)) = (e.username.clone(), e.password) {
                Credential::Basic { username, password }
            } else if let Some(auth) = e.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| fail("`auth` is not base64"))?;
                let text =
                    String::from_utf8(decoded).map_err(|_| fail("`auth` is not UTF-8 text"))?;
                let (username, password) = text
                    .split_once(':')
                    .ok_or_else(|| fail("`auth` is not user:password"))?;
                Credential::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else if e.identitytoken.is_some() {
                return Err(fail(
                    "identity tokens (OAuth2 refresh tokens) are not supported; log in with a \
                     password or a registry token",
                ));
            } else {
                continue;
            };
            out.by_registry.insert(registry, credential);
        }
        if out.by_registry.is_empty()
            && let Some(helper) = file
                .creds_store
                .or_else(|| file.cred_helpers.into_values().next())
        {
            return Err(CredentialsError::Entry {
                registry: "*".into(),
                reason: format!(
                    "credentials are kept by the docker-credential-{helper} helper, which \
                     Rampart does not run; give them with --username/--password or a \
                     config.json that holds them"
                ),
            });
        }
        Ok(out)
    }

    pub fn insert(&mut self, registry: &str, credential: Credential) {
        self.by_registry.insert(registry_key(registry), credential);
    }

    /// Adds every entry of `other` (its entries win).
    pub fn merge(&mut self, other: Credentials) {
        self.by_registry.extend(other.by_registry);
    }

    /// The credential for a registry host (`localhost:5000`, `index.docker.io`).
    pub fn for_registry(&self, registry: &str) -> Credential {
        self.by_registry
            .get(&registry_key(registry))
            .cloned()
            .unwrap_or(Credential::Anonymous)
    }
}

/// Bounds on what one pull may download.
#[derive(Debug, Clone, Copy)]
pub struct PullLimits {
    pub config_bytes: u64,
    /// Compressed bytes of one layer.
    pub layer_bytes: u64,
    /// Compressed bytes of all layers.
    pub image_bytes: u64,
    pub layers: usize,
}

impl Default for PullLimits {
    fn default() -> PullLimits {
        PullLimits {
            config_bytes: 8 << 20,
            layer_bytes: 8 << 30,
            image_bytes: 32 << 30,
            layers: 256,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries reached over plain HTTP (`localhost:5000`); every other one over HTTPS.
    pub insecure: Vec<String>,
    /// PEM certificates trusted besides the system's roots (a private registry's CA).
    pub extra_roots_pem: Vec<Vec<u8>>,
    pub platform: Platform,
    pub limits: PullLimits,
    /// Where layers are kept by digest; `None` keeps them in the pull's own directory.
    pub cache_dir: Option<PathBuf>,
    pub timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            insecure: Vec::new(),
            extra_roots_pem: Vec::new(),
            platform: Platform::default(),
            limits: PullLimits::default(),
            cache_dir: None,
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0:?} is not an image reference: {1}")]
    Reference(String, String),
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },
    #[error("{reference}: the index has no image for {platform} (it has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference}: {what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        reference: String,
        what: String,
        size: u64,
        limit: u64,
    },
    #[error("{reference}: {message}")]
    Unsupported { reference: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One layer blob, downloaded and verified.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub path: PathBuf,
    /// Whether it came from the cache rather than the registry.
    pub cached: bool,
}

/// An image pulled to local files.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as given, fully qualified (`localhost:5000/app:1.0`, `docker.io/library/alpine:latest`).
    pub reference: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    /// Digest of the image manifest scanned.
    pub digest: String,
    /// Digest of the index (manifest list) the reference named, when it named one.
    pub index_digest: Option<String>,
    pub platform: Platform,
    pub config_text: String,
    pub config: ImageConfig,
    pub layers: Vec<LayerBlob>,
}

const LAYER_TYPES: [&str; 6] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Writes to `inner` and fails once more than `limit` bytes came.
struct Bounded<W> {
    inner: W,
    written: u64,
    limit: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Bounded<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.written + buf.len() as u64 > self.limit {
            return Poll::Ready(Err(std::io::Error::other("blob over its size limit")));
        }
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            this.written += *n as u64;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn auth_of(credential: Credential) -> RegistryAuth {
    match credential {
        Credential::Anonymous => RegistryAuth::Anonymous,
        Credential::Basic { username, password } => RegistryAuth::Basic(username, password),
        Credential::Bearer(token) => RegistryAuth::Bearer(token),
    }
}

/// The file a blob is kept in under `dir`: `dir/sha256/<hex>`; `None` for a digest that is not
/// `algorithm:hex`, so a hostile digest cannot name a path.
fn blob_path(dir: &Path, digest: &str) -> Option<PathBuf> {
    let (algorithm, hex) = digest.split_once(':')?;
    let ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    };
    (ok(algorithm, b"+._-") && ok(hex, b"") && hex.len() >= 32)
        .then(|| dir.join(algorithm).join(hex))
}

fn platform_matches(wanted: &Platform, os: &str, arch: &str, variant: Option<&str>) -> bool {
    if wanted.os != os || wanted.architecture != arch {
        return false;
    }
    match (&wanted.variant, variant) {
        (None, _) => true,
        (Some(w), Some(v)) => w == v,
        // arm64 images often leave out their (only) variant, v8.
        (Some(w), None) => arch == "arm64" && w == "v8",
    }
}

/// The index entry for `platform`: an exact variant first, then any (attestations, whose
/// platform is `unknown/unknown`, never match).
fn choose(index: &OciImageIndex, platform: &Platform) -> Result<String, String> {
    let mut candidates: Vec<(u8, &str)> = Vec::new();
    let mut available = Vec::new();
    for entry in &index.manifests {
        let Some(p) = &entry.platform else { continue };
        let (os, arch) = (p.os.to_string(), p.architecture.to_string());
        let variant = p.variant.as_deref();
        available.push(match variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
        if platform_matches(platform, &os, &arch, variant) {
            let rank = u8::from(platform.variant.as_deref() != variant);
            candidates.push((rank, &entry.digest));
        }
    }
    candidates.sort();
    candidates
        .first()
        .map(|(_, d)| d.to_string())
        .ok_or_else(|| {
            available.retain(|a| a != "unknown/unknown");
            available.join(", ")
        })
}

/// Pulls `reference` to local files under `work` (layers to `options.cache_dir` when set).
pub async fn pull(
    reference: &str,
    credentials: &Credentials,
    options: &PullOptions,
    work: &Path,
) -> Result<Pulled, PullError> {
    let parsed = Reference::try_from(reference)
        .map_err(|e| PullError::Reference(reference.to_string(), e.to_string()))?;
    let whole = parsed.whole();
    let registry_err = |e: oci_client::errors::OciDistributionError| PullError::Registry {
        reference: whole.clone(),
        message: e.to_string(),
    };
    let mut config = ClientConfig {
        protocol: if options.insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(options.insecure.clone())
        },
        read_timeout: Some(options.timeout),
        connect_timeout: Some(options.timeout.min(Duration::from_secs(15))),
        platform_resolver: None,
        user_agent: concat!("rampart/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    for pem in &options.extra_roots_pem {
        config
            .extra_root_certificates
            .push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: pem.clone(),
            });
    }
    // The HTTP client needs a process-wide rustls provider; `main` installs ring first, and a
    // library caller that did not gets the same rather than a panic.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = oci_client::Client::new(config);
    let auth = auth_of(credentials.for_registry(parsed.resolve_registry()));

    let (manifest, digest) = client
        .pull_manifest(&parsed, &auth)
        .await
        .map_err(registry_err)?;
    let (manifest, digest, index_digest) = match manifest {
        OciManifest::Image(m) => (m, digest, None),
        OciManifest::ImageIndex(index) => {
            let chosen =
                choose(&index, &options.platform).map_err(|available| PullError::NoPlatform {
                    reference: whole.clone(),
                    platform: options.platform.to_string(),
                    available,
                })?;
            let by_digest = Reference::with_digest(
                parsed.registry().to_string(),
                parsed.repository().to_string(),
                chosen,
            );
            match client
                .pull_manifest(&by_digest, &auth)
                .await
                .map_err(registry_err)?
            {
                (OciManifest::Image(m), d) => (m, d, Some(digest)),
                (OciManifest::ImageIndex(_), _) => {
                    return Err(PullError::Unsupported {
                        reference: whole,
                        message: "the index points to another index".into(),
                    });
                }
            }
        }
    };

    let limits = &options.limits;
    let too_large = |what: String, size: u64, limit: u64| PullError::TooLarge {
        reference: whole.clone(),
        what,
        size,
        limit,
    };
    let config_size = u64::try_from(manifest.config.size).unwrap_or(u64::MAX);
    if config_size > limits.config_bytes {
        return Err(too_large(
            "the image config".into(),
            config_size,
            limits.config_bytes,
        ));
    }
    let mut config_bytes = Vec::new();
    client
        .pull_blob(
            &parsed,
            &manifest.config,
            Bounded {
                inner: &mut config_bytes,
                written: 0,
                limit: limits.config_bytes,
            },
        )
        .await
        .map_err(registry_err)?;
    let config_text = String::from_utf8(config_bytes).map_err(|_| PullError::Unsupported {
        reference: whole.clone(),
        message: "the image config is not UTF-8 JSON".into(),
    })?;
    let image_config =
        ImageConfig::from_json(&config_text).map_err(|e| PullError::Unsupported {
            reference: whole.clone(),
            message: format!("the image config is not an image config: {e}"),
        })?;

    if manifest.layers.len() > limits.layers {
        return Err(too_large(
            "the layer count".into(),
            manifest.layers.len() as u64,
            limits.layers as u64,
        ));
    }
    let total: u64 = manifest
        .layers
        .iter()
        .map(|l| u64::try_from(l.size).unwrap_or(u64::MAX))
        .fold(0u64, u64::saturating_add);
    if total > limits.image_bytes {
        return Err(too_large(
            "the image (all layers)".into(),
            total,
            limits.image_bytes,
        ));
    }
    let blob_dir = options
        .cache_dir
        .clone()
        .unwrap_or_else(|| work.join("blobs"));
    let mut layers = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        layers.push(
            fetch_layer(&client, &parsed, layer, &blob_dir, limits)
                .await
                .map_err(|e| match e {
                    Fetch::Pull(e) => registry_err(e),
                    Fetch::Other(e) => e,
                    Fetch::TooLarge(size) => {
                        too_large(format!("layer {}", layer.digest), size, limits.layer_bytes)
                    }
                    Fetch::Unsupported(message) => PullError::Unsupported {
                        reference: whole.clone(),
                        message,
                    },
                })?,
        );
    }
    Ok(Pulled {
        reference: whole.clone(),
        registry: parsed.registry().to_string(),
        repository: parsed.repository().to_string(),
        tag: parsed.tag().map(str::to_string),
        digest,
        index_digest,
        platform: Platform {
            os: image_config.os.clone(),
            architecture: image_config.architecture.clone(),
            variant: image_config.variant.clone(),
        },
        config_text,
        config: image_config,
        layers,
    })
}

enum Fetch {
    Pull(oci_client::errors::OciDistributionError),
    TooLarge(u64),
    Unsupported(String),
    Other(PullError),
}

async fn fetch_layer(
    client: &oci_client::Client,
    reference: &Reference,
    layer: &OciDescriptor,
    dir: &Path,
    limits: &PullLimits,
) -> Result<LayerBlob, Fetch> {
    if !LAYER_TYPES.contains(&layer.media_type.as_str()) {
        return Err(Fetch::Unsupported(format!(
            "layer {} has media type {:?}, which is not a container filesystem layer",
            layer.digest, layer.media_type
        )));
    }
    let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
    if size > limits.layer_bytes {
        return Err(Fetch::TooLarge(size));
    }
    let path = blob_path(dir, &layer.digest).ok_or_else(|| {
        Fetch::Unsupported(format!(
            "layer digest {:?} is not algorithm:hex",
            layer.digest
        ))
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Fetch::Other(PullError::Io { path, source })
    };
    if let Ok(meta) = tokio::fs::metadata(&path).await
        && meta.len() == size
    {
        return Ok(LayerBlob {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            size,
            path,
            cached: true,
        });
    }
    let parent = path.parent().unwrap_or(dir).to_path_buf();
    tokio::fs::create_dir_all(&parent)
        .await
        .map_err(io(&parent))?;
    // Downloaded beside its final name, moved there only once its digest checked out.
    let partial = parent.join(format!(
        ".partial-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("blob")
    ));
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(io(&partial))?;
    let result = client
        .pull_blob(
            reference,
            layer,
            Bounded {
                inner: file,
                written: 0,
                limit: size.min(limits.layer_bytes),
            },
        )
        .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(Fetch::Pull(e));
    }
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(io(&path))?;
    Ok(LayerBlob {
        digest: layer.digest.clone(),
        media_type: layer.media_type.clone(),
        size,
        path,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_entries() {
        let json = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
            "localhost:5000":{"username":"u","password":"p:w"},
            "ghcr.io":{"registrytoken":"tok"},
            "empty.example":{}
        }}"#;
        let c = Credentials::from_docker_config(json).expect("config");
        assert_eq!(
            c.for_registry("index.docker.io"),
            Credential::Basic {
                username: "user".into(),
                password: "pass".into()
            }
        );
        assert_eq!(
            c.for_registry("docker.io"),
            c.for_registry("index.docker.io")
        );
        assert_eq!(
            c.for_registry("LOCALHOST:5000"),
            Credential::Basic {
                username: "u".into(),
                password: "p:w".into()
            }
        );
        assert_eq!(c.for_registry("ghcr.io"), Credential::Bearer("tok".into()));
        assert_eq!(c.for_registry("empty.example"), Credential::Anonymous);
        assert_eq!(c.for_registry("quay.io"), Credential::Anonymous);
        // Secrets never reach a debug print.
        assert!(!format!("{:?}", c).contains("pass"));
    }

    #[test]
    fn docker_config_errors_name_the_registry() {
        let bad = Credentials::from_docker_config(r#"{"auths":{"r.example":{"auth":"%%%"}}}"#)
            .expect_err("bad base64");
        assert!(bad.to_string().contains("r.example"), "{bad}");
        let helper =
            Credentials::from_docker_config(r#"{"credsStore":"desktop"}"#).expect_err("helper");
        assert!(
            helper.to_string().contains("docker-credential-desktop"),
            "{helper}"
        );
        assert!(Credentials::from_docker_config("{").is_err());
    }

    #[test]
    fn platforms_parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().expect("platform");
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert!(platform_matches(&p, "linux", "arm64", None));
        assert!(!platform_matches(&p, "linux", "amd64", None));
        let arm: Platform = "linux/arm/v7".parse().expect("platform");
        assert!(!platform_matches(&arm, "linux", "arm", Some("v6")));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
    }

    #[test]
    fn blob_paths_cannot_escape() {
        let dir = Path::new("/cache");
        let hex = "a".repeat(64);
        assert_eq!(
            blob_path(dir, &format!("sha256:{hex}")),
            Some(PathBuf::from(format!("/cache/sha256/{hex}")))
        );
        assert_eq!(blob_path(dir, "sha256:../../etc/passwd"), None);
        assert_eq!(blob_path(dir, &format!("../x:{hex}")), None);
        assert_eq!(blob_path(dir, "sha256"), None);
    }
}
