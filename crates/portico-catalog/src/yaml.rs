//! Catalog YAML to JSON values, the way a stock Backstage catalog reads it: YAML 1.2 core schema,
//! several documents per file, merge keys left alone, duplicate keys refused, empty documents
//! skipped. Every document is read on its own, so one broken document never hides the others, and
//! hostile input (alias bombs, deep nesting, control characters, bad UTF-8) gets a clear error fast.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused: real entities stay far below it, and it keeps every
/// later recursive walk of the value safe.
pub const MAX_DEPTH: usize = 128;
/// Nodes that aliases may add to one document; enough for any honest use of anchors, far too few
/// for a "billion laughs".
pub const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML document of a file: where it starts and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDocument {
    /// Position of the document in its file, from 0.
    pub index: usize,
    /// Line (from 1) where the document starts.
    pub line: usize,
    /// The document's value; `Ok(None)` for an empty document.
    pub content: Result<Option<Value>, YamlError>,
}

/// A document that cannot be read, with the position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("YAML error at line {line}, column {column}: {message}")]
pub struct YamlError {
    /// Line (from 1) of the problem.
    pub line: usize,
    /// Column (from 1) of the problem.
    pub column: usize,
    /// What is wrong, in plain words.
    pub message: String,
}

/// Splits `input` into documents and reads each one; never fails as a whole.
pub fn parse_documents(input: &[u8]) -> Vec<YamlDocument> {
    let input = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
    let mut documents = Vec::new();
    for segment in split_documents(input) {
        read_segment(
            &input[segment.start..segment.end],
            segment.first_line,
            &mut documents,
        );
    }
    documents
}

/// Reads text that holds exactly one document (API request bodies, `spec.definition` fields).
pub fn parse_single(text: &str) -> Result<Option<Value>, YamlError> {
    let mut documents = parse_documents(text.as_bytes());
    match documents.len() {
        0 => Ok(None),
        1 => documents.remove(0).content,
        _ => Err(YamlError {
            line: documents[1].line,
            column: 1,
            message: "expected a single YAML document, found several".into(),
        }),
    }
}

/// A byte range of the input that holds at most one document, and its first line (from 0).
struct Segment {
    start: usize,
    end: usize,
    first_line: usize,
}

/// Cuts the input at document markers. A `---` or `...` at the start of a line always ends a
/// document in YAML (even inside block scalars), so cutting there keeps every document intact.
/// Directives and comments before a `---` stay with the document they introduce.
fn split_documents(input: &[u8]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut start = 0;
    let mut first_line = 0;
    let mut has_content = false;
    let mut line_no = 0;
    let mut pos = 0;
    while pos < input.len() {
        let line_end = memchr_newline(&input[pos..]).map_or(input.len(), |i| pos + i + 1);
        let line = &input[pos..line_end];
        if is_marker(line, b"---") {
            if has_content {
                segments.push(Segment {
                    start,
                    end: pos,
                    first_line,
                });
                start = pos;
                first_line = line_no;
            }
            has_content = true;
        } else if is_marker(line, b"...") {
            segments.push(Segment {
                start,
                end: line_end,
                first_line,
            });
            start = line_end;
            first_line = line_no + 1;
            has_content = false;
        } else if !has_content && is_content_line(line) {
            has_content = true;
        }
        pos = line_end;
        line_no += 1;
    }
    if start < input.len() {
        segments.push(Segment {
            start,
            end: input.len(),
            first_line,
        });
    }
    segments
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

fn is_marker(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker) && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

fn is_content_line(line: &[u8]) -> bool {
    match line
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        None | Some(b'#') => false,
        Some(b'%') => line[0] != b'%',
        Some(_) => true,
    }
}

