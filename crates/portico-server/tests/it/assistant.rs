//! The assistant end to end over HTTP against a running Portico: a scripted OpenAI-compatible
//! model (written for these tests: fixed replies and tool calls per scenario), the built-in
//! actions and real MCP servers as tools, the real OIDC provider guarding one server, on both
//! databases.

use futures::StreamExt;
use serde_json::{Value, json};

use crate::live::{Server, serve, serve_behind};
use crate::scripted_model::{Reply, ScriptedModel};

const ENTITIES: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {email: alice@example.com}, memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {memberOf: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: billing}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: gone
  description: A server that is down.
spec:
  type: mcp-server
  lifecycle: production
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: retired
spec:
  type: mcp-server
  lifecycle: deprecated
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
"#;

/// A signed-in user's token.
async fn token(server: &Server, user: &str) -> String {
    let identity = server.auth.identity_of(user).await;
    server
        .auth
        .user_tokens()
        .issue(&identity)
        .await
        .unwrap()
        .token
}

async fn call(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asks `text` in a new conversation; returns (conversation id, run id).
async fn ask(server: &Server, token: &str, text: &str) -> (String, String) {
    let (status, conversation) = call(
        server,
        token,
        reqwest::Method::POST,
        "/api/assistant/conversations",
        Some(json!({"title": text})),
    )
    .await;
    assert_eq!(status, 201, "{conversation}");
    let id = conversation["id"].as_str().unwrap().to_string();
    let (status, run) = call(
        server,
        token,
        reqwest::Method::POST,
        &format!("/api/assistant/conversations/{id}/messages"),
        Some(json!({"text": text})),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    (id, run["id"].as_str().unwrap().to_string())
}

/// Reads the run's SSE stream (after `last_id`) until `stop` says so or the run ends; returns
/// (id, event) pairs.
async fn events(
    server: &Server,
    token: &str,
    run: &str,
    last_id: Option<i64>,
    stop: impl Fn(&Value) -> bool,
) -> Vec<(i64, Value)> {
    let mut request = reqwest::Client::new()
        .get(format!("{}/api/assistant/runs/{run}/events", server.base))
        .bearer_auth(token);
    if let Some(id) = last_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the run's events came within a minute");
        let Some(chunk) = chunk else { return out };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block = buffer[..end].to_string();
            buffer.drain(..end + 2);
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            let (Some(id), Ok(event)) = (id, serde_json::from_str::<Value>(&data)) else {
                continue;
            };
            let done = stop(&event)
                || matches!(event["type"].as_str(), Some("run.completed" | "run.failed"));
            out.push((id, event));
            if done {
                return out;
            }
        }
    }
}

fn types(events: &[(i64, Value)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, e) in events {
        let t = e["type"].as_str().unwrap().to_string();
        // Deltas come in any number; one stands for all.
        if t == "message.delta" && out.last().is_some_and(|l| l == "message.delta") {
            continue;
        }
        out.push(t);
    }
    out
}

fn config(model: &ScriptedModel, extra: &str) -> String {
    format!("{}{extra}", model.config())
}

