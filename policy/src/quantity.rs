//! Kubernetes resource quantities (`250m`, `1.5`, `512Mi`, `1e3`) as plain numbers.

/// Parses a quantity into its value in base units (cores for CPU, bytes for memory).
pub fn parse_quantity(text: &str) -> Option<f64> {
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
    let base: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(base * multiplier)
}

/// Bytes to the megabytes ACS reports memory in (MiB, as ACS divides by 1024²).
pub fn bytes_to_mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
