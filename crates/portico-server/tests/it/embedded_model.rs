//! The product page's example question, asked of a running Portico whose model is the embedded
//! one (llama.cpp in process, the 0.5B model the test script installs and names in
//! `PORTICO_TEST_MODEL`), calls the code-search tool of a real MCP server
//! (`tests/mcp-servers/python/code_server.py`, seven tools, beside the built-in actions) with a
//! query about Backstage plugins, and the run completes with an answer.
//!
//! With `PORTICO_TEST_MODEL` unset the test says why it does not run and passes; with it set, a
//! missing model file fails it.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::live::serve;

const QUESTION: &str = "Please search for TypeScript files that define Backstage plugins";

fn model_path() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("PORTICO_TEST_MODEL") else {
        eprintln!(
            "PORTICO_TEST_MODEL is not set: the embedded model's end-to-end test does not run \
             (./scripts/test.sh installs the 0.5B model and sets it)"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "PORTICO_TEST_MODEL is {} but there is no model there: run `portico model install --size 0.5b`",
        path.display()
    );
    Some(path)
}

/// Every event of `run` until it ends (read from the start, so a run that already ended gives
/// them all at once).
async fn run_events(base: &str, token: &str, run: &str) -> Vec<Value> {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/assistant/runs/{run}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    // The first turn reads every tool's description: generous for two busy cores.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the run ended within ten minutes");
        let Some(chunk) = chunk else { return out };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let Ok(event) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            let done = matches!(event["type"].as_str(), Some("run.completed" | "run.failed"));
            out.push(event);
            if done {
                return out;
            }
        }
    }
}

/// The calls the code server has recorded so far.
fn recorded_calls(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_product_page_question_calls_code_search_about_backstage_plugins() {
    let Some(model) = model_path() else { return };
    let url = std::env::var("PORTICO_TEST_MCP_CODE_HTTP").expect(
        "PORTICO_TEST_MCP_CODE_HTTP is not set: run ./scripts/test.sh (it starts the code server)",
    );
    let calls_file = std::env::var("PORTICO_TEST_MCP_CODE_CALLS")
        .expect("PORTICO_TEST_MCP_CODE_CALLS is not set: run ./scripts/test.sh");
    let entities = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {{name: alice}}\nspec: {{memberOf: []}}\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{name: code, description: Source code hosting}}\nspec:\n  type: mcp-server\n  lifecycle: production\n  owner: user:alice\n  remotes: [{{type: streamable-http, url: \"{url}\"}}]\n"
    );
    let config = format!(
        "assistant:\n  model: {{provider: embedded, path: '{}', threads: 2, maxTokens: 200}}\n  toolApproval: never\n",
        model.display()
    );
    // SQLite only: the run's storage is tested on both databases elsewhere; this is the model.
    let (store, _db) = portico_store::testing::stores()
        .await
        .into_iter()
        .next()
        .unwrap();
    let server = serve(store, &config, &entities).await;
    let identity = server.auth.identity_of("user:default/alice").await;
    let token = server
        .auth
        .user_tokens()
        .issue(&identity)
        .await
        .unwrap()
        .token;
    let client = reqwest::Client::new();
    let status = client
        .put(format!(
            "{}/api/assistant/servers/api:default/code/enabled",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let conversation: Value = client
        .post(format!("{}/api/assistant/conversations", server.base))
        .bearer_auth(&token)
        .json(&json!({"title": QUESTION}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = conversation["id"].as_str().unwrap();
    let before = recorded_calls(&calls_file).len();
    let run: Value = client
        .post(format!(
            "{}/api/assistant/conversations/{id}/messages",
            server.base
        ))
        .bearer_auth(&token)
        .json(&json!({"text": QUESTION}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = run_events(&server.base, &token, run["id"].as_str().unwrap()).await;

    // The model was offered the code server's seven tools and the built-in actions.
    let selected = events
        .iter()
        .find(|e| e["type"] == "tools.selected")
        .unwrap_or_else(|| panic!("no tools.selected: {events:?}"));
    let offered = selected["tools"].as_array().unwrap();
    assert!(offered.len() >= 6, "{selected}");
    assert!(offered.contains(&json!("code__search_code")), "{selected}");

    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool.started")
        .collect();
    assert_eq!(started.len(), 1, "{events:?}");
    assert_eq!(started[0]["server"], "api:default/code", "{events:?}");
    assert_eq!(started[0]["tool"], "search_code", "{events:?}");

    // What the server itself received.
    let calls = recorded_calls(&calls_file);
    let new = &calls[before..];
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["tool"], "search_code");
    let query = new[0]["arguments"]["query"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        query.contains("backstage") && query.contains("plugin"),
        "the query is not about Backstage plugins: {query:?}"
    );

    let last = events.last().unwrap();
    assert_eq!(last["type"], "run.completed", "{events:?}");
    let answer = events
        .iter()
        .find(|e| e["type"] == "message.completed")
        .unwrap_or_else(|| panic!("no answer: {events:?}"));
    assert!(
        !answer["text"].as_str().unwrap().trim().is_empty(),
        "{answer}"
    );
}
