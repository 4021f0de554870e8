//! A structural JSON scanner: it walks objects key by key and arrays element by element, reads
//! strings (borrowed unless escaped), booleans and numbers, and hands out the exact text of any
//! value, finding its end by its brackets and strings alone. The admission controller walks the
//! AdmissionReview envelope with it and [`crate::workload::decode_workload_json`] reads the
//! workload object with it; what neither reads — `oldObject`, half of a typical UPDATE review,
//! `managedFields`, `status` — is passed over without being tokenized, at a fraction of what a
//! full parse costs.
//!
//! A skipped value must still be well-formed as far as structure goes — balanced and matching
//! brackets, terminated strings without raw control characters, at most [`MAX_DEPTH`] levels —
//! but its numbers and literals are not checked: nothing reads them. Values that are read are
//! checked against JSON's grammar.

use std::borrow::Cow;

#[cfg(target_arch = "x86_64")]
mod blocks;

/// Deepest nesting accepted, as serde_json's own limit.
pub const MAX_DEPTH: usize = 128;

/// Where and why the text is not JSON the scanner can walk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct ScanError {
    pub what: &'static str,
    pub at: usize,
}

/// A cursor over JSON text.
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    /// No key read yet in the object being walked (so no comma is due).
    first: bool,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            pos: 0,
            first: true,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn error<T>(&self, what: &'static str) -> Result<T, ScanError> {
        Err(ScanError { what, at: self.pos })
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8, what: &'static str) -> Result<(), ScanError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => self.error(what),
            None => self.error("unexpected end of the body"),
        }
    }

    /// Enters the object that is the next value.
    pub fn begin_object(&mut self) -> Result<(), ScanError> {
        self.eat(b'{', "expected an object")?;
        self.first = true;
        Ok(())
    }

    /// Where the cursor is, to come back to with [`Scanner::reset`].
    pub fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            first: self.first,
        }
    }

    /// Moves the cursor back to `mark`.
    pub fn reset(&mut self, mark: Mark) {
        self.pos = mark.pos;
        self.first = mark.first;
    }

    /// An error of `what` at the cursor.
    pub fn error_here(&self, what: &'static str) -> ScanError {
        ScanError { what, at: self.pos }
    }

    /// Whether the next value is a string.
    pub fn at_string(&mut self) -> bool {
        self.peek() == Some(b'"')
    }

    /// The text from `mark` to the cursor, without the whitespace before the value.
    pub fn since(&self, mark: Mark) -> &'a str {
        self.text[mark.pos..self.pos].trim_start()
    }

    /// Enters the array that is the next value.
    pub fn begin_array(&mut self) -> Result<(), ScanError> {
        self.eat(b'[', "expected an array")?;
        self.first = true;
        Ok(())
    }

    /// Whether the array being walked has another element (which is then next), consuming its
    /// end otherwise.
    pub fn next_element(&mut self) -> Result<bool, ScanError> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                self.first = false;
                return Ok(false);
            }
            Some(b',') if !self.first => self.pos += 1,
            Some(_) if self.first => {}
            Some(_) => return self.error("expected ',' or the end of the array"),
            None => return self.error("unexpected end of the body"),
        }
        self.first = false;
        Ok(true)
    }

    /// The next value, `true` or `false`.
    pub fn boolean(&mut self) -> Result<bool, ScanError> {
        let (value, literal): (bool, &[u8]) = match self.peek() {
            Some(b't') => (true, b"true"),
            Some(b'f') => (false, b"false"),
            _ => return self.error("expected true or false"),
        };
        let end = self.pos + literal.len();
        if !self.bytes()[self.pos..].starts_with(literal) || !ends_literal(self.bytes(), end) {
            return self.error("expected true or false");
        }
        self.pos = end;
        Ok(value)
    }

    /// The text of the next value, a JSON number (checked against JSON's grammar).
    pub fn number(&mut self) -> Result<&'a str, ScanError> {
        self.skip_whitespace();
        let bytes = self.bytes();
        let start = self.pos;
        let mut at = start;
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let whole = at;
        let n = digits(&mut at);
        if n == 0 || (n > 1 && bytes[whole] == b'0') {
            return self.error("expected a number");
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return self.error("expected a number");
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return self.error("expected a number");
            }
        }
        if !ends_literal(bytes, at) {
            return self.error("expected a number");
        }
        self.pos = at;
        Ok(&self.text[start..at])
    }

    /// The next value, a whole number that fits an `i64` (`1.0`, `1e3` and — as serde_json
    /// reads it, a float — `-0` are not).
    pub fn integer(&mut self) -> Result<i64, ScanError> {
        self.skip_whitespace();
        let at = self.pos;
        let text = self.number()?;
        match text.parse() {
            Ok(0) if text.starts_with('-') => {}
            Ok(n) => return Ok(n),
            Err(_) => {}
        }
        Err(ScanError {
            what: "expected a whole number",
            at,
        })
    }

    /// Whether the next value is `null` (consumed if so).
    pub fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.bytes()[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// The next key of the object being walked (its value is next), or `None` once the object
    /// has ended.
    #[inline(always)]
    pub fn next_key(&mut self) -> Result<Option<Cow<'a, str>>, ScanError> {
        let bytes = self.bytes();
        let mut pos = skip_spaces(bytes, self.pos);
        match bytes.get(pos) {
            Some(b'}') => {
                self.pos = pos + 1;
                // The enclosing object, if any, has read the key of this value.
                self.first = false;
                return Ok(None);
            }
            Some(b',') if !self.first => pos = skip_spaces(bytes, pos + 1),
            Some(b'"') if self.first => {}
            Some(_) => {
                return Err(ScanError::at(
                    pos,
                    "expected a key or the end of the object",
                ));
            }
            None => return Err(ScanError::at(pos, "unexpected end of the body")),
        }
        if bytes.get(pos) != Some(&b'"') {
            return Err(ScanError::at(pos, "expected a key"));
        }
        let (end, escaped) =
            string_end(bytes, pos + 1).map_err(|(at, what)| ScanError { what, at })?;
        let key = if escaped {
            Cow::Owned(unescape(&self.text[pos..end], pos)?)
        } else {
            Cow::Borrowed(&self.text[pos + 1..end - 1])
        };
        let colon = skip_spaces(bytes, end);
        if bytes.get(colon) != Some(&b':') {
            return Err(ScanError::at(colon, "expected ':' after a key"));
        }
        self.pos = colon + 1;
        self.first = false;
        Ok(Some(key))
    }

    /// The next value, a string, decoded (borrowed unless it holds escapes).
    pub fn string(&mut self) -> Result<Cow<'a, str>, ScanError> {
        match self.peek() {
            Some(b'"') => self.string_literal(),
            Some(_) => self.error("expected a string"),
            None => self.error("unexpected end of the body"),
        }
    }

    /// The string literal at the cursor, decoded.
    fn string_literal(&mut self) -> Result<Cow<'a, str>, ScanError> {
        let start = self.pos;
        let escaped = self.skip_string()?;
        let literal = &self.text[start..self.pos];
        if !escaped {
            return Ok(Cow::Borrowed(&literal[1..literal.len() - 1]));
        }
        unescape(literal, start).map(Cow::Owned)
    }

    /// Moves past the string literal at the cursor; whether it holds escapes.
    fn skip_string(&mut self) -> Result<bool, ScanError> {
        match string_end(self.bytes(), self.pos + 1) {
            Ok((end, escaped)) => {
                self.pos = end;
                Ok(escaped)
            }
            Err((at, what)) => {
                self.pos = at;
                self.error(what)
            }
        }
    }

    /// The text of the next value, moving past it.
    pub fn value(&mut self) -> Result<&'a str, ScanError> {
        let Some(first) = self.peek() else {
            return self.error("unexpected end of the body");
        };
        let start = self.pos;
        match first {
            b'"' => {
                self.skip_string()?;
            }
            b'{' | b'[' => match fast_container_end(self.bytes(), self.pos) {
                Some(end) => self.pos = end,
                None => self.skip_container()?,
            },
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let bytes = self.bytes();
                while let Some(b) = bytes.get(self.pos) {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.pos += 1;
                }
            }
            _ => return self.error("expected a value"),
        }
        Ok(&self.text[start..self.pos])
    }

    /// Moves past the object or array at the cursor, matching its brackets, byte by byte; on
    /// broken text, says where and why.
    fn skip_container(&mut self) -> Result<(), ScanError> {
        let bytes = self.bytes();
        let mut pos = self.pos;
        // One bit per open level: set for an object, clear for an array.
        let mut open: u128 = 0;
        let mut depth = 0usize;
        // Between strings the runs are a few bytes (`":"`, `",`, `:{`, numbers): byte by byte,
        // one table look-up each.
        let failed = 'scan: loop {
            let Some(&b) = bytes.get(pos) else {
                break (pos, "unexpected end of the body");
            };
            pos += 1;
            match STRUCTURAL[usize::from(b)] {
                PLAIN => {}
                QUOTE => loop {
                    match string_end(bytes, pos) {
                        Ok((end, _)) => pos = end,
                        Err(e) => break 'scan e,
                    }
                    // A key and its string value, or one string and the next of a list: the
                    // next string starts two bytes on, without going round the outer loop.
                    match bytes.get(pos..pos + 2) {
                        Some([b':' | b',', b'"']) => pos += 2,
                        _ => break,
                    }
                },
                OPEN => {
                    if depth == MAX_DEPTH {
                        break (pos - 1, "nested too deeply");
                    }
                    open = (open << 1) | u128::from(b == b'{');
                    depth += 1;
                }
                _ => {
                    if depth == 0 || (open & 1 == 1) != (b == b'}') {
                        break (pos - 1, "mismatched bracket");
                    }
                    open >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        self.pos = pos;
                        return Ok(());
                    }
                }
            }
        };
        self.pos = failed.0;
        self.error(failed.1)
    }

    /// Checks that nothing but whitespace follows.
    pub fn end(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.error("trailing characters after the review"),
        }
    }
}

