//! The built-in Portal Actions on both databases: Portico's own MCP client against
//! `/api/mcp-actions/v1` with each kind of credential, the actions' semantics and errors,
//! per-caller visibility, named subsets, the actions HTTP API, and the server's own catalog entity.

use portico_auth::Identity;
use portico_mcp::{
    CancellationToken, Connector, Credential, Limits, McpError, Remote, Session, TransportKind,
    UrlPolicy,
};
use serde_json::{Map, Value, json};

use crate::live::{Server, serve, test_cipher};

const CONFIG: &str = r#"
backend:
  auth:
    externalAccess:
      - type: static
        options: {token: static-actions-token, subject: scripts}
catalog:
  admins: [user:default/admin]
mcpActions:
  servers:
    readonly:
      name: Read-only catalog
      description: Catalog reads only
      filter:
        include: [{id: 'catalog:*'}]
        exclude: [{attributes: {readOnly: false}}]
"#;

const ENTITIES: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: admin}
spec: {memberOf: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: shared}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: shared}
spec: {owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: billing}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: checkout}
spec: {type: website, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ledger}
spec: {type: service, lifecycle: experimental, owner: team-a}
"#;

fn endpoint(server: &Server, path: &str) -> String {
    format!("{}/api/mcp-actions/v1{path}", server.base)
}

async fn connect(server: &Server, path: &str, token: &str) -> Result<Session, McpError> {
    let connector = Connector::new(UrlPolicy::loopback_allowed(), Limits::default()).unwrap();
    let remote = Remote {
        transport: TransportKind::StreamableHttp,
        url: endpoint(server, path),
    };
    connector
        .connect(
            &remote,
            Some(Credential::bearer(token).unwrap()),
            &CancellationToken::new(),
        )
        .await
}

async fn plugin_token_for(server: &Server, user: &str) -> String {
    let identity = server.auth.identity_of(user).await;
    server
        .auth
        .plugin_tokens()
        .issue("mcp-actions", Some(&identity))
        .await
        .unwrap()
}

