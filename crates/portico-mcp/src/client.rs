//! One MCP session over either transport. rmcp's service types stay here: the rest of Portico
//! sees [`Session`] with plain JSON values, where every call takes a cancellation token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CancelledNotification, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientNotification, ClientRequest, Implementation, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, Request, RequestOptionalParam,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::credentials::{Credential, redact};
use crate::error::McpError;
use crate::http;
use crate::limits::Limits;
use crate::policy::UrlPolicy;
use crate::recording::Recording;
use crate::sse::{CloseReason, SseTransport};

/// How the client reaches a server (from the catalog: first streamable-http remote, else sse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// MCP streamable HTTP.
    StreamableHttp,
    /// The legacy HTTP+SSE transport.
    Sse,
}

impl std::str::FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "streamable-http" => Ok(Self::StreamableHttp),
            "sse" => Ok(Self::Sse),
            other => Err(format!(
                "unknown transport {other:?}; use streamable-http or sse"
            )),
        }
    }
}

/// A server's selected remote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Remote {
    /// The transport.
    pub transport: TransportKind,
    /// Its URL.
    pub url: String,
}

/// A tool as the server describes it, with the annotation hints resolved to their defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolInfo {
    /// The server's name for the tool.
    pub name: String,
    /// Human-readable title.
    pub title: Option<String>,
    /// Description for the model.
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub input_schema: Value,
    /// `readOnlyHint` (default false).
    pub read_only: bool,
    /// `destructiveHint` (default true).
    pub destructive: bool,
    /// `idempotentHint` (default false).
    pub idempotent: bool,
    /// `openWorldHint` (default true).
    pub open_world: bool,
}

/// One progress notification for a call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Progress so far.
    pub progress: f64,
    /// Total, when known.
    pub total: Option<f64>,
    /// Message, when sent.
    pub message: Option<String>,
}

/// The result of `tools/call`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolOutcome {
    /// Content blocks as JSON.
    pub content: Vec<Value>,
    /// Structured content, when sent.
    pub structured: Option<Value>,
    /// Whether the tool reported an error.
    pub is_error: bool,
}

/// Everything a session needs besides the remote and the credential.
#[derive(Debug, Clone)]
pub struct Connector {
    http: reqwest::Client,
    policy: Arc<UrlPolicy>,
    limits: Limits,
}

