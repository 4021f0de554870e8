//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! started on a loopback port with its storage in a temp dir, and helpers to build gzipped tar
//! layers and push images to it with oci-client.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// `sha256:` and the hex digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::from("sha256:");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Where Debian's `docker-registry` package puts the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A `docker-registry serve` on a loopback port with its storage in a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry; with `users`, it asks for basic auth (htpasswd, bcrypt).
    pub fn start(users: &[(&str, &str)]) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's docker-registry (./scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("storage");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if !users.is_empty() {
            let htpasswd = dir.path().join("htpasswd");
            let lines: String = users
                .iter()
                .map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 5).expect("bcrypt")))
                .collect();
            std::fs::write(&htpasswd, lines).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rampart-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            storage,
            _dir: dir,
        }
    }

    /// An oci-client for pushing test images (plain HTTP to this registry).
    pub fn client(&self) -> Client {
        install_crypto();
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![self.host.clone()]),
            ..ClientConfig::default()
        })
    }
}

/// A gzipped tar layer of `(path, contents)`.
pub fn layer(files: &[(&str, Vec<u8>)]) -> ImageLayer {
    let with_modes: Vec<(&str, Vec<u8>, u32)> =
        files.iter().map(|(p, b)| (*p, b.clone(), 0o644)).collect();
    layer_with_modes(&with_modes)
}

/// A gzipped tar layer of `(path, contents, mode)`.
pub fn layer_with_modes(files: &[(&str, Vec<u8>, u32)]) -> ImageLayer {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, &body[..]).expect("append");
    }
    let tar = b.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let data = gz.finish().expect("gzip");
    LayerTar { tar, data }.into()
}

struct LayerTar {
    tar: Vec<u8>,
    data: Vec<u8>,
}

impl From<LayerTar> for ImageLayer {
    fn from(l: LayerTar) -> ImageLayer {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert("test.diff_id".to_string(), sha256(&l.tar));
        ImageLayer::new(
            l.data,
            "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            Some(annotations),
        )
    }
}

pub fn diff_id(layer: &ImageLayer) -> String {
    layer
        .annotations
        .as_ref()
        .and_then(|a| a.get("test.diff_id"))
        .cloned()
        .expect("diff id")
}

/// Every file under `dir`, as `(prefix/relative path, contents)`.
pub fn tree(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("prefix").to_string_lossy();
                out.push((format!("{prefix}/{rel}"), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// Pushes an image of `layers` with a config naming `user`, `labels` and its history.
pub async fn push(
    client: &Client,
    auth: &RegistryAuth,
    reference: &str,
    layers: &[ImageLayer],
    arch: &str,
) -> (String, i64) {
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2024-03-01T10:00:00Z",
        "config": {"User": "1000", "ExposedPorts": {"8080/tcp": {}},
                   "Labels": {"org.opencontainers.image.source": "rampart-test"}},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(diff_id).collect::<Vec<_>>()},
        "history": [
            {"created_by": "/bin/sh -c #(nop) ADD file:base in / "},
            {"created_by": "RUN /bin/sh -c pip install urllib3==1.26.4 # buildkit"},
            {"created_by": "USER 1000", "empty_layer": true}
        ]
    });
    let config = Config::oci_v1(serde_json::to_vec(&config).expect("json"), None);
    let manifest = OciImageManifest::build(layers, &config, None);
    let r: Reference = reference.parse().expect("reference");
    client
        .push(&r, layers, config, auth, Some(manifest))
        .await
        .expect("push");
    let (body, digest) = client
        .pull_manifest_raw(&r, auth, &["application/vnd.oci.image.manifest.v1+json"])
        .await
        .expect("pushed manifest");
    (digest, body.len() as i64)
}

/// `pip install --no-deps --only-binary=:all: --target TARGET SPECS`.
pub fn pip_install(target: &Path, specs: &[&str]) {
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
        ])
        .args(["--only-binary=:all:", "--target"])
        .arg(target)
        .args(specs)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
        .expect("run pip");
    assert!(status.success(), "pip install {specs:?} failed");
}