fn args(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

fn text(outcome: &portico_mcp::ToolOutcome) -> String {
    outcome
        .content
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

async fn call(session: &Session, tool: &str, input: Value) -> portico_mcp::ToolOutcome {
    session
        .call_tool(tool, args(input), None, &CancellationToken::new())
        .await
        .unwrap()
}

async fn tool_names(session: &Session) -> Vec<String> {
    session
        .list_tools(&CancellationToken::new())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect()
}

#[tokio::test]
async fn portico_client_uses_the_actions_with_a_plugin_token() {
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, ENTITIES).await;
        let alice = connect(
            &server,
            "",
            &plugin_token_for(&server, "user:default/alice").await,
        )
        .await
        .unwrap();
        let tools = alice.list_tools(&CancellationToken::new()).await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        for name in [
            "catalog_get_catalog_entity",
            "catalog_query_catalog_entities",
            "catalog_validate_entity",
            "catalog_list_mcp_servers",
            "auth_who_am_i",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        // Writes are for catalog admins only: alice does not see them, and cannot call them.
        assert!(!names.contains(&"catalog_register_entity"), "{names:?}");
        let get = tools
            .iter()
            .find(|t| t.name == "catalog_get_catalog_entity")
            .unwrap();
        assert!(get.read_only && !get.destructive && get.idempotent && !get.open_world);
        assert_eq!(get.title.as_deref(), Some("Get catalog entity"));
        let err = alice
            .call_tool(
                "catalog_register_entity",
                args(json!({"target": "http://127.0.0.1:9/x.yaml"})),
                None,
                &CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Unknown tool"), "{err}");

        // Results: text and structuredContent; the old dotted name works too.
        for name in ["catalog_get_catalog_entity", "catalog.get-catalog-entity"] {
            let out = call(&alice, name, json!({"name": "mcp-actions"})).await;
            assert!(!out.is_error, "{}", text(&out));
            let entity = out.structured.clone().unwrap();
            assert_eq!(entity["kind"], "API");
            assert_eq!(serde_json::from_str::<Value>(&text(&out)).unwrap(), entity);
        }
        // Known errors are results with isError and Backstage's error names.
        let out = call(
            &alice,
            "catalog_get_catalog_entity",
            json!({"name": "nope"}),
        )
        .await;
        assert!(out.is_error);
        assert_eq!(text(&out), "InputError: No entity found with name \"nope\"");
        let out = call(
            &alice,
            "catalog_get_catalog_entity",
            json!({"name": "shared"}),
        )
        .await;
        assert!(out.is_error);
        let message = text(&out);
        assert!(
            message.starts_with("ConflictError: Multiple entities found with name \"shared\"")
                && message.contains("component:default/shared")
                && message.contains("system:default/shared"),
            "{message}"
        );
        let out = call(
            &alice,
            "catalog_get_catalog_entity",
            json!({"name": "shared", "kind": "System"}),
        )
        .await;
        assert_eq!(out.structured.unwrap()["kind"], "System");
        let out = call(&alice, "catalog_get_catalog_entity", json!({"name": 5})).await;
        assert!(out.is_error);
        assert!(text(&out).starts_with("InputError: Invalid input to catalog:get-catalog-entity: name: 5 is not of type \"string\""), "{}", text(&out));

        // Run as the caller.
        let me = call(&alice, "auth_who_am_i", json!({}))
            .await
            .structured
            .unwrap();
        assert_eq!(me["userEntityRef"], "user:default/alice");
        assert!(
            me["ownershipEntityRefs"]
                .as_array()
                .unwrap()
                .contains(&json!("group:default/team-a"))
        );

        // Query: filter object, fields, order, pages.
        let input = json!({
            "filter": {"kind": "component", "spec.lifecycle": "production"},
            "fields": ["metadata.name", "spec.type"],
            "orderFields": {"field": "metadata.name", "order": "asc"},
            "limit": 2
        });
        let page = call(&alice, "catalog_query_catalog_entities", input.clone())
            .await
            .structured
            .unwrap();
        assert_eq!(page["totalItems"], 3);
        assert_eq!(page["hasMoreEntities"], true);
        assert_eq!(
            page["items"],
            json!([
                {"metadata": {"name": "billing"}, "spec": {"type": "service"}},
                {"metadata": {"name": "checkout"}, "spec": {"type": "website"}}
            ])
        );
        let cursor = page["nextPageCursor"].as_str().unwrap();
        let next = call(
            &alice,
            "catalog_query_catalog_entities",
            json!({"cursor": cursor, "limit": 2}),
        )
        .await
        .structured
        .unwrap();
        assert_eq!(next["items"][0]["metadata"]["name"], "shared");
        assert_eq!(next["hasMoreEntities"], false);
        let either = call(
            &alice,
            "catalog_query_catalog_entities",
            json!({"filter": [{"kind": "system"}, {"metadata.name": "ledger"}]}),
        )
        .await
        .structured
        .unwrap();
        assert_eq!(either["totalItems"], 2);

        // Validate without storing.
        let out = call(&alice, "catalog_validate_entity", json!({"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "bad name"}, "spec": {}}})).await.structured.unwrap();
        assert_eq!(out["valid"], false);
        assert!(!out["errors"].as_array().unwrap().is_empty());

        // The MCP servers, this one among them, with its transport and auth method.
        let servers = call(&alice, "catalog_list_mcp_servers", json!({}))
            .await
            .structured
            .unwrap();
        let me = servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entityRef"] == "api:default/mcp-actions")
            .unwrap()
            .clone();
        assert_eq!(me["available"], true);
        assert_eq!(me["transport"]["url"], endpoint(&server, ""));
        assert_eq!(
            me["auth"],
            json!({"method": "plugin", "pluginId": "mcp-actions"})
        );

        // An admin sees and runs the writes.
        let admin = connect(
            &server,
            "",
            &plugin_token_for(&server, "user:default/admin").await,
        )
        .await
        .unwrap();
        assert!(
            tool_names(&admin)
                .await
                .contains(&"catalog_register_entity".to_string())
        );
        let out = call(
            &admin,
            "catalog_unregister_entity",
            json!({"locationId": "no-such-id"}),
        )
        .await;
        assert!(out.is_error);
        assert!(text(&out).starts_with("NotFoundError:"), "{}", text(&out));
    }
}

#[tokio::test]
async fn only_tokens_meant_for_mcp_actions_get_in() {
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, ENTITIES).await;
        let alice = Identity::user("user:default/alice");
        let user_token = server.auth.user_tokens().issue(&alice).await.unwrap().token;
        let for_catalog = server
            .auth
            .plugin_tokens()
            .issue("catalog", Some(&alice))
            .await
            .unwrap();
        let keys =
            portico_auth::keys::SigningKeys::new(server.catalog.store().clone(), test_cipher());
        let past = portico_auth::now_secs() - 7200;
        let expired = keys
            .sign(
                portico_auth::plugin_tokens::PLUGIN_TOKEN_TYPE,
                &json!({"sub": "portico", "aud": "mcp-actions", "iat": past, "exp": past + 600}),
            )
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let list = |token: Option<String>| {
            let mut r = client
                .post(endpoint(&server, ""))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        for (token, why) in [
            (None, "no token"),
            (Some(for_catalog), "audience catalog"),
            (Some(expired), "expired"),
            (Some("garbage".to_string()), "garbage"),
        ] {
            let r = list(token).await.unwrap();
            assert_eq!(r.status(), 401, "{why}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer", "{why}");
        }
        for token in [
            user_token,
            "static-actions-token".to_string(),
            plugin_token_for(&server, "user:default/alice").await,
        ] {
            let r = list(Some(token)).await.unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert!(body["result"]["tools"].as_array().unwrap().len() >= 5);
        }
        // Stateless: no streams to open or close.
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let r = client
                .request(method, endpoint(&server, ""))
                .bearer_auth("static-actions-token")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405);
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body,
                json!({"jsonrpc": "2.0", "error": {"code": -32000, "message": "Method not allowed."}, "id": null})
            );
        }
        // A Host that is not Portico's own is refused (DNS rebinding).
        let r = list(Some("static-actions-token".to_string()))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .post(endpoint(&server, ""))
            .header("host", "evil.example.com")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth("static-actions-token")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
}

/// A plain `tools/call` is answered in place; the same request with a header the in-place path
/// leaves alone (`Mcp-Session-Id`, which stateless rmcp ignores) goes through rmcp. Both must
/// give the same status, headers and JSON for results, known errors and unknown tools.
#[tokio::test]
async fn calls_answered_in_place_match_rmcp_answers() {
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, ENTITIES).await;
        let alice = plugin_token_for(&server, "user:default/alice").await;
        let admin = plugin_token_for(&server, "user:default/admin").await;
        let client = reqwest::Client::new();
        let cases = [
            (
                &alice,
                "",
                "catalog_query_catalog_entities",
                json!({"filter": [{"kind": "component"}], "fields": ["metadata.name"], "limit": 2}),
            ),
            (
                &alice,
                "",
                "catalog.get-catalog-entity",
                json!({"name": "billing"}),
            ),
            (
                &alice,
                "",
                "catalog_get_catalog_entity",
                json!({"name": "nope"}),
            ),
            (&alice, "", "catalog_get_catalog_entity", json!({"name": 7})),
            (
                &alice,
                "",
                "catalog_register_entity",
                json!({"target": "http://127.0.0.1:9/x.yaml"}),
            ),
            (&alice, "", "no_such_tool", json!({})),
            (
                &admin,
                "/readonly",
                "catalog_unregister_entity",
                json!({"name": "ledger"}),
            ),
            (&admin, "/readonly", "auth_who_am_i", json!({})),
            (&admin, "", "auth_who_am_i", json!({})),
        ];
        for (i, (token, path, tool, arguments)) in cases.into_iter().enumerate() {
            let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}).to_string();
            let mut answers = Vec::new();
            for via_rmcp in [false, true] {
                let mut request = client
                    .post(endpoint(&server, path))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .body(body.clone());
                if via_rmcp {
                    request = request.header("mcp-session-id", "ignored");
                }
                let response = request.send().await.unwrap();
                let status = response.status();
                let content_type = response.headers()["content-type"].clone();
                let json: Value = response.json().await.unwrap();
                answers.push((status, content_type, json));
            }
            assert_eq!(answers[0], answers[1], "{tool} on {path:?}");
            let (status, _, json) = &answers[0];
            assert_eq!(*status, 200);
            assert_eq!(json["id"], i);
            if i == 0 {
                assert_eq!(
                    json["result"]["structuredContent"]["totalItems"], 4,
                    "{json}"
                );
            }
            if tool == "no_such_tool"
                || tool == "catalog_register_entity"
                || path == "/readonly" && tool == "catalog_unregister_entity"
            {
                assert!(
                    json["error"]["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("Unknown tool"),
                    "{json}"
                );
            }
        }
    }
}

