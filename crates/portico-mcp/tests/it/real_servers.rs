//! Against the real servers on loopback: server-everything (npm) over streamable HTTP and SSE,
//! and a Bearer-protected Python server on the `mcp` package 2.x over both. Initialize, list
//! all tools, call tools, progress resets the idle timer, cancellation, 401 without a token,
//! and the token reaching the server as the right user.

use std::time::{Duration, Instant};

use portico_mcp::{CancellationToken, Credential, McpError, Remote, Session, TransportKind};
use serde_json::{Value, json};

use crate::support::{connector, peer};

fn remote(transport: TransportKind, url: String) -> Remote {
    Remote { transport, url }
}

fn text(outcome: &portico_mcp::ToolOutcome) -> String {
    outcome
        .content
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

fn args(v: Value) -> Option<serde_json::Map<String, Value>> {
    v.as_object().cloned()
}

async fn everything(transport: TransportKind) -> Option<Session> {
    let var = match transport {
        TransportKind::StreamableHttp => "PORTICO_TEST_MCP_EVERYTHING_HTTP",
        TransportKind::Sse => "PORTICO_TEST_MCP_EVERYTHING_SSE",
    };
    let url = peer(var)?;
    let c = connector(Duration::from_secs(10));
    Some(
        c.connect(&remote(transport, url), None, &CancellationToken::new())
            .await
            .expect("connect to server-everything"),
    )
}

async fn lists_and_calls(transport: TransportKind) {
    let Some(session) = everything(transport).await else {
        return;
    };
    let cancel = CancellationToken::new();
    let tools = session.list_tools(&cancel).await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum"),
        "{names:?}"
    );
    let echo = session
        .call_tool(
            "echo",
            args(json!({"message": "hello portico"})),
            None,
            &cancel,
        )
        .await
        .expect("echo");
    assert!(text(&echo).contains("hello portico"), "{echo:?}");
    let sum = session
        .call_tool("get-sum", args(json!({"a": 2, "b": 40})), None, &cancel)
        .await
        .expect("get-sum");
    assert!(text(&sum).contains("42"), "{sum:?}");
    session.close().await;
}

#[tokio::test]
async fn everything_over_streamable_http_lists_and_calls() {
    lists_and_calls(TransportKind::StreamableHttp).await;
}

#[tokio::test]
async fn everything_over_sse_lists_and_calls() {
    lists_and_calls(TransportKind::Sse).await;
}

async fn progress_resets_idle(transport: TransportKind) {
    let url = match transport {
        TransportKind::StreamableHttp => peer("PORTICO_TEST_MCP_EVERYTHING_HTTP"),
        TransportKind::Sse => peer("PORTICO_TEST_MCP_EVERYTHING_SSE"),
    };
    let Some(url) = url else { return };
    // Idle timeout 1.2 s; the operation lasts 3 s with progress every 0.5 s.
    let c = connector(Duration::from_millis(1200));
    let cancel = CancellationToken::new();
    let session = c
        .connect(&remote(transport, url), None, &cancel)
        .await
        .expect("connect");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let outcome = session
        .call_tool(
            "trigger-long-running-operation",
            args(json!({"duration": 3, "steps": 6})),
            Some(tx),
            &cancel,
        )
        .await
        .expect("long operation survives the idle timeout thanks to progress");
    assert!(!outcome.is_error);
    let mut seen = 0;
    while rx.try_recv().is_ok() {
        seen += 1;
    }
    assert!(seen >= 4, "progress notifications seen: {seen}");
    session.close().await;
}

#[tokio::test]
async fn progress_resets_the_idle_timer_over_streamable_http() {
    progress_resets_idle(TransportKind::StreamableHttp).await;
}

#[tokio::test]
async fn progress_resets_the_idle_timer_over_sse() {
    progress_resets_idle(TransportKind::Sse).await;
}