#[tokio::test]
async fn a_question_calls_a_tool_and_streams_the_answer() {
    for (store, _db) in portico_store::testing::stores().await {
        let model = ScriptedModel::start(vec![
            Reply::Tools(vec![(
                "mcp-actions__catalog_get_catalog_entity".into(),
                json!({"name": "billing"}),
            )]),
            Reply::Text("billing is owned by team-a.".into()),
        ])
        .await;
        let server = serve(store, &config(&model, ""), ENTITIES).await;
        let alice = token(&server, "user:default/alice").await;
        let (conversation, run) = ask(&server, &alice, "Who owns billing?").await;
        let all = events(&server, &alice, &run, None, |_| false).await;
        assert_eq!(
            types(&all),
            [
                "run.started",
                "tools.selected",
                "tool.started",
                "tool.completed",
                "message.delta",
                "message.completed",
                "run.completed"
            ],
            "{all:?}"
        );
        let ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            (1..=ids.len() as i64).collect::<Vec<_>>(),
            "ids are the stored sequence"
        );
        let selected = &all[1].1;
        assert!(
            selected["servers"]
                .as_array()
                .unwrap()
                .contains(&json!("api:default/mcp-actions")),
            "{selected}"
        );
        assert!(
            selected["tools"]
                .as_array()
                .unwrap()
                .contains(&json!("mcp-actions__catalog_get_catalog_entity"))
        );
        let completed = all
            .iter()
            .find(|(_, e)| e["type"] == "tool.completed")
            .unwrap();
        assert_eq!(completed.1["isError"], false);
        assert!(!completed.1["summary"].as_str().unwrap().is_empty());
        assert_eq!(
            all.iter()
                .find(|(_, e)| e["type"] == "message.completed")
                .unwrap()
                .1["text"],
            "billing is owned by team-a."
        );

        // The model saw the tool and then its result.
        let requests = model.requests();
        assert_eq!(requests.len(), 2);
        assert!(
            requests[0]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["function"]["name"] == "mcp-actions__catalog_get_catalog_entity")
        );
        let last = requests[1]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["role"], "tool");
        assert!(
            last["content"]
                .as_str()
                .unwrap()
                .contains("\"name\":\"billing\""),
            "{last}"
        );

        // Reconnecting after event 3 gives exactly the rest.
        let rest = events(&server, &alice, &run, Some(3), |_| false).await;
        assert_eq!(rest, all[3..].to_vec());

        // The conversation keeps the question, the tool exchange and the answer.
        let (status, body) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/conversations/{conversation}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
        let (_, run_info) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/runs/{run}"),
            None,
        )
        .await;
        assert_eq!(run_info["status"], "completed");
    }
}

