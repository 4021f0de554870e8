//! Maven version order, as Maven's `ComparableVersion` defines it: the version splits at `.`,
//! `-` and digit/letter transitions into numbers and qualifiers (a `-` or a transition opens
//! a nested list); trailing zeros and release qualifiers are dropped; qualifiers order
//! `alpha < beta < milestone < rc = cr < snapshot < (release: "", ga, final) < sp`, unknown
//! ones after those, alphabetically; a number is above any qualifier.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Decimal digits without leading zeros (`""` is zero).
    Int(String),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: usize = 5;

fn int(digits: &str) -> Item {
    Item::Int(digits.trim_start_matches('0').to_string())
}

fn string(value: &str, followed_by_digit: bool) -> Item {
    let v = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(v.to_string())
}

fn item(text: &str, followed_by_digit: bool) -> Item {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        int(text)
    } else {
        string(text, followed_by_digit)
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(d) => d.is_empty(),
        Item::Str(s) => s.is_empty(),
        Item::List(l) => l.is_empty(),
    }
}

/// Drops trailing null items, stepping over nested lists as Maven does.
fn normalize(list: &mut Vec<Item>) {
    for item in list.iter_mut() {
        if let Item::List(inner) = item {
            normalize(inner);
        }
    }
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

fn parse(version: &str) -> Vec<Item> {
    let v = version.to_ascii_lowercase();
    let bytes = v.as_bytes();
    // The path of open lists: each entry is the index chain from the root.
    let mut root: Vec<Item> = Vec::new();
    let mut depth = 0usize;
    fn current(root: &mut Vec<Item>, depth: usize) -> &mut Vec<Item> {
        let mut list = root;
        for _ in 0..depth {
            match list.last_mut() {
                Some(Item::List(inner)) => list = inner,
                _ => unreachable!("each open level ends in a list"),
            }
        }
        list
    }
    let mut start = 0;
    let mut is_digit = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'.' || c == b'-' {
            let list = current(&mut root, depth);
            if i == start {
                list.push(Item::Int(String::new()));
            } else {
                list.push(item(&v[start..i], false));
            }
            if c == b'-' {
                list.push(Item::List(Vec::new()));
                depth += 1;
            }
            start = i + 1;
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                let list = current(&mut root, depth);
                list.push(string(&v[start..i], true));
                list.push(Item::List(Vec::new()));
                depth += 1;
                start = i;
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                let list = current(&mut root, depth);
                list.push(int(&v[start..i]));
                list.push(Item::List(Vec::new()));
                depth += 1;
                start = i;
            }
            is_digit = false;
        }
        i += 1;
    }
    if bytes.len() > start {
        current(&mut root, depth).push(item(&v[start..], false));
    }
    normalize(&mut root);
    root
}

fn qualifier_key(s: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|q| *q == s) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), s),
    }
}

fn cmp_ints(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a` against `b`, where `None` is the missing item of a shorter list.
fn cmp_item(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (Some(x), None) => cmp_null(x),
        (None, Some(y)) => cmp_null(y).reverse(),
        (Some(Item::Int(x)), Some(Item::Int(y))) => cmp_ints(x, y),
        (Some(Item::Int(_)), Some(_)) => Ordering::Greater,
        (Some(_), Some(Item::Int(_))) => Ordering::Less,
        (Some(Item::Str(x)), Some(Item::Str(y))) => qualifier_key(x).cmp(&qualifier_key(y)),
        (Some(Item::Str(_)), Some(Item::List(_))) => Ordering::Less,
        (Some(Item::List(_)), Some(Item::Str(_))) => Ordering::Greater,
        (Some(Item::List(x)), Some(Item::List(y))) => cmp_lists(x, y),
    }
}

/// An item against nothing: how `1.0.1` compares to `1.0`.
fn cmp_null(item: &Item) -> Ordering {
    match item {
        Item::Int(d) => {
            if d.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Str(s) => qualifier_key(s).cmp(&(RELEASE_INDEX, "")),
        Item::List(l) => l.first().map_or(Ordering::Equal, cmp_null),
    }
}

fn cmp_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        match cmp_item(a.get(i), b.get(i)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// Every string is a Maven version; there is nothing to reject.
pub fn compare(a: &str, b: &str) -> Ordering {
    cmp_lists(&parse(a), &parse(b))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering;

    fn ascending(versions: &[&str]) {
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
                assert_eq!(compare(b, a), Ordering::Greater, "{b} > {a}");
            }
        }
    }

    #[test]
    fn qualifiers_order_as_maven_orders_them() {
        ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    #[test]
    fn release_spellings_are_equal_and_numbers_compare_numerically() {
        for same in [
            "1.0",
            "1.0.0",
            "1-0",
            "1.0-final",
            "1-ga",
            "1.0.0-release",
            "1.00",
        ] {
            assert_eq!(compare("1", same), Ordering::Equal, "1 == {same}");
        }
        assert_eq!(compare("1-cr1", "1-rc1"), Ordering::Equal);
        assert_eq!(compare("1a1", "1-alpha-1"), Ordering::Equal);
        ascending(&[
            "2.0.0-SNAPSHOT",
            "2.0.0",
            "2.9",
            "2.14.1",
            "2.15.0",
            "2.16.0",
            "2.17.0",
            "2.17.1",
            "10.0",
            "123456789012345678901234567890",
        ]);
        ascending(&["5.3.17", "5.3.18", "5.3.18.RELEASE1"]);
    }
}
