//! The model clients speak each provider's documented wire format: the request JSON and headers
//! they send, how they read streamed answers (text deltas, tool calls assembled from fragments,
//! finish reason, usage), and which failures they retry.
//!
//! The real OpenAI and Anthropic hosts cannot be reached from here (tests never leave loopback),
//! so the answers are recorded fixtures in the providers' documented formats
//! (`tests/fixtures/model/`), served in small chunks by an axum server on 127.0.0.1 that also
//! records every request it gets.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use portico_assistant::model::{
    ChatRequest, ChatResponse, FinishReason, Message, ModelConfig, ModelError, ModelProvider, Role,
    ToolCall, ToolDef, Usage, provider_from_config,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const KEY: &str = "sk-test-portico-0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// The recording server

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    /// After the body, keep the connection open and send nothing more.
    stall: bool,
}

impl Reply {
    fn sse(fixture_path: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "text/event-stream; charset=utf-8".into())],
            body: fixture(fixture_path),
            stall: false,
        }
    }

    fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            stall: false,
        }
    }

    fn with(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One request the server got.
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct Script {
    /// Answers in order; the last one repeats.
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Server {
    /// `http://127.0.0.1:port`
    origin: String,
    script: Script,
}

impl Server {
    async fn start(replies: Vec<Reply>) -> Self {
        let script = Script {
            replies: Arc::new(Mutex::new(replies.into())),
            seen: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { origin, script }
    }

    fn requests(&self) -> usize {
        self.script.seen.lock().unwrap().len()
    }

    /// Path, headers and JSON body of request `i`.
    fn request(&self, i: usize) -> (String, HeaderMap, Value) {
        let seen = self.script.seen.lock().unwrap();
        let s = &seen[i];
        (s.path.clone(), s.headers.clone(), s.body.clone())
    }
}

async fn answer(
    State(script): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    }
    .expect("a scripted reply");
    // Small chunks, so events and UTF-8 arrive split across reads.
    let chunks: Vec<Result<Bytes, Infallible>> = reply
        .body
        .into_bytes()
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = futures::stream::iter(chunks);
    let body = if reply.stall {
        Body::from_stream(body.chain(futures::stream::pending()))
    } else {
        Body::from_stream(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Fixtures and the conversation both providers get

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/model/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn json_fixture(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

fn tools() -> Vec<ToolDef> {
    vec![
        ToolDef {
            name: "catalog_get_entity".into(),
            description: "Get one catalog entity by kind and name.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"kind": {"type": "string"}, "name": {"type": "string"}},
                "required": ["kind", "name"],
            }),
        },
        ToolDef {
            name: "github_list_pull_requests".into(),
            description: "List pull requests of a GitHub repository.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "repo": {"type": "string", "description": "owner/name"},
                    "state": {"type": "string", "enum": ["open", "closed", "all"]},
                },
                "required": ["repo"],
            }),
        },
    ]
}

fn first_turn() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::text(
                Role::System,
                "You are Portico, an assistant for the software catalog. Use the tools to answer.",
            ),
            Message::text(
                Role::User,
                "Who owns the payments service, and does it have open pull requests?",
            ),
        ],
        tools: tools(),
    }
}

/// The first turn, the model's tool calls, and both results.
fn second_turn(first: &ChatResponse) -> ChatRequest {
    let mut request = first_turn();
    request.messages.push(Message {
        role: Role::Assistant,
        content: first.text.clone(),
        tool_calls: first.tool_calls.clone(),
        tool_call_id: None,
    });
    request.messages.push(Message::tool_result(
        &first.tool_calls[0].id,
        r#"{"kind":"Component","metadata":{"name":"payments"},"spec":{"owner":"team-billing","lifecycle":"production"}}"#,
    ));
    request.messages.push(Message::tool_result(
        &first.tool_calls[1].id,
        "#412 Retry failed webhooks (open)\n#415 Bump axum to 0.8 (open)",
    ));
    request
}

