//! Hostile servers: each ends as a clear error within its limit, no token leaves the remote's
//! origin (nor reaches the logs or the error), and a good call in flight on another session
//! is unaffected.

use std::time::{Duration, Instant};

use portico_mcp::{
    CancellationToken, Connector, Credential, Limits, McpError, PolicyError, Remote, TransportKind,
};

use crate::fake;
use crate::support::{capture_logs, connector_with};

const TOKEN: &str = "tok-SECRET-7f3a9c1e";

fn limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(1),
        call_timeout: Duration::from_secs(4),
        max_response_bytes: 1024 * 1024,
        max_event_bytes: 64 * 1024,
        ..Limits::default()
    }
}

fn streamable(url: &str) -> Remote {
    Remote {
        transport: TransportKind::StreamableHttp,
        url: url.to_string(),
    }
}

/// Calls `tool` on a hostile session while a good slow call runs on another session; returns
/// the hostile result and how long it took, after checking the good call and the logs.
async fn contained(
    c: &Connector,
    server: &fake::Fake,
    tool: &str,
) -> (Result<(), McpError>, Duration) {
    let cancel = CancellationToken::new();
    let credential = Some(Credential::bearer(TOKEN).unwrap());
    // The good session has generous limits: on a busy machine it must finish, not race.
    let patient = connector_with(Limits {
        idle_timeout: Duration::from_secs(20),
        call_timeout: Duration::from_secs(30),
        ..limits()
    });
    let good = patient
        .connect(&streamable(&server.url), credential.clone(), &cancel)
        .await
        .expect("good session");
    let bad = c
        .connect(&streamable(&server.url), credential, &cancel)
        .await
        .expect("hostile session");
    let good_call = good.call_tool("ok_slow", None, None, &cancel);
    let started = Instant::now();
    let bad_call = async {
        let r = bad.call_tool(tool, None, None, &cancel).await.map(|_| ());
        (r, started.elapsed())
    };
    let (good_result, (bad_result, took)) = tokio::join!(good_call, bad_call);
    assert!(
        good_result.is_ok(),
        "the good call was affected: {good_result:?}"
    );
    if let Err(e) = &bad_result {
        eprintln!("{tool}: {e}");
        assert!(!e.to_string().contains(TOKEN), "token in the error: {e}");
        assert!(
            !format!("{e:?}").contains(TOKEN),
            "token in the error: {e:?}"
        );
    }
    good.close().await;
    bad.close().await;
    (bad_result, took)
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_idle_timeout() {
    let (logs, _g) = capture_logs();
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "hang").await;
    assert!(matches!(r, Err(McpError::IdleTimeout(_))), "{r:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn a_hanging_call_does_not_block_other_calls_on_the_same_session() {
    let server = fake::streamable().await;
    let c = connector_with(limits());
    let cancel = CancellationToken::new();
    let s = c
        .connect(&streamable(&server.url), None, &cancel)
        .await
        .expect("connect");
    let hang = s.call_tool("hang", None, None, &cancel);
    let others = async {
        for _ in 0..3 {
            s.call_tool("ok", None, None, &cancel)
                .await
                .expect("ok beside a hanging call");
        }
    };
    let (hang, ()) = tokio::join!(hang, others);
    assert!(matches!(hang, Err(McpError::IdleTimeout(_))), "{hang:?}");
    // The server was told: notifications/cancelled with the hanging request's id.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = server.seen();
    let hang_id = seen
        .iter()
        .find(|r| r.rpc.as_deref() == Some("tools/call"))
        .and_then(|r| r.progress_token.clone());
    assert!(hang_id.is_some(), "tools/call carries a progress token");
    assert!(
        seen.iter()
            .any(|r| r.rpc.as_deref() == Some("notifications/cancelled") && r.cancels.is_some()),
        "{seen:?}"
    );
    s.call_tool("ok", None, None, &cancel)
        .await
        .expect("ok after the timeout");
    s.close().await;
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_total_cap_even_with_a_long_idle_timeout() {
    let server = fake::streamable().await;
    let l = Limits {
        idle_timeout: Duration::from_secs(30),
        call_timeout: Duration::from_secs(1),
        ..limits()
    };
    let (r, took) = contained(&connector_with(l), &server, "hang").await;
    assert!(matches!(r, Err(McpError::CallTimeout(_))), "{r:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn a_50_mb_answer_is_refused_at_the_size_limit() {
    let (logs, _g) = capture_logs();
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "huge").await;
    assert!(matches!(r, Err(McpError::TooLarge(_))), "{r:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn an_sse_event_past_the_event_limit_is_refused() {
    let server = fake::streamable().await;
    let (r, _) = contained(&connector_with(limits()), &server, "huge_event").await;
    assert!(matches!(r, Err(McpError::TooLarge(_))), "{r:?}");
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    let (logs, _g) = capture_logs();
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "malformed").await;
    assert!(matches!(r, Err(McpError::Protocol(_))), "{r:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn an_endless_sse_stream_without_a_response_hits_the_idle_timeout() {
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "endless_sse").await;
    assert!(matches!(r, Err(McpError::IdleTimeout(_))), "{r:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[tokio::test]
async fn a_500_is_an_error_at_once() {
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "error500").await;
    let e = r.expect_err("500 is an error");
    assert!(
        matches!(e, McpError::Unavailable { status: 500, .. }),
        "{e:?}"
    );
    assert_eq!(e.action(), portico_mcp::ErrorAction::Retry);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused() {
    let (logs, _g) = capture_logs();
    let server = fake::streamable().await;
    let (r, took) = contained(&connector_with(limits()), &server, "redirect_metadata").await;
    match r {
        Err(McpError::Refused(PolicyError::CrossOriginRedirect { to, .. })) => {
            assert_eq!(to, "http://169.254.169.254");
        }
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn an_sse_endpoint_on_another_origin_fails_before_any_token_is_sent() {
    let (logs, _g) = capture_logs();
    let attacker = fake::attacker().await;
    let server = fake::legacy_sse(format!("{}messages", attacker.url), "").await;
    let c = connector_with(limits());
    let remote = Remote {
        transport: TransportKind::Sse,
        url: server.url.clone(),
    };
    let err = c
        .connect(
            &remote,
            Some(Credential::bearer(TOKEN).unwrap()),
            &CancellationToken::new(),
        )
        .await
        .expect_err("cross-origin endpoint");
    assert!(
        matches!(
            err,
            McpError::Refused(PolicyError::CrossOriginEndpoint { .. })
        ),
        "{err:?}"
    );
    assert!(
        attacker.seen().is_empty(),
        "the other origin was contacted: {:?}",
        attacker.seen()
    );
    assert!(!err.to_string().contains(TOKEN));
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn a_legacy_stream_that_never_answers_initialize_times_out() {
    let server = fake::legacy_sse("/messages?session=1".into(), "").await;
    let c = connector_with(limits());
    let remote = Remote {
        transport: TransportKind::Sse,
        url: server.url.clone(),
    };
    let started = Instant::now();
    let err = c
        .connect(
            &remote,
            Some(Credential::bearer(TOKEN).unwrap()),
            &CancellationToken::new(),
        )
        .await
        .expect_err("no answer");
    assert!(matches!(err, McpError::IdleTimeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    // The token went to the remote's own origin only: the SSE GET and the same-origin POST.
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
    );
}

#[tokio::test]
async fn malformed_json_on_a_legacy_stream_is_a_protocol_error() {
    let server = fake::legacy_sse(
        "/messages".into(),
        "event: message\ndata: {\"jsonrpc\": tru\n\n",
    )
    .await;
    let c = connector_with(limits());
    let remote = Remote {
        transport: TransportKind::Sse,
        url: server.url.clone(),
    };
    let err = c
        .connect(&remote, None, &CancellationToken::new())
        .await
        .expect_err("malformed");
    assert!(matches!(err, McpError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn an_expired_session_is_initialized_again_and_close_sends_delete() {
    let server = fake::streamable().await;
    let c = connector_with(limits());
    let cancel = CancellationToken::new();
    let s = c
        .connect(&streamable(&server.url), None, &cancel)
        .await
        .expect("connect");
    server.expire_first_session();
    s.call_tool("ok", None, None, &cancel)
        .await
        .expect("call after the session expired");
    assert_eq!(server.initializes(), 2, "{:?}", server.seen());
    s.call_tool("ok", None, None, &cancel)
        .await
        .expect("second call on the new session");
    s.close().await;
    let seen = server.seen();
    let delete = seen
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("DELETE on close");
    assert_eq!(delete.session.as_deref(), Some("s2"));
    // Every call carried the session id, the negotiated protocol version and a progress token.
    let calls: Vec<_> = seen
        .iter()
        .filter(|r| r.rpc.as_deref() == Some("tools/call"))
        .collect();
    assert_eq!(
        calls.len(),
        3,
        "the expired call was retried once: {seen:?}"
    );
    for c in calls {
        assert!(c.session.is_some(), "{c:?}");
        assert_eq!(c.protocol_version.as_deref(), Some("2025-06-18"), "{c:?}");
        assert!(c.progress_token.is_some(), "{c:?}");
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_is_refused_after_dns() {
    // `localhost` passes the URL check (https, a name), then resolves to loopback, which this
    // policy refuses: the check runs on the addresses DNS returned.
    let strict = Connector::new(portico_mcp::UrlPolicy::default(), limits()).unwrap();
    let err = strict
        .connect(
            &streamable("https://localhost:9/mcp"),
            Some(Credential::bearer(TOKEN).unwrap()),
            &CancellationToken::new(),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(err, McpError::Refused(PolicyError::Address { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn metadata_private_and_plain_http_remotes_are_refused_before_connecting() {
    let dev = connector_with(limits());
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.8/mcp",
        "https://192.168.1.1/mcp",
        "http://mcp.example.com/mcp",
    ] {
        let started = Instant::now();
        let err = dev
            .connect(&streamable(url), None, &CancellationToken::new())
            .await
            .expect_err(url);
        assert!(matches!(err, McpError::Refused(_)), "{url}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{url} was dialled"
        );
    }
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_the_token_stays_home() {
    let (logs, _g) = capture_logs();
    let attacker = fake::attacker().await;
    let server = fake::streamable().await;
    server.redirect_to(&format!("{}steal", attacker.url));
    let (r, _) = contained(&connector_with(limits()), &server, "redirect_elsewhere").await;
    assert!(
        matches!(
            r,
            Err(McpError::Refused(PolicyError::CrossOriginRedirect { .. }))
        ),
        "{r:?}"
    );
    assert!(attacker.seen().is_empty(), "{:?}", attacker.seen());
    // Every request that did carry the token went to the remote's own origin.
    assert!(server.seen().iter().any(|s| s.authorization.is_some()));
    assert!(!logs.text().contains(TOKEN));
}

#[tokio::test]
async fn tools_list_follows_every_page() {
    let server = fake::streamable().await;
    let c = connector_with(limits());
    let cancel = CancellationToken::new();
    let s = c
        .connect(&streamable(&server.url), None, &cancel)
        .await
        .expect("connect");
    let tools = s.list_tools(&cancel).await.expect("tools/list");
    assert_eq!(server.tool_lists(), 2, "two pages");
    assert!(
        tools.iter().any(|t| t.name == "ok")
            && tools.iter().any(|t| t.name == "redirect_elsewhere")
    );
    s.close().await;
}

#[tokio::test]
async fn an_oversized_event_on_a_legacy_stream_is_refused() {
    let huge: &'static str =
        Box::leak(format!("event: message\ndata: {}\n\n", "x".repeat(200 * 1024)).into_boxed_str());
    let server = fake::legacy_sse("/messages".into(), huge).await;
    let c = connector_with(limits());
    let remote = Remote {
        transport: TransportKind::Sse,
        url: server.url.clone(),
    };
    let err = c
        .connect(&remote, None, &CancellationToken::new())
        .await
        .expect_err("too large");
    assert!(matches!(err, McpError::TooLarge(_)), "{err:?}");
}
