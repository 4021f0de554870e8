//! An image's filesystem, rebuilt from its layers in memory: each layer's tar entries applied in
//! order, with OCI whiteouts (`.wh.NAME` deletes `NAME` from the layers below, `.wh..wh..opq`
//! empties a directory of them). Nothing is written to disk, so no entry can escape a scratch
//! area: paths are normalized, and an entry whose path climbs out of the root (`..`) is refused
//! and counted.
//!
//! Only the files analysis asks for keep their contents ([`Select`]); every other path is kept as
//! a name, a size and a mode, so symlinks and hard links resolve and later layers can delete it.
//! Each layer's uncompressed bytes are hashed as they are read, which is the `diff_id` the image
//! config lists: a layer that does not hash to it is refused.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// How a layer blob is compressed, from its media type or its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From an OCI or Docker layer media type; `None` when the type does not say.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// From the magic bytes a blob starts with.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Bounds on what one image may make the scanner read and hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Uncompressed bytes per layer.
    pub layer_bytes: u64,
    /// Bytes of one file whose contents are kept.
    pub file_bytes: u64,
    /// Entries (files, directories, links) in the whole image.
    pub entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            layer_bytes: 16 << 30,
            file_bytes: 256 << 20,
            entries: 2_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: {source}")]
    Read {
        layer: usize,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer} is larger than {limit} bytes uncompressed")]
    TooLarge { layer: usize, limit: u64 },
    #[error("the image has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("layer {layer}'s content hashes to {actual}, but the image config lists {expected}")]
    DiffId {
        layer: usize,
        expected: String,
        actual: String,
    },
}

/// Which files keep their contents, and what of them: an archive (a jar) can be reduced to
/// what analysis needs of it as it is read, so a layer's large files are never all held.
pub trait Select {
    /// Whether to read the file at `path` (normalized, no leading `/`) of `size` bytes and
    /// permission bits `mode`.
    fn wants(&self, path: &str, size: u64, mode: u32) -> bool;
    /// What to keep of a wanted file: its contents unless the selector reduces them.
    fn keep(&self, _path: &str, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

impl<F: Fn(&str, u64) -> bool> Select for F {
    fn wants(&self, path: &str, size: u64, _mode: u32) -> bool {
        self(path, size)
    }
}

/// One path in the rebuilt filesystem.
#[derive(Debug, Clone)]
pub enum Node {
    Dir,
    File {
        size: u64,
        mode: u32,
        /// The contents, when analysis asked for this path.
        data: Option<Arc<[u8]>>,
    },
    Symlink(String),
    /// A hard link to another path (resolved when read).
    Link(String),
}

#[derive(Debug, Clone)]
struct Entry {
    node: Node,
    /// Index of the layer that wrote it (whiteouts and opaque directories act on lower ones).
    layer: usize,
}

/// The filesystem of an image (or of the layers applied so far).
#[derive(Debug, Default)]
pub struct Filesystem {
    entries: BTreeMap<String, Entry>,
    /// Entries refused because their path left the root, or was not UTF-8.
    pub refused_paths: usize,
    layers: usize,
}

/// What applying one layer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:` of the uncompressed tar: the layer's diff_id.
    pub diff_id: String,
    pub uncompressed_bytes: u64,
    pub entries: usize,
    pub whiteouts: usize,
}

/// A path inside the image: `./a//b/` → `a/b`; `None` when it climbs out of the root.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Counts and hashes what the tar reader pulls, and stops at the limit.
/// Uncompressed bytes per chunk handed from the decompressing thread, and chunks in flight.
const PIPELINE_CHUNK: usize = 256 << 10;
const PIPELINE_CHUNKS: usize = 8;

/// Reads `reader` to its end in chunks onto `tx`; stops at the first error (sent on) or when
/// the receiving side is gone.
fn decompress(mut reader: impl Read, tx: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut chunk = vec![0u8; PIPELINE_CHUNK];
        let mut filled = 0;
        while filled < chunk.len() {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        let last = filled < PIPELINE_CHUNK;
        if tx.send(Ok(chunk)).is_err() || last {
            return;
        }
    }
}

/// The receiving end of [`decompress`], as a reader.
struct Pipelined {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Pipelined {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The decompressor finished.
                Err(_) => self.done = true,
            }
        }
    }
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(TooLarge));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("layer too large")
    }
}