const ANSWER: &str =
    "The payments service is owned by team-billing. It has 2 open pull requests: #412 and #415.";

fn provider(config: Value) -> Arc<dyn ModelProvider> {
    let config: ModelConfig = serde_json::from_value(config).unwrap();
    provider_from_config(&config).unwrap().expect("a provider")
}

fn openai(server: &Server, extra: Value) -> Arc<dyn ModelProvider> {
    let mut config = json!({
        "provider": "openai",
        "baseUrl": format!("{}/v1", server.origin),
        "model": "gpt-4o-mini",
        "apiKey": KEY,
        "maxTokens": 512,
        "temperature": 0.2,
    });
    merge(&mut config, extra);
    provider(config)
}

fn anthropic(server: &Server, extra: Value) -> Arc<dyn ModelProvider> {
    let mut config = json!({
        "provider": "anthropic",
        "baseUrl": server.origin,
        "model": "claude-sonnet-4-5",
        "apiKey": KEY,
    });
    merge(&mut config, extra);
    provider(config)
}

fn merge(config: &mut Value, extra: Value) {
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            config.as_object_mut().unwrap().remove(&k);
        } else {
            config[k] = v;
        }
    }
}

/// Runs one call and collects the deltas it streamed.
async fn complete(
    provider: &dyn ModelProvider,
    request: &ChatRequest,
) -> (Result<ChatResponse, ModelError>, Vec<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = provider.complete(request, Some(tx)).await;
    let mut deltas = Vec::new();
    while let Ok(d) = rx.try_recv() {
        deltas.push(d);
    }
    (result, deltas)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn openai_calls() -> Vec<ToolCall> {
    vec![
        ToolCall {
            id: "call_Qx3fN8mW2pLk7RvT9yB1cZ4a".into(),
            name: "catalog_get_entity".into(),
            arguments: json!({"kind": "Component", "name": "payments"}),
        },
        ToolCall {
            id: "call_Hd7sK2vR9mPq4WbN6tY8eJ3x".into(),
            name: "github_list_pull_requests".into(),
            arguments: json!({"repo": "acme/payments", "state": "open"}),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat completions

#[tokio::test]
async fn openai_sends_tools_and_assembles_two_parallel_tool_calls_from_fragments() {
    let server = Server::start(vec![Reply::sse("openai/stream_tool_calls.sse")]).await;
    let model = openai(&server, json!({}));
    assert_eq!(model.name(), "openai:gpt-4o-mini");

    let (result, deltas) = complete(model.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert_eq!(
        response,
        ChatResponse {
            text: String::new(),
            tool_calls: openai_calls(),
            finish: FinishReason::ToolCalls,
            usage: Some(Usage {
                input_tokens: 187,
                output_tokens: 58
            }),
        }
    );
    assert!(deltas.is_empty(), "{deltas:?}");

    let (path, headers, body) = server.request(0);
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(body, json_fixture("openai/request_first_turn.json"));
    assert_eq!(
        header(&headers, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(header(&headers, "x-api-key"), None);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
}

#[tokio::test]
async fn openai_sends_tool_calls_and_results_back_and_streams_the_text() {
    let server = Server::start(vec![
        Reply::sse("openai/stream_tool_calls.sse"),
        Reply::sse("openai/stream_text.sse"),
    ])
    .await;
    let model = openai(&server, json!({}));
    let first = model.complete(&first_turn(), None).await.unwrap();

    let (result, deltas) = complete(model.as_ref(), &second_turn(&first)).await;
    let response = result.unwrap();
    assert_eq!(
        response,
        ChatResponse {
            text: ANSWER.into(),
            tool_calls: vec![],
            finish: FinishReason::Stop,
            usage: Some(Usage {
                input_tokens: 312,
                output_tokens: 24
            }),
        }
    );
    assert_eq!(deltas.len(), 23, "one delta per content chunk: {deltas:?}");
    assert_eq!(deltas[..3], ["The", " payments", " service"]);
    assert_eq!(deltas.concat(), ANSWER);

    let (_, _, body) = server.request(1);
    assert_eq!(body, json_fixture("openai/request_second_turn.json"));
}

#[tokio::test]
async fn openai_compatible_servers_without_a_key_get_no_authorization_header() {
    let server = Server::start(vec![Reply::sse("openai/stream_text.sse")]).await;
    let model = openai(
        &server,
        json!({"apiKey": null, "temperature": null, "model": "qwen2.5:1.5b"}),
    );
    let (result, _) = complete(model.as_ref(), &first_turn()).await;
    assert_eq!(result.unwrap().text, ANSWER);

    let (_, headers, body) = server.request(0);
    assert_eq!(header(&headers, "authorization"), None);
    assert_eq!(body["model"], "qwen2.5:1.5b");
    assert_eq!(body["max_tokens"], 512);
    assert!(body.get("temperature").is_none(), "{body}");
}

#[tokio::test]
async fn openai_a_server_that_ignores_stream_answers_one_json_body() {
    let server = Server::start(vec![Reply::json(
        200,
        fixture("openai/completion_tool_calls.json"),
    )])
    .await;
    let model = openai(&server, json!({}));
    let (result, deltas) = complete(model.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert_eq!(response.tool_calls, openai_calls());
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 187,
            output_tokens: 58
        })
    );
    assert!(deltas.is_empty());
}

#[tokio::test]
async fn openai_the_request_omits_tools_when_there_are_none() {
    let server = Server::start(vec![Reply::sse("openai/stream_text.sse")]).await;
    let model = openai(&server, json!({}));
    let request = ChatRequest {
        tools: vec![],
        ..first_turn()
    };
    model.complete(&request, None).await.unwrap();
    let (_, _, body) = server.request(0);
    assert!(body.get("tools").is_none(), "{body}");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn openai_arguments_that_are_not_json_name_the_tool() {
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let body = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "catalog_get_entity", "arguments": "{\"kind\": "}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".into(),
    ]
    .concat();
    let server = Server::start(vec![Reply {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body,
        stall: false,
    }])
    .await;
    let err = openai(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::Protocol(m) if m.contains("catalog_get_entity") && m.contains("not valid JSON")),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_a_stream_cut_short_is_a_protocol_error() {
    let full = fixture("openai/stream_text.sse");
    let cut: String = full.split_inclusive("\n\n").take(5).collect();
    let server = Server::start(vec![Reply {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: cut,
        stall: false,
    }])
    .await;
    let err = openai(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn openai_400_is_the_providers_message_without_retry() {
    let server = Server::start(vec![Reply::json(400, fixture("openai/error_400.json"))]).await;
    let err = openai(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::Provider {
            status: 400,
            message: "An assistant message with 'tool_calls' must be followed by tool messages \
                      responding to each 'tool_call_id'. The following tool_call_ids did not have \
                      response messages: call_Hd7sK2vR9mPq4WbN6tY8eJ3x"
                .into(),
        }
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn openai_401_is_unauthorized_at_once_and_never_shows_the_key() {
    let server = Server::start(vec![Reply::json(401, fixture("openai/error_401.json"))]).await;
    let err = openai(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(err, ModelError::Unauthorized { status: 401 });
    assert_eq!(server.requests(), 1);
    let text = err.to_string();
    assert!(
        text.contains("assistant.model.apiKey") && !text.contains(KEY),
        "{text}"
    );
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn a_provider_message_that_quotes_the_key_is_redacted() {
    let body = json!({"error": {"message": format!("Key {KEY} is not allowed to use this model"), "type": "invalid_request_error"}});
    let server = Server::start(vec![Reply::json(404, body.to_string())]).await;
    let err = openai(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(KEY), "{text}");
    assert!(
        text.contains("Key [redacted] is not allowed") && text.contains("assistant.model.baseUrl"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn retry_429_twice_then_success_is_one_success_after_three_requests() {
    let limited = Reply::json(429, r#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)
        .with("retry-after", "0");
    let server = Server::start(vec![
        limited.clone(),
        limited,
        Reply::sse("openai/stream_text.sse"),
    ])
    .await;
    let (result, deltas) = complete(openai(&server, json!({})).as_ref(), &first_turn()).await;
    assert_eq!(result.unwrap().text, ANSWER);
    assert_eq!(
        deltas.concat(),
        ANSWER,
        "no delta from the refused attempts"
    );
    assert_eq!(server.requests(), 3);
    // Every attempt sends the same request.
    assert_eq!(server.request(0).2, server.request(2).2);
}

#[tokio::test]
async fn retry_500_forever_gives_up_after_max_retries_plus_one_attempts() {
    let failing = Reply::json(500, r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#)
        .with("retry-after", "0");
    let server = Server::start(vec![failing]).await;
    let err = openai(&server, json!({"maxRetries": 2}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::Provider {
            status: 500,
            message: "The server had an error while processing your request. Sorry about that!"
                .into()
        }
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn retry_429_forever_is_rate_limited() {
    let server = Server::start(vec![Reply::json(429, "{}").with("retry-after", "0")]).await;
    let err = openai(&server, json!({"maxRetries": 3}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(err, ModelError::RateLimited);
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn retry_without_retry_after_backs_off_half_a_second_first() {
    let server = Server::start(vec![
        Reply::json(503, "upstream connect error"),
        Reply::sse("openai/stream_text.sse"),
    ])
    .await;
    let started = Instant::now();
    let response = openai(&server, json!({"maxRetries": 1}))
        .complete(&first_turn(), None)
        .await
        .unwrap();
    assert_eq!(response.text, ANSWER);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn a_provider_that_falls_silent_mid_stream_times_out_without_retry() {
    let full = fixture("openai/stream_text.sse");
    let start: String = full.split_inclusive("\n\n").take(3).collect();
    let server = Server::start(vec![Reply {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: start,
        stall: true,
    }])
    .await;
    let model = openai(&server, json!({"timeoutSeconds": 1}));
    let started = Instant::now();
    let (result, deltas) = complete(model.as_ref(), &first_turn()).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ModelError::Unreachable { message, .. } if message.contains("assistant.model.timeoutSeconds")),
        "{err:?}"
    );
    assert_eq!(deltas, ["The", " payments"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn an_unreachable_provider_names_the_base_url_only() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/v1");
    let model =
        provider(json!({"provider": "openai", "baseUrl": base, "model": "m", "apiKey": KEY}));
    let err = model.complete(&first_turn(), None).await.unwrap_err();
    let ModelError::Unreachable { url, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*url, base);
    assert!(!err.to_string().contains(KEY), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages

fn anthropic_calls() -> Vec<ToolCall> {
    vec![
        ToolCall {
            id: "toolu_01A09q90qw90lq917835lq9".into(),
            name: "catalog_get_entity".into(),
            arguments: json!({"kind": "Component", "name": "payments"}),
        },
        ToolCall {
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "github_list_pull_requests".into(),
            arguments: json!({"repo": "acme/payments", "state": "open"}),
        },
    ]
}

#[tokio::test]
async fn anthropic_puts_the_system_on_top_and_assembles_tool_use_from_json_deltas() {
    let server = Server::start(vec![Reply::sse("anthropic/stream_tool_use.sse")]).await;
    let model = anthropic(&server, json!({}));
    assert_eq!(model.name(), "anthropic:claude-sonnet-4-5");

    let (result, deltas) = complete(model.as_ref(), &first_turn()).await;
    assert_eq!(
        result.unwrap(),
        ChatResponse {
            text: "I'll look up the owner and the open pull requests.".into(),
            tool_calls: anthropic_calls(),
            finish: FinishReason::ToolCalls,
            usage: Some(Usage {
                input_tokens: 612,
                output_tokens: 121
            }),
        }
    );
    assert_eq!(
        deltas,
        ["I'll look", " up the owner and the open", " pull requests."]
    );

    let (path, headers, body) = server.request(0);
    assert_eq!(path, "/v1/messages");
    assert_eq!(body, json_fixture("anthropic/request_first_turn.json"));
    assert_eq!(header(&headers, "x-api-key"), Some(KEY));
    assert_eq!(header(&headers, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&headers, "authorization"), None);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
}

#[tokio::test]
async fn anthropic_sends_tool_use_blocks_and_merged_tool_results_and_streams_the_text() {
    let server = Server::start(vec![
        Reply::sse("anthropic/stream_tool_use.sse"),
        Reply::sse("anthropic/stream_text.sse"),
    ])
    .await;
    let model = anthropic(&server, json!({}));
    let first = model.complete(&first_turn(), None).await.unwrap();

    let (result, deltas) = complete(model.as_ref(), &second_turn(&first)).await;
    assert_eq!(
        result.unwrap(),
        ChatResponse {
            text: ANSWER.into(),
            tool_calls: vec![],
            finish: FinishReason::Stop,
            usage: Some(Usage {
                input_tokens: 803,
                output_tokens: 27
            }),
        }
    );
    assert_eq!(deltas.len(), 3);
    assert_eq!(deltas.concat(), ANSWER);

    let (_, _, body) = server.request(1);
    assert_eq!(body, json_fixture("anthropic/request_second_turn.json"));
}

#[tokio::test]
async fn anthropic_compatible_servers_without_a_key_get_no_x_api_key() {
    let server = Server::start(vec![Reply::sse("anthropic/stream_text.sse")]).await;
    let model = anthropic(&server, json!({"apiKey": null, "temperature": 0.5}));
    assert_eq!(
        model.complete(&first_turn(), None).await.unwrap().text,
        ANSWER
    );
    let (_, headers, body) = server.request(0);
    assert_eq!(header(&headers, "x-api-key"), None);
    assert_eq!(header(&headers, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(body["temperature"], 0.5);
}

#[tokio::test]
async fn anthropic_an_overloaded_error_event_is_retried_like_529() {
    let server = Server::start(vec![
        Reply::sse("anthropic/stream_error_overloaded.sse"),
        Reply::sse("anthropic/stream_text.sse"),
    ])
    .await;
    let (result, deltas) = complete(
        anthropic(&server, json!({"maxRetries": 1})).as_ref(),
        &first_turn(),
    )
    .await;
    assert_eq!(result.unwrap().text, ANSWER);
    assert_eq!(deltas.concat(), ANSWER);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn anthropic_an_error_event_that_persists_is_the_providers_message() {
    let server = Server::start(vec![Reply::sse("anthropic/stream_error_overloaded.sse")]).await;
    let err = anthropic(&server, json!({"maxRetries": 0}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::Provider {
            status: 529,
            message: "Overloaded".into()
        }
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn anthropic_an_invalid_request_error_event_is_final() {
    let body = concat!(
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"invalid_request_error","message":"messages: text content blocks must be non-empty"}}"#,
        "\n\n"
    );
    let server = Server::start(vec![Reply {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: body.into(),
        stall: false,
    }])
    .await;
    let err = anthropic(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ModelError::Provider {
            status: 400,
            message: "messages: text content blocks must be non-empty".into()
        }
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn anthropic_401_is_unauthorized_at_once_and_never_shows_the_key() {
    let server = Server::start(vec![Reply::json(401, fixture("anthropic/error_401.json"))]).await;
    let err = anthropic(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap_err();
    assert_eq!(err, ModelError::Unauthorized { status: 401 });
    assert_eq!(server.requests(), 1);
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn anthropic_529_with_retry_after_is_retried() {
    let overloaded = Reply::json(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .with("retry-after", "0");
    let server = Server::start(vec![overloaded, Reply::sse("anthropic/stream_text.sse")]).await;
    let response = anthropic(&server, json!({}))
        .complete(&first_turn(), None)
        .await
        .unwrap();
    assert_eq!(response.text, ANSWER);
    assert_eq!(server.requests(), 2);
}
