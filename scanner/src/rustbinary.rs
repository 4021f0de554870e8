//! The crates a Rust binary was built from, when it was built with `cargo auditable`: the
//! dependency tree is embedded as zlib-compressed JSON in an ELF section named `.dep-v0`
//! (`{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}`). Binaries
//! built without it carry no such list and are not guessed at.
//!
//! Only the section table is read (ELF 32 and 64 bit, either byte order); sizes and offsets are
//! checked against the file, and the decompressed JSON is bounded.

use std::io::Read;

use crate::packages::{Component, EcosystemName};

const SECTION: &[u8] = b".dep-v0";
/// Decompressed dependency data at most (cargo-auditable's own limit is 8 MiB).
const MAX_JSON: u64 = 8 << 20;
const MAX_SECTIONS: usize = 65_535;

/// The bytes of the named section, when `data` is an ELF file that has it.
fn elf_section<'a>(data: &'a [u8], wanted: &[u8]) -> Option<&'a [u8]> {
    if data.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match data.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big = match data.get(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u64> {
        let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
        Some(if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    };
    let word_at = |at: usize| if wide { u64_at(at) } else { u32_at(at) };
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (u64_at(0x28)?, u16_at(0x3A)?, u16_at(0x3C)?, u16_at(0x3E)?)
    } else {
        (u32_at(0x20)?, u16_at(0x2E)?, u16_at(0x30)?, u16_at(0x32)?)
    };
    let (shoff, shentsize, shnum) = (
        usize::try_from(shoff).ok()?,
        usize::try_from(shentsize).ok()?,
        usize::try_from(shnum).ok()?,
    );
    if shnum == 0 || shnum > MAX_SECTIONS || shentsize < if wide { 64 } else { 40 } {
        return None;
    }
    // (name offset, file offset, size) of section `i`.
    let header = |i: usize| -> Option<(usize, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = usize::try_from(u32_at(at)?).ok()?;
        let (offset, size) = if wide {
            (word_at(at + 24)?, word_at(at + 32)?)
        } else {
            (word_at(at + 16)?, word_at(at + 20)?)
        };
        Some((
            name,
            usize::try_from(offset).ok()?,
            usize::try_from(size).ok()?,
        ))
    };
    let (_, names_at, names_len) = header(usize::try_from(shstrndx).ok()?)?;
    let names = data.get(names_at..names_at.checked_add(names_len)?)?;
    for i in 0..shnum {
        let (name, offset, size) = header(i)?;
        let Some(rest) = names.get(name..) else {
            continue;
        };
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        if &rest[..end] == wanted {
            return data.get(offset..offset.checked_add(size)?);
        }
    }
    None
}

/// The crates in a binary's `.dep-v0` section (build-time dependencies left out: they are not
/// in the binary); `None` when it has none or it does not read.
pub fn audit_data(data: &[u8]) -> Option<Vec<Component>> {
    #[derive(serde::Deserialize)]
    struct Info {
        packages: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
        version: String,
        #[serde(default)]
        kind: Option<String>,
    }
    let section = elf_section(data, SECTION)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_JSON)
        .read_to_end(&mut json)
        .ok()?;
    let info: Info = serde_json::from_slice(&json).ok()?;
    let mut out: Vec<Component> = info
        .packages
        .into_iter()
        .filter(|p| p.kind.as_deref() != Some("build"))
        .map(|p| Component {
            source: p.name.clone(),
            source_version: p.version.clone(),
            name: p.name,
            version: p.version,
            ecosystem: EcosystemName::CratesIo,
        })
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}
