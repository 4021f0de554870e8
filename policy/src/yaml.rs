//! A bounded YAML → JSON-value composer on top of `saphyr-parser`'s event stream.
//!
//! Why not a serde YAML crate: measured in `benches/yaml.rs`, serde-saphyr spends ~270 µs on a
//! 4.8 KB Deployment and the stale serde_yaml_ng ~125 µs; the saphyr-parser event stream alone
//! takes ~90 µs. Composing a `serde_json::Value` from the events and handing it to the
//! k8s-openapi deserializers keeps a maintained, pure-Rust parser while staying near the
//! libyaml-based fork, and the intermediate value lets us dispatch on `kind` first.
//!
//! Bounds: nesting depth, number of nodes (alias expansion cannot blow up — "billion laughs"),
//! and scalars are resolved with the YAML 1.2 core schema.
//!
//! ```text
//!   bytes ──split_documents──▶ [doc text + first line] ──parse_document──▶ serde_json::Value
//! ```

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted in one document; real manifests stay well under 30.
pub const MAX_DEPTH: usize = 100;
/// Most nodes (after alias expansion) accepted in one document.
pub const MAX_NODES: usize = 1_000_000;

/// One YAML document cut out of a multi-document stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentText<'a> {
    pub text: &'a str,
    /// 1-based line of the document's first line in the whole input.
    pub first_line: usize,
}

impl DocumentText<'_> {
    /// 1-based line of the document's first content line (after comments, blanks and markers):
    /// where a report should point for the object.
    pub fn content_line(&self) -> usize {
        let skipped = self
            .text
            .lines()
            .take_while(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#') || l.starts_with('%') || t == "---"
            })
            .count();
        self.first_line + skipped
    }
}

/// Why a YAML document could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct YamlError {
    pub message: String,
    /// 1-based line in the whole input, when the parser knows it.
    pub line: Option<usize>,
}

/// Splits a YAML stream into its documents at `---` / `...` markers at the start of a line.
///
/// YAML forbids those markers inside content (even in block scalars), so a line split is exact
/// and lets each document be parsed — and fail — on its own, in parallel.
pub fn split_documents<'a>(input: &'a str) -> Vec<DocumentText<'a>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    let push = |docs: &mut Vec<DocumentText<'a>>, from: usize, to: usize, line: usize| {
        let text = &input[from..to];
        if has_content(text) {
            docs.push(DocumentText {
                text,
                first_line: line,
            });
        }
    };
    for (line_no, line) in (1usize..).zip(input.split_inclusive('\n')) {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let is_start = is_marker(trimmed, "---");
        let is_end = is_marker(trimmed, "...");
        if is_start || is_end {
            push(&mut docs, start, offset, start_line);
            // `--- {a: 1}` keeps content on the marker line: the document starts at the marker.
            if is_start {
                start = offset;
                start_line = line_no;
            } else {
                start = offset + line.len();
                start_line = line_no + 1;
            }
        }
        offset += line.len();
    }
    push(&mut docs, start, input.len(), start_line);
    docs
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// True when the text holds anything but blank lines, comments, directives and markers.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !(t.is_empty()
            || t.starts_with('#')
            || l.starts_with('%')
            || t == "---"
            || t == "..."
            || (is_marker(l, "---") && t[3..].trim_start().starts_with('#')))
    })
}

/// Parses one document into a JSON value. `first_line` offsets the reported line numbers.
pub fn parse_document(doc: DocumentText<'_>) -> Result<Value, YamlError> {
    let mut composer = Composer {
        parser: Parser::new_from_str(doc.text),
        anchors: Vec::new(),
        nodes: 0,
        line_offset: doc.first_line.saturating_sub(1),
        last_line: doc.first_line,
    };
    composer.document()
}

struct Composer<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: Vec<(usize, Value)>,
    nodes: usize,
    line_offset: usize,
    last_line: usize,
}

impl<'a> Composer<'a> {
    fn next(&mut self) -> Result<Event<'a>, YamlError> {
        match self.parser.next() {
            Some(Ok((event, span))) => {
                self.last_line = span.start.line() + self.line_offset;
                Ok(event)
            }
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(self.error("unexpected end of YAML input")),
        }
    }

    fn scan_error(&self, e: &ScanError) -> YamlError {
        YamlError {
            message: e.info().to_string(),
            line: Some(e.marker().line() + self.line_offset),
        }
    }

    fn error(&self, message: impl Into<String>) -> YamlError {
        YamlError {
            message: message.into(),
            line: Some(self.last_line),
        }
    }

    fn document(&mut self) -> Result<Value, YamlError> {
        let mut root = None;
        loop {
            match self.next()? {
                Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::Nothing => {}
                event => {
                    if root.is_some() {
                        return Err(self.error("more than one document where one was expected"));
                    }
                    root = Some(self.node(event, 0)?);
                }
            }
        }
        Ok(root.unwrap_or(Value::Null))
    }

    fn count(&mut self) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(format!(
                "document has more than {MAX_NODES} nodes (after expanding aliases)"
            )));
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, depth: usize) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("document nests deeper than {MAX_DEPTH} levels")));
        }
        self.count()?;
        let (anchor, value) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                (anchor, resolve_scalar(&text, style, tag.as_deref()))
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Event::SequenceEnd => break,
                        event => items.push(self.node(event, depth + 1)?),
                    }
                }
                (anchor, Value::Array(items))
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                let mut merged = Map::new();
                loop {
                    let key = match self.next()? {
                        Event::MappingEnd => break,
                        event => self.node(event, depth + 1)?,
                    };
                    let event = self.next()?;
                    let value = self.node(event, depth + 1)?;
                    if key == Value::String("<<".into()) {
                        merge_into(&mut merged, value);
                        continue;
                    }
                    let key = match key {
                        Value::String(s) => s,
                        Value::Null => "null".to_string(),
                        Value::Bool(_) | Value::Number(_) => key.to_string(),
                        _ => return Err(self.error("mapping keys must be scalars")),
                    };
                    if map.contains_key(&key) {
                        return Err(self.error(format!("duplicate mapping key `{key}`")));
                    }
                    map.insert(key, value);
                }
                // Keys written in the mapping win over merged ones.
                merge_into(&mut map, Value::Object(merged));
                (anchor, Value::Object(map))
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.error("alias to an unknown anchor"))?;
                self.nodes += count_nodes(&value);
                if self.nodes > MAX_NODES {
                    return Err(self.error(format!(
                        "document has more than {MAX_NODES} nodes (after expanding aliases)"
                    )));
                }
                return Ok(value);
            }
            other => return Err(self.error(format!("unexpected YAML event {other:?}"))),
        };
        if anchor != 0 {
            self.anchors.push((anchor, value.clone()));
        }
        Ok(value)
    }
}

