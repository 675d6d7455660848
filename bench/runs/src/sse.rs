//! A small Server-Sent Events reader over a reqwest response: events are the blocks between
//! blank lines; `id:`, `event:` and `data:` fields (multi-line data joined with `\n`); comment
//! blocks (keep-alives) are skipped.

/// One event.
#[derive(Debug, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

pub struct SseReader {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buf: Vec::with_capacity(4096),
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            while let Some((end, skip)) = block_end(&self.buf) {
                let block: Vec<u8> = self.buf.drain(..end + skip).take(end).collect();
                if let Some(event) = parse(&block) {
                    return Ok(Some(event));
                }
            }
            match self.response.chunk().await? {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

/// Where the first block ends and how long its terminator is (`\n\n` or `\r\n\r\n`).
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse(block: &[u8]) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(block);
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    let mut any = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_string()),
            "event" => event.event = Some(value.to_string()),
            "data" => data.push(value),
            _ => continue,
        }
        any = true;
    }
    any.then(|| {
        event.data = data.join("\n");
        event
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_fields() {
        let e = parse(b"id: 3\nevent: message.delta\ndata: {\"a\":1}").unwrap();
        assert_eq!(
            (e.id.as_deref(), e.event.as_deref(), e.data.as_str()),
            (Some("3"), Some("message.delta"), "{\"a\":1}")
        );
        assert!(parse(b": keep-alive").is_none());
        assert_eq!(block_end(b"data: x\n\ndata: y"), Some((7, 2)));
        assert_eq!(block_end(b"data: x\r\n\r\n"), Some((7, 4)));
    }
}
