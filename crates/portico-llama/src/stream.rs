//! Streams an answer as the model writes it: the model's output grows token by token as
//! `{"answer": "<JSON string>"}`; [`AnswerStream`] hands out the decoded text of the string as
//! soon as each character is complete (escapes included), and nothing for a tool call.

/// Incremental reader of the `answer` string in a growing output.
#[derive(Debug, Default)]
pub struct AnswerStream {
    /// Byte offset in the output of the next undecoded character of the string, once found.
    at: Option<usize>,
    /// The string's closing quote was read, or the output is not an answer.
    done: bool,
}

impl AnswerStream {
    /// The newly decoded text of the answer in `output` (the whole output so far).
    pub fn next(&mut self, output: &str) -> String {
        if self.done {
            return String::new();
        }
        let mut at = match self.at {
            Some(at) => at,
            None => match answer_start(output) {
                Start::At(at) => at,
                Start::NotYet => return String::new(),
                Start::Never => {
                    self.done = true;
                    return String::new();
                }
            },
        };
        let mut text = String::new();
        let bytes = output.as_bytes();
        while at < bytes.len() {
            match bytes[at] {
                b'"' => {
                    self.done = true;
                    at += 1;
                    break;
                }
                b'\\' => match unescape(&output[at..]) {
                    Some((c, used)) => {
                        text.push(c);
                        at += used;
                    }
                    None => break,
                },
                _ => {
                    // `at` is on a character boundary: it only moves by whole characters.
                    let c = output[at..].chars().next().unwrap_or('\u{fffd}');
                    text.push(c);
                    at += c.len_utf8();
                }
            }
        }
        self.at = Some(at);
        text
    }
}

enum Start {
    At(usize),
    NotYet,
    Never,
}

/// Where the answer string's text starts: after `{`, `"answer"`, `:` and `"`, with any
/// whitespace between.
fn answer_start(output: &str) -> Start {
    let mut rest = output;
    for token in ["{", "\"answer\"", ":", "\""] {
        rest = rest.trim_start();
        if rest.len() < token.len() {
            return if token.starts_with(rest) {
                Start::NotYet
            } else {
                Start::Never
            };
        }
        match rest.strip_prefix(token) {
            Some(r) => rest = r,
            None => return Start::Never,
        }
    }
    Start::At(output.len() - rest.len())
}

/// The character of the escape at the start of `s` and the bytes it used; `None` while it is
/// incomplete.
fn unescape(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    let c = match *b.get(1)? {
        b'n' => '\n',
        b't' => '\t',
        b'r' => '\r',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'/' => '/',
        b'\\' => '\\',
        b'"' => '"',
        b'u' => {
            let high = u32::from_str_radix(s.get(2..6)?, 16).ok()?;
            if (0xD800..0xDC00).contains(&high) {
                if s.get(6..8)? != "\\u" {
                    return Some(('\u{fffd}', 6));
                }
                let low = u32::from_str_radix(s.get(8..12)?, 16).ok()?;
                let code = 0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                return Some((char::from_u32(code).unwrap_or('\u{fffd}'), 12));
            }
            return Some((char::from_u32(high).unwrap_or('\u{fffd}'), 6));
        }
        _ => '\u{fffd}',
    };
    Some((c, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pieces: &[&str]) -> Vec<String> {
        let mut s = AnswerStream::default();
        let mut output = String::new();
        pieces
            .iter()
            .map(|p| {
                output.push_str(p);
                s.next(&output)
            })
            .collect()
    }

    #[test]
    fn an_answer_streams_as_its_characters_complete() {
        let got = stream(&[
            "{",
            "\"ans",
            "wer\": \"",
            "Hel",
            "lo\\",
            "n\\u00",
            "e9 \\ud83d",
            "\\ude00",
            "\"}",
        ]);
        assert_eq!(got, ["", "", "", "Hel", "lo", "\n", "é ", "😀", ""]);
        assert_eq!(
            got.concat(),
            serde_json::from_str::<String>(r#""Hello\n\u00e9 \ud83d\ude00""#).unwrap()
        );
    }

    #[test]
    fn a_tool_call_streams_nothing() {
        let got = stream(&["{\"arguments\": {\"answer\": \"x", "\"}, \"tool\": \"t\"}"]);
        assert!(got.iter().all(String::is_empty), "{got:?}");
        let got = stream(&["{\n  \"tool\"", ": \"answer\"}"]);
        assert!(got.iter().all(String::is_empty), "{got:?}");
    }

    #[test]
    fn whitespace_outside_the_string_is_skipped_and_inside_kept() {
        let got = stream(&[" {\n \"answer\" :  \"", "  a \""]);
        assert_eq!(got.concat(), "  a ");
    }
}
