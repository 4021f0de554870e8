//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `1e3`) as plain numbers.

/// Parses a quantity into its value in base units (cores for CPU, bytes for memory).
pub fn parse_quantity(text: &str) -> Option<f64> {
    common_quantity(text.as_bytes()).or_else(|| any_quantity(text))
}

/// The shape nearly every manifest writes (`250m`, `1`, `0.5`, `512Mi`: digits, at most one
/// point between digits, 15 digits at most, then a suffix or none), read in one pass over the
/// bytes with the same arithmetic as [`any_quantity`], so to the bit its result; `None` for
/// anything else, which [`any_quantity`] then reads.
fn common_quantity(text: &[u8]) -> Option<f64> {
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let mut digits: u64 = 0;
    let mut count = 0usize;
    let mut fraction: Option<usize> = None;
    let mut at = 0;
    while let Some(&b) = text.get(at) {
        match b {
            b'0'..=b'9' => {
                if count == 15 {
                    return None;
                }
                digits = digits * 10 + u64::from(b - b'0');
                count += 1;
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() && count > 0 => fraction = Some(0),
            _ => break,
        }
        at += 1;
    }
    if count == 0 || fraction == Some(0) {
        return None;
    }
    let base = digits as f64 / POWERS.get(fraction.unwrap_or(0))?;
    Some(base * multiplier(text.get(at..)?)?)
}

/// A suffix's factor.
fn multiplier(suffix: &[u8]) -> Option<f64> {
    Some(match suffix {
        b"" => 1.0,
        b"n" => 1e-9,
        b"u" => 1e-6,
        b"m" => 1e-3,
        b"k" => 1e3,
        b"M" => 1e6,
        b"G" => 1e9,
        b"T" => 1e12,
        b"P" => 1e15,
        b"E" => 1e18,
        b"Ki" => 1024.0,
        b"Mi" => 1024.0 * 1024.0,
        b"Gi" => 1024.0 * 1024.0 * 1024.0,
        b"Ti" => 1024f64.powi(4),
        b"Pi" => 1024f64.powi(5),
        b"Ei" => 1024f64.powi(6),
        _ => return None,
    })
}

/// Any quantity: spaces around it, signs, exponents, a point without digits after it.
fn any_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    // A decimal exponent (`1e3`, `1E-3`) is part of the number, not a suffix.
    if let Some(exp) = suffix.strip_prefix(['e', 'E'])
        && !exp.is_empty()
        && exp
            .trim_start_matches(['+', '-'])
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        return text.parse::<f64>().ok();
    }
    let base: f64 = plain_decimal(number).or_else(|| number.parse().ok())?;
    Some(base * multiplier(suffix.as_bytes())?)
}

/// A plain decimal (`250`, `0.5`: digits, at most one point between digits, 15 digits at most)
/// read without the float parser: its digits as an integer, exact in an `f64`, divided by a
/// power of ten, also exact — one correctly rounded division, the parser's result to the bit.
fn plain_decimal(number: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (whole, fraction) = match number.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (number, ""),
    };
    if whole.is_empty() || whole.len() + fraction.len() > 15 {
        return None;
    }
    let mut digits: u64 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        digits = digits * 10 + u64::from(b - b'0');
    }
    Some(digits as f64 / POWERS.get(fraction.len())?)
}

/// Bytes to the megabytes ACS reports memory in (MiB, as ACS divides by 1024²).
pub fn bytes_to_mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator: the same numbers every run.
    fn numbers(mut n: u64) -> impl FnMut() -> u64 {
        move || {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            n
        }
    }

    #[test]
    fn plain_decimals_read_as_the_float_parser_reads_them() {
        let mut next = numbers(0x2545_f491_4f6c_dd1d);
        let mut numbers: Vec<String> = [
            "0",
            "1",
            "250",
            "0.5",
            "0.1",
            "1.25",
            "007",
            "123456789012345",
            "1234567890123456",
            "0.000000000000001",
            "99999.9999999999",
            "5.",
            ".5",
            "1.2.3",
            "",
            "1e3",
            "-1",
            "+1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..20_000 {
            let n = next();
            let digits = (n % 10_000_000_000_000_000).to_string();
            let cut = (n >> 40) as usize % (digits.len() + 1);
            numbers.push(if cut == digits.len() {
                digits
            } else {
                format!("{}.{}", &digits[..cut.max(1)], &digits[cut.max(1)..])
            });
        }
        for text in numbers {
            if let Some(fast) = plain_decimal(&text) {
                let parsed: f64 = text.parse().expect("a plain decimal parses");
                assert_eq!(fast.to_bits(), parsed.to_bits(), "{text}");
            }
        }
        assert_eq!(plain_decimal("250"), Some(250.0));
        assert_eq!(
            plain_decimal("1234567890123456"),
            None,
            "16 digits: the parser's"
        );
        assert_eq!(plain_decimal("5."), None);
    }

    #[test]
    fn the_common_shape_reads_as_any_quantity_does() {
        let mut next = numbers(0x9e37_79b9_7f4a_7c15);
        let suffixes = [
            "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
            "e3", "E-2", "Q", "mi", " ", "i", "MiB",
        ];
        let mut texts: Vec<String> = [
            "250m",
            "1",
            "0.5",
            ".5",
            "5.",
            "5.m",
            "1.2.3",
            "",
            "m",
            "+1",
            "-1",
            " 1",
            "1 ",
            "007",
            "1e3",
            "1E",
            "0",
            "0.0",
            "123456789012345",
            "1234567890123456",
            "1.5Gi",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..50_000 {
            let r = next();
            let digits = (r % 10_000_000_000_000_000_000).to_string();
            let len = 1 + (r >> 50) as usize % digits.len();
            let digits = &digits[..len];
            let cut = (r >> 40) as usize % (len + 2);
            let number = if cut >= len {
                digits.to_string()
            } else {
                format!("{}.{}", &digits[..cut], &digits[cut..])
            };
            let suffix = suffixes[(r >> 20) as usize % suffixes.len()];
            texts.push(format!("{number}{suffix}"));
        }
        let mut common = 0;
        for text in &texts {
            let any = any_quantity(text);
            match common_quantity(text.as_bytes()) {
                Some(fast) => {
                    common += 1;
                    assert_eq!(Some(fast.to_bits()), any.map(f64::to_bits), "{text}");
                }
                None => assert_eq!(parse_quantity(text), any, "{text}"),
            }
        }
        // Both paths are exercised.
        assert!(common > texts.len() / 4, "{common} of {}", texts.len());
    }

    #[test]
    fn parses_the_suffixes_kubernetes_accepts() {
        let cases = [
            ("250m", 0.25),
            ("1", 1.0),
            ("1.5", 1.5),
            ("512Mi", 512.0 * 1048576.0),
            ("1Gi", 1073741824.0),
            ("1e3", 1000.0),
            ("2k", 2000.0),
            ("100M", 1e8),
        ];
        for (text, want) in cases {
            let got = parse_quantity(text).expect(text);
            assert!((got - want).abs() < 1e-9, "{text}: {got} != {want}");
        }
        assert_eq!(parse_quantity("12Q"), None);
        assert_eq!(parse_quantity(""), None);
    }
}
