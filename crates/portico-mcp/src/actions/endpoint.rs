//! The HTTP endpoint of an actions server: stateless streamable HTTP, so any replica answers any
//! request. A plain `tools/call` (the call every client makes over and over) is answered in
//! place; everything else goes to rmcp's streamable HTTP service, which passes each request
//! between its own tasks. Only requests rmcp would take in the same way are answered in place:
//! the request is checked as strictly as rmcp checks it, and anything unusual is left to rmcp.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use rmcp::model::{CallToolResponse, RequestId, ServerJsonRpcMessage, ServerResult};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::{Map, Value};
use tower_service::Service;

use super::server::{ActionsServer, Outcome, caller_of};

/// Largest request body read, as rmcp's default.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Protocol versions whose `tools/call` needs no per-request negotiation.
const PLAIN_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The response body type, as rmcp's.
pub type EndpointBody = BoxBody<Bytes, Infallible>;

/// What the endpoint's `Service::call` returns.
pub type EndpointFuture =
    Pin<Box<dyn Future<Output = Result<Response<EndpointBody>, Infallible>> + Send>>;

/// One actions server over HTTP, accepting the `Host` values in its allowed list (Portico's own
/// host names) to block DNS rebinding. The authenticated [`Caller`](super::registry::Caller)
/// comes in the request's extensions. Cheap to clone, as the router does for every request.
#[derive(Clone)]
pub struct ActionsEndpoint(Arc<Inner>);

struct Inner {
    server: ActionsServer,
    allowed_hosts: Vec<String>,
    rmcp: StreamableHttpService<ActionsServer, NeverSessionManager>,
}

/// The stateless streamable-HTTP endpoint for `server`, accepting the `Host` values in
/// `allowed_hosts`.
pub fn mcp_service(server: ActionsServer, allowed_hosts: Vec<String>) -> ActionsEndpoint {
    ActionsEndpoint(Arc::new(Inner {
        rmcp: rmcp_service(server.clone(), allowed_hosts.clone()),
        server,
        allowed_hosts: allowed_hosts
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    }))
}

fn rmcp_service(
    server: ActionsServer,
    allowed_hosts: Vec<String>,
) -> StreamableHttpService<ActionsServer, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_max_request_body_bytes(MAX_BODY_BYTES);
    config.legacy_session_mode = false;
    config.json_response = true;
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// A `tools/call` with nothing but a name, arguments and plain `_meta`: the shape answered in
/// place. Any other field, or a string with escapes in `jsonrpc` or `method`, fails to parse
/// and leaves the request to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainCall<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    params: PlainParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainParams {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default)]
    meta: Option<Map<String, Value>>,
}

impl PlainCall<'_> {
    /// Whether rmcp would hand this straight to the tool: JSON-RPC 2.0, `tools/call`, and no
    /// per-request protocol negotiation in `_meta`.
    fn is_plain(&self) -> bool {
        self.jsonrpc == "2.0"
            && self.method == "tools/call"
            && self.params.meta.as_ref().is_none_or(|meta| {
                !meta
                    .keys()
                    .any(|key| key.starts_with("io.modelcontextprotocol/"))
            })
    }
}

impl ActionsEndpoint {
    /// Answers one request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<EndpointBody>
    where
        B: Body + Send + 'static,
        B::Data: Send + 'static,
        B::Error: Display + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let inner = &self.0;
        if !inner.plain_headers(request.headers()) {
            return inner.rmcp.handle(request).await;
        }
        let (parts, body) = request.into_parts();
        let Ok(collected) = Limited::new(body, MAX_BODY_BYTES).collect().await else {
            return plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: the body could not be read",
            );
        };
        let bytes = collected.to_bytes();
        let call = match serde_json::from_slice::<PlainCall>(&bytes) {
            Ok(call) if call.is_plain() => call,
            _ => {
                let request = Request::from_parts(parts, Full::new(bytes));
                return inner.rmcp.handle(request).await;
            }
        };
        let caller = match caller_of(&parts) {
            Ok(caller) => caller,
            Err(error) => return json(&ServerJsonRpcMessage::error(error, Some(call.id))),
        };
        let arguments = call.params.arguments.unwrap_or_default();
        let outcome = match inner
            .server
            .call(caller, &call.params.name, arguments)
            .await
        {
            Ok(Outcome::Output(output)) if output.is_object() => {
                return match success_body(&call.id, &output) {
                    Ok(body) => json_bytes(body),
                    Err(_) => serialisation_failed(),
                };
            }
            Ok(outcome) => outcome,
            Err(error) => return json(&ServerJsonRpcMessage::error(error, Some(call.id))),
        };
        json(&ServerJsonRpcMessage::response(
            legacy_result(outcome),
            call.id,
        ))
    }
}

