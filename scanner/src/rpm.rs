//! rpm's package database as RHEL 8+, Fedora, UBI, Rocky and Alma images carry it:
//! `rpmdb.sqlite`, an SQLite database whose `Packages` table holds one rpm header per
//! installed package. The database is opened in memory from its bytes (nothing is written to
//! disk), read only, and each header is decoded here: name, epoch, version, release, arch and
//! the source rpm it was built from. The older BerkeleyDB (`Packages`) and SUSE's NDB
//! (`Packages.db`) formats are not read; analysis names them in its notes.
//!
//! A header blob (as rpm stores it, without the lead and magic) is:
//!
//! ```text
//!  il: u32 BE   dl: u32 BE   il × {tag, type, offset, count: u32 BE}   dl bytes of data
//! ```

use crate::packages::{Component, EcosystemName};

/// rpm's own bounds on a header: index entries and data bytes.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;
/// Installed packages read from one database at most.
const MAX_PACKAGES: usize = 200_000;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// What one header says of its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// `openssl-3.0.7-24.el9.src.rpm`; empty for a `gpg-pubkey` pseudo-package.
    pub source_rpm: String,
}

impl RpmPackage {
    /// `[epoch:]version-release`, as rpm orders it and advisories name fixes.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) if e > 0 => format!("{e}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package's name and `version-release`, from the source rpm's file name.
    pub fn source(&self) -> Option<(String, String)> {
        let stem = self.source_rpm.strip_suffix(".rpm")?;
        let stem = stem
            .strip_suffix(".src")
            .or_else(|| stem.strip_suffix(".nosrc"))?;
        let mut parts = stem.rsplitn(3, '-');
        let release = parts.next()?;
        let version = parts.next()?;
        let name = parts.next()?;
        Some((name.to_string(), format!("{version}-{release}")))
    }

