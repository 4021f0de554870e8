//! `/etc/os-release` (or `/usr/lib/os-release`): which distribution and release an image is,
//! which decides the advisories that apply (Debian's codename, Alpine's `v3.18` branch).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OsRelease {
    /// `debian`, `ubuntu`, `alpine`, `rhel`...
    pub id: String,
    pub version_id: String,
    pub version_codename: String,
    pub pretty_name: String,
    /// Every field, for the rest (`ID_LIKE`, `HOME_URL`...).
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Parses the `KEY=value` lines; values may be quoted with `"` or `'` and use `\` escapes.
    pub fn parse(text: &str) -> OsRelease {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            fields.insert(key.trim().to_string(), unquote(raw.trim()));
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        OsRelease {
            id: get("ID"),
            version_id: get("VERSION_ID"),
            version_codename: get("VERSION_CODENAME"),
            pretty_name: get("PRETTY_NAME"),
            fields,
        }
    }

    /// The Alpine branch secdb files are named by (`v3.18` for `3.18.4`).
    pub fn alpine_branch(&self) -> Option<String> {
        if self.id != "alpine" {
            return None;
        }
        let mut parts = self.version_id.split('.');
        Some(format!("v{}.{}", parts.next()?, parts.next()?))
    }
}

fn unquote(raw: &str) -> String {
    let inner = match raw.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if raw.len() >= 2 => &raw[1..raw.len() - 1],
        _ => raw,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_and_their_releases() {
        let alpine = OsRelease::parse(
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n",
        );
        assert_eq!(alpine.alpine_branch().as_deref(), Some("v3.18"));
        assert_eq!(alpine.pretty_name, "Alpine Linux v3.18");
        let quoted = OsRelease::parse("# comment\nID='debian'\nNAME=\"a \\\"quoted\\\" name\"\n");
        assert_eq!(quoted.id, "debian");
        assert_eq!(quoted.fields["NAME"], "a \"quoted\" name");
        assert_eq!(quoted.alpine_branch(), None);
    }

    #[test]
    fn this_machine_is_a_debian_release_with_a_codename() {
        let text = std::fs::read_to_string("/etc/os-release").expect("os-release");
        let os = OsRelease::parse(&text);
        assert_eq!(os.id, "debian");
        assert!(!os.version_codename.is_empty(), "{os:?}");
        assert!(os.pretty_name.starts_with("Debian GNU/Linux"), "{os:?}");
    }
}