/// The end of the well-formed object or array at `start`, 64 bytes at a time where the
/// processor has the instructions for it; `None` when the slower scan is to be used.
#[cfg(target_arch = "x86_64")]
fn fast_container_end(bytes: &[u8], start: usize) -> Option<usize> {
    blocks::container_end(bytes, start)
}

#[cfg(not(target_arch = "x86_64"))]
fn fast_container_end(_: &[u8], _: usize) -> Option<usize> {
    None
}

/// The first byte at or after `at` that is not JSON whitespace.
fn skip_spaces(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

impl ScanError {
    fn at(at: usize, what: &'static str) -> ScanError {
        ScanError { what, at }
    }
}

/// A string literal with escapes, decoded; kept out of line, as the rare case, so that reading
/// plain strings stays small.
#[cold]
#[inline(never)]
fn unescape(literal: &str, at: usize) -> Result<String, ScanError> {
    serde_json::from_str::<String>(literal).map_err(|_| ScanError {
        what: "invalid escape in a string",
        at,
    })
}

/// A position of the cursor ([`Scanner::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pos: usize,
    first: bool,
}

/// Whether a literal or number ending before `at` is followed by what may follow a value.
fn ends_literal(bytes: &[u8], at: usize) -> bool {
    matches!(
        bytes.get(at),
        None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
    )
}