impl Connector {
    /// A connector enforcing `policy` and `limits`.
    pub fn new(policy: UrlPolicy, limits: Limits) -> Result<Self, McpError> {
        let policy = Arc::new(policy);
        let http = http::client(policy.clone(), &limits)?;
        Ok(Self {
            http,
            policy,
            limits,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Opens a session: checks the URL, connects and initializes.
    pub async fn connect(
        &self,
        remote: &Remote,
        credential: Option<Credential>,
        cancel: &CancellationToken,
    ) -> Result<Session, McpError> {
        let redacting = credential.clone();
        let result = tokio::select! {
            r = self.connect_inner(remote, credential) => r,
            _ = cancel.cancelled() => Err(McpError::Cancelled),
        };
        result.map_err(|e| scrub(e, redacting.as_ref()))
    }

    async fn connect_inner(
        &self,
        remote: &Remote,
        credential: Option<Credential>,
    ) -> Result<Session, McpError> {
        let url = self.policy.parse_url(&remote.url)?;
        let shared = Arc::new(Shared::default());
        let handler = Handler {
            shared: shared.clone(),
        };
        let limit = self.limits.idle_timeout;
        let start = async {
            match remote.transport {
                TransportKind::StreamableHttp => {
                    let reason = shared.close_reason.clone();
                    let transport = self.streamable(url, credential.as_ref(), reason)?;
                    handler.serve(transport).await.map_err(init_error)
                }
                TransportKind::Sse => {
                    let reason = shared.close_reason.clone();
                    let transport = SseTransport::connect(
                        self.http.clone(),
                        url,
                        credential.clone(),
                        &self.limits,
                        reason,
                    )
                    .await?;
                    handler.serve(transport).await.map_err(init_error)
                }
            }
        };
        let service = tokio::time::timeout(limit, start)
            .await
            .unwrap_or(Err(McpError::IdleTimeout(limit)))
            .map_err(|e| match e {
                McpError::Closed(_) => shared
                    .close_reason
                    .lock()
                    .ok()
                    .and_then(|r| r.clone())
                    .unwrap_or(e),
                other => other,
            })?;
        Ok(Session {
            peer: service.peer().clone(),
            service: tokio::sync::Mutex::new(Some(service)),
            shared,
            limits: self.limits.clone(),
            permits: Semaphore::new(self.limits.max_concurrent_calls.max(1)),
            credential,
        })
    }

    fn streamable(
        &self,
        url: Url,
        credential: Option<&Credential>,
        reason: CloseReason,
    ) -> Result<StreamableHttpClientTransport<Recording>, McpError> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
            .reinit_on_expired_session(true)
            .max_sse_event_size(self.limits.max_event_bytes)
            .max_json_response_size(self.limits.max_response_bytes)
            .max_concurrent_requests(self.limits.max_concurrent_calls.max(1));
        if let Some(c) = credential {
            match c.bearer_token() {
                Some(token) => config = config.auth_header(token),
                None => {
                    let mut headers = HashMap::new();
                    headers.insert(c.header_name().clone(), c.header_value()?);
                    config = config.custom_headers(headers);
                }
            }
        }
        let client = Recording {
            inner: self.http.clone(),
            reason,
        };
        Ok(StreamableHttpClientTransport::with_client(client, config))
    }
}

fn init_error(e: rmcp::service::ClientInitializeError) -> McpError {
    use rmcp::service::ClientInitializeError as E;
    match e {
        E::TransportError { error, .. } => http::classify(error.error.as_ref()),
        E::JsonRpcError(data) => McpError::Server {
            code: data.code.0,
            message: data.message.to_string(),
        },
        E::ConnectionClosed(why) => McpError::Closed(why),
        E::Cancelled => McpError::Cancelled,
        other => McpError::Protocol(other.to_string()),
    }
}

fn scrub(e: McpError, credential: Option<&Credential>) -> McpError {
    if credential.is_none() {
        return e;
    }
    let text = e.to_string();
    if redact(text.clone(), credential) == text {
        e
    } else {
        McpError::Protocol(redact(text, credential))
    }
}

#[derive(Default)]
struct Shared {
    progress: Mutex<HashMap<ProgressToken, mpsc::UnboundedSender<Progress>>>,
    tools_generation: AtomicU64,
    close_reason: CloseReason,
}

#[derive(Clone)]
struct Handler {
    shared: Arc<Shared>,
}

impl ClientHandler for Handler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let sender = self
            .shared
            .progress
            .lock()
            .ok()
            .and_then(|m| m.get(&params.progress_token).cloned());
        if let Some(s) = sender {
            let _ = s.send(Progress {
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.shared.tools_generation.fetch_add(1, Ordering::Relaxed);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("portico", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }
}

/// An initialized MCP session with one server.
pub struct Session {
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    peer: rmcp::Peer<RoleClient>,
    shared: Arc<Shared>,
    limits: Limits,
    permits: Semaphore,
    credential: Option<Credential>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// Removes a progress route when the call ends, however it ends.
struct ProgressRoute<'a> {
    shared: &'a Shared,
    token: ProgressToken,
}

impl Drop for ProgressRoute<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.progress.lock() {
            m.remove(&self.token);
        }
    }
}

impl Session {
    /// The server's name and version from `initialize`.
    pub fn server_info(&self) -> Option<(String, String)> {
        let info = self.peer.peer_info()?;
        let s = info.server_info.as_ref()?;
        Some((s.name.clone(), s.version.clone()))
    }

    /// Counts `notifications/tools/list_changed`; a cached tool list is stale when it changed.
    pub fn tools_generation(&self) -> u64 {
        self.shared.tools_generation.load(Ordering::Relaxed)
    }

    /// Whether the transport has ended (the session cannot be used again).
    pub fn is_closed(&self) -> bool {
        self.peer.is_transport_closed()
    }

    /// Lists all tools, following `nextCursor` up to the page limit.
    pub async fn list_tools(&self, cancel: &CancellationToken) -> Result<Vec<ToolInfo>, McpError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..self.limits.max_list_pages.max(1) {
            let params = cursor
                .take()
                .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let request = ClientRequest::ListToolsRequest(RequestOptionalParam {
                method: Default::default(),
                params,
                extensions: Default::default(),
            });
            let result = self.request(request, None, cancel).await?;
            let ServerResult::ListToolsResult(page) = result else {
                return Err(McpError::Protocol(
                    "tools/list answered with another result".into(),
                ));
            };
            tools.extend(page.tools.into_iter().map(tool_info));
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(tools),
            }
        }
        Err(McpError::Protocol(format!(
            "tools/list did not end within {} pages",
            self.limits.max_list_pages
        )))
    }