#[tokio::test]
async fn writes_wait_for_approval_and_run_only_when_approved() {
    for (store, _db) in portico_store::testing::stores().await {
        let register = |target: &str| {
            Reply::Tools(vec![(
                "mcp-actions__catalog_register_entity".into(),
                json!({"target": target}),
            )])
        };
        let model = ScriptedModel::start(vec![
            register("http://127.0.0.1:9/one.yaml"),
            Reply::Text("Registered.".into()),
            register("http://127.0.0.1:9/two.yaml"),
            Reply::Text("Not registered.".into()),
            register("http://127.0.0.1:9/three.yaml"),
            Reply::Text("Registered again.".into()),
        ])
        .await;
        let server = serve(
            store,
            &config(&model, "catalog:\n  admins: [user:default/alice]\n"),
            ENTITIES,
        )
        .await;
        let alice = token(&server, "user:default/alice").await;

        // Approved (and remembered): the call runs.
        let (_, run) = ask(&server, &alice, "Register one.yaml").await;
        let first = events(&server, &alice, &run, None, |e| {
            e["type"] == "approval.required"
        })
        .await;
        let approval = &first.last().unwrap().1;
        assert_eq!(approval["type"], "approval.required", "{first:?}");
        assert_eq!(approval["tool"], "catalog_register_entity");
        assert_eq!(approval["server"], "api:default/mcp-actions");
        assert_eq!(
            approval["arguments"],
            json!({"target": "http://127.0.0.1:9/one.yaml"})
        );
        assert!(
            approval["reason"]
                .as_str()
                .unwrap()
                .contains("not marked read-only")
        );
        let call_id = approval["callId"].as_str().unwrap();
        let (_, info) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/runs/{run}"),
            None,
        )
        .await;
        assert_eq!(info["status"], "waiting");
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::POST,
            &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
            Some(json!({"approve": true, "remember": true})),
        )
        .await;
        assert_eq!(status, 204);
        let rest = events(&server, &alice, &run, Some(first.last().unwrap().0), |_| {
            false
        })
        .await;
        assert_eq!(
            types(&rest),
            [
                "tool.started",
                "tool.completed",
                "message.delta",
                "message.completed",
                "run.completed"
            ],
            "{rest:?}"
        );
        let locations = server.catalog.locations().await.unwrap();
        assert!(locations.iter().any(|l| l.target.ends_with("one.yaml")));

        // Remembered: the same tool, as long as its definition stays, runs without a question.
        let (_, run) = ask(&server, &alice, "Register two.yaml").await;
        let all = events(&server, &alice, &run, None, |_| false).await;
        assert!(
            !types(&all).contains(&"approval.required".to_string()),
            "{all:?}"
        );
        assert!(types(&all).contains(&"tool.started".to_string()), "{all:?}");
        // Denied: forget the approval, ask again, deny; the call never runs.
        portico_store::sqlx::query("DELETE FROM assistant_approvals")
            .execute(server.catalog.store().pool())
            .await
            .unwrap();
        let (_, run) = ask(&server, &alice, "Register three.yaml").await;
        let first = events(&server, &alice, &run, None, |e| {
            e["type"] == "approval.required"
        })
        .await;
        let call_id = first.last().unwrap().1["callId"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::POST,
            &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
            Some(json!({"approve": false})),
        )
        .await;
        assert_eq!(status, 204);
        let rest = events(&server, &alice, &run, Some(first.last().unwrap().0), |_| {
            false
        })
        .await;
        assert!(
            !types(&rest).contains(&"tool.started".to_string()),
            "{rest:?}"
        );
        assert_eq!(types(&rest).last().unwrap(), "run.completed");
        let locations = server.catalog.locations().await.unwrap();
        assert!(!locations.iter().any(|l| l.target.ends_with("three.yaml")));
        // A second decision on the same call is refused: the run has ended.
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::POST,
            &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
            Some(json!({"approve": true})),
        )
        .await;
        assert_eq!(status, 400);

        // The audit trail saw every call with its decision; only admins read it.
        let (status, audit) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            "/api/assistant/audit",
            None,
        )
        .await;
        assert_eq!(status, 200);
        let decisions: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["decision"].as_str().unwrap())
            .collect();
        assert!(
            decisions.contains(&"approved")
                && decisions.contains(&"denied")
                && decisions.contains(&"auto"),
            "{decisions:?}"
        );
        assert!(audit["items"][0]["argumentsDigest"].as_str().unwrap().len() == 64);
        let bob = token(&server, "user:default/bob").await;
        let (status, _) = call(
            &server,
            &bob,
            reqwest::Method::GET,
            "/api/assistant/audit",
            None,
        )
        .await;
        assert_eq!(status, 403);
    }
}