#[tokio::test]
async fn named_subsets_hold_only_what_their_filter_admits() {
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, ENTITIES).await;
        let token = plugin_token_for(&server, "user:default/admin").await;
        let readonly = connect(&server, "/readonly", &token).await.unwrap();
        assert_eq!(readonly.server_info().unwrap().0, "Read-only catalog");
        let mut names = tool_names(&readonly).await;
        names.sort();
        assert_eq!(
            names,
            [
                "catalog_get_catalog_entity",
                "catalog_list_mcp_servers",
                "catalog_query_catalog_entities",
                "catalog_validate_entity"
            ]
        );
        let err = readonly
            .call_tool(
                "auth_who_am_i",
                args(json!({})),
                None,
                &CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Unknown tool"), "{err}");
        assert!(connect(&server, "/nope", &token).await.is_err());
    }
}

#[tokio::test]
async fn the_actions_http_api_lists_and_invokes_per_plugin() {
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, ENTITIES).await;
        let alice = server
            .auth
            .user_tokens()
            .issue(&Identity::user("user:default/alice"))
            .await
            .unwrap()
            .token;
        let client = reqwest::Client::new();
        let ids = |plugin: &'static str| {
            let request = client
                .get(format!(
                    "{}/api/{plugin}/.backstage/actions/v1/actions",
                    server.base
                ))
                .bearer_auth(&alice);
            async move {
                let body: Value = request.send().await.unwrap().json().await.unwrap();
                body["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        let catalog_ids = ids("catalog").await;
        assert!(
            catalog_ids.iter().all(|id| id.starts_with("catalog:")) && catalog_ids.len() == 4,
            "{catalog_ids:?}"
        );
        assert_eq!(ids("auth").await, ["auth:who-am-i"]);
        assert_eq!(ids("mcp-actions").await.len(), 5);
        let body: Value = client
            .get(format!(
                "{}/api/catalog/.backstage/actions/v1/actions",
                server.base
            ))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let get = &body["actions"][0];
        assert_eq!(
            get["attributes"],
            json!({"destructive": false, "idempotent": true, "readOnly": true})
        );
        assert_eq!(get["schema"]["input"]["required"], json!(["name"]));

        let invoke = |plugin: &str, id: &str, input: Value| {
            client
                .post(format!(
                    "{}/api/{plugin}/.backstage/actions/v2/actions/{id}/invoke",
                    server.base
                ))
                .bearer_auth(&alice)
                .json(&json!({ "input": input }))
                .send()
        };
        let r = invoke(
            "catalog",
            "catalog:get-catalog-entity",
            json!({"name": "billing"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["output"]["metadata"]["name"], "billing");
        let r = invoke(
            "catalog",
            "catalog:get-catalog-entity",
            json!({"nam": "billing"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["name"], "InputError");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"name\" is a required property"),
            "{body}"
        );
        // Not this plugin's action, and an action alice may not see: both unknown.
        assert_eq!(
            invoke("catalog", "auth:who-am-i", json!({}))
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            invoke("catalog", "catalog:register-entity", json!({"target": "x"}))
                .await
                .unwrap()
                .status(),
            404
        );
        let r = invoke("auth", "auth:who-am-i", json!({})).await.unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["output"]["userEntityRef"], "user:default/alice");
    }
}

#[tokio::test]
async fn the_built_in_server_keeps_its_reference_against_a_location() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/catalog/mcp-actions.yaml"
    ))
    .unwrap();
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, CONFIG, "").await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mcp-actions.yaml"), &example).unwrap();
        server
            .catalog
            .sync_config_locations(&[("file".into(), dir.path().display().to_string())])
            .await
            .unwrap();
        let reports = server.catalog.refresh_all().await.unwrap();
        let problems: Vec<String> = reports
            .iter()
            .flat_map(|(_, r)| r.problems.iter().map(|p| p.message.clone()))
            .collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("api:default/mcp-actions is already provided by Portico itself"),
            "{problems:?}"
        );
        let servers = server.catalog.mcp_servers().await.unwrap();
        let builtin = servers
            .iter()
            .find(|s| s.entity_ref == "api:default/mcp-actions")
            .unwrap();
        assert_eq!(
            builtin.server.transport.as_ref().unwrap().url,
            endpoint(&server, "")
        );
    }
}
