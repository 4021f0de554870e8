//! Reading what the user points at: files, directories (recursive) and standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

pub use rampart_policy::check::Source;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than the {limit}-byte limit (--max-input-bytes)")]
    TooLarge { path: String, limit: u64 },
    #[error(
        "{path} is not valid UTF-8 (first invalid byte at offset {offset}); manifests must be UTF-8"
    )]
    NotUtf8 { path: String, offset: usize },
    #[error("{path} does not exist")]
    Missing { path: String },
}

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Expands the `-f` arguments into sources, in a stable order. A directory contributes its
/// `.yaml`, `.yml` and `.json` files, recursively and sorted; symbolic links to directories are
/// not followed (no loops).
pub fn read_sources(args: &[String], max_bytes: u64) -> Result<Vec<Source>, InputError> {
    let mut sources = Vec::new();
    for arg in args {
        if arg == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .take(max_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| InputError::Io {
                    path: "<stdin>".into(),
                    source,
                })?;
            sources.push(to_source("<stdin>".into(), bytes, max_bytes)?);
            continue;
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                InputError::Missing { path: arg.clone() }
            } else {
                InputError::Io {
                    path: arg.clone(),
                    source,
                }
            }
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect_dir(&path, &mut files)?;
            files.sort();
            for f in files {
                sources.push(read_file(&f, max_bytes)?);
            }
        } else {
            sources.push(read_file(&path, max_bytes)?);
        }
    }
    Ok(sources)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io)?;
        if file_type.is_dir() {
            collect_dir(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            && (file_type.is_file() || path.is_file())
        {
            out.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, max_bytes: u64) -> Result<Source, InputError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Io {
        path: name.clone(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            path: name.clone(),
            source,
        })?;
    to_source(name, bytes, max_bytes)
}

fn to_source(name: String, bytes: Vec<u8>, max_bytes: u64) -> Result<Source, InputError> {
    if bytes.len() as u64 > max_bytes {
        return Err(InputError::TooLarge {
            path: name,
            limit: max_bytes,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { name, text }),
        Err(e) => Err(InputError::NotUtf8 {
            path: name,
            offset: e.utf8_error().valid_up_to(),
        }),
    }
}
