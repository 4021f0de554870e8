//! Debian versions, `[epoch:]upstream[-revision]`, ordered as dpkg orders them (deb-version(7)):
//! the epoch numerically, then upstream and revision alternately by runs of non-digits (letters
//! before other characters, `~` before everything, even the end) and runs of digits (as numbers).

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

impl<'a> Version<'a> {
    pub fn parse(text: &'a str) -> Result<Version<'a>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty".to_string());
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                let epoch = e
                    .parse::<u64>()
                    .map_err(|_| format!("epoch {e:?} is not a number"))?;
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        if upstream.is_empty() {
            return Err("no upstream version".to_string());
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("the upstream version must start with a digit".to_string());
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if let Some(c) = rest.chars().find(|c| !allowed(*c)) {
            return Err(format!("character {c:?} is not allowed"));
        }
        Ok(Version {
            epoch,
            upstream,
            revision,
        })
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A non-digit's weight: `~` lowest, then the end of the string and digits, then letters, then
/// everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // A run of non-digits, character by character.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // A run of digits, as a number of any length.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        let (va, vb) = (Version::parse(a).expect(a), Version::parse(b).expect(b));
        va.cmp(&vb)
    }

    #[test]
    fn orders_as_dpkg_does() {
        use Ordering::*;
        // Each pair as `dpkg --compare-versions` answers it.
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.1", Less),
            ("1:0.1", "9.9", Greater),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("1.2.3-1ubuntu0.1", "1.2.3-1", Greater),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("1.10", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("1.2-3-4", "1.2-3", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for bad in ["", "a1.0", "x:1.0", "1.0 beta", "1:-1"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_installed_package_version_on_this_machine_parses_and_sorts_consistently() {
        let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("a Debian machine");
        let versions: Vec<&str> = status
            .lines()
            .filter_map(|l| l.strip_prefix("Version: "))
            .collect();
        assert!(versions.len() > 50, "{} versions", versions.len());
        let mut parsed: Vec<Version> = versions
            .iter()
            .map(|v| Version::parse(v).unwrap_or_else(|e| panic!("{v}: {e}")))
            .collect();
        parsed.sort();
        // A total order: sorted neighbours never compare the wrong way round.
        for pair in parsed.windows(2) {
            assert_ne!(pair[0].cmp(&pair[1]), Ordering::Greater);
            assert_ne!(pair[1].cmp(&pair[0]), Ordering::Less);
        }
    }
}