#[tokio::test]
async fn users_see_only_their_own_and_enable_only_available_servers() {
    for (store, _db) in portico_store::testing::stores().await {
        let model = ScriptedModel::start(vec![Reply::Text("Hello.".into())]).await;
        let server = serve(store, &config(&model, ""), ENTITIES).await;
        let alice = token(&server, "user:default/alice").await;
        let bob = token(&server, "user:default/bob").await;
        let (conversation, run) = ask(&server, &alice, "Hi").await;
        events(&server, &alice, &run, None, |_| false).await;
        for path in [
            format!("/api/assistant/conversations/{conversation}"),
            format!("/api/assistant/runs/{run}"),
            format!("/api/assistant/runs/{run}/events"),
        ] {
            let (status, body) = call(&server, &bob, reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
        let (status, _) = call(
            &server,
            &bob,
            reqwest::Method::POST,
            &format!("/api/assistant/conversations/{conversation}/messages"),
            Some(json!({"text": "mine now"})),
        )
        .await;
        assert_eq!(status, 404);
        let (_, list) = call(
            &server,
            &bob,
            reqwest::Method::GET,
            "/api/assistant/conversations",
            None,
        )
        .await;
        assert_eq!(list["items"], json!([]));
        let (_, list) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            "/api/assistant/conversations",
            None,
        )
        .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        // Servers: the built-in one is on for everyone; others are off until enabled; only
        // available ones can be enabled; a disabled unavailable one is not listed.
        let servers = |token: String| {
            let server = &server;
            async move {
                let (status, body) = call(
                    server,
                    &token,
                    reqwest::Method::GET,
                    "/api/assistant/servers",
                    None,
                )
                .await;
                assert_eq!(status, 200);
                body["items"].as_array().unwrap().clone()
            }
        };
        let listed = servers(alice.clone()).await;
        let by_ref = |items: &[Value], r: &str| items.iter().find(|s| s["entityRef"] == r).cloned();
        let builtin = by_ref(&listed, "api:default/mcp-actions").unwrap();
        assert_eq!(builtin["enabled"], true);
        assert_eq!(builtin["authStatus"], json!({"status": "none"}));
        assert_eq!(builtin["risk"]["thirdParty"], false);
        let gone = by_ref(&listed, "api:default/gone").unwrap();
        assert_eq!(gone["enabled"], false);
        assert_eq!(gone["risk"]["thirdParty"], true);
        assert_eq!(gone["risk"]["writesPossible"], true);
        assert!(by_ref(&listed, "api:default/retired").is_none());
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::PUT,
            "/api/assistant/servers/api:default/gone/enabled",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, body) = call(
            &server,
            &alice,
            reqwest::Method::PUT,
            "/api/assistant/servers/api%3Adefault%2Fretired/enabled",
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not available")
        );
        assert_eq!(
            by_ref(&servers(alice.clone()).await, "api:default/gone").unwrap()["enabled"],
            true
        );
        assert_eq!(
            by_ref(&servers(bob.clone()).await, "api:default/gone").unwrap()["enabled"],
            false
        );
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::DELETE,
            "/api/assistant/servers/api:default/mcp-actions/enabled",
            None,
        )
        .await;
        assert_eq!(status, 204);
        assert_eq!(
            by_ref(&servers(alice.clone()).await, "api:default/mcp-actions").unwrap()["enabled"],
            false
        );
        // Deleting a conversation deletes it for good.
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::DELETE,
            &format!("/api/assistant/conversations/{conversation}"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/runs/{run}"),
            None,
        )
        .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn a_failing_server_fails_one_call_and_the_run_still_answers() {
    for (store, _db) in portico_store::testing::stores().await {
        let model = ScriptedModel::start(vec![
            Reply::Tools(vec![
                (
                    "mcp-actions__catalog_get_catalog_entity".into(),
                    json!({"name": "nope"}),
                ),
                ("mcp-actions__auth_who_am_i".into(), json!({})),
            ]),
            Reply::Text("Partly answered.".into()),
        ])
        .await;
        let server = serve(store, &config(&model, ""), ENTITIES).await;
        let alice = token(&server, "user:default/alice").await;
        // Enabled but down: its tools cannot be listed; the run goes on without them.
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::PUT,
            "/api/assistant/servers/api:default/gone/enabled",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (_, run) = ask(&server, &alice, "Tell me about nope").await;
        let all = events(&server, &alice, &run, None, |_| false).await;
        let completed: Vec<&Value> = all
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["type"] == "tool.completed")
            .collect();
        assert_eq!(completed.len(), 2, "{all:?}");
        let failed = completed
            .iter()
            .find(|e| e["isError"] == true)
            .expect("one call failed");
        assert!(
            failed["summary"]
                .as_str()
                .unwrap()
                .contains("No entity found"),
            "{failed}"
        );
        assert!(completed.iter().any(|e| e["isError"] == false));
        assert_eq!(types(&all).last().unwrap(), "run.completed");
        assert!(
            !all[1].1["servers"]
                .as_array()
                .unwrap()
                .contains(&json!("api:default/gone"))
        );
    }
}

