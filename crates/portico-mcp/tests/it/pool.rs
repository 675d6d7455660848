//! The pool: sessions reused per (user, server, credential), idle ones evicted, tools exposed
//! under model-safe names that are distinct across servers and map back to (server, tool).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portico_mcp::names::is_model_safe;
use portico_mcp::{
    CancellationToken, Credential, CredentialFuture, Credentials, McpError, McpTools, Pool,
    PoolConfig, Remote, ServerSpec, TransportKind,
};
use serde_json::{Value, json};

use crate::support::{connector, peer};

/// Tokens per (user, server).
struct Table(HashMap<(String, String), String>);

impl Credentials for Table {
    fn credential<'a>(&'a self, user: &'a str, server: &'a str) -> CredentialFuture<'a> {
        let token = self.0.get(&(user.to_string(), server.to_string())).cloned();
        Box::pin(async move { token.map(Credential::bearer).transpose() })
    }
}

fn spec(id: &str, transport: TransportKind, url: String) -> ServerSpec {
    ServerSpec {
        id: id.into(),
        remote: Remote { transport, url },
    }
}

#[tokio::test]
async fn tools_from_several_servers_get_distinct_safe_names_that_map_back() {
    let (Some(http), Some(sse), Some(py), Some(alice), Some(bob)) = (
        peer("PORTICO_TEST_MCP_EVERYTHING_HTTP"),
        peer("PORTICO_TEST_MCP_EVERYTHING_SSE"),
        peer("PORTICO_TEST_MCP_PYTHON_HTTP"),
        peer("PORTICO_TEST_MCP_TOKEN_ALICE"),
        peer("PORTICO_TEST_MCP_TOKEN_BOB"),
    ) else {
        return;
    };
    let servers = vec![
        spec(
            "api:default/everything",
            TransportKind::StreamableHttp,
            http,
        ),
        // Same tools on another server whose name is the same in another namespace.
        spec("api:team-b/everything", TransportKind::Sse, sse),
        spec(
            "api:default/catalog-admin",
            TransportKind::StreamableHttp,
            py,
        ),
    ];
    let mut table = HashMap::new();
    table.insert(("alice".into(), "api:default/catalog-admin".into()), alice);
    table.insert(("bob".into(), "api:default/catalog-admin".into()), bob);
    let pool = Pool::new(
        connector(Duration::from_secs(10)),
        Arc::new(Table(table)),
        PoolConfig::default(),
    );
    let cancel = CancellationToken::new();
    let listing = pool.tools("alice", &servers, &cancel).await;
    let (tools, failures) = (listing.tools, listing.failures);
    assert!(failures.is_empty(), "{failures:?}");
    let mut seen = std::collections::HashSet::new();
    for t in &tools {
        assert!(is_model_safe(&t.name), "{}", t.name);
        assert!(seen.insert(t.name.clone()), "duplicate {}", t.name);
    }
    assert!(seen.contains("everything__echo"));
    assert!(seen.contains("catalog-admin__whoami"));
    let other_echo = tools
        .iter()
        .find(|t| t.server == "api:team-b/everything" && t.tool.name == "echo")
        .expect("echo on the second server");
    assert_ne!(other_echo.name, "everything__echo");

    let out = pool
        .call_tool(
            "alice",
            &other_echo.name,
            json!({"message": "via sse"}).as_object().cloned(),
            None,
            &cancel,
        )
        .await
        .expect("call through the mapped name");
    assert!(
        out.content[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("via sse")
    );
    let who = pool
        .call_tool("alice", "catalog-admin__whoami", None, None, &cancel)
        .await
        .expect("whoami");
    assert_eq!(who.content[0]["text"], Value::from("alice"));
    let sessions = pool.session_count();
    assert_eq!(sessions, 3);

    // Another user: the names are unknown until that user lists tools; then a separate
    // session with bob's token.
    let err = pool
        .call_tool("bob", "catalog-admin__whoami", None, None, &cancel)
        .await
        .expect_err("bob has not listed tools");
    assert!(matches!(err, McpError::UnknownTool(_)));
    pool.tools("bob", &servers[2..], &cancel).await;
    let who = pool
        .call_tool("bob", "catalog-admin__whoami", None, None, &cancel)
        .await
        .expect("whoami as bob");
    assert_eq!(who.content[0]["text"], Value::from("bob"));
    assert_eq!(pool.session_count(), 4);
    pool.close_all().await;
    assert_eq!(pool.session_count(), 0);
}

#[tokio::test]
async fn sessions_are_reused_then_evicted_when_idle() {
    let Some(http) = peer("PORTICO_TEST_MCP_EVERYTHING_HTTP") else {
        return;
    };
    let servers = vec![spec(
        "api:default/everything",
        TransportKind::StreamableHttp,
        http,
    )];
    let pool = Pool::new(
        connector(Duration::from_secs(10)),
        Arc::new(portico_mcp::NoCredentials),
        PoolConfig {
            session_idle_ttl: Duration::from_millis(200),
            tools_ttl: Duration::from_secs(60),
        },
    );
    let cancel = CancellationToken::new();
    pool.tools("u", &servers, &cancel).await;
    for _ in 0..3 {
        pool.call_tool(
            "u",
            "everything__echo",
            json!({"message": "x"}).as_object().cloned(),
            None,
            &cancel,
        )
        .await
        .expect("echo");
    }
    assert_eq!(pool.session_count(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pool.evict_idle().await, 1);
    assert_eq!(pool.session_count(), 0);
    // The name still maps back; a new session opens on demand.
    pool.call_tool(
        "u",
        "everything__echo",
        json!({"message": "x"}).as_object().cloned(),
        None,
        &cancel,
    )
    .await
    .expect("echo after eviction");
    assert_eq!(pool.session_count(), 1);
    pool.close_all().await;
}

#[tokio::test]
async fn the_tool_list_is_cached_until_list_changed_or_the_ttl() {
    let server = crate::fake::streamable().await;
    let servers = vec![spec(
        "api:default/fake",
        TransportKind::StreamableHttp,
        server.url.clone(),
    )];
    let pool = Pool::new(
        connector(Duration::from_secs(5)),
        Arc::new(portico_mcp::NoCredentials),
        PoolConfig {
            session_idle_ttl: Duration::from_secs(60),
            tools_ttl: Duration::from_millis(300),
        },
    );
    let cancel = CancellationToken::new();
    pool.list("u", &servers, &cancel).await;
    pool.list("u", &servers, &cancel).await;
    assert_eq!(
        server.tool_lists(),
        2,
        "second listing came from the cache (one listing is two pages)"
    );
    // The server says its tools changed: the next listing asks again.
    pool.call_tool("u", "fake__ok_notify", None, None, &cancel)
        .await
        .expect("call");
    tokio::time::sleep(Duration::from_millis(50)).await;
    pool.list("u", &servers, &cancel).await;
    assert_eq!(server.tool_lists(), 4, "list_changed invalidated the cache");
    pool.list("u", &servers, &cancel).await;
    assert_eq!(server.tool_lists(), 4);
    // Past the TTL it asks again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    pool.list("u", &servers, &cancel).await;
    assert_eq!(server.tool_lists(), 6, "TTL expired");
    pool.close_all().await;
}

#[tokio::test]
async fn the_pool_is_usable_as_a_trait_object() {
    let pool: Arc<dyn McpTools> = Arc::new(Pool::new(
        connector(Duration::from_secs(5)),
        Arc::new(portico_mcp::NoCredentials),
        PoolConfig::default(),
    ));
    let cancel = CancellationToken::new();
    let listing = pool.tools("u", &[], &cancel).await;
    assert!(listing.tools.is_empty() && listing.failures.is_empty());
    let err = pool
        .call("u", "nothing__here", None, None, &cancel)
        .await
        .expect_err("unknown");
    assert!(matches!(err, McpError::UnknownTool(_)));
}
