//! Portico's own legacy HTTP+SSE client transport (rmcp removed its own): GET the SSE URL, wait
//! for the `endpoint` event, refuse an endpoint on another origin before any POST (so no
//! credential can follow it), then POST each message there and read answers from `message`
//! events. Event size is bounded at the byte layer, before parsing.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use sse_stream::SseStream;
use tokio::sync::mpsc;
use url::Url;

use crate::credentials::Credential;
use crate::error::McpError;
use crate::http::from_reqwest;
use crate::limits::Limits;
use crate::policy::{PolicyError, origin_of};

/// An error of the legacy SSE transport, already in Portico's terms.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SseTransportError(pub McpError);

impl SseTransportError {
    /// The Portico error inside.
    pub fn to_mcp(&self) -> McpError {
        self.0.clone()
    }
}

/// Why the SSE stream ended, shared with the session so a failed call can say why.
pub(crate) type CloseReason = Arc<Mutex<Option<McpError>>>;

/// The legacy HTTP+SSE transport for one session.
pub(crate) struct SseTransport {
    http: reqwest::Client,
    endpoint: Url,
    credential: Option<Credential>,
    rx: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl SseTransport {
    /// Opens the SSE stream and waits for a same-origin `endpoint` event.
    pub(crate) async fn connect(
        http: reqwest::Client,
        url: Url,
        credential: Option<Credential>,
        limits: &Limits,
        close_reason: CloseReason,
    ) -> Result<Self, McpError> {
        let mut req = http
            .get(url.clone())
            .header(http::header::ACCEPT, "text/event-stream");
        if let Some(c) = &credential {
            req = req.header(c.header_name().clone(), c.header_value()?);
        }
        let resp = req.send().await.map_err(|e| from_reqwest(&e))?;
        check_status(&resp)?;
        let is_sse = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        if !is_sse {
            return Err(McpError::Protocol(
                "the SSE URL did not answer with text/event-stream".into(),
            ));
        }
        let bytes = Limited::new(resp.bytes_stream().boxed(), limits.max_event_bytes);
        let mut events = SseStream::from_bytes_stream(bytes);
        let endpoint = loop {
            match events.next().await {
                Some(Ok(ev)) if ev.event.as_deref() == Some("endpoint") => {
                    let data = ev.data.unwrap_or_default();
                    let endpoint = url.join(data.trim()).map_err(|_| {
                        McpError::Protocol("the endpoint event does not hold a URL".into())
                    })?;
                    if origin_of(&endpoint) != origin_of(&url) {
                        return Err(PolicyError::CrossOriginEndpoint {
                            expected: origin_of(&url),
                            to: origin_of(&endpoint),
                        }
                        .into());
                    }
                    break endpoint;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(body_error(e)),
                None => {
                    return Err(McpError::Closed(
                        "the SSE stream ended before an endpoint event".into(),
                    ));
                }
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let reader = tokio::spawn(read_messages(events, tx, close_reason));
        Ok(Self {
            http,
            endpoint,
            credential,
            rx,
            reader,
        })
    }
}

fn check_status(resp: &reqwest::Response) -> Result<(), McpError> {
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let challenge = resp
            .headers()
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        return Err(McpError::AuthRequired { challenge });
    }
    if !status.is_success() {
        return Err(McpError::Protocol(format!(
            "HTTP status {}",
            status.as_u16()
        )));
    }
    Ok(())
}

fn body_error(e: sse_stream::Error) -> McpError {
    let text = e.to_string();
    if text.contains(TOO_LARGE) {
        McpError::TooLarge(text)
    } else {
        McpError::Protocol(format!("bad SSE stream: {text}"))
    }
}

async fn read_messages<S>(
    mut events: S,
    tx: mpsc::Sender<ServerJsonRpcMessage>,
    reason: CloseReason,
) where
    S: Stream<Item = Result<sse_stream::Sse, sse_stream::Error>> + Unpin,
{
    let why = loop {
        match events.next().await {
            Some(Ok(ev)) => {
                if !matches!(ev.event.as_deref(), None | Some("message")) {
                    continue;
                }
                let Some(data) = ev.data else { continue };
                match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                    Ok(msg) => {
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        break McpError::Protocol(format!("malformed JSON-RPC message: {e}"));
                    }
                }
            }
            Some(Err(e)) => break body_error(e),
            None => break McpError::Closed("the server closed the SSE stream".into()),
        }
    };
    tracing::debug!(error = %why, "legacy SSE stream ended");
    if let Ok(mut slot) = reason.lock() {
        slot.get_or_insert(why);
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseTransportError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let body = serde_json::to_vec(&item);
        let mut req = self
            .http
            .post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        let header = self
            .credential
            .as_ref()
            .map(|c| c.header_value().map(|v| (c.header_name().clone(), v)));
        async move {
            let body = body.map_err(|e| SseTransportError(McpError::Protocol(e.to_string())))?;
            if let Some(h) = header {
                let (name, value) = h.map_err(|e| SseTransportError(e.into()))?;
                req = req.header(name, value);
            }
            let resp = req
                .body(body)
                .send()
                .await
                .map_err(|e| SseTransportError(from_reqwest(&e)))?;
            check_status(&resp).map_err(SseTransportError)?;
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.rx.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.rx.close();
        Ok(())
    }
}

const TOO_LARGE: &str = "SSE event larger than";

/// A body error: the HTTP stream failed, or one event grew past the limit.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{0}")]
    Http(String),
    #[error("{TOO_LARGE} {0} bytes")]
    TooLarge(usize),
}

/// Passes bytes through while counting the size of the event being received; fails once an
/// event (bytes since the last blank line) exceeds the limit.
struct Limited {
    inner: futures::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>,
    max: usize,
    event: usize,
    line_empty: bool,
    last_cr: bool,
    done: bool,
}

impl Limited {
    fn new(
        inner: futures::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>,
        max: usize,
    ) -> Self {
        Self {
            inner,
            max,
            event: 0,
            line_empty: true,
            last_cr: false,
            done: false,
        }
    }

    fn observe(&mut self, chunk: &[u8]) -> bool {
        for &b in chunk {
            match b {
                b'\n' if self.last_cr => self.last_cr = false,
                b'\r' | b'\n' => {
                    self.last_cr = b == b'\r';
                    if self.line_empty {
                        self.event = 0;
                    }
                    self.line_empty = true;
                }
                _ => {
                    self.last_cr = false;
                    self.line_empty = false;
                    self.event += 1;
                    if self.event > self.max {
                        return false;
                    }
                }
            }
        }
        true
    }
}

impl Stream for Limited {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.observe(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.done = true;
                    Poll::Ready(Some(Err(BodyError::TooLarge(self.max))))
                }
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                let text = from_reqwest(&e).to_string();
                Poll::Ready(Some(Err(BodyError::Http(text))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(max: usize) -> Limited {
        Limited::new(futures::stream::empty().boxed(), max)
    }

    #[test]
    fn counts_one_event_at_a_time_with_any_line_ending() {
        let mut l = limited(10);
        assert!(l.observe(b"data: 1234\n\n"));
        assert!(l.observe(b"data: 1234\r\n\r\n"));
        assert!(l.observe(b"data: 1234\r\r"));
        // Split across chunks, still one event.
        assert!(l.observe(b"data:"));
        assert!(!l.observe(b" 123456"));
    }

    #[test]
    fn an_event_of_many_lines_counts_all_of_them() {
        let mut l = limited(10);
        assert!(l.observe(b"data: ab\n"));
        assert!(!l.observe(b"data: cd\n"));
    }
}