    /// Calls a tool. Progress notifications go to `progress` and reset the idle timer.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<ToolOutcome, McpError> {
        let mut params = CallToolRequestParams::new(name.to_string());
        params.arguments = arguments;
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let result = self.request(request, progress, cancel).await?;
        match result {
            ServerResult::CallToolResult(r) => Ok(ToolOutcome {
                content: r
                    .content
                    .iter()
                    .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                    .collect(),
                structured: r.structured_content,
                is_error: r.is_error.unwrap_or(false),
            }),
            _ => Err(McpError::Protocol(
                "tools/call answered with another result".into(),
            )),
        }
    }

    /// Sends one request with the limits: a concurrency permit, the idle timeout (reset by
    /// progress), the total cap and the caller's cancellation. On timeout or cancellation the
    /// server gets `notifications/cancelled`.
    async fn request(
        &self,
        request: ClientRequest,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<ServerResult, McpError> {
        let result = self.request_inner(request, progress, cancel).await;
        result.map_err(|e| scrub(e, self.credential.as_ref()))
    }

    async fn request_inner(
        &self,
        request: ClientRequest,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<ServerResult, McpError> {
        let deadline = tokio::time::Instant::now() + self.limits.call_timeout;
        let _permit = tokio::select! {
            p = self.permits.acquire() => p.map_err(|_| McpError::Closed("the session is closed".into()))?,
            _ = cancel.cancelled() => return Err(McpError::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return Err(McpError::CallTimeout(self.limits.call_timeout)),
        };
        let peer = self.peer.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut handle = peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.service_error(e))?;
        self.shared
            .progress
            .lock()
            .map_err(|_| McpError::Closed("the session is broken".into()))?
            .insert(handle.progress_token.clone(), tx);
        let _route = ProgressRoute {
            shared: &self.shared,
            token: handle.progress_token.clone(),
        };
        let idle = self.limits.idle_timeout;
        let idle_sleep = tokio::time::sleep(idle);
        tokio::pin!(idle_sleep);
        let total_sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(total_sleep);
        let failure = loop {
            tokio::select! {
                biased;
                r = &mut handle.rx => {
                    if let Some(out) = &progress {
                        while let Ok(p) = rx.try_recv() {
                            let _ = out.send(p);
                        }
                    }
                    return match r {
                        Ok(Ok(result)) => Ok(result),
                        Ok(Err(e)) => Err(self.service_error(e)),
                        Err(_) => Err(self.service_error(ServiceError::TransportClosed)),
                    };
                }
                _ = cancel.cancelled() => break (McpError::Cancelled, "cancelled by the user"),
                _ = &mut total_sleep => break (McpError::CallTimeout(self.limits.call_timeout), "total time cap"),
                _ = &mut idle_sleep => break (McpError::IdleTimeout(idle), "idle timeout"),
                Some(p) = rx.recv() => {
                    idle_sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                    if let Some(out) = &progress {
                        let _ = out.send(p);
                    }
                }
            }
        };
        let (error, reason) = failure;
        let notification = CancelledNotification::new(CancelledNotificationParam::new(
            Some(handle.id.clone()),
            Some(reason.to_string()),
        ));
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            peer.send_notification(ClientNotification::CancelledNotification(notification)),
        )
        .await;
        Err(error)
    }

    fn service_error(&self, e: ServiceError) -> McpError {
        match e {
            ServiceError::McpError(data) if is_transport_closed(&data) => self
                .close_reason()
                .unwrap_or_else(|| McpError::Closed(data.message.to_string())),
            ServiceError::McpError(data) => McpError::Server {
                code: data.code.0,
                message: data.message.to_string(),
            },
            ServiceError::TransportSend(t) => http::classify(t.error.as_ref()),
            ServiceError::TransportClosed => self
                .close_reason()
                .unwrap_or_else(|| McpError::Closed("the transport closed".into())),
            ServiceError::Timeout { timeout } => McpError::IdleTimeout(timeout),
            ServiceError::Cancelled { .. } => McpError::Cancelled,
            other => McpError::Protocol(other.to_string()),
        }
    }

    fn close_reason(&self) -> Option<McpError> {
        self.shared.close_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Ends the session (streamable HTTP sends DELETE; 405 is fine).
    pub async fn close(&self) {
        let service = self.service.lock().await.take();
        if let Some(mut s) = service {
            let _ = s.close_with_timeout(Duration::from_secs(5)).await;
        }
    }
}

/// rmcp answers a call whose response stream broke with an internal error carrying this
/// marker in its data.
fn is_transport_closed(data: &rmcp::model::ErrorData) -> bool {
    data.data
        .as_ref()
        .and_then(|d| d.as_object())
        .is_some_and(|o| o.contains_key("io.modelcontextprotocol/transportClosed"))
}

fn tool_info(t: rmcp::model::Tool) -> ToolInfo {
    let a = t.annotations.as_ref();
    ToolInfo {
        read_only: a.and_then(|a| a.read_only_hint).unwrap_or(false),
        destructive: a.and_then(|a| a.destructive_hint).unwrap_or(true),
        idempotent: a.and_then(|a| a.idempotent_hint).unwrap_or(false),
        open_world: a.and_then(|a| a.open_world_hint).unwrap_or(true),
        title: t.title.clone().or_else(|| a.and_then(|a| a.title.clone())),
        description: t.description.map(|d| d.into_owned()),
        input_schema: Value::Object((*t.input_schema).clone()),
        name: t.name.into_owned(),
    }
}
