//! Streamed answers, as both providers send them. Server-Sent Events: `event:` names, `data:`
//! lines (several join with a newline), comments, and blank lines that end an event; `[DONE]` is
//! plain data that the OpenAI client looks for. One event may hold at most [`MAX_EVENT_BYTES`]; a
//! bigger one is a protocol error instead of unbounded memory. Also the pieces both clients share
//! around a stream: text deltas, tool-call arguments assembled from fragments, and the plain JSON
//! body of a server that ignored `stream: true`.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::retry::Endpoint;
use super::{Deltas, ModelError};

/// The most bytes one event may take.
pub(crate) const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// The most bytes one streamed answer may take.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` name, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An incremental parser: bytes in, whole events out.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    event_bytes: usize,
}

impl SseParser {
    /// Feeds a chunk; complete events are appended to `out`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<SseEvent>,
    ) -> Result<(), ModelError> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(rel) = self.buf[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + rel;
            let next = if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    // A lone CR at the end: wait to see whether LF follows.
                    None => break,
                }
            } else {
                end + 1
            };
            let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
            self.line(&line, out)?;
            start = next;
        }
        self.buf.drain(..start);
        if self.event_bytes + self.buf.len() > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        Ok(())
    }

    /// The body ended: a last line or event without its terminating blank line still counts.
    pub(crate) fn finish(&mut self, out: &mut VecDeque<SseEvent>) -> Result<(), ModelError> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest);
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut VecDeque<SseEvent>) -> Result<(), ModelError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        self.event_bytes += line.len();
        if self.event_bytes > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {} // id, retry and unknown fields do not matter here
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut VecDeque<SseEvent>) {
        let event = self.event.take();
        if let Some(data) = self.data.take() {
            out.push_back(SseEvent { event, data });
        }
        self.event_bytes = 0;
    }
}

fn too_large() -> ModelError {
    ModelError::Protocol(format!(
        "an event of the stream is larger than {} MiB",
        MAX_EVENT_BYTES / (1024 * 1024)
    ))
}

/// Events read from a response body.
pub(crate) struct EventStream {
    body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    ended: bool,
    received: usize,
    endpoint: Endpoint,
}

impl EventStream {
    /// Reads events from `response`'s body.
    pub(crate) fn new(response: reqwest::Response, endpoint: Endpoint) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            parser: SseParser::default(),
            ready: VecDeque::new(),
            ended: false,
            received: 0,
            endpoint,
        }
    }

    /// The next event; `None` once the body has ended.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, ModelError> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Ok(Some(ev));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len();
                    if self.received > MAX_STREAM_BYTES {
                        return Err(ModelError::Protocol(format!(
                            "the answer is larger than {} MiB",
                            MAX_STREAM_BYTES / (1024 * 1024)
                        )));
                    }
                    self.parser.feed(&chunk, &mut self.ready)?;
                }
                Some(Err(e)) => return Err(self.endpoint.transport_error(&e)),
                None => {
                    self.ended = true;
                    self.parser.finish(&mut self.ready)?;
                }
            }
        }
    }
}

/// Sends a text delta to whoever listens; a listener that left is no error.
pub(crate) fn send_delta(deltas: Option<&Deltas>, text: &str) {
    if let Some(d) = deltas
        && !text.is_empty()
    {
        let _ = d.send(text.to_string());
    }
}

/// Whether a successful response is one JSON body rather than an event stream (a server that
/// ignored `stream: true`).
pub(crate) fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// Reads and decodes a whole JSON body of at most [`MAX_EVENT_BYTES`].
pub(crate) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
    endpoint: &Endpoint,
) -> Result<T, ModelError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| endpoint.transport_error(&e))?;
        if body.len() + chunk.len() > MAX_EVENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|e| ModelError::Protocol(format!("the answer is not the expected JSON: {e}")))
}

/// Decodes one event's JSON data.
pub(crate) fn decode<T: DeserializeOwned>(data: &str) -> Result<T, ModelError> {
    serde_json::from_str(data).map_err(|e| {
        ModelError::Protocol(format!("a streamed event is not the expected JSON: {e}"))
    })
}

/// A tool call's arguments from their (concatenated) text: empty or `null` is `{}`, anything
/// else must be a JSON object.
pub(crate) fn tool_arguments(tool: &str, text: &str) -> Result<Value, ModelError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Null) => Ok(Value::Object(Default::default())),
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ModelError::Protocol(format!(
            "the model called {tool} with arguments that are not a JSON object"
        ))),
        Err(e) => Err(ModelError::Protocol(format!(
            "the model called {tool} with arguments that are not valid JSON ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = VecDeque::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out.into()
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn events_with_names_data_and_comments() {
        let got = events(&[
            b": keep-alive\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\ndata: [DONE]\n\n",
        ]);
        assert_eq!(
            got,
            vec![ev(Some("ping"), r#"{"type": "ping"}"#), ev(None, "[DONE]")]
        );
    }

    #[test]
    fn any_line_ending_and_any_split() {
        let text = b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata:2\r\rdata: x\ndata:  y\n\n";
        let want = vec![ev(Some("a"), "1"), ev(Some("b"), "2"), ev(None, "x\n y")];
        assert_eq!(events(&[text]), want);
        for split in 1..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(events(&[a, b]), want, "split at {split}");
        }
    }

    #[test]
    fn a_last_event_without_its_blank_line_counts_and_utf8_survives_splits() {
        let text = "data: héllo ✓".as_bytes();
        for split in 1..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(events(&[a, b]), vec![ev(None, "héllo ✓")]);
        }
        assert_eq!(events(&[b"event: only-a-name\n\n"]), vec![]);
    }

    #[test]
    fn an_oversized_event_is_refused() {
        let mut p = SseParser::default();
        let mut out = VecDeque::new();
        let line = vec![b'x'; 1024 * 1024];
        p.feed(b"data: ", &mut out).unwrap();
        let mut failed = false;
        for _ in 0..10 {
            if p.feed(&line, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn arguments_empty_invalid_and_not_objects() {
        assert_eq!(tool_arguments("t", "").unwrap(), serde_json::json!({}));
        assert_eq!(tool_arguments("t", "null").unwrap(), serde_json::json!({}));
        assert_eq!(
            tool_arguments("t", r#"{"a":1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
        let e = tool_arguments("get_weather", r#"{"a":"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("get_weather") && e.contains("not valid JSON"),
            "{e}"
        );
        assert!(tool_arguments("t", "[1]").is_err());
    }
}