const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;

/// What each byte is to bracket matching outside strings.
const STRUCTURAL: [u8; 256] = {
    let mut table = [PLAIN; 256];
    table[b'"' as usize] = QUOTE;
    table[b'{' as usize] = OPEN;
    table[b'[' as usize] = OPEN;
    table[b'}' as usize] = CLOSE;
    table[b']' as usize] = CLOSE;
    table
};

/// Bytes looked at together for the end of a plain run in a string: sixteen where SSE2 compares
/// them at once, a word of eight elsewhere.
#[cfg(target_arch = "x86_64")]
const CHUNK: usize = 16;
#[cfg(not(target_arch = "x86_64"))]
const CHUNK: usize = 8;

/// Where the first quote, backslash or control byte of the chunk at `at` is (`CHUNK` when it
/// has none); `None` when fewer than `CHUNK` bytes are left.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn chunk_special(bytes: &[u8], at: usize) -> Option<usize> {
    blocks::special_in_16(bytes, at).map(|mask| {
        if mask == 0 {
            CHUNK
        } else {
            mask.trailing_zeros() as usize
        }
    })
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn chunk_special(bytes: &[u8], at: usize) -> Option<usize> {
    word(bytes, at).map(|v| match special_bytes(v) {
        0 => CHUNK,
        flagged => flagged.trailing_zeros() as usize / 8,
    })
}

