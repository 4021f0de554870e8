//! Python package versions (PEP 440): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the
//! spellings PEP 440 normalizes (`alpha`, `beta`, `c`, `pre`, `preview`, `rev`, `r`, `-N` for a
//! post-release, `_` and `-` as separators, a leading `v`, any case).
//!
//! Order: epoch, release (trailing zeros do not count), then a development release of a final
//! version before its pre-releases, pre-releases before the final, post-releases after it, each
//! one's own `.devN` before it, and a local version after the same public one.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    // Letters sort before numbers.
    Text(String),
    Number(u64),
}

/// A run of ASCII digits at the start of `s`, as a number, and what follows.
fn number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// An optional separator (`.`, `-`, `_`) then one of `words`, then an optional separator and
/// number (0 when absent).
fn tagged<'s>(s: &'s str, words: &[&str]) -> Option<(u64, &'s str)> {
    let t = s.strip_prefix(['.', '-', '_']).unwrap_or(s);
    let word = words.iter().find(|w| t.starts_with(**w))?;
    let t = &t[word.len()..];
    let u = t.strip_prefix(['.', '-', '_']).unwrap_or(t);
    match number(u) {
        Some((n, rest)) => Some((n, rest)),
        None => Some((0, t)),
    }
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, String> {
        let lower = text.trim().to_ascii_lowercase();
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        let (public, local) = match s.split_once('+') {
            Some((p, l)) => (p, Some(l)),
            None => (s, None),
        };
        let (epoch, mut s) = match public.split_once('!') {
            Some((e, rest)) => (
                e.parse::<u64>()
                    .map_err(|_| format!("epoch {e:?} is not a number"))?,
                rest,
            ),
            None => (0, public),
        };
        let mut release = Vec::new();
        loop {
            let (n, rest) = number(s).ok_or("expected a release number")?;
            release.push(n);
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => s = r,
                _ => {
                    s = rest;
                    break;
                }
            }
        }
        // Longer spellings first, so `rc` is not read as `r` (a post-release) plus `c`.
        const PRE: [(&str, u8); 7] = [
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
        ];
        let mut pre = None;
        for (word, phase) in PRE.iter().chain(&[("c", 2)]) {
            if let Some((n, rest)) = tagged(s, &[word]) {
                pre = Some((*phase, n));
                s = rest;
                break;
            }
        }
        let mut post = None;
        if let Some((n, rest)) = tagged(s, &["post", "rev", "r"]) {
            post = Some(n);
            s = rest;
        } else if let Some(rest) = s.strip_prefix('-')
            && let Some((n, rest)) = number(rest)
        {
            post = Some(n);
            s = rest;
        }
        let mut dev = None;
        if let Some((n, rest)) = tagged(s, &["dev"]) {
            dev = Some(n);
            s = rest;
        }
        if !s.is_empty() {
            return Err(format!("unexpected {s:?}"));
        }
        let local = match local {
            None => Vec::new(),
            Some(l) => l
                .split(['.', '-', '_'])
                .map(|part| {
                    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        Err(format!("local part {part:?} is not letters and digits"))
                    } else {
                        Ok(match part.parse() {
                            Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => {
                                LocalPart::Number(n)
                            }
                            _ => LocalPart::Text(part.to_string()),
                        })
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Ok(Version {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// The pre-release key: a bare development release of a final version sorts before every
    /// pre-release, a final version after them.
    fn pre_key(&self) -> (i8, u8, u64) {
        match self.pre {
            Some((phase, n)) => (0, phase, n),
            None if self.post.is_none() && self.dev.is_some() => (-1, 0, 0),
            None => (1, 0, 0),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let post = |v: &Version| v.post.map_or((0, 0), |n| (1, n));
        let dev = |v: &Version| v.dev.map_or((1, 0), |n| (0, n));
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release.cmp(&other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| post(self).cmp(&post(other)))
            .then_with(|| dev(self).cmp(&dev(other)))
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_pep_440_example_order() {
        // PEP 440's own example ordering, with spellings it normalizes mixed in.
        let ordered = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(v(pair[0]).cmp(&v(pair[1])), Ordering::Less, "{pair:?}");
        }
        assert_eq!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0-ALPHA.1"), v("1.0a1"));
        assert_eq!(v("1.0c1"), v("1.0rc1"));
        assert_eq!(v("1.0-5"), v("1.0.post5"));
        assert_eq!(v("1.0rev2"), v("1.0.post2"));
        assert_eq!(v("v2.1"), v("2.1"));
    }

    #[test]
    fn refuses_what_pep_440_does_not_define() {
        for bad in ["", "x1", "1.0.x", "1.0+", "1.0+a..b", "1.0foo", "1!"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
