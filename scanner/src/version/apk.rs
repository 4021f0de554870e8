//! Alpine package versions, as apk-tools orders them: `1.2.3[letter][_suffix[N]]...[-rN]`.
//! Numbers compare as numbers (a part after the first that starts with `0` compares as a
//! decimal fraction, as apk does: `1.01 < 1.1`), a letter after the numbers is newer than none,
//! `_alpha`, `_beta`, `_pre`, `_rc` are older than no suffix and `_cvs`, `_svn`, `_git`, `_hg`,
//! `_p` newer, and the `-rN` package revision comes last.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    numbers: Vec<&'a str>,
    letter: Option<u8>,
    suffixes: Vec<(u8, u64)>,
    revision: u64,
}

/// Suffixes by age; [`RELEASE`] stands for "no suffix".
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const RELEASE: u8 = 4;

fn rank(suffix: &str) -> Option<u8> {
    let i = SUFFIXES.iter().position(|s| *s == suffix)?;
    let i = u8::try_from(i).ok()?;
    // The pre-release suffixes sit below a release, the others above it.
    Some(if i < RELEASE { i } else { i + 1 })
}

impl<'a> Version<'a> {
    pub fn parse(text: &'a str) -> Result<Version<'a>, String> {
        let text = text.trim();
        let (main, revision) = match text.rsplit_once("-r") {
            Some((main, r)) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => (
                main,
                r.parse()
                    .map_err(|_| format!("revision {r:?} is too large"))?,
            ),
            _ => (text, 0),
        };
        let (head, suffix_text) = main.split_once('_').unwrap_or((main, ""));
        let digits_end = head
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(0, |(i, _)| i + 1);
        let (numbers_text, letter_text) = head.split_at(digits_end);
        let letter = match letter_text.as_bytes() {
            [] => None,
            [c] if c.is_ascii_lowercase() => Some(*c),
            _ => {
                return Err(format!(
                    "{letter_text:?} after the numbers is not one letter"
                ));
            }
        };
        let numbers: Vec<&str> = numbers_text.split('.').collect();
        if numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("expected numbers separated by dots".to_string());
        }
        let mut suffixes = Vec::new();
        if !suffix_text.is_empty() {
            for part in suffix_text.split('_') {
                let name_end = part
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(part.len());
                let (name, number) = part.split_at(name_end);
                let rank = rank(name).ok_or_else(|| format!("unknown suffix _{name}"))?;
                let number = if number.is_empty() {
                    0
                } else {
                    number
                        .parse()
                        .map_err(|_| format!("suffix number {number:?} is not a number"))?
                };
                suffixes.push((rank, number));
            }
        }
        Ok(Version {
            numbers,
            letter,
            suffixes,
            revision,
        })
    }
}

/// Two number parts at the same place: the first as integers, later ones as decimal fractions
/// when either starts with `0`.
fn compare_part(a: &str, b: &str, first: bool) -> Ordering {
    if !first && (a.starts_with('0') || b.starts_with('0')) {
        return a.trim_end_matches('0').cmp(b.trim_end_matches('0'));
    }
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        for (i, (a, b)) in self.numbers.iter().zip(&other.numbers).enumerate() {
            let o = compare_part(a, b, i == 0);
            if o != Ordering::Equal {
                return o;
            }
        }
        self.numbers
            .len()
            .cmp(&other.numbers.len())
            .then_with(|| self.letter.cmp(&other.letter))
            .then_with(|| {
                let n = self.suffixes.len().max(other.suffixes.len());
                let at = |s: &[(u8, u64)], i: usize| s.get(i).copied().unwrap_or((RELEASE, 0));
                (0..n)
                    .map(|i| at(&self.suffixes, i).cmp(&at(&other.suffixes, i)))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            })
            .then_with(|| self.revision.cmp(&other.revision))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Version::parse(a)
            .expect(a)
            .cmp(&Version::parse(b).expect(b))
    }

    #[test]
    fn orders_as_apk_does() {
        use Ordering::*;
        // Each pair as `apk version -t` answers it.
        let cases = [
            ("1.2.3-r0", "1.2.3-r1", Less),
            ("1.2.3", "1.2.3-r0", Equal),
            ("1.2.10-r0", "1.2.9-r5", Greater),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            ("1.2.3_alpha", "1.2.3_beta", Less),
            ("1.2.3_p1-r0", "1.2.3-r9", Greater),
            ("1.2.3_p2", "1.2.3_p10", Less),
            ("1.1.1w-r1", "1.1.1v-r9", Greater),
            ("1.1.1a", "1.1.1", Greater),
            ("1.2", "1.2.1", Less),
            ("1.01", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("2.0_pre20230101", "2.0", Less),
            ("9.1_p1-r0", "9.1-r3", Greater),
            ("3.0.8_git20230201-r0", "3.0.8-r0", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn refuses_what_apk_refuses() {
        for bad in ["", "abc", "1.2.x", "1..2", "1.2_foo1", "1.2ab"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