/// The result as rmcp sends it to a peer on a protocol version before 2026-07-28.
fn legacy_result(outcome: Outcome) -> ServerResult {
    let mut result = ServerResult::from(CallToolResponse::Complete(outcome.into_result()));
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    result
}

impl Inner {
    /// Whether rmcp would take a POST with these headers straight to its handler: an allowed
    /// `Host`, no `Origin`, both JSON and SSE accepted, a JSON body of declared length, a
    /// protocol version without per-request negotiation, and no other `Mcp-*` headers.
    fn plain_headers(&self, headers: &HeaderMap) -> bool {
        let host_allowed = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<http::uri::Authority>().ok())
            .is_some_and(|authority| {
                let host = authority
                    .host()
                    .trim_matches(['[', ']'])
                    .to_ascii_lowercase();
                self.allowed_hosts.contains(&host)
            });
        let declared_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|length| length <= MAX_BODY_BYTES);
        let version_plain = headers
            .get("mcp-protocol-version")
            .is_none_or(|v| v.to_str().is_ok_and(|v| PLAIN_VERSIONS.contains(&v)));
        let other_mcp_headers = headers.keys().any(|name| {
            name.as_str().starts_with("mcp-") && name.as_str() != "mcp-protocol-version"
        });
        let accepts = |essence: &str| {
            headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|media| media_essence(media).eq_ignore_ascii_case(essence))
        };
        let json_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| media_essence(v).eq_ignore_ascii_case("application/json"));
        host_allowed
            && !headers.contains_key(header::ORIGIN)
            && declared_length
            && version_plain
            && !other_mcp_headers
            && accepts("application/json")
            && accepts("text/event-stream")
            && json_body
    }
}