/// Reads the documents of one segment and appends them to `out`.
fn read_segment(bytes: &[u8], first_line: usize, out: &mut Vec<YamlDocument>) {
    let start_line = first_content_line(bytes) + first_line + 1;
    let failed = |out: &mut Vec<YamlDocument>, error: YamlError| {
        let index = out.len();
        out.push(YamlDocument {
            index,
            line: start_line,
            content: Err(error),
        });
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let (line, column) = position_of(bytes, e.valid_up_to());
            let message = format!(
                "the file is not valid UTF-8 (invalid byte 0x{:02x}); save it as UTF-8",
                bytes[e.valid_up_to()]
            );
            return failed(
                out,
                YamlError {
                    line: line + first_line,
                    column,
                    message,
                },
            );
        }
    };
    if let Some(error) = find_forbidden_character(text, first_line) {
        return failed(out, error);
    }
    let mut reader = DocumentReader::new(text, first_line);
    loop {
        match reader.next_document() {
            Ok(Some((line, value))) => {
                let index = out.len();
                out.push(YamlDocument {
                    index,
                    line,
                    content: Ok(value),
                });
            }
            Ok(None) => return,
            Err(error) => return failed(out, error),
        }
    }
}

fn first_content_line(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .position(|line| is_content_line(line) || is_marker(line, b"---"))
        .unwrap_or(0)
}

/// Line and column (both from 1) of a byte offset.
fn position_of(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// YAML streams may hold only printable characters (plus tab, CR and LF); anything else is almost
/// always a corrupted or binary file, so say so instead of reading on.
fn find_forbidden_character(text: &str, first_line: usize) -> Option<YamlError> {
    let bytes = text.as_bytes();
    let is_suspect = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b >= 0x7f;
    // Almost every catalog file is plain ASCII text: one branch-free pass (which the compiler
    // vectorizes) proves it before the careful scan below is needed.
    let any_suspect = bytes.iter().fold(false, |acc, &b| {
        acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b >= 0x7f)
    });
    if !any_suspect {
        return None;
    }
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| is_suspect(b)) {
        let offset = from + i;
        let c = text[offset..].chars().next()?;
        let forbidden = matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{84}' | '\u{86}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}');
        if forbidden {
            let (line, column) = position_of(bytes, offset);
            return Some(YamlError {
                line: line + first_line,
                column,
                message: format!(
                    "control character U+{:04X} is not allowed in YAML; remove it, or write it as an escape (\\u{:04X}) inside a double-quoted string",
                    c as u32, c as u32
                ),
            });
        }
        from = offset + c.len_utf8();
    }
    None
}

/// A node being built: a sequence or a mapping still open, with what it holds so far.
enum Frame {
    Sequence {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
    },
    Mapping {
        map: Map<String, Value>,
        /// The pending key, with where it was written.
        key: Option<(String, usize, usize)>,
        anchor: usize,
        nodes: usize,
    },
}

/// Turns the parser's events into one JSON value per document.
struct DocumentReader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    first_line: usize,
    anchors: HashMap<usize, (Value, usize)>,
    stack: Vec<Frame>,
    alias_nodes: usize,
}

impl<'a> DocumentReader<'a> {
    fn new(text: &'a str, first_line: usize) -> Self {
        Self {
            parser: Parser::new_from_str(text),
            first_line,
            anchors: HashMap::new(),
            stack: Vec::new(),
            alias_nodes: 0,
        }
    }

    fn error_at(&self, span: &Span, message: impl Into<String>) -> YamlError {
        YamlError {
            line: span.start.line() + self.first_line,
            column: span.start.col() + 1,
            message: message.into(),
        }
    }

    fn scan_error(&self, e: &ScanError) -> YamlError {
        YamlError {
            line: e.marker().line() + self.first_line,
            column: e.marker().col() + 1,
            message: match e.info() {
                "recursion limit exceeded" => "nesting is too deep".to_string(),
                info => info.to_string(),
            },
        }
    }