impl std::error::Error for TooLarge {}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `sha256:` and the hex digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

impl Filesystem {
    pub fn new() -> Filesystem {
        Filesystem::default()
    }

    /// Applies the next layer: `blob` is the layer as stored (compressed or not); `expected_diff_id`
    /// is what the image config lists for it, checked when given.
    pub fn apply(
        &mut self,
        blob: impl Read + Send,
        compression: Compression,
        expected_diff_id: Option<&str>,
        select: &dyn Select,
        limits: &Limits,
    ) -> Result<Applied, LayerError> {
        let layer = self.layers;
        self.layers += 1;
        let reader: Box<dyn Read + Send + '_> = match compression {
            Compression::None => Box::new(blob),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Compression::Zstd => {
                Box::new(ruzstd::decoding::StreamingDecoder::new(blob).map_err(|e| {
                    LayerError::Read {
                        layer,
                        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                    }
                })?)
            }
        };
        if compression == Compression::None {
            return self.apply_tar(reader, layer, expected_diff_id, select, limits);
        }
        // Decompression runs on its own thread and hands chunks to the tar walk and hashing:
        // the two halves cost about the same, and a scan has more than one core.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(PIPELINE_CHUNKS);
            scope.spawn(move || decompress(reader, &tx));
            let pipelined = Pipelined {
                rx,
                current: Vec::new(),
                pos: 0,
                done: false,
            };
            self.apply_tar(pipelined, layer, expected_diff_id, select, limits)
        })
    }

    /// Walks a layer's uncompressed tar stream, hashing it for its diff_id.
    fn apply_tar(
        &mut self,
        reader: impl Read,
        layer: usize,
        expected_diff_id: Option<&str>,
        select: &dyn Select,
        limits: &Limits,
    ) -> Result<Applied, LayerError> {
        let mut hashing = Hashing {
            inner: reader,
            hasher: Sha256::new(),
            read: 0,
            limit: limits.layer_bytes,
        };
        let read_error = |source: io::Error| {
            if source
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<TooLarge>().is_some())
            {
                LayerError::TooLarge {
                    layer,
                    limit: limits.layer_bytes,
                }
            } else {
                LayerError::Read { layer, source }
            }
        };
        let mut entries_seen = 0;
        let mut whiteouts = 0;
        {
            let mut archive = tar::Archive::new(&mut hashing);
            let iter = archive.entries().map_err(read_error)?;
            for entry in iter {
                let mut entry = entry.map_err(read_error)?;
                entries_seen += 1;
                if self.entries.len() >= limits.entries {
                    return Err(LayerError::TooManyEntries {
                        limit: limits.entries,
                    });
                }
                let raw_path = entry.path_bytes();
                let Some(path) = std::str::from_utf8(&raw_path).ok().and_then(normalize) else {
                    self.refused_paths += 1;
                    continue;
                };
                if path.is_empty() {
                    continue;
                }
                let (parent, name) = match path.rsplit_once('/') {
                    Some((p, n)) => (p, n),
                    None => ("", path.as_str()),
                };
                if name == ".wh..wh..opq" {
                    whiteouts += 1;
                    self.remove_below(parent, layer, false);
                    continue;
                }
                if let Some(hidden) = name.strip_prefix(".wh.") {
                    whiteouts += 1;
                    let target = if parent.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{parent}/{hidden}")
                    };
                    self.remove_below(&target, layer, true);
                    continue;
                }
                let header = entry.header();
                let kind = header.entry_type();
                let link_target = || {
                    entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                let node = if kind.is_dir() {
                    Node::Dir
                } else if kind.is_symlink() {
                    Node::Symlink(link_target())
                } else if kind.is_hard_link() {
                    match normalize(&link_target()) {
                        Some(target) => Node::Link(target),
                        None => {
                            self.refused_paths += 1;
                            continue;
                        }
                    }
                } else if kind.is_file() || kind == tar::EntryType::Continuous {
                    let size = entry.size();
                    let mode = header.mode().unwrap_or(0o644);
                    let data = if size <= limits.file_bytes && select.wants(&path, size, mode) {
                        let mut buf = Vec::with_capacity(size as usize);
                        entry.read_to_end(&mut buf).map_err(read_error)?;
                        Some(Arc::from(select.keep(&path, buf)))
                    } else {
                        None
                    };
                    Node::File { size, mode, data }
                } else {
                    // Devices, FIFOs and the like hold nothing to analyze.
                    continue;
                };
                // A non-directory replaces whatever was at its path, a directory's children too.
                if !matches!(node, Node::Dir) {
                    self.remove_below(&path, usize::MAX, true);
                } else if let Some(Entry { node: existing, .. }) = self.entries.get(&path)
                    && !matches!(existing, Node::Dir)
                {
                    self.entries.remove(&path);
                }
                self.entries.insert(path, Entry { node, layer });
            }
        }
        // Read to the end of the stream, so the hash covers the tar's trailing blocks.
        io::copy(&mut hashing, &mut io::sink()).map_err(read_error)?;
        if hashing.read > limits.layer_bytes {
            return Err(LayerError::TooLarge {
                layer,
                limit: limits.layer_bytes,
            });
        }
        let diff_id = format!("sha256:{}", hex(&hashing.hasher.finalize()));
        if let Some(expected) = expected_diff_id
            && expected != diff_id
        {
            return Err(LayerError::DiffId {
                layer,
                expected: expected.to_string(),
                actual: diff_id,
            });
        }
        Ok(Applied {
            diff_id,
            uncompressed_bytes: hashing.read,
            entries: entries_seen,
            whiteouts,
        })
    }

    /// Removes `path` (when `itself`) and everything under it written by layers below `layer`.
    fn remove_below(&mut self, path: &str, layer: usize, itself: bool) {
        if itself
            && self
                .entries
                .get(path)
                .is_some_and(|e| e.layer < layer || layer == usize::MAX)
        {
            self.entries.remove(path);
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, e)| e.layer < layer || layer == usize::MAX)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    /// The node at `path`, following symlinks in every component (at most 40 hops).
    pub fn lookup(&self, path: &str) -> Option<&Node> {
        let mut path = normalize(path)?;
        for _ in 0..40 {
            match self.resolve_parents(&path)? {
                (resolved, Some(Node::Symlink(target))) => {
                    path = join_link(&resolved, target)?;
                }
                (resolved, Some(Node::Link(target))) => {
                    if *target == resolved {
                        return None;
                    }
                    path = target.clone();
                }
                (_, node) => return node,
            }
        }
        None
    }

    /// Resolves symlinks in every component but the last: the resolved path and its node.
    fn resolve_parents(&self, path: &str) -> Option<(String, Option<&Node>)> {
        let mut current = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut hops = 0;
        for (i, part) in parts.iter().enumerate() {
            let next = if current.is_empty() {
                part.to_string()
            } else {
                format!("{current}/{part}")
            };
            if i + 1 == parts.len() {
                let node = self.entries.get(&next).map(|e| &e.node);
                return Some((next, node));
            }
            match self.entries.get(&next).map(|e| &e.node) {
                Some(Node::Symlink(target)) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let resolved = join_link(&next, target)?;
                    let rest = parts[i + 1..].join("/");
                    return self.resolve_parents(&format!("{resolved}/{rest}"));
                }
                _ => current = next,
            }
        }
        Some((current, self.entries.get(path).map(|e| &e.node)))
    }

    /// The contents of a file that analysis asked for, following links.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        match self.lookup(path)? {
            Node::File {
                data: Some(data), ..
            } => Some(data),
            _ => None,
        }
    }

    /// Every path with its node (links unresolved), in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), &e.node))
    }

    /// Paths under `dir` (not following links), in order.
    pub fn children<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{}/", dir.trim_end_matches('/'))
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, e)| (k.as_str(), &e.node))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A symlink at `link` pointing to `target`, as a path from the root (the root's parent is the
/// root, as the kernel treats it inside a chroot).
fn join_link(link: &str, target: &str) -> Option<String> {
    let base = if target.starts_with('/') {
        String::new()
    } else {
        link.rsplit_once('/')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    };
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar layer from `(path, contents)`; contents starting with `->` make a symlink.
    fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in entries {
            let mut h = tar::Header::new_gnu();
            if let Some(target) = body.strip_prefix("->") {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, path, target).expect("link");
            } else if path.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, path, std::io::empty()).expect("dir");
            } else {
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, body.as_bytes()).expect("file");
            }
        }
        b.into_inner().expect("tar")
    }

    /// A tar with one entry whose raw name is `name` (the builder refuses `..`).
    fn raw_layer(name: &str, body: &str) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(body.as_bytes());
        out.resize(512 + body.len().div_ceil(512) * 512 + 1024, 0);
        out
    }

    fn all(_: &str, _: u64) -> bool {
        true
    }

    fn apply(fs: &mut Filesystem, tar: &[u8]) -> Applied {
        fs.apply(tar, Compression::None, None, &all, &Limits::default())
            .expect("layer applies")
    }

    fn read(fs: &Filesystem, path: &str) -> Option<String> {
        fs.read(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    #[test]
    fn whiteouts_delete_from_lower_layers_only() {
        let mut fs = Filesystem::new();
        apply(
            &mut fs,
            &layer(&[
                ("etc/", ""),
                ("etc/a", "1"),
                ("etc/b", "2"),
                ("opt/x/", ""),
                ("opt/x/one", "1"),
                ("opt/x/sub/two", "2"),
            ]),
        );
        let applied = apply(
            &mut fs,
            &layer(&[
                ("etc/.wh.a", ""),
                // The opaque marker hides the lower layers' opt/x, not this layer's new file.
                ("opt/x/new", "3"),
                ("opt/x/.wh..wh..opq", ""),
            ]),
        );
        assert_eq!(applied.whiteouts, 2);
        assert_eq!(read(&fs, "etc/a"), None);
        assert_eq!(read(&fs, "etc/b").as_deref(), Some("2"));
        assert_eq!(read(&fs, "opt/x/one"), None);
        assert_eq!(read(&fs, "opt/x/sub/two"), None);
        assert_eq!(read(&fs, "opt/x/new").as_deref(), Some("3"));
        // A whiteout of a directory takes its whole subtree.
        apply(&mut fs, &layer(&[(".wh.opt", "")]));
        assert_eq!(fs.children("opt").count(), 0);
        assert!(fs.lookup("opt").is_none());
    }

    #[test]
    fn later_layers_replace_and_symlinks_resolve() {
        let mut fs = Filesystem::new();
        apply(
            &mut fs,
            &layer(&[
                ("usr/lib/os-release", "ID=debian"),
                ("etc/os-release", "->../usr/lib/os-release"),
                ("lib", "->usr/lib"),
                ("abs", "->/usr/lib/os-release"),
                ("loop", "->loop"),
            ]),
        );
        assert_eq!(read(&fs, "etc/os-release").as_deref(), Some("ID=debian"));
        assert_eq!(read(&fs, "lib/os-release").as_deref(), Some("ID=debian"));
        assert_eq!(read(&fs, "/abs").as_deref(), Some("ID=debian"));
        assert_eq!(read(&fs, "loop"), None);
        apply(&mut fs, &layer(&[("usr/lib/os-release", "ID=alpine")]));
        assert_eq!(read(&fs, "etc/os-release").as_deref(), Some("ID=alpine"));
        // A file replacing a directory removes what was inside it.
        apply(&mut fs, &layer(&[("usr/lib", "now a file")]));
        assert_eq!(read(&fs, "usr/lib/os-release"), None);
        assert_eq!(read(&fs, "usr/lib").as_deref(), Some("now a file"));
    }

    #[test]
    fn paths_leaving_the_root_are_refused() {
        assert_eq!(normalize("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("/etc/../../x"), None);
        let mut fs = Filesystem::new();
        apply(&mut fs, &raw_layer("../../etc/passwd", "root::0:0"));
        assert_eq!(fs.refused_paths, 1);
        assert!(fs.is_empty());
        // A symlink pointing above the root stays inside it, as in a chroot.
        apply(
            &mut fs,
            &layer(&[("etc/passwd", "x"), ("up", "->../../../etc/passwd")]),
        );
        assert_eq!(read(&fs, "up").as_deref(), Some("x"));
    }

    #[test]
    fn diff_ids_compression_and_limits() {
        let tar = layer(&[("a", "hello")]);
        let diff_id = sha256_digest(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(Compression::sniff(&gz), Compression::Gzip);
        let mut fs = Filesystem::new();
        let applied = fs
            .apply(
                &gz[..],
                Compression::Gzip,
                Some(&diff_id),
                &all,
                &Limits::default(),
            )
            .expect("gzip layer");
        assert_eq!(applied.diff_id, diff_id);
        assert_eq!(applied.uncompressed_bytes, tar.len() as u64);
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = Filesystem::new()
            .apply(
                &tar[..],
                Compression::None,
                Some(&wrong),
                &all,
                &Limits::default(),
            )
            .expect_err("wrong diff_id");
        assert!(matches!(err, LayerError::DiffId { .. }), "{err}");
        let small = Limits {
            layer_bytes: 1024,
            ..Limits::default()
        };
        let err = Filesystem::new()
            .apply(&tar[..], Compression::None, None, &all, &small)
            .expect_err("too large");
        assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
        let err = Filesystem::new()
            .apply(
                &b"not a tar at all"[..],
                Compression::Gzip,
                None,
                &all,
                &Limits::default(),
            )
            .expect_err("garbage");
        assert!(matches!(err, LayerError::Read { .. }), "{err}");
        // Files nobody asked for are kept as names only.
        let mut fs = Filesystem::new();
        fs.apply(
            &tar[..],
            Compression::None,
            None,
            &|_: &str, _: u64| false,
            &Limits::default(),
        )
        .expect("layer");
        assert!(matches!(
            fs.lookup("a"),
            Some(Node::File {
                size: 5,
                data: None,
                ..
            })
        ));
    }

    #[test]
    fn bombs_and_truncated_streams_stop_at_their_bounds() {
        // A gzip bomb: 64 MiB of zeros in a tar.gz under 1 MB, against an 8 MiB layer bound.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(64 << 20);
        h.set_mode(0o644);
        b.append_data(&mut h, "zeros", std::io::repeat(0).take(64 << 20))
            .expect("append");
        let tar = b.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        let bomb = gz.finish().expect("gzip");
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        drop(tar);
        let small = Limits {
            layer_bytes: 8 << 20,
            ..Limits::default()
        };
        let err = Filesystem::new()
            .apply(&bomb[..], Compression::Gzip, None, &all, &small)
            .expect_err("bomb refused");
        assert!(matches!(err, LayerError::TooLarge { .. }), "{err}");
        // Its one file is larger than a kept file may be: kept as a name, never read into memory.
        let mut fs = Filesystem::new();
        fs.apply(
            &bomb[..],
            Compression::Gzip,
            None,
            &all,
            &Limits {
                file_bytes: 1 << 20,
                ..Limits::default()
            },
        )
        .expect("within the layer bound");
        assert!(matches!(
            fs.lookup("zeros"),
            Some(Node::File { data: None, size, .. }) if *size == 64 << 20
        ));
        // A gzip stream cut short is a read error from the decompressing thread, not a hang.
        let tar = layer(&[("a", "hello"), ("b", &"x".repeat(100_000))]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let err = Filesystem::new()
            .apply(
                &gz[..gz.len() / 2],
                Compression::Gzip,
                None,
                &all,
                &Limits::default(),
            )
            .expect_err("truncated");
        assert!(matches!(err, LayerError::Read { .. }), "{err}");
        // A tar whose header claims a terabyte-sized file, with nothing behind it.
        let mut header = tar::Header::new_gnu();
        header.set_path("huge").expect("path");
        header.set_size(1 << 40);
        header.set_mode(0o644);
        header.set_cksum();
        let mut lying = header.as_bytes().to_vec();
        lying.extend([0u8; 1024]);
        let err = Filesystem::new()
            .apply(
                &lying[..],
                Compression::None,
                None,
                &all,
                &Limits::default(),
            )
            .expect_err("lying header");
        assert!(matches!(err, LayerError::Read { .. }), "{err}");
    }
}