/// `<<: *base` merge keys: keys already present win (the first source of several wins too).
fn merge_into(map: &mut Map<String, Value>, value: Value) {
    let sources = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        if let Value::Object(source) = source {
            for (k, v) in source {
                map.entry(k).or_insert(v);
            }
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.2 core schema resolution of a scalar.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("tag:yaml.org,2002:str") | Some("!!str") => return Value::String(text.to_string()),
        Some(_) | None => {}
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Some(n) = parse_int(text) {
            return Value::Number(n);
        }
        if let Some(n) = parse_float(text) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (digits, radix) = if let Some(h) = text.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = text.strip_prefix("0o") {
        (o, 8)
    } else {
        (text, 10)
    };
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 && unsigned.len() != digits.len() {
        return None;
    }
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if let Ok(i) = i64::from_str_radix(digits, radix) {
        return Some(Number::from(i));
    }
    u64::from_str_radix(digits, radix).ok().map(Number::from)
}

fn parse_float(text: &str) -> Option<Number> {
    // Only the core-schema float shapes: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.chars().all(|c| c.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

/// Block-style YAML for a JSON value, as Rampart writes the manifests it generates
/// (`deploy/`): mappings and sequences indented by two, scalars in JSON notation (valid YAML),
/// keys plain when they are simple. [`parse_document`] reads it back as the same value.
pub fn to_block_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_block(v, 0, &mut out);
    out
}

/// [`to_block_yaml`] at an indent: mappings and sequences indented by two, scalars in JSON
/// notation (valid YAML), keys plain when they are simple.
fn write_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
                    && !k.is_empty()
                {
                    k.clone()
                } else {
                    Value::String(k.clone()).to_string()
                };
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write_block(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write_block(v, indent, out);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        write_block(item, indent + 2, &mut inner);
                        // The first line of the item goes after the dash.
                        let inner = inner.replacen(&format!("{pad}  "), &format!("{pad}- "), 1);
                        out.push_str(&inner);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(v))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, YamlError> {
        parse_document(DocumentText {
            text,
            first_line: 1,
        })
    }

    #[test]
    fn splits_documents_and_keeps_line_numbers() {
        let input = "# header\na: 1\n---\nb: 2\n--- \n# only a comment\n---\nc: |\n  text\n...\n";
        let docs = split_documents(input);
        let lines: Vec<_> = docs.iter().map(|d| d.first_line).collect();
        assert_eq!(lines, vec![1, 3, 7]);
        assert_eq!(parse(docs[1].text).expect("valid"), json!({"b": 2}));
        assert_eq!(parse(docs[2].text).expect("valid"), json!({"c": "text\n"}));
    }

    #[test]
    fn a_marker_inside_a_word_does_not_split() {
        let docs = split_documents("a: ---x\nb: '---'\n");
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let v = parse(
            "a: 1\nb: -2\nc: 1.5\nd: true\ne: ~\nf: '1'\ng: yes\nh: 0x1F\ni: 1e3\nj: 1.2.3\nk: 500m\nl: !!str 3\n",
        )
        .expect("valid");
        assert_eq!(
            v,
            json!({"a": 1, "b": -2, "c": 1.5, "d": true, "e": null, "f": "1", "g": "yes",
                   "h": 31, "i": 1000.0, "j": "1.2.3", "k": "500m", "l": "3"})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = parse("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n").expect("valid");
        assert_eq!(
            v,
            json!({"base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse(&doc).expect_err("must be bounded");
        assert!(err.message.contains("nodes"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let doc = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        let err = parse(&doc).expect_err("must be bounded");
        // The parser's own recursion guard or ours, whichever trips first: an error either way.
        assert!(
            err.message.contains("nests deeper") || err.message.contains("recursion limit"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_carry_the_absolute_line() {
        let err = parse_document(DocumentText {
            text: "a: 1\nb: [1, 2\n",
            first_line: 10,
        })
        .expect_err("unterminated flow sequence");
        assert!(err.line.is_some_and(|l| l >= 10), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = parse("a: 1\na: 2\n").expect_err("duplicate");
        assert!(err.message.contains("duplicate mapping key `a`"), "{err}");
    }
}