/// Eight bytes as a word, lowest address lowest.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The high bit of each byte of `v` that is a quote, a backslash or a control; the lowest set
/// bit is exact (borrows only ever flag bytes above a true match). A byte equal to `c` is one
/// where `v ^ c` is zero, found as "below 1"; a byte below 0x20 is found directly; the three
/// share one mask of the bytes without their high bit (the same in `v`, `v ^ 0x22..` and
/// `v ^ 0x5c..`, as neither constant has it).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn special_bytes(v: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = 0x2222_2222_2222_2222;
    const BACKSLASHES: u64 = 0x5c5c_5c5c_5c5c_5c5c;
    const SPACES: u64 = 0x2020_2020_2020_2020;
    let quote = (v ^ QUOTES).wrapping_sub(ONES);
    let backslash = (v ^ BACKSLASHES).wrapping_sub(ONES);
    let control = v.wrapping_sub(SPACES);
    (quote | backslash | control) & !v & HIGHS
}

/// The end (past the closing quote) of the string whose body starts at `from`, and whether it
/// holds escapes; or where and why it is broken.
// Inlined into its callers: the skip loop calls it for every string it passes over.
#[inline(always)]
fn string_end(bytes: &[u8], from: usize) -> Result<(usize, bool), (usize, &'static str)> {
    let mut at = from;
    let mut escaped = false;
    loop {
        while let Some(offset) = chunk_special(bytes, at) {
            at += offset;
            if offset != CHUNK {
                break;
            }
        }
        // At a special byte, or within the last chunk's bytes.
        match bytes.get(at) {
            Some(b'"') => return Ok((at + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                // The escaped byte is never structural (`\uXXXX` is hex digits after it).
                at += 2;
            }
            Some(&b) if b < 0x20 => return Err((at, "control character in a string")),
            Some(_) => at += 1,
            None => return Err((bytes.len(), "unterminated string")),
        }
    }
}

/// The first byte at or after `from` that ends or interrupts a JSON string's plain run (quote,
/// backslash, a control): a chunk at a time, the last few bytes as one chunk too.
pub fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = chunk_special(bytes, at) {
        at += offset;
        if offset != CHUNK {
            return Some(at);
        }
    }
    // Fewer than a chunk's bytes are left: looked at as one chunk padded with spaces, which
    // are never special (short texts, such as most of a denial's pieces, end here at once).
    let rest = bytes.get(at..).filter(|rest| !rest.is_empty())?;
    let mut padded = [b' '; CHUNK];
    padded.get_mut(..rest.len())?.copy_from_slice(rest);
    chunk_special(&padded, 0)
        .filter(|&i| i < rest.len())
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every top-level value's key and text.
    fn fields(text: &str) -> Result<Vec<(String, String)>, ScanError> {
        let mut s = Scanner::new(text);
        s.begin_object()?;
        let mut out = Vec::new();
        while let Some(k) = s.next_key()? {
            out.push((k.into_owned(), s.value()?.to_string()));
        }
        s.end()?;
        Ok(out)
    }

    #[test]
    fn values_are_found_whole_whatever_they_hold() {
        let text = r#" { "a" : {"x":[1,{"y":"}]\"{"}],"z":null} ,"b":"q\"uo\\te","c\u0041":-1.5e3,
            "d":[],"e":{},"f":true, "g":"é✓"}"#;
        let got = fields(text).expect("scans");
        let want = [
            ("a", r#"{"x":[1,{"y":"}]\"{"}],"z":null}"#),
            ("b", r#""q\"uo\\te""#),
            ("cA", "-1.5e3"),
            ("d", "[]"),
            ("e", "{}"),
            ("f", "true"),
            ("g", r#""é✓""#),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
        // Each span is the value serde reads from the whole text.
        let whole: serde_json::Value = serde_json::from_str(text).expect("json");
        for (k, v) in want {
            let span: serde_json::Value = serde_json::from_str(v).expect("span is JSON");
            assert_eq!(whole[k], span, "{k}");
        }
    }

    #[test]
    fn strings_are_decoded_and_borrowed_when_they_can_be() {
        let mut s = Scanner::new(r#"{"k":"plain","e":"a\u0040b\n"}"#);
        s.begin_object().expect("object");
        assert_eq!(s.next_key().expect("key").as_deref(), Some("k"));
        assert!(matches!(s.string(), Ok(Cow::Borrowed("plain"))));
        assert_eq!(s.next_key().expect("key").as_deref(), Some("e"));
        assert_eq!(s.string().expect("string"), "a@b\n");
        assert_eq!(s.next_key().expect("end"), None);
    }

    #[test]
    fn nested_objects_keep_their_own_commas() {
        let mut s = Scanner::new(r#"{"r":{},"s":{"t":1},"u":2}"#);
        s.begin_object().expect("object");
        let mut seen = Vec::new();
        while let Some(k) = s.next_key().expect("key") {
            if k == "u" {
                seen.push(format!("u={}", s.value().expect("value")));
                continue;
            }
            s.begin_object().expect("inner");
            seen.push(k.to_string());
            while let Some(inner) = s.next_key().expect("inner key") {
                seen.push(format!("{k}.{inner}={}", s.value().expect("value")));
            }
        }
        s.end().expect("end");
        assert_eq!(seen, ["r", "s", "s.t=1", "u=2"]);
    }

    #[test]
    fn broken_structure_is_refused_with_where() {
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let cases: &[(&str, &str)] = &[
            ("", "unexpected end of the body"),
            ("[]", "expected an object"),
            (r#"{"a":1"#, "unexpected end of the body"),
            (r#"{"a":{"b":[1}}"#, "mismatched bracket"),
            (r#"{"a":"open}"#, "unterminated string"),
            ("{\"a\":\"tab\there\"}", "control character in a string"),
            (r#"{"a" 1}"#, "expected ':' after a key"),
            (
                r#"{"a":1 "b":2}"#,
                "expected a key or the end of the object",
            ),
            (r#"{,"a":1}"#, "expected a key or the end of the object"),
            (r#"{"a":1,}"#, "expected a key"),
            (r#"{"a":}"#, "expected a value"),
            (r#"{"a":1} x"#, "trailing characters after the review"),
            (r#"{"\x":1}"#, "invalid escape in a string"),
            (&deep, "nested too deeply"),
        ];
        for (text, what) in cases {
            let mut s = Scanner::new(text);
            let result = (|| {
                s.begin_object()?;
                while s.next_key()?.is_some() {
                    s.value()?;
                }
                s.end()
            })();
            assert_eq!(result.map_err(|e| e.what), Err(*what), "{text}");
        }
    }

    #[test]
    fn the_first_special_byte_is_found_at_every_offset() {
        for len in 0..48 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x01, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    // Bytes on either side of the special ranges are plain.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0xc3][i % 8];
                    }
                    bytes[at] = special;
                    assert_eq!(next_special(&bytes, 0), Some(at), "{len} {at} {special}");
                    assert_eq!(next_special(&bytes, at + 1), None, "{len} {at} {special}");
                    // The eight-byte scan of other processors finds the same byte.
                    let from = at.saturating_sub(7);
                    if let Some(v) = word(&bytes, from) {
                        let flagged = special_bytes(v);
                        assert_eq!(from + flagged.trailing_zeros() as usize / 8, at);
                    }
                }
            }
        }
    }

    /// xorshift64*: deterministic, so a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
        }
    }

    /// Random JSON text: every kind of value, strings with escapes and multi-byte characters,
    /// nesting, spacing.
    fn value(out: &mut String, rng: &mut Rng, depth: usize) {
        const STRINGS: &[&str] = &[
            r#""""#,
            r#""k""#,
            r#""f:metadata""#,
            r#""k:{\"name\":\"c\"}""#,
            r#""a long value past the eight bytes of a word, twice over""#,
            r#""\\""#,
            r#""ends in a backslash\\""#,
            r#""\u00e9\ud83d\ude00 é ✓""#,
            r#""{[}]""#,
            r#""tab\t""#,
            // Runs of backslashes and escaped quotes long enough to cross a 64-byte block.
            r#""\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\""#,
            r#""k:{\"name\":\"a container with a name of some length\",\"port\":8080}\\\"{}""#,
        ];
        const SCALARS: &[&str] = &[
            "0",
            "-1.5e3",
            "12345678901234567890",
            "true",
            "false",
            "null",
        ];
        let space = |out: &mut String, rng: &mut Rng| {
            if rng.below(6) == 0 {
                out.push_str([" ", "\n  ", "\t", "\r\n"][rng.below(4)]);
            }
        };
        match if depth > 6 {
            rng.below(2)
        } else {
            rng.below(4)
        } {
            0 => out.push_str(STRINGS[rng.below(STRINGS.len())]),
            1 => out.push_str(SCALARS[rng.below(SCALARS.len())]),
            kind => {
                let object = kind == 2;
                out.push(if object { '{' } else { '[' });
                for i in 0..rng.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    space(out, rng);
                    if object {
                        out.push_str(STRINGS[rng.below(STRINGS.len())]);
                        space(out, rng);
                        out.push(':');
                        space(out, rng);
                    }
                    value(out, rng, depth + 1);
                    space(out, rng);
                }
                out.push(if object { '}' } else { ']' });
            }
        }
    }

    #[test]
    fn generated_values_are_passed_over_whole_and_corrupted_ones_never_panic() {
        for seed in 1..=3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut v = String::new();
            value(&mut v, &mut rng, 0);
            let text = format!(r#"{{"a":{v},"b":1}}"#);
            if v.starts_with(['{', '[']) {
                assert_eq!(
                    fast_container_end(text.as_bytes(), 5),
                    Some(5 + v.len()),
                    "seed {seed}"
                );
            }
            assert_eq!(
                fields(&text).expect("scans"),
                [
                    ("a".to_string(), v.clone()),
                    ("b".to_string(), "1".to_string())
                ],
                "seed {seed}"
            );
            // One byte changed: whatever serde_json reads, the scanner reads the same way; and
            // nothing panics.
            let mut bytes = text.clone().into_bytes();
            let at = rng.below(bytes.len());
            bytes[at] = b"{}[]\\\",:x 0"[rng.below(11)];
            let Ok(corrupt) = String::from_utf8(bytes) else {
                continue;
            };
            // Where the fast skip answers, it agrees with the byte-by-byte one.
            for start in [0, 5] {
                if let Some(end) = fast_container_end(corrupt.as_bytes(), start) {
                    let mut s = Scanner::new(&corrupt);
                    s.pos = start;
                    assert_eq!(
                        s.skip_container().map(|()| s.pos),
                        Ok(end),
                        "seed {seed} at {start}: {corrupt}"
                    );
                }
            }
            let scanned = fields(&corrupt);
            if let Ok(whole) = serde_json::from_str::<serde_json::Value>(&corrupt) {
                let scanned = scanned.expect("valid JSON scans");
                for (k, span) in scanned {
                    let span: serde_json::Value = serde_json::from_str(&span).expect("span");
                    assert_eq!(whole[&k], span, "seed {seed}: {corrupt}");
                }
            }
        }
    }
}