    pub fn component(&self) -> Component {
        let evr = self.evr();
        let (source, source_version) = self
            .source()
            .unwrap_or_else(|| (self.name.clone(), evr.clone()));
        // The source's version carries no epoch in its file name; the binary's epoch is its.
        let source_version = match self.epoch {
            Some(e) if e > 0 && !source_version.contains(':') => format!("{e}:{source_version}"),
            _ => source_version,
        };
        Component {
            name: self.name.clone(),
            version: evr,
            source,
            source_version,
            ecosystem: EcosystemName::Rpm,
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes one header blob; an error says what is wrong with it.
pub fn header(blob: &[u8]) -> Result<RpmPackage, String> {
    let il = be32(blob, 0).ok_or("truncated header")? as usize;
    let dl = be32(blob, 4).ok_or("truncated header")? as usize;
    if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
        return Err(format!(
            "implausible header ({il} entries, {dl} data bytes)"
        ));
    }
    let data_start = 8 + il * 16;
    let data = blob.get(data_start..data_start + dl).ok_or_else(|| {
        format!(
            "truncated header: {} bytes for {il} entries and {dl} data bytes",
            blob.len()
        )
    })?;
    let mut pkg = RpmPackage {
        name: String::new(),
        epoch: None,
        version: String::new(),
        release: String::new(),
        arch: String::new(),
        source_rpm: String::new(),
    };
    for i in 0..il {
        let at = 8 + i * 16;
        let (Some(tag), Some(kind), Some(offset)) =
            (be32(blob, at), be32(blob, at + 4), be32(blob, at + 8))
        else {
            return Err("truncated index".into());
        };
        let offset = offset as usize;
        let string = || -> Result<String, String> {
            let rest = data
                .get(offset..)
                .ok_or_else(|| format!("tag {tag}: offset {offset} is outside the data"))?;
            let end = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| format!("tag {tag}: unterminated string"))?;
            String::from_utf8(rest[..end].to_vec()).map_err(|_| format!("tag {tag}: not UTF-8"))
        };
        match (tag, kind) {
            (TAG_NAME, TYPE_STRING | TYPE_I18NSTRING) => pkg.name = string()?,
            (TAG_VERSION, TYPE_STRING) => pkg.version = string()?,
            (TAG_RELEASE, TYPE_STRING) => pkg.release = string()?,
            (TAG_ARCH, TYPE_STRING) => pkg.arch = string()?,
            (TAG_SOURCERPM, TYPE_STRING) => pkg.source_rpm = string()?,
            (TAG_EPOCH, TYPE_INT32) => {
                pkg.epoch =
                    Some(be32(data, offset).ok_or_else(|| {
                        format!("tag {tag}: offset {offset} is outside the data")
                    })?);
            }
            _ => {}
        }
    }
    if pkg.name.is_empty() || pkg.version.is_empty() {
        return Err("header without a name or version".into());
    }
    Ok(pkg)
}

/// Every installed package of an `rpmdb.sqlite` file's bytes (without the `gpg-pubkey`
/// pseudo-packages that hold imported keys), with a note per header that did not decode.
pub fn rpmdb_sqlite(bytes: &[u8]) -> Result<(Vec<Component>, Vec<String>), String> {
    if !bytes.starts_with(b"SQLite format 3\0") {
        return Err("not an SQLite database".into());
    }
    let mut copy = bytes.to_vec();
    // A database left in WAL mode opens from memory only as a rollback-journal one; the
    // committed pages are in the file either way (the image carries no -wal file to replay).
    if let Some(v) = copy.get_mut(18..20) {
        v.copy_from_slice(&[1, 1]);
    }
    let mut conn = rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.deserialize_read_exact(rusqlite::MAIN_DB, &copy[..], copy.len(), true)
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .map_err(|e| format!("no Packages table: {e}"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| e.to_string())?;
    let mut components = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(|e| e.to_string())?;
        if components.len() >= MAX_PACKAGES {
            problems.push(format!(
                "more than {MAX_PACKAGES} packages; the rest are not read"
            ));
            break;
        }
        match header(&blob) {
            Ok(p) if p.name == "gpg-pubkey" => {}
            Ok(p) => components.push(p.component()),
            Err(e) => problems.push(format!("package #{hnum}: {e}")),
        }
    }
    Ok((components, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header of `(tag, type, bytes)` entries laid out as rpm lays them.
    fn blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, kind, bytes) in entries {
            if *kind == TYPE_INT32 {
                while data.len() % 4 != 0 {
                    data.push(0);
                }
            }
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend((data.len() as u32).to_be_bytes());
            index.extend(1u32.to_be_bytes());
            data.extend(bytes);
        }
        let mut out = Vec::new();
        out.extend((entries.len() as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn s(text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        v
    }

    #[test]
    fn headers_decode_with_epoch_and_source() {
        let h = blob(&[
            (TAG_NAME, TYPE_STRING, s("openssl-libs")),
            (TAG_VERSION, TYPE_STRING, s("3.0.7")),
            (TAG_RELEASE, TYPE_STRING, s("24.el9")),
            (TAG_EPOCH, TYPE_INT32, 1u32.to_be_bytes().to_vec()),
            (TAG_ARCH, TYPE_STRING, s("x86_64")),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                s("openssl-3.0.7-24.el9.src.rpm"),
            ),
        ]);
        let p = header(&h).expect("decodes");
        assert_eq!(p.evr(), "1:3.0.7-24.el9");
        let c = p.component();
        assert_eq!(
            (
                c.name.as_str(),
                c.version.as_str(),
                c.source.as_str(),
                c.source_version.as_str()
            ),
            (
                "openssl-libs",
                "1:3.0.7-24.el9",
                "openssl",
                "1:3.0.7-24.el9"
            )
        );
    }

    #[test]
    fn broken_headers_are_refused_with_the_reason() {
        assert!(header(&[]).expect_err("refused").contains("truncated"));
        assert!(
            header(&[0, 0, 0, 0, 0, 0, 0, 0])
                .expect_err("refused")
                .contains("implausible")
        );
        // An index entry pointing past the data.
        let mut h = blob(&[
            (TAG_NAME, TYPE_STRING, s("x")),
            (TAG_VERSION, TYPE_STRING, s("1")),
        ]);
        let offset_at = 8 + 16 + 8;
        h[offset_at..offset_at + 4].copy_from_slice(&1000u32.to_be_bytes());
        assert!(
            header(&h)
                .expect_err("refused")
                .contains("outside the data"),
            "{:?}",
            header(&h)
        );
        // Data shorter than the header says.
        let h = blob(&[(TAG_NAME, TYPE_STRING, s("x"))]);
        assert!(
            header(&h[..h.len() - 1])
                .expect_err("refused")
                .contains("truncated")
        );
        // No version.
        let h = blob(&[(TAG_NAME, TYPE_STRING, s("x"))]);
        assert!(
            header(&h)
                .expect_err("refused")
                .contains("without a name or version")
        );
        assert!(
            rpmdb_sqlite(b"not sqlite")
                .expect_err("refused")
                .contains("not an SQLite")
        );
    }
}
