//! Passing over a whole object or array 64 bytes at a time, and over a string's plain run 16
//! bytes at a time, with SSE2's byte comparisons.
//!
//! Each block of 64 bytes becomes bitmasks, one bit per byte: quotes, backslashes, opening and
//! closing brackets, control characters. From those, without looking at each byte: which bytes
//! are escaped (runs of backslashes, counted by carry propagation), which are inside strings
//! (a running XOR of the unescaped quotes), and so which brackets are structural. Only the
//! structural brackets are visited one by one, to keep the nesting and check that each closes
//! its own kind. A typical object spends most of its bytes in strings, which this never visits.
//!
//! The result is only ever a fast answer for well-formed text: anything unusual — a control
//! character in a string, a backslash outside one, a mismatched bracket, nesting past
//! [`MAX_DEPTH`], the end of the text — gives `None`, and the caller passes over the value again
//! byte by byte to say exactly what is wrong and where.
//!
//! Compiled on x86_64 only, where SSE2 is always there; elsewhere the scanner works byte by
//! byte and eight bytes at a time inside strings.

use super::MAX_DEPTH;

/// One block's bytes of each kind, bit `i` for byte `i`.
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{`, `[`, `}` and `]`.
    bracket: u64,
    /// Bytes below 0x20, never allowed raw in a string; only found when the block has one.
    control: u64,
}

fn masks(block: &[u8; 64]) -> Masks {
    use safe_arch::{
        bitand_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, zeroed_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    // `{` (0x7b) and `[` (0x5b) differ only in 0x20, as do `}` (0x7d) and `]` (0x5d): with that
    // bit set, one comparison finds both, and nothing else becomes either.
    let case = set_splat_i8_m128i(0x20);
    let open = set_splat_i8_m128i(b'{' as i8);
    let close = set_splat_i8_m128i(b'}' as i8);
    // A byte below 0x20 is one whose top three bits are clear.
    let high = set_splat_i8_m128i(0xe0_u8 as i8);
    let zero = zeroed_m128i();
    let bits = |v| u64::from(move_mask_i8_m128i(v) as u16);
    let mut m = Masks {
        quote: 0,
        backslash: 0,
        bracket: 0,
        control: 0,
    };
    let (lanes, _) = block.as_chunks::<16>();
    let lanes: [_; 4] = std::array::from_fn(|i| load_unaligned_m128i(&lanes[i]));
    let mut any_control = zero;
    for (i, &v) in lanes.iter().enumerate() {
        let shift = 16 * i;
        m.quote |= bits(cmp_eq_mask_i8_m128i(v, quote)) << shift;
        m.backslash |= bits(cmp_eq_mask_i8_m128i(v, backslash)) << shift;
        let folded = bitor_m128i(v, case);
        let bracket = bitor_m128i(
            cmp_eq_mask_i8_m128i(folded, open),
            cmp_eq_mask_i8_m128i(folded, close),
        );
        m.bracket |= bits(bracket) << shift;
        any_control = bitor_m128i(
            any_control,
            cmp_eq_mask_i8_m128i(bitand_m128i(v, high), zero),
        );
    }
    // The API server writes JSON without line breaks: most blocks have no control byte at all.
    if bits(any_control) != 0 {
        for (i, &v) in lanes.iter().enumerate() {
            m.control |= bits(cmp_eq_mask_i8_m128i(bitand_m128i(v, high), zero)) << (16 * i);
        }
    }
    m
}

/// One bit for each of the 16 bytes at `at` that is a quote, a backslash or a control byte;
/// `None` when fewer than 16 bytes are left.
#[inline(always)]
pub(super) fn special_in_16(bytes: &[u8], at: usize) -> Option<u32> {
    use safe_arch::{
        bitand_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, zeroed_m128i,
    };
    let chunk: &[u8; 16] = bytes.get(at..at + 16)?.try_into().ok()?;
    let v = load_unaligned_m128i(chunk);
    let quote = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'"' as i8));
    let backslash = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'\\' as i8));
    let control = cmp_eq_mask_i8_m128i(
        bitand_m128i(v, set_splat_i8_m128i(0xe0_u8 as i8)),
        zeroed_m128i(),
    );
    Some(move_mask_i8_m128i(bitor_m128i(bitor_m128i(quote, backslash), control)) as u32)
}

/// Each bit the XOR of itself and every bit below it: from an opening quote up to (not
/// including) its closing one, the bits are set.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

const EVEN: u64 = 0x5555_5555_5555_5555;
const ODD: u64 = !EVEN;

/// The bytes escaped by a backslash: after a run of backslashes of odd length, the next byte
/// (the backslashes within a run escape each other, and are no quote either way). `carry` is
/// 1 when the previous block's last run was of odd length — this block's first byte is then
/// escaped — and is set for the next block.
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    if backslash == 0 && *carry == 0 {
        return 0;
    }
    // An escaped first byte, even a backslash, starts no run.
    let runs = backslash & !*carry;
    let starts = runs & !(runs << 1);
    // Adding a run's lowest bit carries through the run to the byte after it.
    let after_even_starts = runs.wrapping_add(starts & EVEN) & !runs;
    let after_odd_starts = runs.wrapping_add(starts & ODD) & !runs;
    // Odd length: the run starts and ends on bytes of different parity.
    let escaped = (after_even_starts & ODD) | (after_odd_starts & EVEN) | *carry;
    // A run that reaches the block's end carries on into the next one.
    *carry = u64::from(runs.leading_ones() % 2);
    escaped
}

/// The end (past its closing bracket) of the object or array whose opening bracket is at
/// `start`, if the value is well-formed; `None` otherwise, or when the text ends first.
pub(super) fn container_end(bytes: &[u8], start: usize) -> Option<usize> {
    // One bit per open level: set for an object, clear for an array.
    let mut stack: u128 = 0;
    let mut depth = 0usize;
    let mut escape_carry = 0u64;
    // All ones while a string goes on past a block's end.
    let mut string_carry = 0u64;
    let mut at = start;
    loop {
        let block: [u8; 64] = match bytes.get(at..at + 64) {
            Some(whole) => whole.try_into().ok()?,
            None => {
                let rest = bytes.get(at..).filter(|rest| !rest.is_empty())?;
                // Spaces are nothing to any mask.
                let mut padded = [b' '; 64];
                padded[..rest.len()].copy_from_slice(rest);
                padded
            }
        };
        let m = masks(&block);
        let quotes = m.quote & !escaped(m.backslash, &mut escape_carry);
        let in_string = prefix_xor(quotes) ^ string_carry;
        string_carry = ((in_string as i64) >> 63) as u64;
        // Escapes were found as if every byte were in a string: a backslash outside one (never
        // valid) would have hidden the quote after it.
        if m.control & in_string != 0 || m.backslash & !in_string != 0 {
            return None;
        }
        let mut brackets = m.bracket & !in_string;
        while brackets != 0 {
            let i = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            // `{` and `}` have 0x20 set, `[` and `]` not; `{` and `[` have 0x02 set, `}` and
            // `]` not.
            let object = u128::from(block[i] & 0x20 != 0);
            if block[i] & 0x02 != 0 {
                if depth == MAX_DEPTH {
                    return None;
                }
                stack = stack << 1 | object;
                depth += 1;
            } else {
                if depth == 0 || stack & 1 != object {
                    return None;
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(at + i + 1);
                }
            }
        }
        at += 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaped bytes, byte by byte.
    fn escaped_slowly(bytes: &[u8]) -> Vec<bool> {
        let mut out = vec![false; bytes.len()];
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                out[i + 1] = true;
                i += 2;
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn runs_of_backslashes_escape_by_their_parity_across_blocks() {
        // Runs of every length up to 70 ending at every position around the first block's end
        // and inside the second, before a quote.
        for len in 1..=70 {
            for end in len..=130 {
                let mut bytes = vec![b'a'; 192];
                for b in &mut bytes[end - len..end] {
                    *b = b'\\';
                }
                bytes[end] = b'"';
                let want = escaped_slowly(&bytes);
                let mut carry = 0;
                for (n, block) in bytes.chunks(64).enumerate() {
                    let mask = block
                        .iter()
                        .enumerate()
                        .fold(0u64, |m, (i, &b)| m | (u64::from(b == b'\\') << i));
                    let got = escaped(mask, &mut carry);
                    for i in 0..64 {
                        // Backslashes within a run may be marked either way: they are no quote.
                        if block[i] != b'\\' {
                            assert_eq!(
                                got >> i & 1 == 1,
                                want[64 * n + i],
                                "run of {len} ending at {end}: byte {}",
                                64 * n + i
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_string_across_blocks_hides_its_brackets() {
        let inner = "}]{[\\\"".repeat(30);
        let text = format!(r#"{{"a":"{inner}","b":[{{}}],"c":"\\"}}"#);
        assert_eq!(container_end(text.as_bytes(), 0), Some(text.len()));
        let whole: serde_json::Value = serde_json::from_str(&text).expect("valid");
        assert_eq!(whole["b"], serde_json::json!([{}]));
    }

    #[test]
    fn anything_unusual_is_left_to_the_byte_by_byte_scan() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let ok_deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        for text in [
            r#"{"a":[}"#,
            r#"{"a":"b}"#,
            r#"{"a":\"}"}"#,
            "{\"a\":\"\n\"}",
            r#"{"a":1"#,
            &deep,
        ] {
            assert_eq!(container_end(text.as_bytes(), 0), None, "{text}");
        }
        assert_eq!(
            container_end(ok_deep.as_bytes(), 0),
            Some(ok_deep.len()),
            "{MAX_DEPTH} levels are allowed"
        );
        // A control character outside strings is whitespace or nothing the skip reads.
        let spaced = "{\n\t\"a\" :\r\n[ 1 ]}";
        assert_eq!(container_end(spaced.as_bytes(), 0), Some(spaced.len()));
    }
}