fn python(transport: TransportKind) -> Option<Remote> {
    let var = match transport {
        TransportKind::StreamableHttp => "PORTICO_TEST_MCP_PYTHON_HTTP",
        TransportKind::Sse => "PORTICO_TEST_MCP_PYTHON_SSE",
    };
    Some(remote(transport, peer(var)?))
}

async fn requires_bearer(transport: TransportKind) {
    let Some(r) = python(transport) else { return };
    let c = connector(Duration::from_secs(10));
    let err = c
        .connect(&r, None, &CancellationToken::new())
        .await
        .expect_err("no token, no session");
    match &err {
        McpError::AuthRequired { challenge: Some(c) } => assert!(c.starts_with("Bearer"), "{c}"),
        other => panic!("expected AuthRequired, got {other:?}"),
    }
    let wrong = Credential::bearer("not-a-valid-token").unwrap();
    let err = c
        .connect(&r, Some(wrong), &CancellationToken::new())
        .await
        .expect_err("wrong token");
    assert!(matches!(err, McpError::AuthRequired { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-a-valid-token"));
}

#[tokio::test]
async fn python_server_over_streamable_http_requires_a_bearer_token() {
    requires_bearer(TransportKind::StreamableHttp).await;
}

#[tokio::test]
async fn python_server_over_sse_requires_a_bearer_token() {
    requires_bearer(TransportKind::Sse).await;
}

async fn whoami_and_annotations(transport: TransportKind) {
    let Some(r) = python(transport) else { return };
    let (Some(alice), Some(bob)) = (
        peer("PORTICO_TEST_MCP_TOKEN_ALICE"),
        peer("PORTICO_TEST_MCP_TOKEN_BOB"),
    ) else {
        return;
    };
    let c = connector(Duration::from_secs(10));
    let cancel = CancellationToken::new();
    for (token, user) in [(alice, "alice"), (bob, "bob")] {
        let s = c
            .connect(&r, Some(Credential::bearer(token).unwrap()), &cancel)
            .await
            .expect("connect with token");
        let who = s
            .call_tool("whoami", None, None, &cancel)
            .await
            .expect("whoami");
        assert_eq!(text(&who), user);
        let tools = s.list_tools(&cancel).await.expect("tools/list");
        let list = tools
            .iter()
            .find(|t| t.name == "list_services")
            .expect("read-only tool");
        assert!(list.read_only && !list.destructive);
        let delete = tools
            .iter()
            .find(|t| t.name == "delete_service")
            .expect("destructive tool");
        assert!(!delete.read_only && delete.destructive);
        s.close().await;
    }
}

#[tokio::test]
async fn python_server_over_streamable_http_sees_each_users_token() {
    whoami_and_annotations(TransportKind::StreamableHttp).await;
}

#[tokio::test]
async fn python_server_over_sse_sees_each_users_token() {
    whoami_and_annotations(TransportKind::Sse).await;
}

async fn cancellation(transport: TransportKind) {
    let Some(r) = python(transport) else { return };
    let Some(alice) = peer("PORTICO_TEST_MCP_TOKEN_ALICE") else {
        return;
    };
    let c = connector(Duration::from_secs(10));
    let session = c
        .connect(
            &r,
            Some(Credential::bearer(alice).unwrap()),
            &CancellationToken::new(),
        )
        .await
        .expect("connect");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = session
        .call_tool("count_slowly", args(json!({"steps": 100})), None, &cancel)
        .await
        .expect_err("cancelled");
    assert!(matches!(err, McpError::Cancelled), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The session stays usable after a cancelled call.
    let who = session
        .call_tool("whoami", None, None, &CancellationToken::new())
        .await
        .expect("whoami after cancel");
    assert_eq!(text(&who), "alice");
    session.close().await;
}

#[tokio::test]
async fn a_cancelled_call_ends_at_once_and_the_session_goes_on_over_streamable_http() {
    cancellation(TransportKind::StreamableHttp).await;
}

#[tokio::test]
async fn a_cancelled_call_ends_at_once_and_the_session_goes_on_over_sse() {
    cancellation(TransportKind::Sse).await;
}