/// The JSON-RPC answer to a call that produced the object `output`, as [`legacy_result`] would
/// be encoded, written directly: the output's compact JSON goes in once escaped
/// (the text content) and once as it is (`structuredContent`) instead of being built into a
/// result and serialised again.
fn success_body(id: &RequestId, output: &Value) -> serde_json::Result<Vec<u8>> {
    let text = serde_json::to_string(output)?;
    let mut body = Vec::with_capacity(2 * text.len() + 128);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut body, id)?;
    body.extend_from_slice(br#","result":{"content":[{"type":"text","text":"#);
    serde_json::to_writer(&mut body, &text)?;
    body.extend_from_slice(br#"}],"structuredContent":"#);
    body.extend_from_slice(text.as_bytes());
    body.extend_from_slice(br#","isError":false}}"#);
    Ok(body)
}

/// A JSON-RPC message as a JSON response.
fn json(message: &ServerJsonRpcMessage) -> Response<EndpointBody> {
    match serde_json::to_vec(message) {
        Ok(body) => json_bytes(body),
        Err(_) => serialisation_failed(),
    }
}

fn serialisation_failed() -> Response<EndpointBody> {
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error: the result could not be serialised",
    )
}

fn json_bytes(body: Vec<u8>) -> Response<EndpointBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The media type of an `Accept` entry or `Content-Type`, without its parameters.
fn media_essence(value: &str) -> &str {
    value.split(';').next().unwrap_or_default().trim()
}

/// A plain-text response, as rmcp gives for transport errors.
fn plain(status: StatusCode, message: &'static str) -> Response<EndpointBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(message.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

impl<B> Service<Request<B>> for ActionsEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send + 'static,
    B::Error: Display + Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<EndpointBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> EndpointFuture {
        let endpoint = self.clone();
        Box::pin(async move { Ok(endpoint.handle(request).await) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actions::filter::{ActionFilter, ActionRule, SubsetConfig};
    use crate::actions::registry::{ActionSpec, ActionsRegistry, Attributes, Caller, FnAction};

    fn registry() -> Arc<ActionsRegistry> {
        let spec = ActionSpec {
            plugin_id: "test".into(),
            name: "echo".into(),
            title: "Echo".into(),
            description: "Echoes its text".into(),
            input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            output_schema: json!({"type": "object"}),
            attributes: Attributes::default(),
        };
        let mut registry = ActionsRegistry::new();
        registry
            .register(Arc::new(FnAction::new(spec, |caller, input| {
                Box::pin(async move { Ok(json!({"echo": input["text"], "by": caller.subject})) })
            })))
            .unwrap();
        Arc::new(registry)
    }

    /// An endpoint whose rmcp side serves no tools at all, so an answer that names the tool
    /// proves the request was answered in place.
    fn endpoint() -> ActionsEndpoint {
        let registry = registry();
        let nothing = SubsetConfig {
            name: "nothing".into(),
            description: None,
            filter: ActionFilter {
                include: vec![ActionRule {
                    id: Some("none:*".into()),
                    attributes: None,
                }],
                exclude: vec![],
            },
        };
        let hosts = vec!["localhost".to_string(), "::1".to_string()];
        ActionsEndpoint(Arc::new(Inner {
            server: ActionsServer::new(registry.clone(), None),
            allowed_hosts: hosts.clone(),
            rmcp: rmcp_service(ActionsServer::new(registry, Some(nothing)), hosts),
        }))
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_echo","arguments":{"text":"hi"}}}"#;

    /// A POST of `body` with the headers a plain client sends, each of `overrides` replacing
    /// or adding one.
    fn post(body: &str, overrides: &[(&'static str, &str)]) -> Request<Full<Bytes>> {
        let mut request = Request::post("/mcp")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let headers = request.headers_mut();
        let length = body.len().to_string();
        let plain = [
            ("host", "localhost:7007"),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("content-length", length.as_str()),
        ];
        for (name, value) in plain.iter().chain(overrides) {
            headers.insert(*name, value.parse().unwrap());
        }
        request.extensions_mut().insert(Caller {
            subject: "user:default/jane".into(),
            ownership_refs: vec![],
        });
        request
    }

    async fn answer(
        endpoint: &ActionsEndpoint,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, Value) {
        let response = endpoint.handle(request).await;
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn a_plain_tool_call_is_answered_in_place() {
        let endpoint = endpoint();
        for overrides in [
            vec![],
            vec![("mcp-protocol-version", "2025-11-25")],
            vec![("host", "[::1]:7007")],
            vec![("accept", "text/event-stream;q=0.5, Application/JSON")],
        ] {
            let (status, body) = answer(&endpoint, post(CALL, &overrides)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["id"], 7);
            assert_eq!(
                body["result"]["structuredContent"],
                json!({"echo": "hi", "by": "user:default/jane"}),
                "{overrides:?}"
            );
            assert_eq!(body["result"]["isError"], false);
        }
        // Known errors and unknown tools keep their MCP shape.
        let bad = CALL.replace(r#""text":"hi""#, r#""text":1"#);
        let (_, body) = answer(&endpoint, post(&bad, &[])).await;
        assert_eq!(body["result"]["isError"], true, "{body}");
        let other = CALL.replace("test_echo", "test_missing");
        let (_, body) = answer(&endpoint, post(&other, &[])).await;
        assert_eq!(body["error"]["message"], "Unknown tool: test_missing");
    }

    #[tokio::test]
    async fn anything_unusual_is_left_to_rmcp() {
        let endpoint = endpoint();
        let with_meta = CALL.replace(
            r#""name""#,
            r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"},"name""#,
        );
        let version = ("mcp-protocol-version", "2025-11-25");
        for request in [
            post(CALL, &[("mcp-protocol-version", "2026-07-28")]),
            post(CALL, &[("mcp-session-id", "abc")]),
            post(CALL, &[("mcp-method", "tools/call")]),
            post(&with_meta, &[version]),
        ] {
            let (_, body) = answer(&endpoint, request).await;
            assert!(!body["result"]["structuredContent"].is_object(), "{body}");
        }
        let (_, body) = answer(&endpoint, post(CALL, &[("mcp-session-id", "abc")])).await;
        assert_eq!(
            body["error"]["message"], "Unknown tool: test_echo",
            "{body}"
        );
        // rmcp refuses what the in-place path must never take.
        for (header, status) in [
            (("host", "evil.example:7007"), StatusCode::FORBIDDEN),
            (("accept", "application/json"), StatusCode::NOT_ACCEPTABLE),
            (
                ("content-type", "text/plain"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                ("mcp-protocol-version", "1999-01-01"),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (got, _) = answer(&endpoint, post(CALL, &[header])).await;
            assert_eq!(got, status, "{header:?}");
        }
        // Other methods go to rmcp, which serves the empty subset here.
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let (_, body) = answer(&endpoint, post(list, &[])).await;
        assert_eq!(body["result"]["tools"], json!([]));
    }

    #[test]
    fn a_success_body_is_what_rmcp_writes() {
        let output =
            json!({"items": [{"name": "a \"quoted\" é\n</x>"}], "total": 1, "more": false});
        for id in [RequestId::Number(9), RequestId::String("a\"b".into())] {
            let ours: Value = serde_json::from_slice(&success_body(&id, &output).unwrap()).unwrap();
            let message =
                ServerJsonRpcMessage::response(legacy_result(Outcome::Output(output.clone())), id);
            assert_eq!(ours, serde_json::to_value(&message).unwrap());
        }
    }
}