#[tokio::test]
async fn without_a_model_the_assistant_says_how_to_configure_one() {
    let (store, _db) = portico_store::testing::stores().await.remove(0);
    let server = serve(store, "", ENTITIES).await;
    let alice = token(&server, "user:default/alice").await;
    let (status, model) = call(
        &server,
        &alice,
        reqwest::Method::GET,
        "/api/assistant/model",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(model["model"], Value::Null);
    assert!(
        model["hint"]
            .as_str()
            .unwrap()
            .contains("portico model install")
    );
    let (_, run) = ask(&server, &alice, "Hello?").await;
    let all = events(&server, &alice, &run, None, |_| false).await;
    assert_eq!(
        types(&all),
        ["run.started", "message.completed", "run.completed"]
    );
    assert!(
        all[1].1["text"]
            .as_str()
            .unwrap()
            .contains("assistant.model")
    );
}

/// Two Portico instances on one PostgreSQL database: the run starts on one, waits for approval,
/// the approval reaches the other, which drives the run on; a client reading events from the
/// first sees every event, from either, in order.
#[tokio::test]
async fn a_run_waiting_on_one_replica_resumes_on_another() {
    if std::env::var("PORTICO_TEST_POSTGRES").as_deref() == Ok("skip") {
        return;
    }
    let base = std::env::var("PORTICO_TEST_POSTGRES_URL").expect("PORTICO_TEST_POSTGRES_URL");
    let (store, name) = portico_store::testing::fresh_postgres(&base).await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    let other_store = portico_store::Store::open(url.as_str()).await.unwrap();
    let model = ScriptedModel::start(vec![
        Reply::Tools(vec![(
            "mcp-actions__catalog_register_entity".into(),
            json!({"target": "http://127.0.0.1:9/x.yaml"}),
        )]),
        Reply::Text("Done on the other replica.".into()),
    ])
    .await;
    let yaml = config(&model, "catalog:\n  admins: [user:default/alice]\n");
    let one = serve(store, &yaml, ENTITIES).await;
    let two = serve_behind(other_store, &yaml, "", Some(&one.base)).await;
    let alice = token(&one, "user:default/alice").await;
    let (_, run) = ask(&one, &alice, "Register x.yaml").await;
    let first = events(&one, &alice, &run, None, |e| {
        e["type"] == "approval.required"
    })
    .await;
    let call_id = first.last().unwrap().1["callId"]
        .as_str()
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    // Replica two verifies replica one's token (shared keys) and takes the run.
    let (status, body) = call(
        &two,
        &alice,
        reqwest::Method::POST,
        &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
        Some(json!({"approve": true})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let rest = events(&one, &alice, &run, Some(first.last().unwrap().0), |_| false).await;
    assert_eq!(
        types(&rest),
        [
            "tool.started",
            "tool.completed",
            "message.delta",
            "message.completed",
            "run.completed"
        ]
    );
    let ids: Vec<i64> = first.iter().chain(rest.iter()).map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
}

/// A real MCP server (server-everything, started by the test script) reporting progress: each
/// notification becomes a `tool.progress` event between the call's start and end. With
/// `toolApproval: never` nothing asks first, as on the product page.
#[tokio::test]
async fn progress_from_a_real_server_streams_as_the_call_runs() {
    if std::env::var("PORTICO_TEST_MCP").as_deref() == Ok("skip") {
        return;
    }
    let url = std::env::var("PORTICO_TEST_MCP_EVERYTHING_HTTP")
        .expect("PORTICO_TEST_MCP_EVERYTHING_HTTP is not set: run ./scripts/test.sh, or set PORTICO_TEST_MCP=skip");
    let entities = format!(
        "{ENTITIES}---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{name: everything}}\nspec:\n  type: mcp-server\n  lifecycle: production\n  owner: team-a\n  remotes: [{{type: streamable-http, url: \"{url}\"}}]\n"
    );
    for (store, _db) in portico_store::testing::stores().await {
        let model = ScriptedModel::start(vec![
            Reply::Tools(vec![(
                "everything__trigger-long-running-operation".into(),
                json!({"duration": 1, "steps": 4}),
            )]),
            Reply::Text("The operation finished.".into()),
        ])
        .await;
        let server = serve(store, &config(&model, "  toolApproval: never\n"), &entities).await;
        let alice = token(&server, "user:default/alice").await;
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::PUT,
            "/api/assistant/servers/api:default/everything/enabled",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (_, run) = ask(&server, &alice, "Run the long operation").await;
        let all = events(&server, &alice, &run, None, |_| false).await;
        let kinds = types(&all);
        let started = kinds
            .iter()
            .position(|t| t == "tool.started")
            .expect("the call started");
        let completed = kinds
            .iter()
            .position(|t| t == "tool.completed")
            .expect("the call ended");
        let progress: Vec<&Value> = all
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["type"] == "tool.progress")
            .collect();
        assert!(progress.len() >= 3, "{all:?}");
        assert!(
            kinds[started..completed]
                .iter()
                .filter(|t| *t == "tool.progress")
                .count()
                >= 3
        );
        assert_eq!(progress[0]["total"], 4.0);
        assert_eq!(kinds.last().unwrap(), "run.completed");
        // Reached once, the server's risk comes from its tools' annotations.
        let (_, body) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            "/api/assistant/servers",
            None,
        )
        .await;
        let everything = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entityRef"] == "api:default/everything")
            .unwrap()
            .clone();
        assert_eq!(everything["risk"]["source"], "tools", "{everything}");
    }
}

/// A server guarded by the real OIDC provider: the run asks for a sign-in, waits, and goes on
/// by itself once the user has signed in through the URL it gave.
#[tokio::test]
async fn a_server_needing_a_sign_in_makes_the_run_wait_then_resume() {
    let Some(_peer) = crate::oidc::peer() else {
        return;
    };
    let _turn = crate::auth_oidc::PEER.lock().await;
    let entities = format!(
        "{ENTITIES}---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: corp-read\n  annotations:\n    mcp.spotify.com/auth-api-id: corp\n    mcp.spotify.com/auth-scopes: '[\"mcp:read\"]'\nspec:\n  type: mcp-server\n  lifecycle: production\n  owner: team-a\n  remotes: [{{type: streamable-http, url: \"http://127.0.0.1:9/mcp\"}}]\n"
    );
    for (store, _db) in portico_store::testing::stores().await {
        let model =
            ScriptedModel::start(vec![Reply::Text("Signed in, answering now.".into())]).await;
        let yaml = format!("{}{}", crate::auth_oidc::custom_provider(), model.config());
        let server = serve(store, &yaml, &entities).await;
        let alice = token(&server, "user:default/alice").await;
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::PUT,
            "/api/assistant/servers/api:default/corp-read/enabled",
            None,
        )
        .await;
        assert_eq!(status, 204);
        let (_, body) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            "/api/assistant/servers",
            None,
        )
        .await;
        let corp = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entityRef"] == "api:default/corp-read")
            .unwrap()
            .clone();
        assert_eq!(corp["authStatus"]["status"], "loginNeeded", "{corp}");
        let (_, run) = ask(&server, &alice, "Read something from corp").await;
        let first = events(&server, &alice, &run, None, |e| {
            e["type"] == "auth.required"
        })
        .await;
        let required = &first.last().unwrap().1;
        assert_eq!(required["type"], "auth.required", "{first:?}");
        assert_eq!(required["server"], "api:default/corp-read");
        assert_eq!(required["provider"], "corp");
        let (_, info) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/runs/{run}"),
            None,
        )
        .await;
        assert_eq!(info["status"], "waiting");
        // The user follows the link (a popup in the UI) and signs in at the provider.
        let browser = crate::oidc::Browser::new("alice");
        let page = browser
            .walk(required["loginUrl"].as_str().unwrap(), None)
            .await;
        assert_eq!(
            crate::oidc::popup_message(&page.body)["type"],
            "authorization_response"
        );
        let rest = events(&server, &alice, &run, Some(first.last().unwrap().0), |_| {
            false
        })
        .await;
        assert_eq!(types(&rest).last().unwrap(), "run.completed", "{rest:?}");
        assert_eq!(
            rest.iter()
                .find(|(_, e)| e["type"] == "message.completed")
                .unwrap()
                .1["text"],
            "Signed in, answering now."
        );
        let (_, body) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            "/api/assistant/servers",
            None,
        )
        .await;
        let corp = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entityRef"] == "api:default/corp-read")
            .unwrap()
            .clone();
        assert_eq!(corp["authStatus"]["status"], "connected", "{corp}");
    }
}