    /// The next document: its start line and value, or `None` at the end of the stream.
    fn next_document(&mut self) -> Result<Option<(usize, Option<Value>)>, YamlError> {
        let mut start_line = None;
        let mut root: Option<Value> = None;
        loop {
            let (event, span) = match self.parser.next_event() {
                None => return Ok(None),
                Some(Err(e)) => return Err(self.scan_error(&e)),
                Some(Ok(item)) => item,
            };
            match event {
                Event::StreamStart | Event::Nothing => {}
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart(_) => {
                    start_line = Some(span.start.line() + self.first_line);
                    self.anchors.clear();
                    self.alias_nodes = 0;
                }
                Event::DocumentEnd => {
                    let line = start_line.unwrap_or(self.first_line + 1);
                    return Ok(Some((line, root.filter(|v| !v.is_null()))));
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let value = resolve_scalar(text, style, tag.as_deref());
                    if anchor != 0 {
                        self.anchors.insert(anchor, (value.clone(), 1));
                    }
                    self.attach(value, 1, &span, &mut root)?;
                }
                Event::Alias(id) => {
                    let Some((value, nodes)) = self.anchors.get(&id) else {
                        return Err(self.error_at(&span, "alias refers to an unknown anchor"));
                    };
                    let nodes = *nodes;
                    self.alias_nodes += nodes;
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return Err(self.error_at(
                            &span,
                            format!("aliases expand to more than {MAX_ALIAS_NODES} nodes; this looks like an alias bomb"),
                        ));
                    }
                    let value = value.clone();
                    self.attach(value, nodes, &span, &mut root)?;
                }
                Event::SequenceStart(anchor, _) => {
                    self.check_depth(&span)?;
                    self.stack.push(Frame::Sequence {
                        items: Vec::new(),
                        anchor,
                        nodes: 1,
                    });
                }
                Event::MappingStart(anchor, _) => {
                    self.check_depth(&span)?;
                    self.stack.push(Frame::Mapping {
                        map: Map::new(),
                        key: None,
                        anchor,
                        nodes: 1,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (value, anchor, nodes) = match self.stack.pop() {
                        Some(Frame::Sequence {
                            items,
                            anchor,
                            nodes,
                        }) => (Value::Array(items), anchor, nodes),
                        Some(Frame::Mapping {
                            map, anchor, nodes, ..
                        }) => (Value::Object(map), anchor, nodes),
                        None => return Err(self.error_at(&span, "unbalanced collection end")),
                    };
                    if anchor != 0 {
                        self.anchors.insert(anchor, (value.clone(), nodes));
                    }
                    self.attach(value, nodes, &span, &mut root)?;
                }
            }
        }
    }

    fn check_depth(&self, span: &Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error_at(
                span,
                format!("nesting is too deep (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    /// Puts a finished node into the collection that holds it (or makes it the document root).
    fn attach(
        &mut self,
        value: Value,
        nodes: usize,
        span: &Span,
        root: &mut Option<Value>,
    ) -> Result<(), YamlError> {
        let (line, column) = (span.start.line() + self.first_line, span.start.col() + 1);
        let error = |message: String| YamlError {
            line,
            column,
            message,
        };
        match self.stack.last_mut() {
            None => *root = Some(value),
            Some(Frame::Sequence {
                items,
                nodes: total,
                ..
            }) => {
                items.push(value);
                *total += nodes;
            }
            Some(Frame::Mapping {
                map,
                key,
                nodes: total,
                ..
            }) => {
                *total += nodes;
                match key.take() {
                    Some((k, key_line, key_column)) => match map.entry(k) {
                        serde_json::map::Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                        serde_json::map::Entry::Occupied(slot) => {
                            return Err(YamlError {
                                line: key_line,
                                column: key_column,
                                message: format!(
                                    "Map keys must be unique; \"{}\" is repeated",
                                    slot.key()
                                ),
                            });
                        }
                    },
                    None => match mapping_key(value) {
                        Ok(k) => *key = Some((k, line, column)),
                        Err(message) => return Err(error(message)),
                    },
                }
            }
        }
        Ok(())
    }
}

/// The JSON object key for a YAML mapping key, as JavaScript's `String(key)` would give it.
fn mapping_key(value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(crate::js::number_to_string(&n)),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        Value::Array(_) | Value::Object(_) => Err(
            "a mapping or sequence used as a mapping key is not supported; use a string key".into(),
        ),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema: only plain scalars can be null, booleans or
/// numbers; `!!str` forces a string.
fn resolve_scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let forced_string = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
    if style != ScalarStyle::Plain || forced_string {
        return Value::String(text.into_owned());
    }
    resolve_plain(&text).unwrap_or_else(|| Value::String(text.into_owned()))
}

/// The core-schema value of a plain scalar, or `None` when it is a string.
fn resolve_plain(s: &str) -> Option<Value> {
    let Some(&first) = s.as_bytes().first() else {
        return Some(Value::Null);
    };
    if !(first.is_ascii_digit()
        || matches!(
            first,
            b'-' | b'+' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F'
        ))
    {
        return None;
    }
    match s {
        "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(digits) = s.strip_prefix("0o") {
        return radix_number(digits, 8);
    }
    if let Some(digits) = s.strip_prefix("0x") {
        return radix_number(digits, 16);
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        // JSON has no infinities or NaN; Backstage's JSON form of them is null as well.
        return Some(Value::Null);
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        return s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    if is_core_float(unsigned) {
        return s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

fn radix_number(digits: &str, radix: u32) -> Option<Value> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    match i64::from_str_radix(digits, radix) {
        Ok(i) => Some(Value::Number(i.into())),
        Err(_) => Number::from_f64(digits.chars().fold(0f64, |acc, c| {
            acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
        }))
        .map(Value::Number),
    }
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, without the sign.
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = digits(0);
    let int_digits = i;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        frac_digits = digits(i + 1);
        i += 1 + frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(text: &str) -> Vec<Result<Option<Value>, YamlError>> {
        parse_documents(text.as_bytes())
            .into_iter()
            .map(|d| d.content)
            .collect()
    }

    #[test]
    fn core_schema_scalars() {
        let doc = "a: yes\nb: on\nc: 017\nd: 0x1F\ne: ~\nf: 1.5e3\ng: '1'\nh: True\ni: 0o17\nj: .5\nk: 1.2.3\nl: -7\n";
        let v = values(doc).remove(0).unwrap().unwrap();
        assert_eq!(
            v,
            json!({"a": "yes", "b": "on", "c": 17, "d": 31, "e": null, "f": 1500.0, "g": "1", "h": true, "i": 15, "j": 0.5, "k": "1.2.3", "l": -7})
        );
    }

    #[test]
    fn documents_carry_start_lines_and_skip_empty_ones() {
        let docs = parse_documents(b"# c\na: 1\n---\n---\nb: 2\n...\n---\n- x\n");
        let lines: Vec<_> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(lines, vec![(0, 2), (1, 3), (2, 4), (3, 7)]);
        assert_eq!(docs[1].content, Ok(None));
        assert_eq!(docs[3].content, Ok(Some(json!(["x"]))));
    }

    #[test]
    fn a_broken_document_does_not_hide_the_next() {
        let docs = parse_documents(b"a: [1\n---\nb: 2\n");
        assert!(docs[0].content.is_err());
        assert_eq!(docs[1].content, Ok(Some(json!({"b": 2}))));
    }

    #[test]
    fn duplicate_keys_are_errors_and_merge_keys_stay_literal() {
        let err = values("a: 1\nb: 2\na: 3\n").remove(0).unwrap_err();
        assert_eq!((err.line, err.column), (3, 1));
        assert_eq!(err.message, "Map keys must be unique; \"a\" is repeated");
        let v = values("base: &b {x: 1}\nother:\n  <<: *b\n")
            .remove(0)
            .unwrap()
            .unwrap();
        assert_eq!(v["other"], json!({"<<": {"x": 1}}));
    }

    #[test]
    fn hostile_input_gets_clear_errors() {
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        assert!(
            values(bomb)
                .remove(0)
                .unwrap_err()
                .message
                .contains("alias bomb")
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(
            values(&deep)
                .remove(0)
                .unwrap_err()
                .message
                .contains("nesting is too deep")
        );
        let err = values("a: b\u{7}\n").remove(0).unwrap_err();
        assert!(err.message.contains("U+0007"), "{err}");
        let docs = parse_documents(b"a: \xff\n---\nb: 1\n");
        assert!(
            docs[0]
                .content
                .as_ref()
                .unwrap_err()
                .message
                .contains("not valid UTF-8")
        );
        assert_eq!(docs[1].content, Ok(Some(json!({"b": 1}))));
    }

    #[test]
    fn bom_and_crlf_are_fine() {
        let v = values("\u{feff}a: 1\r\nb: x\r\n")
            .remove(0)
            .unwrap()
            .unwrap();
        assert_eq!(v, json!({"a": 1, "b": "x"}));
    }
}