#[tokio::test]
async fn runs_stop_at_the_step_limit_and_when_cancelled() {
    for (store, _db) in portico_store::testing::stores().await {
        let who = || Reply::Tools(vec![("mcp-actions__auth_who_am_i".into(), json!({}))]);
        let register = Reply::Tools(vec![(
            "mcp-actions__catalog_register_entity".into(),
            json!({"target": "http://127.0.0.1:9/y.yaml"}),
        )]);
        let model = ScriptedModel::start(vec![who(), who(), who(), register]).await;
        let yaml = config(
            &model,
            "  maxSteps: 2\ncatalog:\n  admins: [user:default/alice]\n",
        );
        let server = serve(store, &yaml, ENTITIES).await;
        let alice = token(&server, "user:default/alice").await;

        // A model that keeps calling tools is stopped after maxSteps turns, with an answer.
        let (_, run) = ask(&server, &alice, "Who am I, again and again?").await;
        let all = events(&server, &alice, &run, None, |_| false).await;
        assert_eq!(
            all.iter()
                .filter(|(_, e)| e["type"] == "tool.completed")
                .count(),
            2,
            "{all:?}"
        );
        let answer = all
            .iter()
            .find(|(_, e)| e["type"] == "message.completed")
            .unwrap();
        assert!(
            answer.1["text"]
                .as_str()
                .unwrap()
                .contains("stopped after 2 steps"),
            "{answer:?}"
        );
        assert_eq!(types(&all).last().unwrap(), "run.completed");

        // A run waiting for approval is cancelled: it ends, and its question can no longer be answered.
        let (_, run) = ask(&server, &alice, "Register y.yaml").await;
        let first = events(&server, &alice, &run, None, |e| {
            e["type"] == "approval.required"
        })
        .await;
        let call_id = first.last().unwrap().1["callId"]
            .as_str()
            .unwrap_or_else(|| panic!("{first:?}"))
            .to_string();
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::POST,
            &format!("/api/assistant/runs/{run}/cancel"),
            None,
        )
        .await;
        assert_eq!(status, 204);
        let rest = events(&server, &alice, &run, Some(first.last().unwrap().0), |_| {
            false
        })
        .await;
        assert_eq!(
            rest.last().unwrap().1,
            json!({"type": "run.failed", "error": "cancelled by the user"})
        );
        let (_, info) = call(
            &server,
            &alice,
            reqwest::Method::GET,
            &format!("/api/assistant/runs/{run}"),
            None,
        )
        .await;
        assert_eq!(info["status"], "cancelled");
        let (status, _) = call(
            &server,
            &alice,
            reqwest::Method::POST,
            &format!("/api/assistant/runs/{run}/approvals/{call_id}"),
            Some(json!({"approve": true})),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            !server
                .catalog
                .locations()
                .await
                .unwrap()
                .iter()
                .any(|l| l.target.ends_with("y.yaml"))
        );
    }
}
